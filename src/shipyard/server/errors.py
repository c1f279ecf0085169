"""Map the exception tree to HTTP once, at the edge; messages say what was expected."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from shipyard.errors import ShipyardError

log = logging.getLogger("shipyard.server")


def _response(
    request: Request, status: int, code: str, message: str, details: dict[str, Any] | None = None, *, denied: bool = False
) -> Response:
    request.state.audit_message = message
    request.state.audit_denied = denied or status in (401, 403)
    body: dict[str, Any] = {"error": code, "message": message}
    if details:
        body["details"] = details
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type="application/json")


def _describe(error: dict[str, Any]) -> str:
    location = ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "body"
    if error.get("type") == "json_invalid":
        return f"the body is not valid JSON ({error.get('ctx', {}).get('error', 'parse error')}): send a JSON document"
    if error.get("type") == "missing":
        return f"{location}: is required"
    got = error.get("input")
    got_text = f", got {got!r}"[:120] if got is not None and not isinstance(got, (dict, list)) else ""
    return f"{location}: {error.get('msg', 'invalid')}{got_text}"


def install(app: FastAPI) -> None:
    @app.exception_handler(ShipyardError)
    async def _shipyard(request: Request, exc: ShipyardError) -> Response:
        if exc.status_code >= 500:
            log.error("request failed: %s", exc.message)
        return _response(request, exc.status_code, exc.code, exc.message, exc.details or None, denied=exc.access_denied)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = list(exc.errors())
        message = "; ".join(_describe(e) for e in errors[:5])
        details = {"errors": [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in errors[:20]]}
        return _response(request, 422, "invalid_input", f"request is not valid: {message}", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = {
            404: "not_found",
            405: "method_not_allowed",
            401: "unauthenticated",
            403: "permission_denied",
            413: "payload_too_large",
        }.get(exc.status_code, "http_error")
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no API route matches {request.method} {request.url.path}: see /docs for the routes"
        if exc.status_code == 401:
            message = "no token given: send 'Authorization: Bearer <token>' (see 'shipyard token create')"
        return _response(request, exc.status_code, code, message)

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> Response:
        log.warning("integrity error: %s", exc.orig)
        return _response(request, 409, "conflict", "the change clashes with a concurrent change to the same record: retry it")

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> Response:
        log.warning("value refused by the database: %s", exc.orig)
        return _response(
            request,
            400,
            "invalid_input",
            "a value in the request does not fit the metadata store: text must not contain NUL (\\x00) characters "
            "and whole numbers must fit in 64 bits",
        )

    @app.exception_handler(OperationalError)
    async def _operational(request: Request, exc: OperationalError) -> Response:
        log.error("database error: %s", exc.orig)
        return _response(request, 503, "unavailable", "the metadata store is busy or unreachable: retry shortly")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _response(request, 500, "internal", "an unexpected error occurred; it has been logged on the server")
