"""The one exception tree of Shipyard.

Every error a caller can act on is a ``ShipyardError``. Each subclass carries the HTTP
status it maps to at the API edge, so the mapping lives in one place::

    ShipyardError
     +-- InvalidInput (ValueError)          400  bad value or shape; says expected vs got
     |    +-- PayloadTooLarge               413  body over the configured limit
     |    +-- InvalidPipeline               400  a pipeline definition or its parameters are wrong
     +-- Unauthenticated                    401  missing, unknown, revoked or expired token
     +-- PermissionDenied (PermissionError) 403  authenticated but not allowed
     +-- NotFound (LookupError)             404  no such record
     |    +-- NotVisible                    404  exists maybe, but not for this caller
     +-- Conflict                           409  clashes with existing state
     |    +-- AlreadyExists                 409  a record with that name exists
     |    +-- ImmutableValue                409  e.g. a param set again with a new value
     +-- UntrustedModel                     422  a model format refused without a trust flag
     +-- IntegrityFailure                   500  stored bytes do not match their digest
     +-- StepFailed                         500  a pipeline step raised, timed out or its process died
     +-- ClientError                        ---  the SDK got an error answer it cannot map

The SDK re-raises API errors as the same classes, so ``except shipyard.NotFound`` works
on both sides of the wire.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ShipyardError(Exception):
    """Base of every Shipyard error."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal"
    access_denied: ClassVar[bool] = False

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class InvalidInput(ShipyardError, ValueError):
    status_code = 400
    code = "invalid_input"


class PayloadTooLarge(InvalidInput):
    status_code = 413
    code = "payload_too_large"


class InvalidPipeline(InvalidInput):
    """A pipeline definition or its parameters are wrong; raised before anything runs."""

    code = "invalid_pipeline"


class Unauthenticated(ShipyardError):
    status_code = 401
    code = "unauthenticated"
    access_denied = True


class PermissionDenied(ShipyardError, PermissionError):
    status_code = 403
    code = "permission_denied"
    access_denied = True


class NotFound(ShipyardError, LookupError):
    status_code = 404
    code = "not_found"


class NotVisible(NotFound):
    """Answered like a missing record so other tenants' names do not leak, but audited as a denial."""

    access_denied = True


class Conflict(ShipyardError):
    status_code = 409
    code = "conflict"


class AlreadyExists(Conflict):
    code = "already_exists"


class ImmutableValue(Conflict):
    code = "immutable_value"


class UntrustedModel(ShipyardError):
    status_code = 422
    code = "untrusted_model"


class IntegrityFailure(ShipyardError):
    status_code = 500
    code = "integrity_failure"


class StepFailed(ShipyardError):
    """A step raised, timed out or its process died.

    ``step`` and ``attempt`` are also kept in ``details`` so they survive the trip through
    the API and come back as attributes on the SDK side.
    """

    code = "step_failed"

    def __init__(
        self,
        message: str,
        *,
        step: str | None = None,
        attempt: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        details = dict(details or {})
        if step is not None:
            details["step"] = step
        if attempt is not None:
            details["attempt"] = attempt
        super().__init__(message, details=details)
        self.step: str | None = details.get("step")
        self.attempt: int | None = details.get("attempt")


class ClientError(ShipyardError):
    """An error answer from the API that maps to no known class."""

    code = "client_error"

    def __init__(self, message: str, *, status_code: int, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details=details)
        self.http_status = status_code


ERRORS_BY_CODE: dict[str, type[ShipyardError]] = {
    cls.code: cls
    for cls in (
        ShipyardError,
        InvalidInput,
        PayloadTooLarge,
        Unauthenticated,
        PermissionDenied,
        NotFound,
        Conflict,
        AlreadyExists,
        ImmutableValue,
        UntrustedModel,
        IntegrityFailure,
    )
}
