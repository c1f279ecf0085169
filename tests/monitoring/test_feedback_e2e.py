"""Ground truth joined to real traffic: the control plane and a real ``shipyard gateway`` process, over sockets.

Two versions of a logistic regression on breast_cancer (trained on opposite labels) serve one
endpoint 50/50 through their ONNX exports; every request is logged. Labels are posted for the
X-Request-Id of each answer, one by one and in bulk, and the per-version quality the API
reports must equal scikit-learn's on the same rows, computed here from the answers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn import metrics

from shipyard.client import Client
from shipyard.serving.gateway import prediction_log
from tests.conftest import free_port
from tests.serving.gateway.fakes import breast_cancer_models

pytestmark = pytest.mark.slow

NS = "team-a"
ENDPOINT = "clf"
DEADLINE_S = 60.0
REQUESTS = 40


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """One back end: this test starts a gateway process, and the feedback store is tested on both elsewhere."""
    return f"sqlite:///{tmp_path / 'shipyard.db'}"


def wait_for(check: Any, log: Path) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out; gateway log:\n{log.read_text(errors='replace')[-4000:]}")


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def gateway(
    client: Client, live_url: str, admin_token: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, Path]]:
    predictions = tmp_path / "predictions"
    # The control plane reads the log where the gateway writes it.
    monkeypatch.setenv("SHIPYARD_GATEWAY_PREDICTION_LOG_URL", str(predictions))
    x, first, second = breast_cancer_models()
    client.create_namespace(NS)
    for model in (first, second):
        assert client.register_model("bc", model, namespace=NS, training_data=x)["onnx_digest"]
    client.create_endpoint(ENDPOINT, namespace=NS)
    routes = [{"model": "bc", "version": 1, "weight": 50}, {"model": "bc", "version": 2, "weight": 50}]
    client.create_revision(ENDPOINT, routes, namespace=NS)
    port = free_port()
    log = tmp_path / "gateway.log"
    env = {
        **os.environ,
        "SHIPYARD_URL": live_url,
        "SHIPYARD_TOKEN": admin_token,
        "SHIPYARD_GATEWAY_POLL_SECONDS": "0.2",
        "SHIPYARD_GATEWAY_PREDICTION_LOG_RATE": "1.0",
        "SHIPYARD_GATEWAY_PREDICTION_LOG_FLUSH_SECONDS": "0.2",
    }
    command = [
        sys.executable,
        "-c",
        "from shipyard.cli.app import main; main()",
        "gateway",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: ready(url), log)
        yield url, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:  # pragma: no cover - only when shutdown hangs
            process.kill()
            process.wait()


def test_labels_for_answered_requests_give_each_version_sklearns_metrics(
    client: Client, gateway: tuple[str, Path], admin_token: str
) -> None:
    url, log = gateway
    x, y = breast_cancer_models()[0], _labels()
    # The probabilities the served ONNX exports give (float32), from the registry rather than the gateway.
    served = {v: client.load_predictor("bc", v, namespace=NS) for v in (1, 2)}
    answered: dict[int, dict[str, list[Any]]] = {1: {"y": [], "pred": [], "proba": []}, 2: {"y": [], "pred": [], "proba": []}}
    labels = []
    start = 0
    with httpx.Client(headers={"Authorization": f"Bearer {admin_token}"}, timeout=10) as http:
        for i in range(REQUESTS):
            count = 1 + i % 3
            rows = slice(start, start + count)
            start += count
            response = http.post(
                f"{url}/v1/namespaces/{NS}/endpoints/{ENDPOINT}:predict",
                json={"instances": x[rows].tolist()},
                headers={"X-Request-Id": f"e2e-{i}"},
            )
            assert response.status_code == 200, response.text
            request_id = response.headers["X-Request-Id"]
            version = int(response.headers["X-Model-Version"].split(":")[1])
            answered[version]["y"].extend(y[rows].tolist())
            answered[version]["pred"].extend(response.json()["predictions"])
            answered[version]["proba"].extend(served[version].predict_proba(x[rows]))
            labels.append({"request_id": request_id, "label": y[rows].tolist() if count > 1 else int(y[rows][0])})
    assert all(len(v["y"]) > 5 for v in answered.values()), "the 50/50 split should send both versions traffic"

    for item in labels[:5]:
        assert client.log_feedback(ENDPOINT, item["request_id"], item["label"], namespace=NS) == {"accepted": 1}
    assert client.log_feedback_batch(ENDPOINT, labels[5:], namespace=NS) == {"accepted": REQUESTS - 5}
    wait_for(lambda: prediction_log.read(os.environ["SHIPYARD_GATEWAY_PREDICTION_LOG_URL"]).num_rows >= REQUESTS, log)

    quality = client.endpoint_quality(ENDPOINT, requests=1000, namespace=NS)
    assert (quality["model"], quality["requests"], quality["labelled"]) == ("bc", REQUESTS, start)
    for found in quality["versions"]:
        expected = answered[found["version"]]
        truth, predicted, probabilities = expected["y"], expected["pred"], np.array(expected["proba"])
        probabilities /= probabilities.sum(axis=1, keepdims=True)  # float32 rows sum to 1 only nearly
        assert (found["task"], found["labelled"]) == ("classification", len(truth))
        got = found["metrics"]
        assert got["accuracy"] == pytest.approx(metrics.accuracy_score(truth, predicted))
        assert got["precision"] == pytest.approx(metrics.precision_score(truth, predicted, zero_division=0))
        assert got["recall"] == pytest.approx(metrics.recall_score(truth, predicted, zero_division=0))
        assert got["with_probabilities"] == len(truth)  # ONNX answers log their probabilities
        assert got["log_loss"] == pytest.approx(metrics.log_loss(truth, probabilities, labels=[0, 1]), rel=1e-6)
        if len(set(truth)) == 2:
            assert got["roc_auc"] == pytest.approx(metrics.roc_auc_score(truth, probabilities[:, 1]), abs=1e-6)

    compared = client.endpoint_ab(ENDPOINT, namespace=NS)
    assert {compared["a"], compared["b"]} == {1, 2}
    assert compared["quality"]["significant"] is True  # version 2 learnt the opposite labels
    assert compared["latency"]["n_a"] + compared["latency"]["n_b"] == REQUESTS


def _labels() -> np.ndarray[Any, Any]:
    from sklearn.datasets import load_breast_cancer

    return np.asarray(load_breast_cancer(return_X_y=True)[1])
