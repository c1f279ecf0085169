"""``shipyard monitor``: watch an endpoint's traffic for drift, quality and latency; run the monitor loop."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Mapping, Sequence
from types import FrameType
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from shipyard.cli.context import NamespaceOption, connect
from shipyard.cli.output import Format, OutputOption, console, emit, emit_outcome, emit_record, when

app = typer.Typer(help="Monitors: drift, data quality and traffic of an endpoint, checked on an interval.", no_args_is_help=True)
log = logging.getLogger("shipyard.monitoring.loop")

COLUMNS = ("endpoint", "enabled", "last_checked_at", "updated_at", "created_by")
HISTORY_COLUMNS = ("id", "created_at", "status", "rows", "drifted", "drifted_features", "message")
PASS_SECONDS = 5.0
FEATURE_COLUMNS = ("feature", "method", "statistic", "p_value", "threshold", "drifted", "missing_rate", "quality")


def parse_overrides(values: Sequence[str] | None, what: str) -> tuple[str | None, dict[str, str]]:
    """``--method ks`` (every feature) and ``--method age=ks`` (one feature): (for all, per feature)."""
    every: str | None = None
    per: dict[str, str] = {}
    for value in values or []:
        feature, equals, setting = value.rpartition("=")
        if not equals:
            every = value
        elif not feature or not setting:
            raise typer.BadParameter(f"{value!r} is not FEATURE=VALUE, e.g. age={'ks' if what == 'method' else '0.2'}")
        else:
            per[feature] = setting
    return every, per


def parse_thresholds(values: Sequence[str] | None) -> dict[str, float]:
    every, per = parse_overrides(values, "threshold")
    if every is not None:
        raise typer.BadParameter(f"--threshold {every!r} names no feature: give FEATURE=NUMBER, e.g. age=0.2")
    try:
        return {feature: float(value) for feature, value in per.items()}
    except ValueError:
        raise typer.BadParameter(f"--threshold values are numbers, e.g. age=0.2; got {sorted(per.values())}") from None


def split_features(values: Sequence[str] | None) -> list[str] | None:
    """``--features a,b --features c`` -> [a, b, c]; None when not given (every feature of the reference)."""
    if not values:
        return None
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


@app.command("set")
def set_(
    endpoint: Annotated[str, typer.Argument(help="The endpoint to watch.")],
    features: Annotated[
        list[str] | None, typer.Option("--features", "-f", help="Features to watch, comma-separated; default all.")
    ] = None,
    window_requests: Annotated[int | None, typer.Option(min=1, help="Window: the last N logged requests.")] = None,
    window_seconds: Annotated[float | None, typer.Option(min=0.001, help="Window: the requests of the last S seconds.")] = None,
    method: Annotated[
        list[str] | None,
        typer.Option(
            "--method",
            "-m",
            help="Drift method: 'ks' for every feature, or 'age=ks' for one (psi, ks, chisquare, "
            "jensenshannon, wasserstein); default auto. Repeatable.",
        ),
    ] = None,
    threshold: Annotated[
        list[str] | None, typer.Option("--threshold", "-t", help="Drift threshold of one feature, 'age=0.2'. Repeatable.")
    ] = None,
    prediction_drift: Annotated[
        bool, typer.Option("--prediction-drift/--no-prediction-drift", help="Also compare the model's outputs.")
    ] = True,
    min_rows: Annotated[int, typer.Option(min=1, help="Logged instances needed before drift is judged.")] = 100,
    missing_rate_increase: Annotated[float, typer.Option(help="Quality: largest rise of a missing rate.")] = 0.05,
    out_of_range_share: Annotated[float, typer.Option(help="Quality: largest share outside the reference's range.")] = 0.05,
    unseen_share: Annotated[float, typer.Option(help="Quality: largest share of unseen categories.")] = 0.05,
    interval: Annotated[
        float | None, typer.Option(min=1, help="Seconds between checks; default the loop's (SHIPYARD_MONITOR_INTERVAL_S).")
    ] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it switched off.")] = False,
    namespace: NamespaceOption = "default",
    output: OutputOption = Format.TABLE,
) -> None:
    """Create or replace an endpoint's monitor. The reference is its production version's training profile."""
    every, per_feature = parse_overrides(method, "method")
    window = {k: v for k, v in {"requests": window_requests, "seconds": window_seconds}.items() if v is not None}
    with connect() as client:
        record = client.put_monitor(
            endpoint, features=split_features(features), window=window or None, method=every or "auto",
            methods=per_feature, thresholds=parse_thresholds(threshold), prediction_drift=prediction_drift,
            quality={"missing_rate_increase": missing_rate_increase, "out_of_range_share": out_of_range_share,
                     "unseen_share": unseen_share},
            min_rows=min_rows, interval_seconds=interval, enabled=not disabled, namespace=namespace,
        )  # fmt: skip
    if output == Format.JSON:
        emit(record, output)
        return
    emit_record(_flat(record), output, title=f"Monitor of {endpoint}")


@app.command("show")
def show(
    endpoint: Annotated[str, typer.Argument(help="The endpoint.")],
    namespace: NamespaceOption = "default",
    output: OutputOption = Format.TABLE,
) -> None:
    """An endpoint's monitor and its latest check."""
    with connect() as client:
        record = client.get_monitor(endpoint, namespace=namespace)
        latest = client.monitor_checks(endpoint, limit=1, namespace=namespace)
    if output == Format.JSON:
        emit({**record, "latest_check": latest[0] if latest else None}, output)
        return
    emit_record(_flat(record), output, title=f"Monitor of {endpoint}")
    if latest:
        print_check(latest[0])
    else:
        console.print("[dim]No checks yet: 'shipyard monitor check " + escape(endpoint) + "' runs one now.[/dim]")


