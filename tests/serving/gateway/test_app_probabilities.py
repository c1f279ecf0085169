"""Class probabilities in the prediction log: kept where the model call gave them anyway, never an extra call."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from starlette.testclient import TestClient

from shipyard.registry import onnx_export
from shipyard.serving.gateway import app as gateway_app
from shipyard.serving.gateway.app import create_app
from shipyard.serving.gateway.config import GatewayConfig
from shipyard.serving.gateway.prediction_log import PredictionLog, read
from tests.serving.gateway.fakes import FakeControlPlane

NS = "team-a"
MEMBER = "member-token"


@pytest.fixture
def control(control: FakeControlPlane, trained: tuple[Any, Any, Any]) -> FakeControlPlane:
    """Besides ``ep`` (scikit-learn, v1), endpoint ``fast`` serves v3 through its ONNX export."""
    x, first, _ = trained
    exported = onnx_export.export(first, x)
    assert exported.data is not None
    target = control.add_model(NS, "clf", 3, first, x)
    target["onnx_digest"] = hashlib.sha256(exported.data).hexdigest()
    control.files[(NS, "clf", 3, True)] = exported.data
    control.deploy(NS, "fast", [("clf", 3, 100)])
    control.add_token(MEMBER, "alice", {NS: "viewer"})
    return control


def open_gateway(control: FakeControlPlane, rate: float, log: PredictionLog) -> TestClient:
    app = create_app(control, GatewayConfig(prediction_log_rate=rate), poll=False, prediction_log=log)
    app.state.gateway.poller.poll_once()
    client = TestClient(app)
    client.headers["Authorization"] = f"Bearer {MEMBER}"
    return client


def logged(root: Path) -> dict[str, dict[str, Any]]:
    return {r["request_id"]: r for r in read(str(root)).to_pylist()}


def test_onnx_classifiers_log_their_probabilities(
    control: FakeControlPlane, trained: tuple[Any, Any, Any], tmp_path: Path
) -> None:
    x, first, _ = trained
    rows = x[:3].tolist()
    with open_gateway(control, 1.0, PredictionLog(str(tmp_path))) as client:
        fast = client.post(f"/v1/namespaces/{NS}/endpoints/fast:predict", json={"instances": rows}, headers={"X-Request-Id": "f"})
        plain = client.post(f"/v1/namespaces/{NS}/endpoints/ep:predict", json={"instances": rows}, headers={"X-Request-Id": "s"})
        assert fast.status_code == plain.status_code == 200
        assert fast.json()["predictions"] == first.predict(x[:3]).tolist()
    found = logged(tmp_path)
    probabilities = orjson.loads(found["f"]["probabilities"])
    np.testing.assert_allclose(probabilities, first.predict_proba(x[:3]), atol=1e-4)
    assert orjson.loads(found["f"]["outputs"]) == first.predict(x[:3]).tolist()
    # A scikit-learn model would need a second call (predict_proba) for them: its v1 answers log none.
    assert found["s"]["probabilities"] is None


def test_requests_not_logged_never_ask_for_probabilities(
    control: FakeControlPlane, trained: tuple[Any, Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[bool] = []
    run = gateway_app._run

    async def spy(served: Any, rows: Any, *, with_proba: bool) -> Any:
        asked.append(with_proba)
        return await run(served, rows, with_proba=with_proba)

    monkeypatch.setattr(gateway_app, "_run", spy)
    rows = trained[0][:2].tolist()
    for rate, expected in ((0.0, False), (1.0, True)):
        asked.clear()
        with open_gateway(control, rate, PredictionLog(str(tmp_path / str(rate)))) as client:
            for endpoint in ("fast", "ep"):
                assert (
                    client.post(f"/v1/namespaces/{NS}/endpoints/{endpoint}:predict", json={"instances": rows}).status_code == 200
                )
        assert asked == [expected, False], rate  # ONNX ("fast") only when logged; scikit-learn ("ep") never
