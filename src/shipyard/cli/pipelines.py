"""``shipyard pipeline`` (run, resume, runs, show, queue, cancel) and ``shipyard logs``."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Annotated, Any

import orjson
import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from shipyard.cli.context import NamespaceOption, connect, fail
from shipyard.cli.output import Format, OutputOption, console, emit, emit_record
from shipyard.errors import ShipyardError

app = typer.Typer(help="Pipelines: run, resume and inspect pipeline runs.", no_args_is_help=True)

RUN_COLUMNS = ("id", "pipeline", "status", "priority", "executor", "created_at", "finished_at", "created_by")
QUEUE_COLUMNS = ("position", "id", "pipeline", "priority", "resources", "created_at", "created_by")
STEP_COLUMNS = ("step", "attempt", "status", "cache_key", "started_at", "finished_at", "cpu_s", "max_rss_mb", "error")
ExecutorOption = Annotated[str, typer.Option("--executor", "-e", help="local (processes on this machine) or ray.")]
RayAddressOption = Annotated[
    str | None,
    typer.Option("--ray-address", envvar="SHIPYARD_RAY_ADDRESS", help="Ray cluster to join; default a local Ray runtime."),
]
ParallelOption = Annotated[int | None, typer.Option("--max-parallel", min=1, help="Most steps at once; default the CPU count.")]
LEVEL_STYLE = {"ERROR": "red", "WARNING": "yellow", "DEBUG": "dim"}


def parse_params(values: list[str] | None) -> dict[str, Any]:
    """``key=value`` pairs; values are read as JSON when they parse (numbers, booleans, lists), else kept as text."""
    params: dict[str, Any] = {}
    for item in values or []:
        key, equals, raw = item.partition("=")
        if not equals or not key.strip():
            raise typer.BadParameter(f"{item!r} is not a parameter: expected KEY=VALUE (e.g. --param epochs=3)")
        try:
            params[key.strip()] = orjson.loads(raw)
        except orjson.JSONDecodeError:
            params[key.strip()] = raw
    return params


class _Board:
    """A Rich progress bar over the steps of one run."""

    def __init__(self, total: int) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        )
        self.task = self.progress.add_task("steps", total=total)

    def __call__(self, kind: str, node: str, details: Mapping[str, Any]) -> None:
        if kind in ("succeeded", "cached"):
            self.progress.advance(self.task)
        error = escape(str(details.get("error")))
        note = {
            "started": f"[cyan]{node}[/cyan] started (attempt {details.get('attempt')})",
            "cached": f"[green]{node}[/green] reused ({details.get('source')})",
            "succeeded": f"[green]{node}[/green] done in {details.get('seconds', 0):.2f} s",
            "retrying": f"[yellow]{node}[/yellow] failed, retrying in {details.get('delay', 0):g} s: {error}",
            "failed": f"[red]{node}[/red] failed: {error}",
            "queued": f"[yellow]queued[/yellow]: the namespace's quota is taken (run {details.get('run_id')}; "
            "see `shipyard pipeline queue`)",
            "admitted": "[cyan]admitted[/cyan]: starting",
            "cancelled": "[red]cancelled[/red]",
        }.get(kind)
        if note:
            self.progress.console.print(note, highlight=False)


@app.command("run")
def run(
    target: Annotated[str, typer.Argument(help="The pipeline: MODULE:NAME or FILE.py:NAME.")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="A pipeline parameter, KEY=VALUE; repeatable.")] = None,
    namespace: NamespaceOption = "default",
    executor: ExecutorOption = "local",
    ray_address: RayAddressOption = None,
    cache: Annotated[bool, typer.Option("--cache/--no-cache", help="Reuse outputs of identical earlier steps.")] = True,
    max_parallel: ParallelOption = None,
    priority: Annotated[int, typer.Option(help="Place in the namespace's queue when its quota is taken: higher first.")] = 0,
    trigger: Annotated[str | None, typer.Option(envvar="SHIPYARD_TRIGGER", hidden=True)] = None,
) -> None:
    """Run a pipeline and wait for it (after its turn in the namespace's queue); exit status 1 when a step fails."""
    from shipyard.pipelines.launcher import import_pipeline, run_pipeline

    try:
        pipeline = import_pipeline(target)
        graph = pipeline.build(**parse_params(param))
    except ShipyardError as exc:
        fail(exc.message)
        return
    with connect() as client:
        board = _Board(len(graph.nodes))
        with board.progress:
            result = run_pipeline(
                pipeline, graph.params, namespace=namespace, executor=executor, cache=cache, client=client,
                ray_address=ray_address, max_parallel=max_parallel, on_event=board, priority=priority, trigger=trigger,
            )  # fmt: skip
        _report(result.run_id, result.status, result.error)


@app.command("resume")
def resume(
    run_id: Annotated[str, typer.Argument(help="A failed or cancelled pipeline run.")],
    namespace: NamespaceOption = "default",
    executor: ExecutorOption = "local",
    ray_address: RayAddressOption = None,
    max_parallel: ParallelOption = None,
) -> None:
    """Run a failed run again from where it failed, reusing every step that finished."""
    from shipyard.pipelines.launcher import resume_pipeline

    with connect() as client:
        old = client.get_pipeline_run(run_id, namespace=namespace)
        board = _Board(len((old.get("graph") or {}).get("nodes") or []))
        with board.progress:
            result = resume_pipeline(
                run_id, namespace=namespace, executor=executor, client=client, ray_address=ray_address,
                max_parallel=max_parallel, on_event=board,
            )  # fmt: skip
        _report(result.run_id, result.status, result.error)


def _report(run_id: str, status: str, error: str | None) -> None:
    if status == "succeeded":
        console.print(f"[green]Pipeline run {run_id} succeeded.[/green]")
        return
    fail(f"pipeline run {run_id} {status}: {error}")


@app.command("runs")
def runs(
    namespace: NamespaceOption = "default",
    pipeline: Annotated[str | None, typer.Option(help="Only runs of this pipeline.")] = None,
    status: Annotated[str | None, typer.Option(help="Only runs in this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    output: OutputOption = Format.TABLE,
) -> None:
    """Pipeline runs in a namespace, newest first."""
    with connect() as client:
        found = client.list_pipeline_runs(pipeline=pipeline, status=status, limit=limit, namespace=namespace)
    emit(found, output, columns=RUN_COLUMNS, title=f"Pipeline runs in {namespace}")


@app.command("show")
def show(
    run_id: Annotated[str, typer.Argument(help="Pipeline run id.")],
    namespace: NamespaceOption = "default",
    output: OutputOption = Format.TABLE,
) -> None:
    """One run and its step attempts (status, cache key, CPU seconds and peak memory they used, errors)."""
    with connect() as client:
        record = client.get_pipeline_run(run_id, namespace=namespace)
        steps = client.list_step_runs(run_id, namespace=namespace)
    if output != Format.TABLE:
        emit({**record, "steps": steps}, output)
        return
    emit_record({k: v for k, v in record.items() if k != "graph"}, output, title=f"Pipeline run {run_id}")
    emit([_step_row(s) for s in steps], output, columns=STEP_COLUMNS, title="Steps")


def _step_row(step: Mapping[str, Any]) -> dict[str, Any]:
    """A step attempt as a table row: a short cache key, and what it used (blank when it never ran here)."""
    usage = step.get("usage") or {}
    cpu, rss = usage.get("cpu_seconds"), usage.get("max_rss_mb")
    return {
        **step,
        "cache_key": (step.get("cache_key") or "")[:12],
        "cpu_s": None if cpu is None else f"{cpu:.2f}",
        "max_rss_mb": None if rss is None else f"{rss:.0f}",
    }


@app.command("queue")
def queue(namespace: NamespaceOption = "default", output: OutputOption = Format.TABLE) -> None:
    """The namespace's quota, what its running runs hold, and its queued runs in the order they will start."""
    with connect() as client:
        found = client.pipeline_queue(namespace=namespace)
    if output != Format.TABLE:
        emit(found, output)
        return
    quota = found.get("quota")
    limits = "none" if quota is None else _limits(quota)
    console.print(f"Quota of [bold]{namespace}[/bold]: {limits}")
    console.print(f"Running: {found['running']} run(s) holding {_limits(found['used'])}")
    rows = [{"position": n, **run} for n, run in enumerate(found["queued"], start=1)]
    emit(rows, output, columns=QUEUE_COLUMNS, title=f"Queued in {namespace}")


def _limits(values: Mapping[str, Any]) -> str:
    names = {"cpu": "CPU", "memory_mb": "MiB", "gpu": "GPU", "concurrent_runs": "runs at once"}
    shown = [f"{values[key]:g} {label}" for key, label in names.items() if values.get(key) is not None]
    return ", ".join(shown) or "nothing"


@app.command("cancel")
def cancel(
    run_id: Annotated[str, typer.Argument(help="A queued or running pipeline run.")],
    namespace: NamespaceOption = "default",
    output: OutputOption = Format.TABLE,
) -> None:
    """Cancel a run: a queued one never starts; a running one is stopped by its runner within about a second."""
    with connect() as client:
        record = client.cancel_pipeline_run(run_id, namespace=namespace)
    emit_record(record, output, fields=RUN_COLUMNS, title=f"Cancelled pipeline run {run_id}")


def logs(
    run_id: Annotated[str, typer.Argument(help="Pipeline run id.")],
    namespace: NamespaceOption = "default",
    step: Annotated[str | None, typer.Option("--step", "-s", help="Only this step's lines.")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines until the run ends.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON lines as stored.")] = False,
) -> None:
    """A pipeline run's step logs (structured JSON lines tagged with run, step and attempt)."""
    with connect() as client:
        after = 0
        while True:
            lines = client.read_logs(run_id, step=step, after=after, limit=1000, namespace=namespace)
            for line in lines:
                after = max(after, int(line["id"]))
                _print_line(line, as_json)
            if len(lines) == 1000:
                continue
            if not follow or client.get_pipeline_run(run_id, namespace=namespace)["status"] not in ("queued", "running"):
                if follow:  # the last lines may have landed just before the run ended
                    for line in client.read_logs(run_id, step=step, after=after, limit=1000, namespace=namespace):
                        _print_line(line, as_json)
                return
            time.sleep(0.5)


def _print_line(line: Mapping[str, Any], as_json: bool) -> None:
    if as_json:
        console.print(orjson.dumps(dict(line)).decode(), highlight=False, soft_wrap=True)
        return
    stamp = time.strftime("%H:%M:%S", time.localtime(int(line.get("ts", 0)) / 1000))
    level = str(line.get("level", "INFO"))
    style = LEVEL_STYLE.get(level, "")
    text = f"{stamp} {line.get('step')}#{line.get('attempt')} {level:<7} {escape(str(line.get('message', '')))}"
    console.print(f"[{style}]{text}[/{style}]" if style else text, highlight=False, soft_wrap=True)
