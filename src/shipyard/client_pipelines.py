"""The SDK's pipeline-run methods (a mixin of ``shipyard.Client``), and lineage tags from the environment.

A pipeline runner starts each step with ``SHIPYARD_PIPELINE_RUN_ID`` and
``SHIPYARD_STEP_RUN`` (``"<run id>/<step>"``) set; tracking runs and model versions created
from inside the step are then tagged ``shipyard.pipeline_run`` and ``shipyard.step``, so a
model traces back to the pipeline run that made it without a line of user code.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from shipyard._transport import JSON, Transport, segment
from shipyard.errors import IntegrityFailure, NotFound

RUN_ID_VARIABLE = "SHIPYARD_PIPELINE_RUN_ID"
STEP_VARIABLE = "SHIPYARD_STEP_RUN"
PIPELINE_RUN_TAG = "shipyard.pipeline_run"
STEP_TAG = "shipyard.step"


def lineage_tags(tags: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``tags`` plus the pipeline run and step this process runs for, if a runner started it; given tags win."""
    found = dict(tags or {})
    run_id = os.environ.get(RUN_ID_VARIABLE, "").strip()
    step_run = os.environ.get(STEP_VARIABLE, "").strip()
    step_run_id, _, step = step_run.partition("/")
    run_id = run_id or step_run_id
    if run_id:
        found.setdefault(PIPELINE_RUN_TAG, run_id)
        if step and step_run_id == run_id:
            found.setdefault(STEP_TAG, step)
    return found


class _Transport(Transport, Protocol):
    """What the mixin needs from ``Client`` beyond requests."""

    def _fetch_bytes(self, url: str) -> bytes: ...


