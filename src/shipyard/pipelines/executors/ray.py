"""The Ray executor: each step attempt a Ray task with the step's resources.

It joins the cluster at ``address`` (``SHIPYARD_RAY_ADDRESS``, ``--ray-address``; any Ray
cluster, KubeRay included) or starts a local Ray runtime when none is given. The task
runs the same ``execute`` as the local executor, so a pipeline behaves the same on both;
inside a step, Ray Data can use the same cluster.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from shipyard.errors import InvalidInput
from shipyard.pipelines.executors.base import Executor, Handle
from shipyard.pipelines.task import StepResult, StepTask, execute

MB = 1024 * 1024


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - depends on the extra being installed
        raise InvalidInput("the ray executor needs Ray: pip install 'shipyard[ray]'") from exc
    return ray


class _RayHandle:
    def __init__(self, ray: Any, ref: Any, node: str) -> None:
        self.ray = ray
        self.ref = ref
        self.node = node

    def done(self) -> bool:
        ready, _ = self.ray.wait([self.ref], timeout=0)
        return bool(ready)

    def result(self) -> StepResult:
        try:
            result: StepResult = self.ray.get(self.ref)
        except Exception as exc:  # the worker died, or Ray could not run the task at all
            return StepResult({}, [], f"WorkerDied: Ray could not finish step '{self.node}': {type(exc).__name__}: {exc}")
        return result

    def cancel(self) -> None:
        self.ray.cancel(self.ref, force=True)


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, address: str | None = None, max_parallel: int | None = None) -> None:
        ray = _ray()
        self.ray = ray
        self._started_here = False
        if not ray.is_initialized():
            address = address or os.environ.get("SHIPYARD_RAY_ADDRESS") or None
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            # Workers import step modules by name, so they need the driver's import path.
            runtime_env = {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in _import_path() if p)}}
            ray.init(address=address, runtime_env=runtime_env, log_to_driver=False, include_dashboard=False)
            self._started_here = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        super().__init__(max_parallel or max(1, cpus))
        self._remote = ray.remote(execute)

    def submit(self, task: StepTask) -> _RayHandle:
        resources = task.step.options.resources
        options: dict[str, Any] = {"num_cpus": resources.cpu, "num_gpus": resources.gpu, "max_retries": 0}
        if resources.memory_mb:
            options["memory"] = resources.memory_mb * MB
        ref = self._remote.options(**options).remote(task)
        return _RayHandle(self.ray, ref, task.node)

    def wait(self, handles: Sequence[Handle], timeout: float) -> None:
        refs = [handle.ref for handle in handles if isinstance(handle, _RayHandle)]
        if not refs or len(refs) != len(handles):
            super().wait(handles, timeout)
            return
        self.ray.wait(refs, num_returns=1, timeout=timeout)

    def close(self) -> None:
        if self._started_here and self.ray.is_initialized():
            self.ray.shutdown()


def _import_path() -> list[str]:
    import sys

    return [os.getcwd(), *sys.path]