@app.command("check")
def check(
    endpoint: Annotated[str, typer.Argument(help="The endpoint.")],
    namespace: NamespaceOption = "default",
    output: OutputOption = Format.TABLE,
) -> None:
    """Run one check of the endpoint now and print it: drift per feature, quality, traffic, resource use."""
    with connect() as client:
        found = client.check_monitor(endpoint, namespace=namespace)
    if output == Format.JSON:
        emit(found, output)
        return
    print_check(found)


@app.command("history")
def history(
    endpoint: Annotated[str, typer.Argument(help="The endpoint.")],
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many recent checks.")] = 20,
    namespace: NamespaceOption = "default",
    output: OutputOption = Format.TABLE,
) -> None:
    """The monitor's recent checks, newest first."""
    with connect() as client:
        found = client.monitor_checks(endpoint, limit=limit, namespace=namespace)
    if output == Format.JSON:
        emit(found, output)
        return
    rows = [
        {
            **c,
            "drifted_features": ((c["result"].get("drift") or {}).get("drifted_features") or []),
            "message": c["result"].get("message") or "",
        }
        for c in found
    ]
    emit(rows, output, columns=HISTORY_COLUMNS, title=f"Checks of {endpoint}")


@app.command("list")
def list_(namespace: NamespaceOption = "default", output: OutputOption = Format.TABLE) -> None:
    """The namespace's monitors."""
    with connect() as client:
        emit(client.list_monitors(namespace=namespace), output, columns=COLUMNS, title=f"Monitors in {namespace}")


@app.command("delete")
def delete(
    endpoint: Annotated[str, typer.Argument(help="The endpoint.")],
    namespace: NamespaceOption = "default",
    output: OutputOption = Format.TABLE,
) -> None:
    """Delete an endpoint's monitor and its checks (alert rules on the endpoint stay)."""
    with connect() as client:
        client.delete_monitor(endpoint, namespace=namespace)
    emit_outcome(f"Deleted the monitor of [bold]{escape(endpoint)}[/bold].", {"deleted": endpoint}, output)


