"""Batch prediction: score CSV, Parquet or JSON Lines files with a model version, chunk by chunk.

``plan`` pairs each input file with its output (a folder of inputs gives a folder of
outputs with the same layout), ``Features`` picks the model's columns out of a chunk as
its signature describes them, and ``score_file`` reads, checks, predicts and writes one
file without holding more than a chunk in memory. Outputs are written beside their final
name and moved into place when complete, so a failed run leaves no half-written file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from shipyard.errors import InvalidInput
from shipyard.registry.predictor import Predictor

CSV = "csv"
PARQUET = "parquet"
JSONL = "jsonl"
FORMATS = (CSV, PARQUET, JSONL)
SUFFIXES = {".csv": CSV, ".parquet": PARQUET, ".pq": PARQUET, ".jsonl": JSONL, ".ndjson": JSONL}
OUTPUT_SUFFIXES = {CSV: ".csv", PARQUET: ".parquet", JSONL: ".jsonl"}
CHUNK_ROWS = 50_000
DEFAULT_ID = "id"
ROW_NUMBER = "row"  # the id column written when the input has none
PREDICTION = "prediction"
PROBABILITY_PREFIX = "prob_"
_NUMERIC_TYPES = frozenset({"double", "float", "long", "integer", "boolean"})


@dataclass(frozen=True)
class FileJob:
    """One input file and where its predictions go."""

    source: Path
    target: Path
    source_format: str
    target_format: str


def format_of(path: Path) -> str:
    found = SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise InvalidInput(f"cannot tell the format of {path}: expected a name ending in {', '.join(SUFFIXES)}")
    return found


def plan(source: Path, target: Path, output_format: str | None = None) -> list[FileJob]:
    """The files to score: ``source`` itself, or every data file under the folder ``source``."""
    if output_format is not None and output_format not in FORMATS:
        raise InvalidInput(f"output format {output_format!r} is unknown: expected one of {', '.join(FORMATS)}")
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        if not files:
            raise InvalidInput(f"folder {source} holds no {', '.join(SUFFIXES)} files to score")
        if target.exists() and not target.is_dir():
            raise InvalidInput(f"output {target} is a file, but the input {source} is a folder: name a folder for the output")
        if target.resolve() == source.resolve():
            raise InvalidInput(f"output folder {target} is the input folder: write the predictions somewhere else")
        jobs = []
        for path in files:
            fmt = format_of(path)
            out = output_format or fmt
            jobs.append(FileJob(path, target / path.relative_to(source).with_suffix(OUTPUT_SUFFIXES[out]), fmt, out))
        return jobs
    if not source.is_file():
        raise InvalidInput(f"input {source} does not exist: name a {', '.join(SUFFIXES)} file or a folder of them")
    fmt = format_of(source)
    if target.is_dir():
        out = output_format or fmt
        target = target / source.with_suffix(OUTPUT_SUFFIXES[out]).name
    else:
        out = output_format or SUFFIXES.get(target.suffix.lower()) or fmt
    if target.resolve() == source.resolve():
        raise InvalidInput(f"output {target} is the input file: write the predictions somewhere else")
    return [FileJob(source, target, fmt, out)]


def count_rows(path: Path, fmt: str) -> int:
    """Rows in a file, for a progress bar: exact for Parquet, counted by line breaks otherwise."""
    if fmt == PARQUET:
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    lines = 0
    last = b"\n"
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            lines += block.count(b"\n")
            last = block[-1:]
    if last != b"\n":
        lines += 1
    return max(lines - 1, 0) if fmt == CSV else lines


@dataclass(frozen=True)
class Features:
    """The model's input columns, from its signature.

    A ``columns`` signature names them (in that order, with their types); a tensor
    signature takes every column but the id, in file order, checking only their count.
    """

    columns: tuple[str, ...] | None = None
    types: Mapping[str, str] | None = None
    width: int | None = None

    @classmethod
    def from_signature(cls, signature: Mapping[str, Any]) -> Features:
        inputs = signature.get("inputs") or {}
        if inputs.get("type") == "columns":
            described = [c for c in inputs.get("columns", []) if isinstance(c, dict) and "name" in c]
            return cls(
                columns=tuple(str(c["name"]) for c in described),
                types={str(c["name"]): str(c.get("type", "")) for c in described},
            )
        shape = inputs.get("shape") or []
        width = shape[1] if len(shape) == 2 and isinstance(shape[1], int) and shape[1] > 0 else None
        return cls(width=width, types={"": str(inputs.get("dtype", "double"))} if inputs else None)

    def names(self, available: Sequence[str], id_column: str | None, where: str) -> list[str]:
        """The feature columns to read; an error names what is missing and what was expected."""
        if self.columns is not None:
            missing = [c for c in self.columns if c not in available]
            if missing:
                raise InvalidInput(
                    f"{where} has no column {_names(missing)}: the model expects the columns "
                    f"{_names(self.columns)} (from its signature)"
                )
            return list(self.columns)
        chosen = [str(c) for c in available if c != id_column]
        if self.width is not None and len(chosen) != self.width:
            besides = f" besides the id column {id_column!r}" if id_column else ""
            raise InvalidInput(
                f"{where} has {len(chosen)} feature columns{besides} ({_names(chosen)}): the model expects {self.width}"
            )
        return chosen

    def matrix(self, frame: Any, names: Sequence[str], where: str, first_row: int) -> Any:
        """The chunk's feature columns as a 2-D array, each column checked against its expected type."""
        import numpy as np
        import pandas as pd

        columns = []
        for name in names:
            expected = self._type_of(name)
            column = frame[name]
            if expected in _NUMERIC_TYPES and not _is_numeric(column):
                converted = pd.to_numeric(column, errors="coerce")
                bad = converted.isna() & column.notna()
                if bad.any():
                    at = int(np.flatnonzero(bad.to_numpy())[0])
                    raise InvalidInput(
                        f"column {name!r} of {where} holds {column.iloc[at]!r} in row {first_row + at + 1}: "
                        f"the model expects {expected} values there"
                    )
                column = converted
            columns.append(column)
        if not columns:
            return np.empty((len(frame), 0))
        if all(_is_numeric(c) for c in columns):
            return np.column_stack([c.to_numpy(dtype=np.float64, na_value=np.nan) for c in columns])
        return np.column_stack([c.to_numpy(dtype=object) for c in columns])

    def _type_of(self, name: str) -> str:
        if self.types is None:
            return "double"
        return self.types.get(name) or self.types.get("", "double")


