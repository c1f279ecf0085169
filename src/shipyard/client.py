"""The Python SDK: a typed client over the REST API.

    import shipyard
    client = shipyard.Client()            # SHIPYARD_URL, SHIPYARD_TOKEN, SHIPYARD_NAMESPACE
    run = client.create_run("churn", name="baseline")
    client.log_batch(run["id"], metrics=[{"key": "auc", "value": 0.91, "step": 0}])

API errors come back as the same exception classes the server raised
(``shipyard.NotFound``, ``shipyard.PermissionDenied``...).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from shipyard._transport import JSON
from shipyard._transport import segment as _q
from shipyard.client_feedback import FeedbackMixin
from shipyard.client_loops import LoopsMixin
from shipyard.client_monitors import MonitorsMixin
from shipyard.client_pipelines import PipelineRunsMixin, lineage_tags
from shipyard.errors import ERRORS_BY_CODE, ClientError, IntegrityFailure, InvalidInput, ShipyardError
from shipyard.settings import Settings

if TYPE_CHECKING:
    from shipyard.registry.predictor import Predictor

CHUNK = 1024 * 1024
RETRY_STATUSES = frozenset({502, 503, 504})


def _default_token(settings: Settings) -> str | None:
    if settings.token:
        return settings.token
    path = settings.admin_token_path
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


class Client(PipelineRunsMixin, LoopsMixin, FeedbackMixin, MonitorsMixin):
    """A connection to a Shipyard control plane.

    ``url`` defaults to ``SHIPYARD_URL`` (else the local ``shipyard up`` address), ``token``
    to ``SHIPYARD_TOKEN`` (else ``<home>/admin.token`` when readable), ``namespace`` to
    ``SHIPYARD_NAMESPACE`` (else ``default``). ``transport`` takes any httpx transport,
    e.g. ``httpx.ASGITransport(app)`` to talk to an app in-process.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        namespace: str | None = None,
        timeout: float = 60.0,
        retries: int = 3,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        settings = Settings()
        self.url = (url or settings.resolved_url()).rstrip("/")
        self.token = token or _default_token(settings)
        self.namespace = namespace or os.environ.get("SHIPYARD_NAMESPACE") or "default"
        self.retries = retries
        headers = {"User-Agent": "shipyard-sdk"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self._http = httpx.Client(base_url=self.url + "/api/v1", headers=headers, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- plumbing -----------------------------------------------------------------

    def _ns(self, namespace: str | None) -> str:
        return _q(namespace or self.namespace)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        content: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        """Send one request, retrying connection failures and 502-504 for idempotent calls."""
        if idempotent is None:
            idempotent = method in ("GET", "PUT", "DELETE")
        clean_params = {k: v for k, v in (params or {}).items() if v is not None}
        attempts = self.retries + 1 if idempotent else 1
        for attempt in range(attempts):
            try:
                response = self._http.request(method, path, json=json, params=clean_params, content=content, headers=headers)
            except httpx.TransportError as exc:
                if attempt + 1 >= attempts:
                    raise ClientError(
                        f"cannot reach Shipyard at {self.url}: {exc}; is 'shipyard up' running?", status_code=0
                    ) from exc
                time.sleep(0.2 * 2**attempt)
                continue
            if response.status_code in RETRY_STATUSES and attempt + 1 < attempts:
                time.sleep(0.2 * 2**attempt)
                continue
            return self._decode(response)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _decode(response: httpx.Response) -> Any:
        if response.status_code < 400:
            if response.status_code == 204 or not response.content:
                return None
            return response.json()
        try:
            body = response.json()
        except ValueError:
            body = {"message": response.text[:500]}
        code = body.get("error", "") if isinstance(body, dict) else ""
        message = body.get("message", response.reason_phrase) if isinstance(body, dict) else str(body)
        details = body.get("details") if isinstance(body, dict) else None
        cls = ERRORS_BY_CODE.get(code)
        if cls is None or cls is ShipyardError:
            if response.status_code == 422:
                raise InvalidInput(message, details=details)
            raise ClientError(f"{response.status_code}: {message}", status_code=response.status_code, details=details)
        raise cls(message, details=details)

    # -- platform -----------------------------------------------------------------

    def health(self) -> JSON:
        result: JSON = self.request("GET", "/health")
        return result

    def whoami(self) -> JSON:
        result: JSON = self.request("GET", "/whoami")
        return result

    def list_namespaces(self) -> list[JSON]:
        return list(self.request("GET", "/namespaces"))

    def create_namespace(self, name: str, *, description: str = "", labels: Mapping[str, str] | None = None) -> JSON:
        result: JSON = self.request(
            "POST", "/namespaces", json={"name": name, "description": description, "labels": dict(labels or {})}
        )
        return result

    def get_namespace(self, name: str) -> JSON:
        result: JSON = self.request("GET", f"/namespaces/{_q(name)}")
        return result

    def delete_namespace(self, name: str) -> None:
        self.request("DELETE", f"/namespaces/{_q(name)}")

    def create_user(self, name: str, *, display_name: str = "") -> JSON:
        result: JSON = self.request("POST", "/users", json={"name": name, "display_name": display_name})
        return result

    def list_users(self) -> list[JSON]:
        return list(self.request("GET", "/users"))

    def set_user_disabled(self, name: str, disabled: bool) -> JSON:
        result: JSON = self.request("PATCH", f"/users/{_q(name)}", json={"disabled": disabled})
        return result

    def create_service_account(self, name: str, *, namespace: str | None = None, display_name: str = "") -> JSON:
        result: JSON = self.request(
            "POST", f"/namespaces/{self._ns(namespace)}/service-accounts", json={"name": name, "display_name": display_name}
        )
        return result

    def list_service_accounts(self, *, namespace: str | None = None) -> list[JSON]:
        return list(self.request("GET", f"/namespaces/{self._ns(namespace)}/service-accounts"))

    def create_token(
        self,
        *,
        user: str | None = None,
        service_account: str | None = None,
        namespace: str | None = None,
        name: str = "",
        scopes: Sequence[str] = ("read", "write"),
        days: int = 90,
    ) -> JSON:
        """Issue a token. The secret is in ``result['token']`` and nowhere else, ever."""
        body = {
            "user": user,
            "service_account": service_account,
            "namespace": namespace,
            "name": name,
            "scopes": list(scopes),
            "days": days,
        }
        result: JSON = self.request("POST", "/tokens", json=body)
        return result

    def list_tokens(
        self, *, user: str | None = None, service_account: str | None = None, namespace: str | None = None
    ) -> list[JSON]:
        return list(
            self.request("GET", "/tokens", params={"user": user, "service_account": service_account, "namespace": namespace})
        )

    def revoke_token(self, token_id: str) -> JSON:
        result: JSON = self.request("DELETE", f"/tokens/{_q(token_id)}")
        return result

    def grant_role(
        self, role: str, *, user: str | None = None, service_account: str | None = None, namespace: str | None = None
    ) -> JSON:
        body = {"user": user, "service_account": service_account, "role": role}
        result: JSON = self.request("POST", f"/namespaces/{self._ns(namespace)}/role-bindings", json=body)
        return result

    def revoke_role(self, *, user: str | None = None, service_account: str | None = None, namespace: str | None = None) -> None:
        self.request(
            "DELETE",
            f"/namespaces/{self._ns(namespace)}/role-bindings",
            params={"user": user, "service_account": service_account},
        )

    def list_role_bindings(self, *, namespace: str | None = None) -> list[JSON]:
        return list(self.request("GET", f"/namespaces/{self._ns(namespace)}/role-bindings"))

    def audit_events(
        self,
        *,
        namespace: str | None = None,
        principal: str | None = None,
        outcome: str | None = None,
        since: int | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[JSON]:
        params = {
            "namespace": namespace,
            "principal": principal,
            "outcome": outcome,
            "since": since,
            "before_id": before_id,
            "limit": limit,
        }
        return list(self.request("GET", "/audit", params=params))

    # -- tracking -----------------------------------------------------------------

    def create_experiment(
        self, name: str, *, namespace: str | None = None, description: str = "", tags: Mapping[str, str] | None = None
    ) -> JSON:
        body = {"name": name, "description": description, "tags": dict(tags or {})}
        result: JSON = self.request("POST", f"/namespaces/{self._ns(namespace)}/experiments", json=body)
        return result

    def list_experiments(self, *, namespace: str | None = None) -> list[JSON]:
        return list(self.request("GET", f"/namespaces/{self._ns(namespace)}/experiments"))

    def get_experiment_by_name(self, name: str, *, namespace: str | None = None) -> JSON:
        found = self.request("GET", f"/namespaces/{self._ns(namespace)}/experiments", params={"name": name})
        return dict(found[0])

    def create_run(
        self,
        experiment: str,
        *,
        namespace: str | None = None,
        name: str = "",
        code_version: str = "",
        parent_run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        start_time: int | None = None,
    ) -> JSON:
        """Start a run in the experiment named ``experiment`` (created if missing)."""
        body = {
            "experiment_name": experiment,
            "name": name,
            "code_version": code_version,
            "parent_run_id": parent_run_id,
            "tags": lineage_tags(tags),
            "start_time": start_time,
        }
        result: JSON = self.request("POST", f"/namespaces/{self._ns(namespace)}/runs", json=body)
        return result

    def get_run(self, run_id: str, *, namespace: str | None = None) -> JSON:
        result: JSON = self.request("GET", f"/namespaces/{self._ns(namespace)}/runs/{_q(run_id)}")
        return result

    def update_run(
        self,
        run_id: str,
        *,
        namespace: str | None = None,
        status: str | None = None,
        end_time: int | None = None,
        name: str | None = None,
        lifecycle_stage: str | None = None,
    ) -> JSON:
        body = {
            k: v
            for k, v in {"status": status, "end_time": end_time, "name": name, "lifecycle_stage": lifecycle_stage}.items()
            if v is not None
        }
        result: JSON = self.request("PATCH", f"/namespaces/{self._ns(namespace)}/runs/{_q(run_id)}", json=body, idempotent=True)
        return result

    def end_run(self, run_id: str, status: str = "finished", *, namespace: str | None = None) -> JSON:
        return self.update_run(run_id, namespace=namespace, status=status)

    def log_batch(
        self,
        run_id: str,
        *,
        namespace: str | None = None,
        metrics: Sequence[Mapping[str, Any]] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        """Log metrics (``{"key", "value", "step", "timestamp"}``), params and tags at once."""
        body = {
            "metrics": [dict(m) for m in metrics],
            "params": {k: str(v) for k, v in (params or {}).items()},
            "tags": {k: str(v) for k, v in (tags or {}).items()},
        }
        self.request("POST", f"/namespaces/{self._ns(namespace)}/runs/{_q(run_id)}/log-batch", json=body)

    def log_metric(
        self, run_id: str, key: str, value: float, *, step: int = 0, timestamp: int | None = None, namespace: str | None = None
    ) -> None:
        self.log_batch(run_id, namespace=namespace, metrics=[{"key": key, "value": value, "step": step, "timestamp": timestamp}])

    def log_params(self, run_id: str, params: Mapping[str, Any], *, namespace: str | None = None) -> None:
        self.log_batch(run_id, namespace=namespace, params=params)

    def set_tags(self, run_id: str, tags: Mapping[str, Any], *, namespace: str | None = None) -> None:
        self.log_batch(run_id, namespace=namespace, tags=tags)

    def metric_history(self, run_id: str, key: str, *, namespace: str | None = None) -> list[JSON]:
        points: list[JSON] = []
        after = 0
        while True:
            page = self.request(
                "GET",
                f"/namespaces/{self._ns(namespace)}/runs/{_q(run_id)}/metrics/{_q(key)}",
                params={"after_id": after, "limit": 100_000},
            )
            points.extend(page["points"])
            if page["next_after_id"] is None:
                return points
            after = page["next_after_id"]

    def search_runs(
        self,
        *,
        namespace: str | None = None,
        experiment_ids: Sequence[str] = (),
        filter: str = "",
        order_by: Sequence[str] = (),
        max_results: int = 100,
        page_token: str | None = None,
    ) -> JSON:
        """One page of runs: ``{"runs": [...], "next_page_token": ...}``."""
        body = {
            "experiment_ids": list(experiment_ids),
            "filter": filter,
            "order_by": list(order_by),
            "max_results": max_results,
            "page_token": page_token,
        }
        result: JSON = self.request("POST", f"/namespaces/{self._ns(namespace)}/runs:search", json=body, idempotent=True)
        return result

    def iter_runs(self, **kwargs: Any) -> Iterator[JSON]:
        """Every run matching ``search_runs`` arguments, page by page."""
        token = None
        while True:
            page = self.search_runs(page_token=token, **kwargs)
            yield from page["runs"]
            token = page["next_page_token"]
            if not token:
                return

    def upload_artifact(
        self,
        run_id: str,
        source: str | Path | bytes | IO[bytes],
        path: str | None = None,
        *,
        namespace: str | None = None,
        media_type: str = "application/octet-stream",
    ) -> JSON:
        """Stream a file (or bytes) to the run's artifact ``path`` (default: the file's name)."""
        if path is None:
            if not isinstance(source, (str, Path)):
                raise InvalidInput("name the artifact: pass path='...' when uploading bytes or a stream")
            path = Path(source).name
        url = f"/namespaces/{self._ns(namespace)}/runs/{_q(run_id)}/artifacts/{quote(path, safe='/')}"
        result: JSON = self._put_stream(url, source, media_type)
        return result

    def _put_stream(self, url: str, source: str | Path | bytes | IO[bytes], media_type: str) -> Any:
        headers = {"Content-Type": media_type}
        if isinstance(source, bytes):
            return self.request("PUT", url, content=source, headers=headers)
        if isinstance(source, (str, Path)):
            with open(source, "rb") as handle:
                return self.request("PUT", url, content=_chunks(handle), headers=headers, idempotent=False)
        return self.request("PUT", url, content=_chunks(source), headers=headers, idempotent=False)

    def list_artifacts(self, run_id: str, *, namespace: str | None = None, prefix: str = "") -> list[JSON]:
        return list(
            self.request(
                "GET", f"/namespaces/{self._ns(namespace)}/runs/{_q(run_id)}/artifacts", params={"prefix": prefix or None}
            )
        )

    def download_artifact(self, run_id: str, path: str, destination: str | Path, *, namespace: str | None = None) -> Path:
        url = f"/namespaces/{self._ns(namespace)}/runs/{_q(run_id)}/artifacts/{quote(path, safe='/')}"
        return self._download(url, Path(destination))

    def _download(self, url: str, destination: Path) -> Path:
        """Stream to a temp file, check the digest, then rename into place."""
        destination.parent.mkdir(parents=True, exist_ok=True)
        temp = destination.with_name(f".{destination.name}.part")
        hasher = hashlib.sha256()
        with self._http.stream("GET", url) as response:
            if response.status_code >= 400:
                response.read()
                self._decode(response)
            expected = response.headers.get("X-Shipyard-Digest")
            with open(temp, "wb") as out:
                for chunk in response.iter_bytes(CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
        if expected and hasher.hexdigest() != expected:
            temp.unlink(missing_ok=True)
            raise IntegrityFailure(f"download of {url} hashes to {hasher.hexdigest()}, expected {expected}: retry it")
        os.replace(temp, destination)
        return destination

    def _fetch_bytes(self, url: str) -> bytes:
        response = self._http.get(url)
        if response.status_code >= 400:
            self._decode(response)
        expected = response.headers.get("X-Shipyard-Digest")
        if expected and hashlib.sha256(response.content).hexdigest() != expected:
            raise IntegrityFailure(f"download of {url} does not match its digest {expected}: retry it")
        return response.content

    # -- registry -----------------------------------------------------------------

    def create_model(
        self, name: str, *, namespace: str | None = None, description: str = "", tags: Mapping[str, str] | None = None
    ) -> JSON:
        result: JSON = self.request(
            "POST",
            f"/namespaces/{self._ns(namespace)}/models",
            json={"name": name, "description": description, "tags": dict(tags or {})},
        )
        return result

    def get_model(self, name: str, *, namespace: str | None = None) -> JSON:
        result: JSON = self.request("GET", f"/namespaces/{self._ns(namespace)}/models/{_q(name)}")
        return result

    def list_models(self, *, namespace: str | None = None) -> list[JSON]:
        return list(self.request("GET", f"/namespaces/{self._ns(namespace)}/models"))

    def upload_blob(self, source: str | Path | bytes | IO[bytes], *, namespace: str | None = None) -> JSON:
        result: JSON = self._put_stream(f"/namespaces/{self._ns(namespace)}/blobs", source, "application/octet-stream")
        return result

    def create_model_version(
        self, name: str, *, artifact_digest: str, format: str, namespace: str | None = None, **fields: Any
    ) -> JSON:
        body = {"artifact_digest": artifact_digest, "format": format, **fields, "tags": lineage_tags(fields.get("tags"))}
        result: JSON = self.request("POST", f"/namespaces/{self._ns(namespace)}/models/{_q(name)}/versions", json=body)
        return result

    def register_model(
        self,
        name: str,
        model: Any,
        *,
        namespace: str | None = None,
        run_id: str | None = None,
        training_data: Any = None,
        datasets: Sequence[Mapping[str, Any]] | None = None,
        format: str | None = None,
        metrics: Mapping[str, float] | None = None,
        code_version: str | None = None,
        description: str = "",
        tags: Mapping[str, str] | None = None,
        trust_pickle: bool = False,
        onnx: bool = True,
        profile: bool = True,
    ) -> JSON:
        """Save ``model`` (skops, ONNX; pickle only with ``trust_pickle``) and register a version.

        With ``training_data`` the signature is inferred from it (and the model's
        predictions on a sample), and its digest is recorded as the version's dataset.
        With ``run_id`` the file is also kept as a run artifact, and the version links to
        the run's params, metrics and code version. A scikit-learn model with
        ``training_data`` also gets an ONNX export for fast serving (``onnx=False`` skips
        it); when it cannot be converted faithfully, tag ``onnx.skipped`` says why. With
        ``training_data`` the version also gets a reference profile of the data and of the
        model's predictions on it, for drift monitoring (``profile=False`` skips it; when the
        data cannot be profiled, tag ``profile.skipped`` says why).
        """
        from shipyard.registry import fingerprint, formats, signature  # NumPy only when models are involved

        data, fmt = formats.dump_model(model, format, trust_pickle=trust_pickle)
        sig: JSON = {}
        found_datasets = [dict(d) for d in datasets or []]
        if training_data is not None:
            sample = training_data[:100] if hasattr(training_data, "__getitem__") else training_data
            outputs = model.predict(sample) if hasattr(model, "predict") else None
            sig = signature.infer(training_data, outputs)
            if not found_datasets:
                found_datasets = [fingerprint.describe_dataset(training_data, "training")]
        blob = self.upload_blob(data, namespace=namespace)
        all_tags = dict(tags or {})
        onnx_digest = None
        if onnx and fmt == formats.SKLEARN and training_data is not None:
            from shipyard.registry import onnx_export

            exported = onnx_export.export(model, training_data)
            if exported.data is not None:
                onnx_digest = self.upload_blob(exported.data, namespace=namespace)["digest"]
            else:
                all_tags["onnx.skipped"] = exported.skipped
        profile_digest = None
        if profile and training_data is not None:
            profile_digest, skipped = self._upload_profile(model, training_data, namespace=namespace)
            if skipped:
                all_tags["profile.skipped"] = skipped
        if run_id is not None:
            self.upload_artifact(run_id, data, f"model/{formats.FILE_NAMES[fmt]}", namespace=namespace)
        try:
            self.create_model(name, namespace=namespace)
        except ShipyardError as exc:
            if exc.code != "already_exists":
                raise
        return self.create_model_version(
            name,
            namespace=namespace,
            artifact_digest=blob["digest"],
            format=fmt,
            onnx_digest=onnx_digest,
            profile_digest=profile_digest,
            signature=sig,
            metrics=dict(metrics) if metrics is not None else None,
            run_id=run_id,
            datasets=found_datasets,
            code_version=code_version,
            description=description,
            tags=all_tags,
            trust_pickle=trust_pickle,
        )

    def get_model_version(
        self, name: str, version: int | None = None, *, alias: str | None = None, namespace: str | None = None
    ) -> JSON:
        base = f"/namespaces/{self._ns(namespace)}/models/{_q(name)}"
        if alias is not None:
            result: JSON = self.request("GET", f"{base}/aliases/{_q(alias)}")
        elif version is not None:
            result = self.request("GET", f"{base}/versions/{int(version)}")
        else:
            raise InvalidInput("name a version or an alias")
        return result

    def list_model_versions(self, name: str, *, namespace: str | None = None) -> list[JSON]:
        return list(self.request("GET", f"/namespaces/{self._ns(namespace)}/models/{_q(name)}/versions"))

    def lineage(self, name: str, version: int, *, namespace: str | None = None) -> JSON:
        result: JSON = self.request("GET", f"/namespaces/{self._ns(namespace)}/models/{_q(name)}/versions/{int(version)}/lineage")
        return result

    def load_model(
        self,
        name: str,
        version: int | None = None,
        *,
        alias: str | None = None,
        namespace: str | None = None,
        trust_pickle: bool = False,
    ) -> Any:
        """Download a version (by number or alias), check its digest, and load it."""
        from shipyard.registry import formats

        found, data, _ = self._version_files(name, version, alias, namespace, with_onnx=False)
        return formats.load_model(data, found["format"], trust_pickle=trust_pickle)

    def load_predictor(
        self,
        name: str,
        version: int | None = None,
        *,
        alias: str | None = None,
        namespace: str | None = None,
        trust_pickle: bool = False,
    ) -> Predictor:
        """Like ``load_model``, wrapped in a ``Predictor`` that runs the ONNX export when the version has one."""
        from shipyard.registry import formats

        found, data, onnx_data = self._version_files(name, version, alias, namespace, with_onnx=True)
        return formats.load_for_serving(data, found["format"], onnx_data, trust_pickle=trust_pickle)

    def _version_files(
        self, name: str, version: int | None, alias: str | None, namespace: str | None, *, with_onnx: bool
    ) -> tuple[JSON, bytes, bytes | None]:
        """A version's record, its model file and (when asked and present) its ONNX export, digests checked."""
        found = self.get_model_version(name, version, alias=alias, namespace=namespace)
        data = self._model_file(name, found, namespace, "main")
        onnx_data = self._model_file(name, found, namespace, "onnx") if with_onnx and found.get("onnx_digest") else None
        return found, data, onnx_data

    def _model_file(self, name: str, found: JSON, namespace: str | None, variant: str) -> bytes:
        """A version's main file or ONNX export, checked against the digest it was registered with."""
        expected = found["onnx_digest"] if variant == "onnx" else found["artifact_digest"]
        url = f"/namespaces/{self._ns(namespace)}/models/{_q(name)}/versions/{found['version']}/artifact"
        data = self._fetch_bytes(url + ("?variant=onnx" if variant == "onnx" else ""))
        if hashlib.sha256(data).hexdigest() != expected:
            raise IntegrityFailure(f"model {name} v{found['version']} ({variant}) does not match its registered digest")
        return data

    def set_alias(self, name: str, alias: str, version: int, *, namespace: str | None = None) -> JSON:
        result: JSON = self.request(
            "PUT", f"/namespaces/{self._ns(namespace)}/models/{_q(name)}/aliases/{_q(alias)}", json={"version": int(version)}
        )
        return result

    def delete_alias(self, name: str, alias: str, *, namespace: str | None = None) -> None:
        self.request("DELETE", f"/namespaces/{self._ns(namespace)}/models/{_q(name)}/aliases/{_q(alias)}")

    def rollback(self, name: str, alias: str = "production", *, namespace: str | None = None) -> JSON:
        """Move ``alias`` back to the version it pointed at before."""
        result: JSON = self.request("POST", f"/namespaces/{self._ns(namespace)}/models/{_q(name)}/aliases/{_q(alias)}/rollback")
        return result

    def alias_history(self, name: str, alias: str, *, namespace: str | None = None) -> list[JSON]:
        return list(self.request("GET", f"/namespaces/{self._ns(namespace)}/models/{_q(name)}/aliases/{_q(alias)}/history"))

    # -- serving ------------------------------------------------------------------

    def create_endpoint(
        self, name: str, *, namespace: str | None = None, description: str = "", audience: Mapping[str, Any] | None = None
    ) -> JSON:
        """Create an endpoint; ``audience`` is {"namespace": bool, "principals": [...], "anonymous": bool}."""
        body = {"name": name, "description": description, "audience": dict(audience or {})}
        result: JSON = self.request("POST", f"/namespaces/{self._ns(namespace)}/endpoints", json=body)
        return result

    def get_endpoint(self, name: str, *, namespace: str | None = None) -> JSON:
        result: JSON = self.request("GET", f"/namespaces/{self._ns(namespace)}/endpoints/{_q(name)}")
        return result

    def list_endpoints(self, *, namespace: str | None = None) -> list[JSON]:
        return list(self.request("GET", f"/namespaces/{self._ns(namespace)}/endpoints"))

    def update_endpoint(
        self,
        name: str,
        *,
        namespace: str | None = None,
        description: str | None = None,
        audience: Mapping[str, Any] | None = None,
    ) -> JSON:
        body = {
            k: v
            for k, v in {"description": description, "audience": dict(audience) if audience is not None else None}.items()
            if v is not None
        }
        result: JSON = self.request(
            "PATCH", f"/namespaces/{self._ns(namespace)}/endpoints/{_q(name)}", json=body, idempotent=True
        )
        return result

    def delete_endpoint(self, name: str, *, namespace: str | None = None) -> None:
        self.request("DELETE", f"/namespaces/{self._ns(namespace)}/endpoints/{_q(name)}")

    def create_revision(
        self,
        endpoint: str,
        routes: Sequence[Mapping[str, Any]],
        *,
        namespace: str | None = None,
        shadow: Mapping[str, Any] | None = None,
        replicas: tuple[int, int] = (1, 1),
        sticky_header: str | None = None,
        reason: str = "deploy",
    ) -> JSON:
        """A new revision: ``routes`` are {"model", "version" | "alias", "weight"} adding up to 100."""
        body = {
            "routes": [dict(r) for r in routes],
            "shadow": dict(shadow) if shadow is not None else None,
            "replicas": {"min": replicas[0], "max": replicas[1]},
            "sticky_header": sticky_header,
            "reason": reason,
        }
        result: JSON = self.request("POST", f"/namespaces/{self._ns(namespace)}/endpoints/{_q(endpoint)}/revisions", json=body)
        return result

    def deploy(
        self,
        endpoint: str,
        model: str,
        *,
        version: int | None = None,
        alias: str | None = None,
        namespace: str | None = None,
        audience: Mapping[str, Any] | None = None,
        replicas: tuple[int, int] = (1, 1),
    ) -> JSON:
        """Serve one model version (or whatever ``alias`` points at) on ``endpoint``, creating it if needed."""
        if (version is None) == (alias is None):
            raise InvalidInput("deploy names exactly one of version or alias")
        try:
            self.get_endpoint(endpoint, namespace=namespace)
        except ShipyardError as exc:
            if exc.code != "not_found":
                raise
            self.create_endpoint(endpoint, namespace=namespace, audience=audience)
        route: dict[str, Any] = {"model": model, "weight": 100, "version": version, "alias": alias}
        route = {k: v for k, v in route.items() if v is not None}
        return self.create_revision(endpoint, [route], namespace=namespace, replicas=replicas)

    def list_revisions(self, endpoint: str, *, namespace: str | None = None) -> list[JSON]:
        return list(self.request("GET", f"/namespaces/{self._ns(namespace)}/endpoints/{_q(endpoint)}/revisions"))

    def rollback_endpoint(self, endpoint: str, *, namespace: str | None = None) -> JSON:
        """Serve again what the previous revision served."""
        result: JSON = self.request("POST", f"/namespaces/{self._ns(namespace)}/endpoints/{_q(endpoint)}/rollback")
        return result

    def desired_state(self, etag: str | None = None) -> JSON | None:
        """Every endpoint's resolved revision, or None when ``etag`` is still current (platform components)."""
        headers = {"If-None-Match": f'"{etag}"'} if etag else None
        response = self._http.get("/serving/desired-state", headers=headers)
        if response.status_code == 304:
            return None
        result: JSON = self._decode(response)
        return result

    def introspect_token(self, token: str) -> JSON:
        result: JSON = self.request("POST", "/tokens:introspect", json={"token": token}, idempotent=True)
        return result


def _chunks(handle: IO[bytes]) -> Iterable[bytes]:
    while chunk := handle.read(CHUNK):
        yield chunk
