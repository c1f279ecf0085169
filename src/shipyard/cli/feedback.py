"""``shipyard feedback``, ``quality``, ``ab`` and ``models profile``: ground truth and what it tells."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from shipyard.cli.context import NamespaceOption, connect, fail
from shipyard.cli.output import Format, OutputOption, console, emit, emit_outcome

app = typer.Typer(
    help="Ground truth: labels for predictions, by the X-Request-Id the gateway answered with.", no_args_is_help=True
)

EndpointArgument = Annotated[str, typer.Argument(help="Endpoint name.")]
RequestsOption = Annotated[int | None, typer.Option("--requests", min=1, help="The last N logged requests (default 10,000).")]
SecondsOption = Annotated[float | None, typer.Option("--seconds", min=0.001, help="The requests of the last S seconds.")]
TaskOption = Annotated[str | None, typer.Option("--task", help="classification or regression; default from the signature.")]
FEEDBACK_COLUMNS = ("request_id", "label", "created_at", "created_by")
METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "mae", "rmse", "r2")


def parse_label(text: str) -> Any:
    """A label from the command line: JSON where it parses (``1``, ``true``, ``[0, 1]``), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def read_items(path: Path) -> list[Any]:
    """Labels from a file: a JSON list, or JSON Lines, of ``{"request_id": ..., "label": ...}``."""
    text = path.read_text()
    if text.lstrip().startswith("["):
        found = json.loads(text)
        if not isinstance(found, list):  # pragma: no cover - a leading '[' parses to a list or fails
            fail(f"{path} holds no JSON list")
        return list(found)
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                items.append(json.loads(line))
            except ValueError as exc:
                fail(f'{path}:{number} is not JSON ({exc}): expected one {{"request_id": ..., "label": ...}} per line')
    return items


@app.command("send")
def send(
    endpoint: EndpointArgument,
    request_id: Annotated[str | None, typer.Argument(help="The X-Request-Id of the prediction.")] = None,
    label: Annotated[str | None, typer.Argument(help='The true label: JSON (1, true, "cat", [0, 1]) or plain text.')] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", exists=True, dir_okay=False, help="JSON list or JSON Lines of labels.")
    ] = None,
    namespace: NamespaceOption = "default",
    output: OutputOption = Format.TABLE,
) -> None:
    """Send the true label of one prediction, or of many from a file (up to 10,000 per call, all or none)."""
    if (file is None) == (request_id is None) or (request_id is None) != (label is None):
        raise typer.BadParameter("give REQUEST_ID and LABEL, or --file, not both")
    with connect() as client:
        if file is not None:
            result = client.log_feedback_batch(endpoint, read_items(file), namespace=namespace)
        else:
            assert request_id is not None
            assert label is not None
            result = client.log_feedback(endpoint, request_id, parse_label(label), namespace=namespace)
    emit_outcome(f"Recorded {result['accepted']} label(s) for endpoint [bold]{endpoint}[/bold].", result, output)


@app.command("list")
def list_(
    endpoint: EndpointArgument,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many, newest first.")] = 20,
    namespace: NamespaceOption = "default",
    output: OutputOption = Format.TABLE,
) -> None:
    """The endpoint's labels, newest first."""
    with connect() as client:
        found = client.list_feedback(endpoint, limit=limit, namespace=namespace)
    emit(found, output, columns=FEEDBACK_COLUMNS, title=f"Feedback for {endpoint}")


def _number(value: Any, digits: int = 4) -> str:
    if value is None:
        return ""
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def quality(
    endpoint: EndpointArgument,
    requests: RequestsOption = None,
    seconds: SecondsOption = None,
    task: TaskOption = None,
    namespace: NamespaceOption = "default",
    output: OutputOption = Format.TABLE,
) -> None:
    """Model quality per served version, over the labelled requests of a window of the prediction log."""
    with connect() as client:
        found = client.endpoint_quality(endpoint, requests=requests, seconds=seconds, task=task, namespace=namespace)
    if output == Format.JSON:
        emit(found, output)
        return
    versions = found["versions"]
    if not versions:
        console.print(f"[dim]No logged requests for {endpoint} in this window.[/dim]")
        return
    shown = [m for m in METRICS if any((v["metrics"] or {}).get(m) is not None for v in versions)]
    table = Table(title=f"Quality of {endpoint} ({found['model'] or 'no model'}), {_describe(found['window'])}")
    for column in ("version", "task", "requests", "labelled", *shown):
        table.add_column(column, justify="left" if column == "task" else "right")
    for v in versions:
        metrics = v["metrics"] or {}
        table.add_row(
            str(v["version"]), v["task"] or "", str(v["requests"]), str(v["labelled"]), *(_number(metrics.get(m)) for m in shown)
        )
    console.print(table)
    if not found["labelled"]:
        console.print("[dim]No labels yet: send them with 'shipyard feedback send ENDPOINT REQUEST_ID LABEL'.[/dim]")