@app.command("run")
def run(
    endpoint: Annotated[
        str | None, typer.Argument(help="Check this endpoint once now and print it; without one, run the loop.")
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Do one pass of the loop and exit.")] = False,
    interval: Annotated[
        float | None,
        typer.Option(min=0.05, help="Each monitor's default check interval, in seconds (SHIPYARD_MONITOR_INTERVAL_S, 30)."),
    ] = None,
    namespace: NamespaceOption = "default",
    output: OutputOption = Format.TABLE,
) -> None:
    """Run the monitor loop (``shipyard up`` runs it), or with ENDPOINT one check now."""
    if endpoint is not None:
        check(endpoint, namespace=namespace, output=output)
        return
    _loop(interval, once)


def _loop(interval: float | None, once: bool) -> None:
    from shipyard import outbound
    from shipyard.monitoring.config import MonitorConfig
    from shipyard.monitoring.controller import LoopController
    from shipyard.monitoring.loop import MonitorLoop
    from shipyard.runtime import Platform
    from shipyard.serving.gateway.config import GatewayConfig
    from shipyard.settings import Settings

    settings = Settings()
    config = MonitorConfig()
    every = interval if interval is not None else config.interval_s
    pause = min(every, PASS_SECONDS)  # checks come due on their interval; rules and after-tick steps need no wait
    platform = Platform.open(settings)
    log_url = GatewayConfig().resolved_prediction_log_url(settings)
    controller = LoopController(platform.db, platform.artifacts, log_url)
    loop = MonitorLoop(
        platform.db,
        platform.artifacts,
        log_url,
        interval=every,
        after_tick=[controller.tick],  # the closed loops move on at the pace of the checks
        send_webhook=outbound.webhook_sender(config),
        gateway_metrics=outbound.gateway_metrics(config, settings),
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    resources = f"resource use from {config.gateway_url}" if config.gateway_url else "no gateway for resource use"
    console.print(
        f"Monitor loop: each monitor checked every {every:g} s (a pass every {pause:g} s) over the prediction log at "
        f"{log_url}; {resources}"
    )
    try:
        while not stop.is_set():
            try:
                report = loop.tick()
                if report.checks or report.notified:
                    log.info("monitor pass: %d check(s), %d notification(s)", len(report.checks), len(report.notified))
            except Exception:  # a bad pass (database away) must not end the loop
                log.exception("monitor pass failed; trying again in %s s", pause)
            if once:
                break
            stop.wait(pause)
    finally:
        platform.close()


# -- printing -----------------------------------------------------------------------------------


def _flat(record: Mapping[str, Any]) -> dict[str, Any]:
    spec = record.get("spec") or {}
    drift = spec.get("drift") or {}
    return {
        "endpoint": record.get("endpoint"),
        "enabled": record.get("enabled"),
        "features": spec.get("features") or "all of the reference's",
        "window": spec.get("window"),
        "drift method": drift.get("method"),
        "per-feature methods": drift.get("methods") or None,
        "thresholds": drift.get("thresholds") or None,
        "prediction drift": spec.get("prediction_drift"),
        "quality": spec.get("quality"),
        "min_rows": spec.get("min_rows"),
        "interval_seconds": spec.get("interval_seconds") or "the loop's",
        "last_checked_at": record.get("last_checked_at"),
        "updated_at": record.get("updated_at"),
    }


def print_check(found: Mapping[str, Any]) -> None:
    """A check for people: its status, a table per feature, then its measures."""
    result = found.get("result") or {}
    status = result.get("status", "")
    colour = "green" if status == "ok" and not found.get("drifted") else "yellow"
    served = f"{result.get('model')} v{result.get('version')}" if result.get("model") else "nothing deployed"
    console.print(
        f"Check {found.get('id')} of [bold]{escape(str(found.get('endpoint')))}[/bold] at {when(found.get('created_at'))}: "
        f"[{colour}]{status}[/{colour}], {found.get('rows', 0)} row(s) of {escape(served)}",
        highlight=False,
    )
    if result.get("message"):
        console.print(f"[yellow]{escape(str(result['message']))}[/yellow]", highlight=False)
    for note in result.get("notes") or []:
        console.print(f"[dim]{escape(str(note))}[/dim]", highlight=False)
    features = result.get("features") or []
    if features:
        table = Table(title="Drift per feature")
        for column in FEATURE_COLUMNS:
            table.add_column(column)
        for row in features:
            drifted = row.get("drifted")
            mark = "[red]yes[/red]" if drifted else ("no" if drifted is not None else f"[dim]{row.get('skipped', '')}[/dim]")
            table.add_row(
                escape(str(row.get("feature"))), str(row.get("method") or ""), _number(row.get("statistic")),
                _number(row.get("p_value")), _number(row.get("threshold")), mark, _number(row.get("missing_rate")),
                ", ".join(row.get("quality_failed") or []),
            )  # fmt: skip
        console.print(table)
    measures = result.get("measures") or {}
    if measures:
        table = Table(title="Measures")
        table.add_column("measure")
        table.add_column("value", justify="right")
        for name in sorted(measures):
            table.add_row(escape(name), _number(measures[name]))
        console.print(table)


def _number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
