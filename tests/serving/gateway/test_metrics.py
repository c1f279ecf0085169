"""Gateway observability in-process: Prometheus counts, who may scrape, and the sampled prediction log."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from shipyard.serving.gateway.app import create_app
from shipyard.serving.gateway.config import GatewayConfig
from shipyard.serving.gateway.prediction_log import PredictionLog, read
from tests.serving.gateway.fakes import FakeControlPlane

NS = "team-a"
MEMBER = "member-token"
ADMIN = "admin-token"
PREDICT = f"/v1/namespaces/{NS}/endpoints/ep:predict"


@pytest.fixture
def control(control: FakeControlPlane) -> FakeControlPlane:
    control.add_token(MEMBER, "alice", {NS: "viewer"})
    control.add_token(ADMIN, "root", {"*": "platform-admin"})
    return control


def open_gateway(control: FakeControlPlane, config: GatewayConfig, log: PredictionLog | None = None) -> TestClient:
    app = create_app(control, config, poll=False, prediction_log=log)
    app.state.gateway.poller.poll_once()
    client = TestClient(app)
    client.headers["Authorization"] = f"Bearer {MEMBER}"
    return client


@pytest.fixture
def gateway(control: FakeControlPlane) -> Iterator[TestClient]:
    with open_gateway(control, GatewayConfig()) as client:
        yield client


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample called ``name``, keyed by its sorted labels."""
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def scrape(client: TestClient) -> str:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def rows(trained: tuple[Any, Any, Any], count: int = 1) -> list[list[float]]:
    values: list[list[float]] = trained[0][:count].tolist()
    return values


def test_requests_errors_and_latency_are_counted_per_endpoint_version_and_protocol(
    gateway: TestClient, trained: tuple[Any, Any, Any]
) -> None:
    for _ in range(3):
        assert gateway.post(PREDICT, json={"instances": rows(trained)}).status_code == 200
    assert gateway.post(f"/v1/namespaces/{NS}/endpoints/ep/invocations", json={"inputs": rows(trained)}).status_code == 200
    assert gateway.post(PREDICT, json={"instances": [[1.0, 2.0]]}).status_code == 400
    text = scrape(gateway)

    where = {"namespace": NS, "endpoint": "ep", "version": "clf:1"}
    requests = samples(text, "shipyard_gateway_requests_total")
    assert requests[tuple(sorted({**where, "protocol": "v1", "code": "200"}.items()))] == 3
    assert requests[tuple(sorted({**where, "protocol": "mlflow", "code": "200"}.items()))] == 1
    assert requests[tuple(sorted({**where, "protocol": "v1", "code": "400"}.items()))] == 1
    errors = samples(text, "shipyard_gateway_request_errors_total")
    assert errors == {tuple(sorted({**where, "protocol": "v1", "error": "invalid_input"}.items())): 1}
    latency = samples(text, "shipyard_gateway_request_duration_seconds_count")
    assert latency[tuple(sorted({**where, "protocol": "v1"}.items()))] == 4
    assert samples(text, "shipyard_gateway_requests_in_flight") == {(): 0}
    loads = samples(text, "shipyard_gateway_model_load_seconds_count")
    assert loads == {(("model", "clf"), ("namespace", NS), ("version", "1")): 1}
    assert samples(text, "shipyard_gateway_batch_requests_count")[()] == 4


def test_made_up_endpoints_do_not_become_label_values(gateway: TestClient) -> None:
    for name in ("nope-1", "nope-2"):
        assert gateway.post(f"/v1/namespaces/{NS}/endpoints/{name}:predict", json={"instances": [[1.0]]}).status_code == 404
    text = scrape(gateway)
    assert "nope-" not in text
    errors = samples(text, "shipyard_gateway_request_errors_total")
    unknown = {"namespace": "", "endpoint": "", "version": "", "protocol": "v1", "error": "not_found"}
    assert errors[tuple(sorted(unknown.items()))] == 2