def _is_numeric(column: Any) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column))


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:20])
    return shown + (f" and {len(names) - 20} more" if len(names) > 20 else "")


def read_chunks(path: Path, fmt: str, chunk_rows: int = CHUNK_ROWS, *, id_column: str = DEFAULT_ID) -> Iterator[Any]:
    """Data frames of at most ``chunk_rows`` rows; a CSV's id column is read as text, exactly as written."""
    import pandas as pd

    try:
        if fmt == PARQUET:
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
                yield batch.to_pandas()
        elif fmt == CSV:
            header = pd.read_csv(path, nrows=0).columns
            # Ids are copied to the output verbatim, so "007" must not become 7.
            keep_text = {id_column: "string"} if id_column in header else None
            with pd.read_csv(path, chunksize=chunk_rows, dtype=keep_text) as reader:
                yield from reader
        else:
            with pd.read_json(path, lines=True, chunksize=chunk_rows, dtype=False) as reader:
                yield from reader
    except (ValueError, OSError) as exc:
        if isinstance(exc, InvalidInput):
            raise
        raise InvalidInput(f"cannot read {path} as {fmt}: {exc}") from exc


class _Writer:
    """Appends data frames to a temporary file, moved to ``target`` by ``commit``."""

    def __init__(self, target: Path, fmt: str) -> None:
        self.target = target
        self.fmt = fmt
        self.temp = target.with_name(f".{target.name}.part")
        target.parent.mkdir(parents=True, exist_ok=True)
        self._handle: IO[str] | None = None
        self._parquet: Any = None
        self._schema: Any = None
        self.started = False

    def write(self, frame: Any) -> None:
        if self.fmt == PARQUET:
            self._write_parquet(frame)
        else:
            if self._handle is None:
                self._handle = open(self.temp, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed in commit/abort
            if self.fmt == CSV:
                frame.to_csv(self._handle, header=not self.started, index=False)
            elif len(frame):
                text = frame.to_json(orient="records", lines=True, date_format="iso")
                self._handle.write(text if text.endswith("\n") else text + "\n")
        self.started = True

    def _write_parquet(self, frame: Any) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._parquet is None:
            self._schema = table.schema
            self._parquet = pq.ParquetWriter(self.temp, self._schema)
        elif not table.schema.equals(self._schema):
            try:
                table = table.cast(self._schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
                raise InvalidInput(
                    f"a later chunk of output {self.target} has types {table.schema} that do not fit the first chunk's "
                    f"{self._schema}: make the id column's type consistent across the input"
                ) from exc
        self._parquet.write_table(table)

    def commit(self) -> None:
        self._close()
        os.replace(self.temp, self.target)

    def abort(self) -> None:
        self._close()
        self.temp.unlink(missing_ok=True)

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        if self._parquet is not None:
            self._parquet.close()


def score_file(
    job: FileJob,
    predictor: Predictor,
    features: Features,
    *,
    id_column: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
    on_rows: Callable[[int], None] | None = None,
) -> int:
    """Write the id and prediction (and ``prob_<class>`` columns) of every row; returns the row count.

    ``id_column=None`` carries ``id`` when the file has it, and otherwise numbers the rows
    from 1 in a ``row`` column.
    """
    import pandas as pd

    writer = _Writer(job.target, job.target_format)
    done = 0
    id_name: str | None = None
    try:
        for frame in read_chunks(job.source, job.source_format, chunk_rows, id_column=id_column or DEFAULT_ID):
            available = [str(c) for c in frame.columns]
            frame.columns = available
            if id_column is not None and id_column not in available:
                raise InvalidInput(f"{job.source} has no id column {id_column!r}: its columns are {_names(available)}")
            id_name = id_column or (DEFAULT_ID if DEFAULT_ID in available else None)
            names = features.names(available, id_name, str(job.source))
            rows = features.matrix(frame, names, str(job.source), done)
            labels, probabilities = _predict(predictor, rows, job.source, done)
            ids = frame[id_name].to_numpy() if id_name else range(done + 1, done + len(frame) + 1)
            out = pd.DataFrame({id_name or ROW_NUMBER: ids, PREDICTION: labels})
            if probabilities is not None:
                classes = predictor.classes or list(range(len(probabilities[0]) if probabilities else 0))
                for index, name in enumerate(classes):
                    out[f"{PROBABILITY_PREFIX}{name}"] = [p[index] for p in probabilities]
            writer.write(out)
            done += len(frame)
            if on_rows is not None:
                on_rows(len(frame))
        if not writer.started:  # an empty input still gives a readable (empty) output
            writer.write(pd.DataFrame({id_column or ROW_NUMBER: [], PREDICTION: []}))
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return done


def _predict(predictor: Predictor, rows: Any, source: Path, first_row: int) -> tuple[list[Any], list[list[float]] | None]:
    if not len(rows):
        return [], None
    try:
        return predictor.predict_with_proba(rows)
    except InvalidInput:
        raise
    except Exception as exc:  # the model's own errors (NaN, wrong shape...) reported with where they happened
        raise InvalidInput(
            f"the model could not score rows {first_row + 1}-{first_row + len(rows)} of {source}: {type(exc).__name__}: {exc}"
        ) from exc