class PipelineRunsMixin:
    """Pipeline runs, step attempts, the step cache and run logs over the REST API."""

    def create_pipeline_run(
        self: _Transport,
        pipeline: str,
        *,
        params: Mapping[str, Any],
        graph: Mapping[str, Any],
        priority: int = 0,
        executor: str = "local",
        resumed_from: str | None = None,
        resources: Mapping[str, Any] | None = None,
        trigger: str | None = None,
        namespace: str | None = None,
    ) -> JSON:
        """Record a new run: ``running`` when its namespace's quota admits it at once, else ``queued``."""
        body = {
            "pipeline": pipeline,
            "params": dict(params),
            "graph": dict(graph),
            "priority": priority,
            "executor": executor,
            "resumed_from": resumed_from,
            "resources": dict(resources) if resources is not None else None,
            "trigger": trigger,
        }
        result: JSON = self.request("POST", f"/namespaces/{self._ns(namespace)}/pipeline-runs", json=body)
        return result

    def get_pipeline_run(self: _Transport, run_id: str, *, namespace: str | None = None) -> JSON:
        result: JSON = self.request("GET", f"/namespaces/{self._ns(namespace)}/pipeline-runs/{segment(run_id)}")
        return result

    def list_pipeline_runs(
        self: _Transport,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        limit: int = 100,
        namespace: str | None = None,
    ) -> list[JSON]:
        """Newest first."""
        params = {"pipeline": pipeline, "status": status, "limit": limit}
        return list(self.request("GET", f"/namespaces/{self._ns(namespace)}/pipeline-runs", params=params))

    def update_pipeline_run(
        self: _Transport, run_id: str, *, status: str | None = None, error: str | None = None, namespace: str | None = None
    ) -> JSON:
        """Move a run on; sending the status it already has is accepted and changes nothing (so retries are safe)."""
        body = {k: v for k, v in {"status": status, "error": error}.items() if v is not None}
        url = f"/namespaces/{self._ns(namespace)}/pipeline-runs/{segment(run_id)}"
        result: JSON = self.request("PATCH", url, json=body, idempotent=True)
        return result

    def cancel_pipeline_run(self: _Transport, run_id: str, *, namespace: str | None = None) -> JSON:
        """Cancel a queued run (it never starts) or a running one (its runner stops it within a second or so)."""
        url = f"/namespaces/{self._ns(namespace)}/pipeline-runs/{segment(run_id)}"
        result: JSON = self.request("PATCH", url, json={"status": "cancelled", "error": "cancelled by request"}, idempotent=True)
        return result

    def pipeline_queue(self: _Transport, *, namespace: str | None = None) -> JSON:
        """The namespace's quota, what its running runs hold, and its queued runs in admission order."""
        result: JSON = self.request("GET", f"/namespaces/{self._ns(namespace)}/queue")
        return result

    def set_quota(
        self: _Transport,
        *,
        cpu: float | None = None,
        memory_mb: int | None = None,
        gpu: float | None = None,
        concurrent_runs: int | None = None,
        namespace: str | None = None,
    ) -> JSON:
        """Replace the namespace's quota (platform admins); a limit left None is no limit."""
        body = {"cpu": cpu, "memory_mb": memory_mb, "gpu": gpu, "concurrent_runs": concurrent_runs}
        result: JSON = self.request("PUT", f"/namespaces/{self._ns(namespace)}/quota", json=body, idempotent=True)
        return result

    def remove_quota(self: _Transport, *, namespace: str | None = None) -> None:
        self.request("DELETE", f"/namespaces/{self._ns(namespace)}/quota", idempotent=True)

    def emit_event(
        self: _Transport, kind: str, subject: str, payload: Mapping[str, Any] | None = None, *, namespace: str | None = None
    ) -> JSON:
        """Report an event that triggers may react to: ``dataset.version`` or ``alert.fired``."""
        body = {"kind": kind, "subject": subject, "payload": dict(payload) if payload is not None else None}
        result: JSON = self.request("POST", f"/namespaces/{self._ns(namespace)}/events", json=body)
        return result

    def list_events(
        self: _Transport,
        *,
        kind: str | None = None,
        subject: str | None = None,
        after: int = 0,
        limit: int = 100,
        namespace: str | None = None,
    ) -> list[JSON]:
        """Events with an id above ``after``, oldest first."""
        params = {"kind": kind, "subject": subject, "after": after, "limit": limit}
        return list(self.request("GET", f"/namespaces/{self._ns(namespace)}/events", params=params))

    def put_schedule(
        self: _Transport,
        name: str,
        pipeline: str,
        *,
        cron: str | None = None,
        timezone: str = "UTC",
        on_event: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        executor: str = "local",
        priority: int = 0,
        workdir: str | None = None,
        enabled: bool = True,
        namespace: str | None = None,
    ) -> JSON:
        """Create or replace a schedule: ``cron`` ('0 2 * * *'), ``on_event`` ({'kind', 'subject'}), or both."""
        body = {
            "pipeline": pipeline,
            "cron": cron,
            "timezone": timezone,
            "on_event": dict(on_event) if on_event is not None else None,
            "params": dict(params or {}),
            "executor": executor,
            "priority": priority,
            "workdir": workdir,
            "enabled": enabled,
        }
        result: JSON = self.request(
            "PUT", f"/namespaces/{self._ns(namespace)}/schedules/{segment(name)}", json=body, idempotent=True
        )
        return result

    def get_schedule(self: _Transport, name: str, *, namespace: str | None = None) -> JSON:
        result: JSON = self.request("GET", f"/namespaces/{self._ns(namespace)}/schedules/{segment(name)}")
        return result

    def list_schedules(self: _Transport, *, namespace: str | None = None) -> list[JSON]:
        return list(self.request("GET", f"/namespaces/{self._ns(namespace)}/schedules"))

    def set_schedule_enabled(self: _Transport, name: str, enabled: bool, *, namespace: str | None = None) -> JSON:
        """Pause (False) or resume (True) a schedule; times that passed while paused are not made up."""
        url = f"/namespaces/{self._ns(namespace)}/schedules/{segment(name)}"
        result: JSON = self.request("PATCH", url, json={"enabled": enabled}, idempotent=True)
        return result

    def delete_schedule(self: _Transport, name: str, *, namespace: str | None = None) -> None:
        self.request("DELETE", f"/namespaces/{self._ns(namespace)}/schedules/{segment(name)}", idempotent=True)

    def schedule_fires(self: _Transport, name: str, *, limit: int = 100, namespace: str | None = None) -> list[JSON]:
        """A schedule's firings, newest first: due time, reason, status and the pipeline run it started."""
        url = f"/namespaces/{self._ns(namespace)}/schedules/{segment(name)}/fires"
        return list(self.request("GET", url, params={"limit": limit}))

    def record_step(
        self: _Transport,
        run_id: str,
        step: str,
        attempt: int,
        *,
        namespace: str | None = None,
        blobs: Mapping[str, bytes] | None = None,
        **fields: Any,
    ) -> JSON:
        """Create or update one attempt of a step: status, cache_key, inputs, outputs, error, cached_from, usage, ...

        A finished attempt can be reported in one call: ``blobs`` ({sha256: bytes}) carries the
        bytes of small outputs, which the namespace then holds, and ``logs`` its last log lines,
        both recorded in the same transaction as the attempt (upload large outputs first, with
        ``upload_blob``). Repeating the same report is accepted and changes nothing.
        """
        url = f"/namespaces/{self._ns(namespace)}/pipeline-runs/{segment(run_id)}/steps/{segment(step)}/attempts/{int(attempt)}"
        body = dict(fields)
        if blobs:
            body["blobs"] = {digest: base64.b64encode(data).decode("ascii") for digest, data in blobs.items()}
        result: JSON = self.request("PUT", url, json=body)
        return result

    def record_cached_step(
        self: _Transport,
        run_id: str,
        step: str,
        attempt: int,
        *,
        cache_key: str,
        inputs: Mapping[str, Any] | None = None,
        executor: str | None = None,
        namespace: str | None = None,
    ) -> JSON | None:
        """Record the attempt as ``cached`` when the step cache holds ``cache_key``, and return it; else None.

        The cache lookup and the record in one request (nothing is recorded on a miss): what a
        runner does before it runs a step.
        """
        run = f"/namespaces/{self._ns(namespace)}/pipeline-runs/{segment(run_id)}"
        url = f"{run}/steps/{segment(step)}/attempts/{int(attempt)}:from-cache"
        body = {"cache_key": cache_key, "inputs": dict(inputs or {}), "executor": executor}
        result: JSON | None = self.request("POST", url, json={k: v for k, v in body.items() if v is not None})
        return result

    def list_step_runs(self: _Transport, run_id: str, *, namespace: str | None = None) -> list[JSON]:
        return list(self.request("GET", f"/namespaces/{self._ns(namespace)}/pipeline-runs/{segment(run_id)}/steps"))

    def cached_step(self: _Transport, cache_key: str, *, namespace: str | None = None) -> JSON | None:
        """The newest succeeded step run with this cache key whose outputs are still held, or None."""
        try:
            result: JSON = self.request("GET", f"/namespaces/{self._ns(namespace)}/step-cache/{segment(cache_key)}")
        except NotFound:
            return None
        return result

    def append_logs(self: _Transport, run_id: str, lines: Sequence[Mapping[str, Any]], *, namespace: str | None = None) -> None:
        """Send log lines ({message, step, attempt, ts, level, extra}), at most 10,000 per call."""
        url = f"/namespaces/{self._ns(namespace)}/pipeline-runs/{segment(run_id)}/logs"
        self.request("POST", url, json={"lines": [dict(line) for line in lines]})

    def read_logs(
        self: _Transport,
        run_id: str,
        *,
        step: str | None = None,
        after: int = 0,
        limit: int = 1000,
        namespace: str | None = None,
    ) -> list[JSON]:
        """Lines with an id above ``after``, in order; pass the last line's id to read on."""
        params = {"step": step, "after": after, "limit": limit}
        return list(self.request("GET", f"/namespaces/{self._ns(namespace)}/pipeline-runs/{segment(run_id)}/logs", params=params))

    def download_blob(self: _Transport, digest: str, *, namespace: str | None = None) -> bytes:
        """The bytes of a blob uploaded to the namespace, checked against ``digest``."""
        data = self._fetch_bytes(f"/namespaces/{self._ns(namespace)}/blobs/{segment(digest)}")
        if hashlib.sha256(data).hexdigest() != digest:
            raise IntegrityFailure(f"blob {digest} downloaded with other bytes: retry it")
        return data