def test_metrics_need_a_platform_admin_token(gateway: TestClient) -> None:
    assert gateway.get("/metrics", headers={"Authorization": ""}).status_code == 401
    assert gateway.get("/metrics").status_code == 403  # a namespace member
    assert "shipyard_gateway_requests" in scrape(gateway)


def test_metrics_can_be_made_public_for_a_trusted_scraper(control: FakeControlPlane) -> None:
    with open_gateway(control, GatewayConfig(metrics_public=True)) as client:
        assert client.get("/metrics", headers={"Authorization": ""}).status_code == 200


def test_counts_from_several_worker_processes_add_up(tmp_path: Path) -> None:
    """Each worker writes its own files; one scrape reads them all (as uvicorn's workers do)."""
    bump = textwrap.dedent(
        """
        import sys
        from shipyard.serving.gateway.metrics import GatewayMetrics
        series = GatewayMetrics().series("team-a", "ep", "clf:1", "v1")
        for _ in range(int(sys.argv[1])):
            series.ok.inc()
            series.latency.observe(0.001)
        """
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for count in (7, 5):
        subprocess.run([sys.executable, "-c", bump, str(count)], env=env, check=True, timeout=60)
    render = "from shipyard.serving.gateway.metrics import GatewayMetrics; print(GatewayMetrics().render().decode())"
    text = subprocess.run([sys.executable, "-c", render], env=env, check=True, timeout=60, capture_output=True, text=True).stdout
    labels = {"namespace": "team-a", "endpoint": "ep", "version": "clf:1", "protocol": "v1"}
    assert samples(text, "shipyard_gateway_requests_total")[tuple(sorted({**labels, "code": "200"}.items()))] == 12
    assert samples(text, "shipyard_gateway_request_duration_seconds_count")[tuple(sorted(labels.items()))] == 12


def test_every_request_is_logged_at_rate_one_with_its_request_id(
    control: FakeControlPlane, trained: tuple[Any, Any, Any], tmp_path: Path
) -> None:
    log = PredictionLog(str(tmp_path))
    with open_gateway(control, GatewayConfig(prediction_log_rate=1.0), log) as client:
        ids = [client.post(PREDICT, json={"instances": rows(trained, 2)}).headers["X-Request-Id"] for _ in range(4)]
        bad = client.post(PREDICT, json={"instances": [["x"] * 30]})
        assert bad.status_code == 400
    # Leaving the client ran the app's shutdown, which writes what is left.
    table = read(str(tmp_path)).to_pylist()
    by_id = {r["request_id"]: r for r in table}
    assert set(by_id) == {*ids, bad.headers["X-Request-Id"]}
    good = by_id[ids[0]]
    assert good["status"] == 200
    assert good["model"] == "clf"
    assert good["version"] == 1
    assert good["protocol"] == "v1"
    assert good["inputs"] == rows(trained, 2)
    assert good["latency_ms"] > 0
    assert by_id[bad.headers["X-Request-Id"]]["status"] == 400
    assert by_id[bad.headers["X-Request-Id"]]["error"]


def test_the_sample_rate_is_honoured(control: FakeControlPlane, trained: tuple[Any, Any, Any], tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path))
    with open_gateway(control, GatewayConfig(prediction_log_rate=0.25), log) as client:
        for _ in range(400):
            assert client.post(PREDICT, json={"instances": rows(trained)}).status_code == 200
    logged = read(str(tmp_path)).num_rows
    # Binomial(400, 0.25): mean 100, standard deviation about 8.7; six of them either side.
    assert 48 <= logged <= 152, logged


def test_nothing_is_logged_without_a_log(gateway: TestClient, trained: tuple[Any, Any, Any]) -> None:
    assert gateway.app.state.gateway.log_rate == 0  # type: ignore[attr-defined]
    assert gateway.post(PREDICT, json={"instances": rows(trained)}).status_code == 200
