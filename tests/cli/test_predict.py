"""``shipyard predict-batch`` against a live server."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import NearestCentroid
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from shipyard.client import Client

from .conftest import Invoke, as_json

MODEL = "cancer"


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, np.ndarray]:
    features, labels = load_breast_cancer(return_X_y=True, as_frame=True)
    return features, labels.to_numpy()


@pytest.fixture
def scoring(cancer: tuple[pd.DataFrame, np.ndarray]) -> pd.DataFrame:
    """The features in reverse column order, with string ids that must come back unchanged."""
    features, _ = cancer
    return features[features.columns[::-1]].assign(id=[f"p-{n:05d}" for n in range(len(features))])


@pytest.fixture
def model(client: Client, cancer: tuple[pd.DataFrame, np.ndarray]) -> Pipeline:
    features, labels = cancer
    fitted = make_pipeline(StandardScaler(), LogisticRegression()).fit(features, labels)
    version = client.register_model(MODEL, fitted, training_data=features)
    assert version["onnx_digest"] is not None
    client.set_alias(MODEL, "production", version["version"])
    return fitted


def _check(out: pd.DataFrame, model: Pipeline, scoring: pd.DataFrame, cancer: tuple[pd.DataFrame, np.ndarray]) -> None:
    features, _ = cancer
    assert list(out.columns) == ["id", "prediction", "prob_0", "prob_1"]
    assert out["id"].tolist() == scoring["id"].tolist()
    assert out["prediction"].tolist() == model.predict(features).tolist()
    np.testing.assert_allclose(out[["prob_0", "prob_1"]].to_numpy(), model.predict_proba(features), atol=1e-4)


def test_csv_in_csv_out_by_alias(
    shipyard: Invoke, tmp_path: Path, model: Pipeline, scoring: pd.DataFrame, cancer: tuple[pd.DataFrame, np.ndarray]
) -> None:
    scoring.to_csv(tmp_path / "in.csv", index=False)
    result = shipyard("predict-batch", MODEL, "--alias", "production", str(tmp_path / "in.csv"), str(tmp_path / "out.csv"))
    assert f"Scored {len(scoring)} rows" in result.stdout
    assert "(onnx)" in result.stdout
    _check(pd.read_csv(tmp_path / "out.csv", dtype={"id": str}), model, scoring, cancer)


def test_parquet_to_jsonl_by_version_as_json(
    shipyard: Invoke, tmp_path: Path, model: Pipeline, scoring: pd.DataFrame, cancer: tuple[pd.DataFrame, np.ndarray]
) -> None:
    scoring.to_parquet(tmp_path / "in.parquet", index=False)
    target = tmp_path / "out.jsonl"
    result = shipyard(
        "predict-batch", MODEL, "--version", "1", str(tmp_path / "in.parquet"), str(target), "--chunk-rows", "100", "-o", "json"
    )
    summary = as_json(result)
    assert (summary["version"], summary["rows"], summary["engine"]) == (1, len(scoring), "onnx")
    assert summary["files"] == [str(target)]
    _check(pd.read_json(target, lines=True, dtype=False), model, scoring, cancer)


def test_a_folder_of_mixed_files_gives_a_folder_of_parquet(
    shipyard: Invoke, tmp_path: Path, model: Pipeline, scoring: pd.DataFrame, cancer: tuple[pd.DataFrame, np.ndarray]
) -> None:
    source = tmp_path / "in"
    (source / "later").mkdir(parents=True)
    scoring[:200].to_json(source / "first.jsonl", orient="records", lines=True)
    scoring[200:].to_csv(source / "later" / "rest.csv", index=False)
    shipyard("predict-batch", MODEL, "--version", "1", str(source), str(tmp_path / "out"), "--format", "parquet")
    first = pd.read_parquet(tmp_path / "out" / "first.parquet")
    rest = pd.read_parquet(tmp_path / "out" / "later" / "rest.parquet")
    _check(pd.concat([first, rest], ignore_index=True), model, scoring, cancer)


def test_a_missing_column_is_named(shipyard: Invoke, tmp_path: Path, model: Pipeline, scoring: pd.DataFrame) -> None:
    scoring.drop(columns=["worst area"]).to_csv(tmp_path / "in.csv", index=False)
    result = shipyard("predict-batch", MODEL, "--version", "1", str(tmp_path / "in.csv"), str(tmp_path / "out.csv"), code=1)
    assert "no column 'worst area'" in result.output
    assert "the model expects the columns 'mean radius'" in result.output
    assert not (tmp_path / "out.csv").exists()


def test_a_version_or_an_alias_but_not_both(shipyard: Invoke, tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("id,x\n1,2\n")
    for flags in ((), ("--version", "1", "--alias", "production")):
        result = shipyard("predict-batch", MODEL, *flags, str(tmp_path / "in.csv"), str(tmp_path / "out.csv"), code=2)
        assert "--version N or --alias NAME" in result.output


def test_an_unknown_model_exits_1(shipyard: Invoke, tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("id,x\n1,2\n")
    result = shipyard("predict-batch", "ghost", "--version", "1", str(tmp_path / "in.csv"), str(tmp_path / "out.csv"), code=1)
    assert "'ghost'" in result.output


def test_models_without_onnx_are_scored_by_scikit_learn(
    shipyard: Invoke, client: Client, tmp_path: Path, cancer: tuple[pd.DataFrame, np.ndarray], scoring: pd.DataFrame
) -> None:
    features, labels = cancer
    centroid = NearestCentroid().fit(features, labels)
    client.register_model("centroid", centroid, training_data=features)
    scoring.to_csv(tmp_path / "in.csv", index=False)
    summary = as_json(
        shipyard("predict-batch", "centroid", "--version", "1", str(tmp_path / "in.csv"), str(tmp_path / "out.csv"), "-o", "json")
    )
    assert summary["engine"] == "sklearn"
    out = pd.read_csv(tmp_path / "out.csv", dtype={"id": str})
    assert out["id"].tolist() == scoring["id"].tolist()
    assert out["prediction"].tolist() == centroid.predict(features).tolist()
