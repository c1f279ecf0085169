"""``shipyard audit`` and ``shipyard whoami``: who did what, and who you are."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from shipyard.cli.context import connect
from shipyard.cli.output import Format, OutputOption, emit, emit_record

COLUMNS = ("id", "time", "principal", "method", "path", "namespace", "status_code", "outcome", "message")


class Outcome(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"
    FAILED = "failed"


def audit(
    namespace: Annotated[str | None, typer.Option("--namespace", "-n", help="Only events in this namespace.")] = None,
    principal: Annotated[str | None, typer.Option(help="Only events by this principal.")] = None,
    outcome: Annotated[Outcome | None, typer.Option(help="allowed, denied or failed.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many, newest first.")] = 50,
    output: OutputOption = Format.TABLE,
) -> None:
    """The audit log, newest first (platform admins see all, namespace admins their namespace)."""
    with connect() as client:
        events = client.audit_events(
            namespace=namespace, principal=principal, outcome=outcome.value if outcome else None, limit=limit
        )
        emit(events, output, columns=COLUMNS)


def whoami(output: OutputOption = Format.TABLE) -> None:
    """The principal behind your token, its roles and the token's scopes."""
    with connect() as client:
        emit_record(client.whoami(), output)
