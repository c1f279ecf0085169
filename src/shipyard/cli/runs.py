"""``shipyard runs``: find runs, read their metrics, fetch their artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shipyard.cli import transfer
from shipyard.cli.context import NamespaceOption, connect
from shipyard.cli.output import Format, OutputOption, console, emit, emit_outcome, emit_record

app = typer.Typer(help="Tracked runs: search, inspect, metrics, artifacts.", no_args_is_help=True)

LIST_COLUMNS = ("id", "name", "status", "start_time", "params", "metrics")
DETAIL_FIELDS = (
    "id",
    "name",
    "status",
    "experiment_id",
    "start_time",
    "end_time",
    "code_version",
    "parent_run_id",
    "created_by",
    "params",
    "tags",
    "metrics",
)
RunIdArgument = Annotated[str, typer.Argument(help="The run's id.")]


def _for_people(run: dict[str, Any]) -> dict[str, Any]:
    """Latest metrics as ``key=value`` instead of a list of records."""
    return {**run, "metrics": {m["key"]: round(m["value"], 6) for m in run.get("metrics", [])}}


@app.command("list")
def list_(
    namespace: NamespaceOption = "default",
    experiment: Annotated[str | None, typer.Option(help="Only runs of the experiment with this name.")] = None,
    filter_expression: Annotated[str, typer.Option("--filter", help="e.g. \"metrics.acc > 0.9 and params.lr = '0.1'\".")] = "",
    order_by: Annotated[list[str] | None, typer.Option("--order-by", help='e.g. "metrics.acc DESC"; repeatable.')] = None,
    max_results: Annotated[int, typer.Option(min=1, max=1000, help="Runs per page.")] = 100,
    all_pages: Annotated[bool, typer.Option("--all", help="Every matching run, not just the first page.")] = False,
    output: OutputOption = Format.TABLE,
) -> None:
    """Search runs, newest first unless --order-by says otherwise."""
    with connect() as client:
        experiment_ids = [client.get_experiment_by_name(experiment, namespace=namespace)["id"]] if experiment else []
        query: dict[str, Any] = {
            "namespace": namespace,
            "experiment_ids": experiment_ids,
            "filter": filter_expression,
            "order_by": order_by or [],
            "max_results": max_results,
        }
        if all_pages:
            found, more = list(client.iter_runs(**query)), False
        else:
            page = client.search_runs(**query)
            found, more = page["runs"], bool(page["next_page_token"])
    if output == Format.JSON:
        emit(found, output)
        return
    emit([_for_people(r) for r in found], output, columns=LIST_COLUMNS)
    if more:
        console.print(f"[dim]More runs match: pass --all, or --max-results above {max_results}.[/dim]")


@app.command("get")
def get(run_id: RunIdArgument, namespace: NamespaceOption = "default", output: OutputOption = Format.TABLE) -> None:
    """A run with its params, tags and latest metrics."""
    with connect() as client:
        run = client.get_run(run_id, namespace=namespace)
    emit_record(run if output == Format.JSON else _for_people(run), output, fields=DETAIL_FIELDS)


@app.command("metrics")
def metrics(
    run_id: RunIdArgument,
    key: Annotated[str, typer.Argument(help="Metric name, e.g. loss.")],
    namespace: NamespaceOption = "default",
    output: OutputOption = Format.TABLE,
) -> None:
    """Every value logged for one metric of a run, by step."""
    with connect() as client:
        emit(client.metric_history(run_id, key, namespace=namespace), output, columns=("step", "value", "timestamp"), title=key)


@app.command("artifacts")
def artifacts(run_id: RunIdArgument, namespace: NamespaceOption = "default", output: OutputOption = Format.TABLE) -> None:
    """Files stored with a run."""
    with connect() as client:
        found = client.list_artifacts(run_id, namespace=namespace)
        emit(found, output, columns=("path", "size", "media_type", "digest", "created_at"))


@app.command("download")
def download(
    run_id: RunIdArgument,
    path: Annotated[str, typer.Argument(help="Artifact path inside the run, e.g. model/model.skops.")],
    dest: Annotated[Path, typer.Argument(help="File to write, or a folder to write it into.")],
    namespace: NamespaceOption = "default",
    output: OutputOption = Format.TABLE,
) -> None:
    """Download one artifact, checked against its digest."""
    target = dest / Path(path).name if dest.is_dir() else dest
    written = transfer.download_artifact(run_id, path, target, namespace)
    result = {"run_id": run_id, "path": path, "destination": str(written), "size": written.stat().st_size}
    emit_outcome(f"Saved [bold]{path}[/bold] to {written} ({result['size']} bytes).", result, output)
