"""ONNX exports made at registration: kept when faithful, skipped with a reason otherwise."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.base import BaseEstimator
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import NearestCentroid
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from shipyard.client import Client
from shipyard.registry import onnx_export
from shipyard.registry.predictor import OnnxPredictor

ESTIMATORS = {
    "logistic-regression": lambda: LogisticRegression(max_iter=5000),
    "random-forest": lambda: RandomForestClassifier(n_estimators=25, random_state=0),
    "scaled-pipeline": lambda: make_pipeline(StandardScaler(), LogisticRegression()),
}


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, np.ndarray]:
    features, labels = load_breast_cancer(return_X_y=True, as_frame=True)
    return features, labels.to_numpy()


@pytest.fixture(scope="module")
def fitted(cancer: tuple[pd.DataFrame, np.ndarray]) -> dict[str, Any]:
    features, labels = cancer
    return {name: make().fit(features, labels) for name, make in ESTIMATORS.items()}


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_a_registered_classifier_keeps_a_faithful_onnx_export(
    client: Client, cancer: tuple[pd.DataFrame, np.ndarray], fitted: dict[str, Any], name: str
) -> None:
    features, _ = cancer
    model = fitted[name]
    version = client.register_model(name, model, training_data=features)
    assert version["onnx_digest"] is not None
    assert version["onnx_digest"] != version["artifact_digest"]
    assert version["onnx_size"] > 0
    assert version["format"] == "sklearn"
    assert "onnx.skipped" not in version["tags"]

    predictor = client.load_predictor(name, version["version"])
    assert isinstance(predictor, OnnxPredictor)
    labels, probabilities = predictor.predict_with_proba(features.to_numpy())
    np.testing.assert_array_equal(labels, model.predict(features))
    assert probabilities is not None
    np.testing.assert_allclose(probabilities, model.predict_proba(features), atol=1e-4)
    assert predictor.classes == [0, 1]
    # The main artifact is still the scikit-learn model itself.
    assert type(client.load_model(name, version["version"])) is type(model)


def test_an_estimator_without_a_converter_is_registered_without_onnx(
    client: Client, admin_api: TestClient, cancer: tuple[pd.DataFrame, np.ndarray]
) -> None:
    features, labels = cancer
    model = NearestCentroid().fit(features, labels)
    version = client.register_model("centroid", model, training_data=features, tags={"team": "risk"})
    assert version["onnx_digest"] is None
    assert version["tags"]["team"] == "risk"
    assert "NearestCentroid" in version["tags"]["onnx.skipped"]
    url = f"/api/v1/namespaces/default/models/centroid/versions/{version['version']}/artifact"
    missing = admin_api.get(url, params={"variant": "onnx"})
    assert missing.status_code == 404
    assert "no ONNX export" in missing.json()["message"]
    assert admin_api.get(url).status_code == 200
    loaded = client.load_predictor("centroid", version["version"])
    assert loaded.kind == "sklearn"
    assert loaded.predict(features.to_numpy()) == model.predict(features).tolist()


def test_exports_that_disagree_with_the_model_are_not_kept(
    client: Client, cancer: tuple[pd.DataFrame, np.ndarray], fitted: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    features, _ = cancer
    # No tolerance can be met, so the comparison must reject the export.
    monkeypatch.setattr(onnx_export, "PROBABILITY_TOLERANCE", -1.0)
    version = client.register_model("strict", fitted["logistic-regression"], training_data=features)
    assert version["onnx_digest"] is None
    assert "probabilities differ" in version["tags"]["onnx.skipped"]


def test_no_export_without_training_data_or_when_turned_off(
    client: Client, cancer: tuple[pd.DataFrame, np.ndarray], fitted: dict[str, Any]
) -> None:
    features, _ = cancer
    model = fitted["logistic-regression"]
    assert client.register_model("bare", model)["onnx_digest"] is None
    off = client.register_model("off", model, training_data=features, onnx=False)
    assert off["onnx_digest"] is None
    assert "onnx.skipped" not in off["tags"]


def test_text_features_are_skipped_with_the_column_named() -> None:
    frame = pd.DataFrame({"plan": ["a", "b", "a", "b"], "spend": [1.0, 2.0, 3.0, 4.0]})
    result = onnx_export.export(LogisticRegression(), frame)
    assert result.data is None
    assert "'plan'" in result.skipped


def test_regressors_export_and_match(cancer: tuple[pd.DataFrame, np.ndarray]) -> None:
    features, labels = cancer
    model = RandomForestRegressor(n_estimators=10, random_state=0).fit(features, labels)
    result = onnx_export.export(model, features)
    assert result.data is not None, result.skipped
    from shipyard.registry import formats

    predictor = formats.load_for_serving(b"", formats.SKLEARN, result.data)
    np.testing.assert_allclose(predictor.predict(features.to_numpy()), model.predict(features), atol=1e-4)
    assert not predictor.has_proba


def test_conversion_errors_become_a_reason_not_an_exception(cancer: tuple[pd.DataFrame, np.ndarray]) -> None:
    class Unknown(BaseEstimator):
        def fit(self, features: Any, labels: Any) -> Unknown:
            return self

        def predict(self, features: Any) -> Any:
            return np.zeros(len(features))

    features, labels = cancer
    result = onnx_export.export(Unknown().fit(features, labels), features)
    assert result.data is None
    assert result.skipped.startswith("conversion failed")
