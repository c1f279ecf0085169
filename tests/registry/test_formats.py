from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np
import pytest
import skops.io
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from shipyard.errors import InvalidInput, UntrustedModel
from shipyard.registry import formats


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    features, labels = make_classification(n_samples=120, n_features=5, random_state=0)
    return features.astype(np.float32), labels


def _double(values: Any) -> Any:
    return values * 2


class MajorityClassifier(ClassifierMixin, BaseEstimator):
    """An estimator defined outside scikit-learn, so skops must not trust it."""

    def fit(self, features: Any, labels: Any) -> MajorityClassifier:
        self.label_ = int(np.bincount(labels).argmax())
        return self

    def predict(self, features: Any) -> Any:
        return np.full(len(features), self.label_)


def test_skops_round_trip_of_a_logistic_regression(data: tuple[np.ndarray, np.ndarray]) -> None:
    features, labels = data
    model = LogisticRegression(max_iter=200).fit(features, labels)
    blob, fmt = formats.dump_model(model)
    assert fmt == formats.SKLEARN
    loaded = formats.load_model(blob, fmt)
    assert isinstance(loaded, LogisticRegression)
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))
    np.testing.assert_allclose(loaded.predict_proba(features), model.predict_proba(features))


def test_skops_round_trip_of_a_random_forest_pipeline(data: tuple[np.ndarray, np.ndarray]) -> None:
    features, labels = data
    model = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=10, random_state=0)).fit(features, labels)
    loaded = formats.load_model(*formats.dump_model(model))
    assert isinstance(loaded, Pipeline)
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))
    np.testing.assert_allclose(loaded.predict_proba(features), model.predict_proba(features))


def test_a_custom_estimator_class_is_refused(data: tuple[np.ndarray, np.ndarray]) -> None:
    features, labels = data
    model = MajorityClassifier().fit(features, labels)
    blob, fmt = formats.dump_model(model)
    assert fmt == formats.SKLEARN
    with pytest.raises(UntrustedModel, match="MajorityClassifier"):
        formats.load_model(blob, fmt)


def test_a_custom_function_inside_a_pipeline_is_refused(data: tuple[np.ndarray, np.ndarray]) -> None:
    features, labels = data
    model = make_pipeline(FunctionTransformer(_double), LogisticRegression()).fit(features, labels)
    blob, fmt = formats.dump_model(model)
    with pytest.raises(UntrustedModel, match="_double"):
        formats.load_model(blob, fmt)


def test_trusted_types_come_from_shipyard_not_from_the_file(data: tuple[np.ndarray, np.ndarray]) -> None:
    features, labels = data
    blob, _ = formats.dump_model(MajorityClassifier().fit(features, labels))
    untrusted = skops.io.get_untrusted_types(data=blob)
    assert untrusted
    assert not set(untrusted) & set(formats.trusted_sklearn_types())
    trusted = formats.trusted_sklearn_types()
    assert "sklearn.linear_model._logistic.LogisticRegression" in trusted
    assert not any(name.startswith(("builtins.eval", "builtins.exec", "os.", "subprocess.")) for name in trusted)


def test_onnx_round_trip_predicts_the_same(data: tuple[np.ndarray, np.ndarray]) -> None:
    from skl2onnx import to_onnx

    features, labels = data
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=200)).fit(features, labels)
    proto = to_onnx(model, features[:1], options={"zipmap": False})
    blob, fmt = formats.dump_model(proto)
    assert fmt == formats.ONNX
    session = formats.load_model(blob, fmt)
    input_name = session.get_inputs()[0].name
    predicted, probabilities = session.run(None, {input_name: features})
    np.testing.assert_array_equal(predicted, model.predict(features))
    np.testing.assert_allclose(probabilities, model.predict_proba(features), rtol=1e-4, atol=1e-5)


def test_pickle_needs_trust_both_ways() -> None:
    model = {"weights": [1, 2, 3]}
    with pytest.raises(UntrustedModel, match="trust_pickle=True"):
        formats.dump_model(model, formats.PICKLE)
    blob, fmt = formats.dump_model(model, formats.PICKLE, trust_pickle=True)
    assert fmt == formats.PICKLE
    with pytest.raises(UntrustedModel, match="arbitrary code"):
        formats.load_model(blob, fmt)
    assert formats.load_model(blob, fmt, trust_pickle=True) == model
    assert pickle.loads(blob) == model  # noqa: S301 - the test's own bytes


def test_unknown_formats_and_objects_are_invalid() -> None:
    with pytest.raises(InvalidInput, match=r"cannot tell how to save a builtins\.dict"):
        formats.dump_model({"a": 1})
    with pytest.raises(InvalidInput, match="format 'joblib' is unknown"):
        formats.dump_model(LogisticRegression(), "joblib")
    with pytest.raises(InvalidInput, match="format 'joblib' is unknown"):
        formats.load_model(b"", "joblib")


def test_every_format_has_a_file_name() -> None:
    assert set(formats.FILE_NAMES) == set(formats.FORMATS)
    assert io.BytesIO(formats.dump_model(LogisticRegression())[0]).read(2) == b"PK"
