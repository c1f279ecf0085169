"""Printing results: Rich tables for people, ``--output json`` for scripts."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"


OutputOption = Annotated[Format, typer.Option("--output", "-o", help="table for people, json for scripts.")]


def when(ms: int | None) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def emit(data: Any, output: Format, *, columns: Sequence[str] | None = None, title: str | None = None) -> None:
    """Print ``data`` (a record or a list of records) as JSON or as a table of ``columns``."""
    if output == Format.JSON:
        typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
        return
    rows = data if isinstance(data, list) else [data]
    if not rows:
        console.print("[dim]nothing to show[/dim]")
        return
    keys = list(columns) if columns else list(rows[0].keys())
    table = Table(title=title, show_lines=False)
    for key in keys:
        table.add_column(key)
    for row in rows:
        table.add_row(*(_cell(key, row.get(key)) for key in keys))
    console.print(table)


def _cell(key: str, value: Any) -> str:
    if value is None:
        return ""
    if key.endswith(("_at", "_time")) or key == "time":
        return when(value) if isinstance(value, int) else str(value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def emit_record(
    record: Mapping[str, Any], output: Format, *, fields: Sequence[str] | None = None, title: str | None = None
) -> None:
    """Print one record as JSON, or as a two-column table of ``fields`` for people."""
    if output == Format.JSON:
        typer.echo(json.dumps(record, indent=2, sort_keys=True, default=str))
        return
    table = Table(title=title, show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column(style="bold")
    table.add_column()
    for key in fields or list(record.keys()):
        table.add_row(key, _cell(key, record.get(key)))
    console.print(table)


def emit_outcome(message: str, record: Mapping[str, Any], output: Format) -> None:
    """Say what happened in a sentence for people, or print ``record`` for scripts."""
    if output == Format.JSON:
        emit_record(record, output)
    else:
        console.print(message, highlight=False)