def _describe(window: dict[str, Any]) -> str:
    parts = []
    if window.get("requests"):
        parts.append(f"last {window['requests']:,} requests")
    if window.get("seconds"):
        parts.append(f"last {window['seconds']:g} s")
    return " within ".join(parts)


def ab(
    endpoint: EndpointArgument,
    a: Annotated[int | None, typer.Option("--a", min=1, help="Version A; default the busiest routed version.")] = None,
    b: Annotated[int | None, typer.Option("--b", min=1, help="Version B; default the next busiest.")] = None,
    requests: RequestsOption = None,
    seconds: SecondsOption = None,
    alpha: Annotated[float, typer.Option("--alpha", min=0.0001, max=0.5, help="Significance level.")] = 0.05,
    task: TaskOption = None,
    namespace: NamespaceOption = "default",
    output: OutputOption = Format.TABLE,
) -> None:
    """A/B test of two versions an endpoint serves: quality (from labels) and latency, with p-values and intervals."""
    with connect() as client:
        found = client.endpoint_ab(
            endpoint, a=a, b=b, requests=requests, seconds=seconds, alpha=alpha, task=task, namespace=namespace
        )
    if output == Format.JSON:
        emit(found, output)
        return
    level = f"{1 - found['alpha']:.0%} CI"
    table = Table(title=f"A/B on {endpoint}: version {found['b']} (B) against version {found['a']} (A), "
                  f"{_describe(found['window'])}")  # fmt: skip
    for column in ("measure", "test", "A", "B", "B - A", level, "p-value", "n A", "n B", "significant"):
        table.add_column(column, justify="left" if column in ("measure", "test") else "right")
    for result in (found["quality"], found["latency"]):
        interval = f"{_number(result['ci_low'])} to {_number(result['ci_high'])}" if result["ci_low"] is not None else ""
        table.add_row(
            result["metric"], result["test"], _number(result["a"]), _number(result["b"]), _number(result["difference"]),
            interval, _number(result["p_value"], 3), str(result["n_a"]), str(result["n_b"]),
            "yes" if result["significant"] else "no",
        )  # fmt: skip
    console.print(table)
    for result in (found["quality"], found["latency"]):
        console.print(f"- {result['verdict']}", highlight=False)


def profile(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(min=1, help="Version number.")],
    namespace: NamespaceOption = "default",
    output: OutputOption = Format.TABLE,
) -> None:
    """The reference profile of a version's training data: per column its kind, missing rate and spread."""
    with connect() as client:
        found = client.get_model_profile(name, version, namespace=namespace)
    if output == Format.JSON:
        emit(found, output)
        return
    table = Table(title=f"Reference profile of {name} v{version} ({found['rows']:,} rows)")
    for column in ("column", "kind", "missing rate", "min", "median", "max", "top categories"):
        table.add_column(column, justify="left" if column in ("column", "kind", "top categories") else "right")
    for column in found["columns"]:
        rate = f"{column['missing'] / column['count']:.1%}" if column["count"] else ""
        low = middle = high = top = ""
        if column.get("numeric"):
            numeric = column["numeric"]
            quantiles = numeric["quantiles"]
            low, high = _number(numeric["min"]), _number(numeric["max"])
            middle = _number(quantiles[len(quantiles) // 2]) if quantiles else ""
        elif column.get("categorical"):
            frequencies = column["categorical"]["frequencies"][:3]
            present = column["count"] - column["missing"]
            top = ", ".join(f"{label} ({count / present:.0%})" for label, count in frequencies) if present else ""
        table.add_row(column["name"], column["kind"], rate, low, middle, high, top)
    console.print(table)
