"""``shipyard alerts`` and ``shipyard alert``: rules on an endpoint's measures, their state and history."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

import typer
from rich.markup import escape

from shipyard.cli.context import NamespaceOption, connect
from shipyard.cli.output import Format, OutputOption, console, emit, emit_outcome, emit_record, when

app = typer.Typer(help="Alert rules: fire when an endpoint's measure crosses a threshold.", no_args_is_help=True)

RULE_COLUMNS = ("name", "endpoint", "condition", "for_seconds", "state", "since", "last_value", "last_evaluated_at")
TRANSITION_COLUMNS = ("at", "rule", "from_state", "to_state", "value", "detail", "notified")
_WHEN = re.compile(r"^\s*([^<>=]+?)\s*(>=|<=|>|<)\s*(\S+)\s*$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_when(text: str) -> tuple[str, str, float]:
    """``"drift.count >= 1"`` -> ("drift.count", ">=", 1.0)."""
    found = _WHEN.match(text)
    if found is None:
        raise typer.BadParameter(
            f"{text!r} is not a condition: expected 'MEASURE OP NUMBER' with OP one of > >= < <=, "
            "e.g. 'drift.count >= 1' or 'latency.p99_ms > 250'"
        )
    measure, operator, number = found.groups()
    try:
        return measure, operator, float(number)
    except ValueError:
        raise typer.BadParameter(f"{number!r} in {text!r} is not a number") from None


def parse_duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``5m``, ``1h`` or ``1d``."""
    found = _DURATION.match(text)
    if found is None:
        raise typer.BadParameter(f"{text!r} is not a duration: expected seconds or a number with s, m, h or d, e.g. 5m")
    return float(found.group(1)) * UNITS[found.group(2)]


def alerts(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many recent transitions to show.")] = 10,
    namespace: NamespaceOption = "default",
    output: OutputOption = Format.TABLE,
) -> None:
    """Every alert rule with its state and since when, then the newest transitions."""
    with connect() as client:
        found = client.alerts(limit=limit, namespace=namespace)
    if output == Format.JSON:
        emit(found, output)
        return
    emit([_rule_row(r) for r in found["rules"]], output, columns=RULE_COLUMNS, title=f"Alert rules in {namespace}")
    if found["transitions"]:
        emit([_transition_row(t) for t in found["transitions"]], output, columns=TRANSITION_COLUMNS, title="Recent transitions")


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Rule name, e.g. churn-drift; alert.fired events carry it as subject.")],
    endpoint: Annotated[str, typer.Option("--endpoint", "-e", help="The endpoint whose monitor's checks are read.")],
    condition: Annotated[
        str,
        typer.Option("--when", help="MEASURE OP NUMBER, e.g. 'drift.count >= 1', 'drift.feature:age >= 1', 'error_rate > 0.05'."),
    ],
    for_: Annotated[
        str, typer.Option("--for", help="How long the condition must hold before the rule fires: seconds, or 5m, 1h.")
    ] = "0",
    webhook: Annotated[
        str | None, typer.Option(help="An http(s) URL to POST a JSON document to on firing and resolving.")
    ] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it switched off.")] = False,
    namespace: NamespaceOption = "default",
    output: OutputOption = Format.TABLE,
) -> None:
    """Create or replace an alert rule."""
    measure, operator, threshold = parse_when(condition)
    with connect() as client:
        record = client.put_alert_rule(
            name, endpoint=endpoint, measure=measure, operator=operator, threshold=threshold,
            for_seconds=parse_duration(for_), webhook=webhook, enabled=not disabled, namespace=namespace,
        )  # fmt: skip
    if output == Format.JSON:
        emit(record, output)
        return
    emit_record(_rule_row(record), output, title=f"Alert rule {name}")


@app.command("show")
def show(name: str, namespace: NamespaceOption = "default", output: OutputOption = Format.TABLE) -> None:
    """One rule: its condition, state and webhook."""
    with connect() as client:
        record = client.get_alert_rule(name, namespace=namespace)
    if output == Format.JSON:
        emit(record, output)
        return
    emit_record({**_rule_row(record), "webhook": record.get("webhook"), "enabled": record.get("enabled")}, output)


@app.command("history")
def history(
    name: str,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many transitions.")] = 50,
    namespace: NamespaceOption = "default",
    output: OutputOption = Format.TABLE,
) -> None:
    """The rule's transitions (pending, firing, resolved), newest first, with the value and what was notified."""
    with connect() as client:
        found = client.alert_history(name, limit=limit, namespace=namespace)
    if output == Format.JSON:
        emit(found, output)
        return
    if not found:
        console.print(f"[dim]Alert rule {escape(name)} has not changed state yet.[/dim]")
        return
    emit([_transition_row(t) for t in found], output, columns=TRANSITION_COLUMNS, title=f"History of {name}")


@app.command("delete")
def delete(name: str, namespace: NamespaceOption = "default", output: OutputOption = Format.TABLE) -> None:
    """Delete a rule and its history."""
    with connect() as client:
        client.delete_alert_rule(name, namespace=namespace)
    emit_outcome(f"Deleted alert rule [bold]{escape(name)}[/bold].", {"deleted": name}, output)


def _rule_row(rule: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **rule,
        "condition": f"{rule['measure']} {rule['operator']} {rule['threshold']:g}",
        "since": when(rule["state_since"]),
    }


def _transition_row(transition: Mapping[str, Any]) -> dict[str, Any]:
    detail = dict(transition.get("detail") or {})
    shown = {k: v for k, v in detail.items() if k in ("drifted_features", "reason", "check_id")}
    return {**transition, "detail": shown or None}
