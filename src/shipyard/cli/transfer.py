"""A progress bar for downloads, fed by an httpx transport that counts body bytes as they arrive."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TransferSpeedColumn

from shipyard.cli.context import connect
from shipyard.cli.output import err_console


class _CountingStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, progress: Progress, task: TaskID) -> None:
        self._inner = inner
        self._progress = progress
        self._task = task

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            self._progress.advance(self._task, len(chunk))
            yield chunk

    def close(self) -> None:
        self._inner.close()


class ProgressTransport(httpx.BaseTransport):
    """Advances ``task`` by every response body byte, and sizes it from Content-Length."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._inner = httpx.HTTPTransport()
        self._progress = progress
        self._task = task

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        length = response.headers.get("Content-Length")
        if length and length.isdigit():
            self._progress.update(self._task, total=int(length))
        if not isinstance(response.stream, httpx.SyncByteStream):  # pragma: no cover - HTTPTransport always is
            return response
        counted = _CountingStream(response.stream, self._progress, self._task)
        return httpx.Response(response.status_code, headers=response.headers, stream=counted, extensions=response.extensions)

    def close(self) -> None:
        self._inner.close()


def download_artifact(run_id: str, path: str, destination: Path, namespace: str) -> Path:
    """Download one run artifact with a progress bar on stderr; the file is digest-checked before it lands."""
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=err_console, transient=False) as progress:
        task = progress.add_task(path, total=None)
        with connect(ProgressTransport(progress, task)) as client:
            return client.download_artifact(run_id, path, destination, namespace=namespace)
