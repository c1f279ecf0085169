"""``shipyard predict-batch``: score files with a registered model version."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from shipyard.cli.context import NamespaceOption, connect
from shipyard.cli.output import Format, OutputOption, emit_outcome, err_console


class FileFormat(StrEnum):
    CSV = "csv"
    PARQUET = "parquet"
    JSONL = "jsonl"


def predict_batch(
    model: Annotated[str, typer.Argument(help="Model name.")],
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="A .csv, .parquet or .jsonl file, or a folder of them.")],
    output_path: Annotated[
        Path, typer.Argument(metavar="OUTPUT", help="Output file; a folder when INPUT is one (its layout is mirrored).")
    ],
    version: Annotated[int | None, typer.Option("--version", min=1, help="Version number to use.")] = None,
    alias: Annotated[str | None, typer.Option("--alias", help="Alias to use instead, e.g. production.")] = None,
    id_column: Annotated[
        str | None,
        typer.Option(
            "--id-column", help="Column copied to the output to identify rows [default: id if present, else row numbers]."
        ),
    ] = None,
    file_format: Annotated[
        FileFormat | None, typer.Option("--format", help="Output format [default: OUTPUT's suffix, else the input's].")
    ] = None,
    chunk_rows: Annotated[int, typer.Option("--chunk-rows", min=1, help="Rows read and scored at a time.")] = 50_000,
    namespace: NamespaceOption = "default",
    output: OutputOption = Format.TABLE,
) -> None:
    """Predict every row of INPUT with a model version and write the ids, predictions and class probabilities.

    Feature columns are the ones named in the version's signature; for array-trained
    models, every column except the id. The version's ONNX export is used when it has one.
    """
    if (version is None) == (alias is None):
        raise typer.BadParameter("give --version N or --alias NAME (one of them)")
    from shipyard.serving import batch  # pandas and pyarrow only when this command runs

    with connect() as client:
        jobs = batch.plan(input_path, output_path, file_format.value if file_format else None)
        found = client.get_model_version(model, version, alias=alias, namespace=namespace)
        # Pin the number an alias resolved to, so the model and its signature always match.
        predictor = client.load_predictor(model, found["version"], namespace=namespace)
        features = batch.Features.from_signature(found.get("signature") or {})
        total = sum(batch.count_rows(job.source, job.source_format) for job in jobs)
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
            transient=output == Format.JSON,
        )
        rows = 0
        with progress:
            task = progress.add_task(f"{model} v{found['version']}", total=total)
            for job in jobs:
                rows += batch.score_file(
                    job,
                    predictor,
                    features,
                    id_column=id_column,
                    chunk_rows=chunk_rows,
                    on_rows=lambda n: progress.advance(task, n),
                )
            progress.update(task, completed=rows, total=rows)
    record = {
        "model": model,
        "version": found["version"],
        "engine": predictor.kind,
        "rows": rows,
        "files": [str(job.target) for job in jobs],
    }
    emit_outcome(
        f"Scored {rows} rows from {len(jobs)} file(s) with {model} v{found['version']} ({predictor.kind}) into {output_path}",
        record,
        output,
    )
