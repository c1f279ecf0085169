"""The runner's line to the control plane: the SDK ``Client``, fixed to one namespace."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shipyard.client import Client


class SdkRecorder:
    """``runner.Recorder`` over a ``Client``: every record goes through the REST API."""

    def __init__(self, client: Client, namespace: str | None = None) -> None:
        self.client = client
        self.namespace = namespace or client.namespace

    def create_run(
        self,
        pipeline: str,
        *,
        params: Mapping[str, Any],
        graph: Mapping[str, Any],
        executor: str,
        resumed_from: str | None,
        priority: int = 0,
        resources: Mapping[str, Any] | None = None,
        trigger: str | None = None,
    ) -> dict[str, Any]:
        return self.client.create_pipeline_run(
            pipeline,
            params=dict(params),
            graph=dict(graph),
            executor=executor,
            resumed_from=resumed_from,
            priority=priority,
            resources=resources,
            trigger=trigger,
            namespace=self.namespace,
        )

    def update_run(self, run_id: str, *, status: str, error: str | None = None) -> dict[str, Any]:
        return self.client.update_pipeline_run(run_id, status=status, error=error, namespace=self.namespace)

    def get_run(self, run_id: str) -> dict[str, Any]:
        return self.client.get_pipeline_run(run_id, namespace=self.namespace)

    def record_step(self, run_id: str, step: str, attempt: int, **fields: Any) -> dict[str, Any]:
        return self.client.record_step(run_id, step, attempt, namespace=self.namespace, **fields)

    def record_cached(
        self, run_id: str, step: str, attempt: int, *, cache_key: str, inputs: Mapping[str, Any], executor: str
    ) -> dict[str, Any] | None:
        return self.client.record_cached_step(
            run_id, step, attempt, cache_key=cache_key, inputs=inputs, executor=executor, namespace=self.namespace
        )

    def list_steps(self, run_id: str) -> list[dict[str, Any]]:
        return self.client.list_step_runs(run_id, namespace=self.namespace)

    def cached_step(self, key: str) -> dict[str, Any] | None:
        return self.client.cached_step(key, namespace=self.namespace)

    def append_logs(self, run_id: str, lines: list[dict[str, Any]]) -> None:
        self.client.append_logs(run_id, lines, namespace=self.namespace)

    def put_blob(self, data: bytes) -> str:
        return str(self.client.upload_blob(data, namespace=self.namespace)["digest"])

    def get_blob(self, digest: str) -> bytes:
        return self.client.download_blob(digest, namespace=self.namespace)

    def step_environment(self) -> dict[str, str]:
        """What a step needs to reach the same control plane with ``shipyard.Client()``."""
        env = {"SHIPYARD_URL": self.client.url, "SHIPYARD_NAMESPACE": self.namespace}
        if self.client.token:
            env["SHIPYARD_TOKEN"] = self.client.token
        return env
