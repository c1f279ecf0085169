"""Predictors over ONNX sessions and scikit-learn models give the same answers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from shipyard.errors import InvalidInput
from shipyard.registry import formats, onnx_export
from shipyard.registry.predictor import OnnxPredictor, SklearnPredictor


@pytest.fixture(scope="module")
def iris() -> tuple[pd.DataFrame, np.ndarray]:
    features, labels = load_iris(return_X_y=True, as_frame=True)
    names = np.array(["setosa", "versicolor", "virginica"])
    return features, names[labels.to_numpy()]


@pytest.fixture(scope="module")
def classifier(iris: tuple[pd.DataFrame, np.ndarray]) -> Any:
    features, labels = iris
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(features, labels)


def _exported(model: Any, features: Any) -> bytes:
    result = onnx_export.export(model, features)
    assert result.data is not None, result.skipped
    return result.data


def test_onnx_is_preferred_when_present_and_agrees_with_the_model(classifier: Any, iris: tuple[pd.DataFrame, np.ndarray]) -> None:
    features, _ = iris
    main, fmt = formats.dump_model(classifier)
    rows = features.to_numpy()
    fast = formats.load_for_serving(main, fmt, _exported(classifier, features))
    plain = formats.load_for_serving(main, fmt)
    assert (fast.kind, plain.kind) == ("onnx", "sklearn")
    assert isinstance(fast, OnnxPredictor)
    assert isinstance(plain, SklearnPredictor)
    assert fast.predict(rows) == plain.predict(rows) == classifier.predict(features).tolist()
    np.testing.assert_allclose(fast.predict_proba(rows), plain.predict_proba(rows), atol=1e-4)
    assert fast.classes == plain.classes == ["setosa", "versicolor", "virginica"]
    assert fast.has_proba
    assert plain.has_proba


def test_predictions_are_plain_python_values(classifier: Any, iris: tuple[pd.DataFrame, np.ndarray]) -> None:
    features, _ = iris
    predictor = formats.load_for_serving(b"", formats.SKLEARN, _exported(classifier, features))
    labels, probabilities = predictor.predict_with_proba(features.to_numpy()[:3])
    assert all(isinstance(label, str) for label in labels)
    assert probabilities is not None
    assert all(isinstance(p, float) for row in probabilities for p in row)


def test_an_onnx_main_artifact_is_served_through_onnxruntime(classifier: Any, iris: tuple[pd.DataFrame, np.ndarray]) -> None:
    features, _ = iris
    predictor = formats.load_for_serving(_exported(classifier, features), formats.ONNX)
    assert predictor.kind == "onnx"
    assert predictor.predict(features.to_numpy()) == classifier.predict(features).tolist()


def test_models_without_probabilities_say_so() -> None:
    features = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 3.0]])
    regression = LinearRegression().fit(features, features.sum(axis=1))
    predictor = formats.load_for_serving(*formats.dump_model(regression))
    np.testing.assert_allclose(predictor.predict(features), features.sum(axis=1))
    assert not predictor.has_proba
    with pytest.raises(InvalidInput, match="no class probabilities"):
        predictor.predict_proba(features)
    svc = SklearnPredictor(SVC().fit(features, [0, 1, 0, 1]))
    assert not svc.has_proba
    assert svc.predict_with_proba(features)[1] is None


def test_rows_must_be_two_dimensional(classifier: Any, iris: tuple[pd.DataFrame, np.ndarray]) -> None:
    features, _ = iris
    for predictor in (
        SklearnPredictor(classifier),
        formats.load_for_serving(b"", formats.SKLEARN, _exported(classifier, features)),
    ):
        with pytest.raises(InvalidInput, match="2-D"):
            predictor.predict(np.zeros(4))


def test_text_rows_are_refused_by_a_numeric_onnx_model(classifier: Any, iris: tuple[pd.DataFrame, np.ndarray]) -> None:
    features, _ = iris
    predictor = formats.load_for_serving(b"", formats.SKLEARN, _exported(classifier, features))
    with pytest.raises(InvalidInput, match="float32"):
        predictor.predict(np.array([["a", "b", "c", "d"]], dtype=object))


def test_a_model_fitted_on_a_frame_gets_its_column_names_back(iris: tuple[pd.DataFrame, np.ndarray]) -> None:
    features, labels = iris
    model = LogisticRegression(max_iter=1000).fit(features, labels)
    predictor = SklearnPredictor(model)
    with_names = predictor.predict(features.to_numpy())
    assert with_names == model.predict(features).tolist()
