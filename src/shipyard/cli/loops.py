"""``shipyard loop``: an endpoint's closed loop — gate, canary, then promotion or automatic rollback."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from shipyard.cli.context import NamespaceOption, connect
from shipyard.cli.output import Format, OutputOption, console, emit, emit_outcome, emit_record, when

app = typer.Typer(help="Closed loops: new model versions gated, canaried, promoted or rolled back.", no_args_is_help=True)

COLUMNS = ("endpoint", "enabled", "seen_version", "spec", "updated_at")
CYCLE_COLUMNS = ("started_at", "model", "candidate_version", "baseline_version", "state", "canary_revision", "reason")


@app.command("set")
def set_(
    endpoint: Annotated[str, typer.Argument(help="The endpoint the loop looks after.")],
    model: Annotated[str, typer.Option(help="Registered model whose new versions are candidates.")],
    alias: Annotated[str, typer.Option(help="Alias moved to a promoted candidate.")] = "production",
    metric: Annotated[
        str, typer.Option(help="Gate metric: accuracy, precision, recall, f1, roc_auc, r2, log_loss, mae, rmse.")
    ] = ("accuracy"),
    min_improvement: Annotated[
        float, typer.Option(help="How much better than production the candidate must be (negative: a tolerance).")
    ] = 0.0,
    gate_data: Annotated[
        str,
        typer.Option(help="feedback: both scored on labelled recent requests; registry: metrics recorded on the versions."),
    ] = "feedback",
    min_samples: Annotated[int, typer.Option(help="Labelled requests the gate needs.")] = 50,
    weight: Annotated[int, typer.Option(help="Canary share of the traffic, in percent.")] = 10,
    soak: Annotated[float, typer.Option(help="Seconds the canary must hold before promotion.")] = 300.0,
    min_requests: Annotated[int, typer.Option(help="Requests the canary must answer before it is judged.")] = 50,
    max_error_rate: Annotated[float, typer.Option(help="Highest error rate the canary may have (0-1).")] = 0.01,
    max_latency_p99_ms: Annotated[float | None, typer.Option(help="Highest p99 latency the canary may have.")] = None,
    max_quality_drop: Annotated[float, typer.Option(help="How much worse than production the canary's metric may be.")] = 0.02,
    min_labels: Annotated[int, typer.Option(help="Labelled canary requests needed per version to judge quality (0: skip).")] = 30,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it switched off.")] = False,
    namespace: NamespaceOption = "default",
    output: OutputOption = Format.TABLE,
) -> None:
    """Create or replace an endpoint's loop. It acts as you: you need promote rights in the namespace."""
    gate = {"metric": metric, "min_improvement": min_improvement, "data": gate_data, "min_samples": min_samples}
    canary: dict[str, Any] = {
        "weight": weight, "soak_seconds": soak, "min_requests": min_requests, "max_error_rate": max_error_rate,
        "max_latency_p99_ms": max_latency_p99_ms, "max_quality_drop": max_quality_drop, "min_labels": min_labels,
        "max_wait_seconds": max(3600.0, soak * 4),
    }  # fmt: skip
    with connect() as client:
        record = client.put_loop(
            endpoint, model=model, alias=alias, gate=gate, canary=canary, enabled=not disabled, namespace=namespace
        )
    emit_record(_flat(record), output, fields=COLUMNS, title=f"Retraining loop of {endpoint}")


@app.command("show")
def show(
    endpoint: Annotated[str, typer.Argument(help="Endpoint name.")],
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many recent cycles.")] = 10,
    namespace: NamespaceOption = "default",
    output: OutputOption = Format.TABLE,
) -> None:
    """The loop, its recent cycles, and every transition of the newest one."""
    with connect() as client:
        record = client.get_loop(endpoint, namespace=namespace)
        cycles = client.loop_cycles(endpoint, limit=limit, namespace=namespace)
    if output != Format.TABLE:
        emit({**record, "cycles": cycles}, output)
        return
    emit_record(_flat(record), output, fields=COLUMNS, title=f"Retraining loop of {endpoint}")
    if not cycles:
        console.print("[dim]No candidates yet: the loop starts a cycle when a new version of its model is registered.[/dim]")
        return
    emit(cycles, output, columns=CYCLE_COLUMNS, title="Cycles, newest first")
    console.print(f"[bold]Transitions of cycle {cycles[0]['id']}[/bold]")
    for step in cycles[0]["detail"].get("transitions", []):
        console.print(f"  {when(step['at'])}  {step['from']} -> [bold]{step['to']}[/bold]: {step['reason']}")


@app.command("delete")
def delete(
    endpoint: Annotated[str, typer.Argument(help="Endpoint name.")],
    namespace: NamespaceOption = "default",
    output: OutputOption = Format.TABLE,
) -> None:
    """Remove the loop and its history; what the endpoint serves stays as it is."""
    with connect() as client:
        client.delete_loop(endpoint, namespace=namespace)
    emit_outcome(f"Deleted the retraining loop of [bold]{endpoint}[/bold].", {"deleted": endpoint}, output)


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    active = record.get("active_cycle")
    found = {k: v for k, v in record.items() if k != "active_cycle"}
    if active:
        found["active_cycle"] = f"{active['state']}: v{active['candidate_version']} ({active['reason']})"
    return found
