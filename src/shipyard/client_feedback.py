"""The SDK's monitoring methods (a mixin of ``shipyard.Client``): reference profiles, ground truth, quality, A/B.

client.log_feedback("churn", request_id, 1)                   # the X-Request-Id of a prediction
client.log_feedback_batch("churn", [{"request_id": r, "label": y} for r, y in found])
client.endpoint_quality("churn", requests=5000)               # per-version metrics over labelled requests
client.endpoint_ab("churn", a=1, b=2, seconds=3600)           # is version 2 better, or faster?
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import IO, Any, Protocol

import orjson

from shipyard._transport import JSON, Transport, segment
from shipyard.errors import InvalidInput


class _Transport(Transport, Protocol):
    """What the mixin needs from ``Client`` beyond requests."""

    def upload_blob(self, source: bytes | IO[bytes], *, namespace: str | None = None) -> JSON: ...


class FeedbackMixin:
    """Reference profiles of model versions, ground-truth labels, and per-version quality and A/B tests of endpoints."""

    def _upload_profile(self: _Transport, model: Any, training_data: Any, *, namespace: str | None) -> tuple[str | None, str]:
        """Profile ``training_data`` and the model's predictions on it, upload it: (digest, "") or (None, why not)."""
        from shipyard.monitoring.training import training_profile  # pandas only when a model is registered

        try:
            profile = training_profile(model, training_data)
        except InvalidInput as exc:
            return None, exc.message
        data = orjson.dumps(profile.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY)
        return str(self.upload_blob(data, namespace=namespace)["digest"]), ""

    def get_model_profile(self: _Transport, name: str, version: int, *, namespace: str | None = None) -> JSON:
        """The version's reference profile (``Profile.to_dict()``; ``Profile.from_dict`` reads it back)."""
        url = f"/namespaces/{self._ns(namespace)}/models/{segment(name)}/versions/{int(version)}/profile"
        result: JSON = self.request("GET", url)
        return result

    def log_feedback(self: _Transport, endpoint: str, request_id: str, label: Any, *, namespace: str | None = None) -> JSON:
        """The true label of one prediction, by its ``X-Request-Id``; a list labels a multi-row request row by row."""
        url = f"/namespaces/{self._ns(namespace)}/endpoints/{segment(endpoint)}/feedback"
        result: JSON = self.request("POST", url, json={"request_id": request_id, "label": label}, idempotent=True)
        return result

    def log_feedback_batch(
        self: _Transport, endpoint: str, items: Iterable[Mapping[str, Any]], *, namespace: str | None = None
    ) -> JSON:
        """Up to 10,000 ``{"request_id", "label"}`` at once, all or none; a later label for a request replaces the earlier."""
        url = f"/namespaces/{self._ns(namespace)}/endpoints/{segment(endpoint)}/feedback"
        body = {"items": [dict(item) for item in items]}
        result: JSON = self.request("POST", url, json=body, idempotent=True)
        return result

    def list_feedback(self: _Transport, endpoint: str, *, limit: int = 100, namespace: str | None = None) -> list[JSON]:
        """The endpoint's labels, newest first."""
        url = f"/namespaces/{self._ns(namespace)}/endpoints/{segment(endpoint)}/feedback"
        return list(self.request("GET", url, params={"limit": limit}))

    def endpoint_quality(
        self: _Transport,
        endpoint: str,
        *,
        requests: int | None = None,
        seconds: float | None = None,
        task: str | None = None,
        namespace: str | None = None,
    ) -> JSON:
        """Per-version metrics over the labelled requests of a window (default: the last 10,000 logged requests)."""
        url = f"/namespaces/{self._ns(namespace)}/endpoints/{segment(endpoint)}/quality"
        result: JSON = self.request("GET", url, params={"requests": requests, "seconds": seconds, "task": task})
        return result

    def endpoint_ab(
        self: _Transport,
        endpoint: str,
        *,
        a: int | None = None,
        b: int | None = None,
        requests: int | None = None,
        seconds: float | None = None,
        alpha: float = 0.05,
        task: str | None = None,
        namespace: str | None = None,
    ) -> JSON:
        """Version ``b`` against ``a`` on quality and latency, with p-values and confidence intervals."""
        url = f"/namespaces/{self._ns(namespace)}/endpoints/{segment(endpoint)}/ab"
        params = {"a": a, "b": b, "requests": requests, "seconds": seconds, "alpha": alpha, "task": task}
        result: JSON = self.request("GET", url, params=params)
        return result
