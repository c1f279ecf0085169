"""``with shipyard.start_run(...) as run:``, the convenient way to track a training run."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import TracebackType
from typing import Any

from shipyard.batcher import MetricBatcher
from shipyard.client import Client


def git_commit(path: str | Path = ".") -> tuple[str, bool] | None:
    """The commit checked out at ``path`` and whether the tree has changes, if it is a git repo."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain"], cwd=path, capture_output=True, text=True, timeout=5, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return commit, bool(status.strip())


class ActiveRun:
    """A run being tracked. Metrics are batched in the background; exit flushes and ends the run."""

    def __init__(self, client: Client, run: dict[str, Any], *, namespace: str | None, batch_size: int = 5000) -> None:
        self.client = client
        self.info = run
        self.id: str = run["id"]
        self.namespace = namespace
        self._batcher = MetricBatcher(client, self.id, namespace=namespace, max_batch=batch_size)

    def log_metric(self, key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
        self._batcher.log(key, value, step, timestamp)

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        for key, value in metrics.items():
            self._batcher.log(key, value, step)

    def log_param(self, key: str, value: Any) -> None:
        self.client.log_params(self.id, {key: value}, namespace=self.namespace)

    def log_params(self, params: dict[str, Any]) -> None:
        self.client.log_params(self.id, params, namespace=self.namespace)

    def set_tag(self, key: str, value: Any) -> None:
        self.client.set_tags(self.id, {key: value}, namespace=self.namespace)

    def set_tags(self, tags: dict[str, Any]) -> None:
        self.client.set_tags(self.id, tags, namespace=self.namespace)

    def log_artifact(self, source: str | Path, path: str | None = None) -> dict[str, Any]:
        return self.client.upload_artifact(self.id, source, path, namespace=self.namespace)

    def register_model(self, name: str, model: Any, **kwargs: Any) -> dict[str, Any]:
        """Register ``model`` linked to this run; metrics logged so far are flushed first."""
        self.flush()
        return self.client.register_model(name, model, namespace=self.namespace, run_id=self.id, **kwargs)

    def flush(self, timeout: float | None = None) -> None:
        self._batcher.flush(timeout)

    def end(self, status: str = "finished") -> None:
        try:
            self._batcher.close()
        finally:
            self.client.end_run(self.id, status, namespace=self.namespace)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc_type is None:
            self.end("finished")
        elif issubclass(exc_type, KeyboardInterrupt):
            self.end("killed")
        else:
            self.end("failed")


def start_run(
    experiment: str = "Default",
    *,
    name: str = "",
    namespace: str | None = None,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    client: Client | None = None,
    batch_size: int = 5000,
) -> ActiveRun:
    """Start a run; use it as a context manager so it ends as finished, failed or killed.

    The git commit of the working directory is recorded as the run's code version.
    """
    client = client or Client(namespace=namespace)
    run_tags = {k: str(v) for k, v in (tags or {}).items()}
    code = git_commit()
    code_version = ""
    if code is not None:
        code_version = code[0]
        run_tags.setdefault("git.dirty", str(code[1]).lower())
    run = client.create_run(experiment, namespace=namespace, name=name, code_version=code_version, tags=run_tags)
    active = ActiveRun(client, run, namespace=namespace, batch_size=batch_size)
    if params:
        active.log_params(params)
    return active
