"""Batch scoring of files: planning, column selection, chunked reading and writing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from shipyard.errors import InvalidInput
from shipyard.registry import formats, onnx_export, signature
from shipyard.registry.predictor import Predictor, SklearnPredictor
from shipyard.serving import batch


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    features = pd.DataFrame({"tenure": rng.normal(size=90), "spend": rng.normal(size=90), "visits": rng.integers(0, 9, 90)})
    return features


@pytest.fixture(scope="module")
def model(frame: pd.DataFrame) -> LogisticRegression:
    labels = np.where(frame["tenure"] + frame["spend"] > 0, "stay", "churn")
    return LogisticRegression().fit(frame, labels)


@pytest.fixture(scope="module")
def predictor(model: LogisticRegression, frame: pd.DataFrame) -> Predictor:
    exported = onnx_export.export(model, frame)
    assert exported.data is not None, exported.skipped
    return formats.load_for_serving(b"", formats.SKLEARN, exported.data)


@pytest.fixture(scope="module")
def features(frame: pd.DataFrame) -> batch.Features:
    return batch.Features.from_signature(signature.infer(frame))


def _input(frame: pd.DataFrame) -> pd.DataFrame:
    """The scoring input: ids that look numeric but are not, and columns in another order."""
    ids = [f"{n:04d}" for n in range(len(frame))]
    return pd.DataFrame({"visits": frame["visits"], "id": ids, "spend": frame["spend"], "tenure": frame["tenure"]})


def _write(data: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = batch.format_of(path)
    if fmt == batch.CSV:
        data.to_csv(path, index=False)
    elif fmt == batch.PARQUET:
        data.to_parquet(path, index=False)
    else:
        data.to_json(path, orient="records", lines=True)
    return path


def _read(path: Path) -> pd.DataFrame:
    fmt = batch.format_of(path)
    if fmt == batch.CSV:
        return pd.read_csv(path, dtype={"id": str})
    if fmt == batch.PARQUET:
        return pd.read_parquet(path)
    return pd.read_json(path, lines=True, dtype=False)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_every_format_scores_in_chunks_and_keeps_ids(
    tmp_path: Path, suffix: str, frame: pd.DataFrame, model: LogisticRegression, predictor: Predictor, features: batch.Features
) -> None:
    source = _write(_input(frame), tmp_path / f"in{suffix}")
    (job,) = batch.plan(source, tmp_path / f"out{suffix}")
    seen: list[int] = []
    assert batch.score_file(job, predictor, features, chunk_rows=25, on_rows=seen.append) == len(frame)
    assert seen == [25, 25, 25, 15]
    assert batch.count_rows(source, job.source_format) == len(frame)
    out = _read(tmp_path / f"out{suffix}")
    assert list(out.columns) == ["id", "prediction", "prob_churn", "prob_stay"]
    assert out["id"].tolist() == _input(frame)["id"].tolist()
    assert out["prediction"].tolist() == model.predict(frame).tolist()
    np.testing.assert_allclose(out[["prob_churn", "prob_stay"]].to_numpy(), model.predict_proba(frame), atol=1e-4)
    assert not list(tmp_path.glob(".*.part"))


def test_a_folder_is_mirrored_and_formats_can_change(
    tmp_path: Path, frame: pd.DataFrame, predictor: Predictor, features: batch.Features
) -> None:
    source = tmp_path / "in"
    _write(_input(frame[:40]), source / "a.csv")
    _write(_input(frame[40:]), source / "nested" / "b.jsonl")
    (source / "notes.txt").write_text("not data")
    jobs = batch.plan(source, tmp_path / "out", "parquet")
    assert [j.target.relative_to(tmp_path / "out").as_posix() for j in jobs] == ["a.parquet", "nested/b.parquet"]
    assert sum(batch.score_file(j, predictor, features) for j in jobs) == len(frame)
    assert len(pd.read_parquet(tmp_path / "out" / "nested" / "b.parquet")) == len(frame) - 40


def test_a_missing_column_names_the_column_and_what_was_expected(
    tmp_path: Path, frame: pd.DataFrame, predictor: Predictor, features: batch.Features
) -> None:
    source = _write(_input(frame).drop(columns=["spend"]), tmp_path / "in.csv")
    (job,) = batch.plan(source, tmp_path / "out.csv")
    with pytest.raises(InvalidInput, match=r"no column 'spend': the model expects the columns 'tenure', 'spend', 'visits'"):
        batch.score_file(job, predictor, features)
    assert not (tmp_path / "out.csv").exists()
    assert not list(tmp_path.glob(".*.part"))


def test_text_in_a_numeric_column_names_the_row(
    tmp_path: Path, frame: pd.DataFrame, predictor: Predictor, features: batch.Features
) -> None:
    data = _input(frame).astype({"tenure": object})
    data.loc[52, "tenure"] = "unknown"
    source = _write(data, tmp_path / "in.jsonl")
    (job,) = batch.plan(source, tmp_path / "out.jsonl")
    with pytest.raises(InvalidInput, match=r"column 'tenure' of .* holds 'unknown' in row 53: the model expects double"):
        batch.score_file(job, predictor, features, chunk_rows=20)


def test_tensor_models_take_every_column_but_the_id(tmp_path: Path) -> None:
    matrix = np.arange(60, dtype=np.float64).reshape(20, 3)
    model = LinearRegression().fit(matrix, matrix @ [1.0, 2.0, 3.0])
    tensor = batch.Features.from_signature(signature.infer(matrix))
    assert tensor.width == 3
    data = pd.DataFrame(matrix, columns=["a", "b", "c"]).assign(key=range(100, 120))
    source = _write(data, tmp_path / "in.parquet")
    (tmp_path / "scored").mkdir()
    (job,) = batch.plan(source, tmp_path / "scored")
    assert job.target == tmp_path / "scored" / "in.parquet"
    with pytest.raises(InvalidInput, match="is the input file"):
        batch.plan(source, tmp_path)
    (job,) = batch.plan(source, tmp_path / "scored.csv")
    batch.score_file(job, SklearnPredictor(model), tensor, id_column="key")
    out = pd.read_csv(tmp_path / "scored.csv")
    assert out["key"].tolist() == list(range(100, 120))
    np.testing.assert_allclose(out["prediction"], model.predict(matrix))
    with pytest.raises(InvalidInput, match=r"has 4 feature columns \('a', 'b', 'c', 'key'\): the model expects 3"):
        batch.score_file(job, SklearnPredictor(model), tensor)
    with pytest.raises(InvalidInput, match="no id column 'ref'"):
        batch.score_file(job, SklearnPredictor(model), tensor, id_column="ref")


def test_rows_are_numbered_from_one_without_an_id_column(
    tmp_path: Path, frame: pd.DataFrame, predictor: Predictor, features: batch.Features
) -> None:
    source = _write(frame[:5], tmp_path / "in.jsonl")
    (job,) = batch.plan(source, tmp_path / "out.jsonl")
    batch.score_file(job, predictor, features)
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["row"] for r in rows] == [1, 2, 3, 4, 5]


def test_an_empty_input_gives_an_empty_output(tmp_path: Path, predictor: Predictor, features: batch.Features) -> None:
    source = tmp_path / "in.csv"
    source.write_text("id,tenure,spend,visits\n")
    (job,) = batch.plan(source, tmp_path / "out.csv")
    assert batch.score_file(job, predictor, features) == 0
    assert batch.count_rows(source, batch.CSV) == 0
    assert (tmp_path / "out.csv").read_text().splitlines()[0].startswith("id,prediction")


@pytest.mark.parametrize(
    ("source", "message"),
    [("missing.csv", "does not exist"), ("data.xlsx", "cannot tell the format"), ("empty-folder", "holds no")],
)
def test_unusable_inputs_are_refused_before_any_work(tmp_path: Path, source: str, message: str) -> None:
    (tmp_path / "data.xlsx").write_bytes(b"x")
    (tmp_path / "empty-folder").mkdir()
    with pytest.raises(InvalidInput, match=message):
        batch.plan(tmp_path / source, tmp_path / "out.csv")


def test_a_model_error_says_which_rows_failed(tmp_path: Path, frame: pd.DataFrame, features: batch.Features) -> None:
    class FailsOnSecondChunk(Predictor):
        kind = "test"
        calls = 0

        def predict_with_proba(self, rows: Any) -> tuple[list[Any], list[list[float]] | None]:
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError("out of memory")
            return [0] * len(rows), None

    source = _write(_input(frame), tmp_path / "in.csv")
    (job,) = batch.plan(source, tmp_path / "out.csv")
    with pytest.raises(InvalidInput, match=r"could not score rows 31-60 of .*RuntimeError: out of memory"):
        batch.score_file(job, FailsOnSecondChunk(), features, chunk_rows=30)
    assert not (tmp_path / "out.csv").exists()
