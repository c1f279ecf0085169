"""``shipyard models profile``, ``shipyard feedback``, ``shipyard quality`` and ``shipyard ab``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from shipyard.client import Client
from shipyard.runtime import Platform
from shipyard.serving.gateway.config import GatewayConfig
from shipyard.serving.gateway.prediction_log import PredictionLog, PredictionRecord
from tests.cli.conftest import Invoke, as_json

NS = "ml"


@pytest.fixture
def ml(shipyard: Invoke, client: Client) -> Invoke:
    """Namespace ml with model iris v1 (profiled) and v2 (not), served 50/50 by endpoint flowers."""
    client.create_namespace(NS)
    features, labels = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=500).fit(features, labels)
    client.register_model("iris", model, namespace=NS, training_data=features)
    client.register_model("iris", model, namespace=NS, training_data=features, profile=False)
    client.create_endpoint("flowers", namespace=NS)
    routes = [{"model": "iris", "version": 1, "weight": 50}, {"model": "iris", "version": 2, "weight": 50}]
    client.create_revision("flowers", routes, namespace=NS)
    return shipyard


def test_models_profile_shows_each_column(ml: Invoke) -> None:
    table = ml("models", "profile", "iris", "1", "-n", NS).output
    for word in ("sepal length (cm)", "prediction", "numeric", "missing rate", "median", "0.0%", "150 rows"):
        assert word in table
    profile = as_json(ml("models", "profile", "iris", "1", "-n", NS, "-o", "json"))
    assert profile["rows"] == 150
    assert "training_data=" in ml("models", "profile", "iris", "2", "-n", NS, code=1).output


def test_feedback_is_sent_one_at_a_time_or_from_a_file_and_listed(ml: Invoke, tmp_path: Path) -> None:
    assert "Recorded 1 label(s)" in ml("feedback", "send", "flowers", "r-1", "2", "-n", NS).output
    lines = tmp_path / "labels.jsonl"
    lines.write_text('{"request_id": "r-2", "label": "setosa"}\n\n{"request_id": "r-3", "label": [0, 1]}\n')
    assert as_json(ml("feedback", "send", "flowers", "--file", str(lines), "-n", NS, "-o", "json")) == {"accepted": 2}
    listed = as_json(ml("feedback", "list", "flowers", "-n", NS, "-o", "json"))
    assert {f["request_id"]: f["label"] for f in listed} == {"r-1": 2, "r-2": "setosa", "r-3": [0, 1]}
    assert "r-2" in ml("feedback", "list", "flowers", "-n", NS).output
    assert "is not a request id" in ml("feedback", "send", "flowers", "bad id", "1", "-n", NS, code=1).output
    assert "not both" in ml("feedback", "send", "flowers", "r-1", "1", "--file", str(lines), "-n", NS, code=2).output
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"request_id": "r-4", "label": 1}\nnot json\n')
    assert "broken.jsonl:2 is not JSON" in ml("feedback", "send", "flowers", "--file", str(broken), "-n", NS, code=1).output


def test_quality_and_ab_tables(ml: Invoke, platform: Platform) -> None:
    log = PredictionLog(GatewayConfig().resolved_prediction_log_url(platform.settings))
    rng = np.random.default_rng(1)
    labels = []
    start = int(time.time() * 1000) - 10_000
    for i in range(80):
        version = 1 + i % 2
        prediction = int(rng.integers(0, 3))
        right = rng.random() < (0.95 if version == 1 else 0.5)
        log.add(PredictionRecord(f"q-{i}", start + i, NS, "flowers", 1, "iris", version, "v1", 200, 1.0 + rng.random(),
                                 np.ones((1, 4)), [prediction]))  # fmt: skip
        labels.append({"request_id": f"q-{i}", "label": prediction if right else (prediction + 1) % 3})
    log.flush()
    items = Path(platform.settings.resolved_home()) / "labels.json"
    items.write_text(json.dumps(labels))
    ml("feedback", "send", "flowers", "-f", str(items), "-n", NS)

    table = ml("quality", "flowers", "--requests", "500", "-n", NS).output
    for word in ("Quality of flowers (iris)", "last 500 requests", "accuracy", "precision", "classification"):
        assert word in table
    found = as_json(ml("quality", "flowers", "--seconds", "3600", "-n", NS, "-o", "json"))
    assert [v["labelled"] for v in found["versions"]] == [40, 40]

    compared = ml("ab", "flowers", "-n", NS).output
    for word in ("version 2 (B) against version 1 (A)", "two-proportion z-test", "Welch's t-test", "95% CI", "p-value"):
        assert word in compared
    assert "version 2 is less accurate than version 1" in compared
    swapped = as_json(ml("ab", "flowers", "--a", "2", "--b", "1", "--alpha", "0.01", "-n", NS, "-o", "json"))
    assert (swapped["a"], swapped["b"], swapped["quality"]["alpha"]) == (2, 1, 0.01)
    assert swapped["quality"]["difference"] > 0
