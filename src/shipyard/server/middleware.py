"""ASGI middleware: body size limits, and the audit log of mutating requests and denials."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.access import audit
from shipyard.runtime import Platform

log = logging.getLogger("shipyard.audit")
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _is_artifact_upload(scope: Scope) -> bool:
    path: str = scope.get("path", "")
    return scope.get("method") == "PUT" and ("/artifacts/" in path or path.endswith("/blobs"))


class BodyLimit:
    """Refuse bodies over ``max_bytes`` with 413; uploads stream and are limited by their route."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _is_artifact_upload(scope):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send, int(declared))
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(self._message(seen))
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(send, seen)

    def _message(self, size: int) -> str:
        return (
            f"request body of {size} bytes is over the limit of {self.max_bytes} bytes: "
            "split the request (e.g. smaller metric batches) or raise SHIPYARD_MAX_REQUEST_BYTES"
        )

    async def _refuse(self, send: Send, size: int) -> None:
        body = orjson.dumps({"error": "payload_too_large", "message": self._message(size)})
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(HTTPException):
    """An HTTPException, so that FastAPI's body parsing passes it on instead of answering 400."""

    def __init__(self, message: str) -> None:
        super().__init__(status_code=413, detail=message)


class AuditLog:
    """Record who did what, where and with which outcome, after the response is sent.

    Every mutating request is recorded, and so is every denial (401, 403, and 404s that
    came from an authorisation check) whatever the method.
    """

    def __init__(self, app: ASGIApp, platform: Platform) -> None:
        self.app = app
        self.platform = platform

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith("/api/"):
            await self.app(scope, receive, send)
            return
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            if self._wanted(scope, status):
                draft = self._draft(scope, status)
                await anyio.to_thread.run_sync(self._write, draft)

    @staticmethod
    def _wanted(scope: Scope, status: int) -> bool:
        if scope.get("method") in MUTATING and not scope.get("path", "").endswith((":search", ":introspect")):
            return True
        return status in (401, 403) or bool(scope.get("state", {}).get("audit_denied"))

    def _draft(self, scope: Scope, status: int) -> audit.EventDraft:
        state: dict[str, Any] = scope.get("state", {})
        caller = state.get("caller")
        route = scope.get("route")
        template = getattr(route, "path", scope.get("path", ""))
        params: dict[str, Any] = scope.get("path_params", {})
        return audit.EventDraft(
            principal=caller.name if caller is not None else "anonymous",
            action=f"{scope.get('method')} {template}",
            method=str(scope.get("method", "")),
            path=str(scope.get("path", "")),
            namespace=str(params.get("namespace", "")),
            status_code=status,
            message=str(state.get("audit_message", "")),
            denied=bool(state.get("audit_denied")),
        )

    def _write(self, draft: audit.EventDraft) -> None:
        try:
            with self.platform.db.session(write=True) as session:
                audit.record(session, draft)
        except Exception:  # the response is already out; never lose the trail silently
            log.exception("could not write audit event %s", draft)
