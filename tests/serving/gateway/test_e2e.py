"""A real gateway process (2 workers) in front of a real control plane, over sockets.

Two versions of a logistic regression on breast_cancer (trained on opposite labels, so
their answers differ) are registered through the SDK, with their ONNX exports, and
deployed through the endpoint API; the gateway finds them by polling the desired state.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shipyard.client import Client
from shipyard.serving.gateway import prediction_log
from tests.conftest import free_port
from tests.serving.gateway.fakes import breast_cancer_models

pytestmark = pytest.mark.slow

NS = "team-a"
OTHER_NS = "team-b"
ENDPOINT = "clf"
START_DEADLINE_S = 60.0
SWITCH_DEADLINE_S = 30.0
ROWS = 3


@dataclass
class Served:
    url: str
    client: Client
    rows: list[list[float]]
    answers: dict[str, list[Any]]  # model version label -> predictions on ``rows``
    log: Path
    admin_token: str
    predictions: Path


@pytest.fixture
def served(client: Client, live_url: str, admin_token: str, tmp_path: Path) -> Iterator[Served]:
    x, first, second = breast_cancer_models()
    client.create_namespace(NS)
    for model in (first, second):
        version = client.register_model("bc", model, namespace=NS, training_data=x)
        assert version["onnx_digest"], "the gateway should serve these through their ONNX exports"
    client.create_endpoint(ENDPOINT, namespace=NS)
    client.create_revision(ENDPOINT, [{"model": "bc", "version": 1, "weight": 100}], namespace=NS)
    rows = x[:ROWS].tolist()
    answers = {"bc:1": first.predict(x[:ROWS]).tolist(), "bc:2": second.predict(x[:ROWS]).tolist()}
    assert answers["bc:1"] != answers["bc:2"]

    port = free_port()
    log = tmp_path / "gateway.log"
    env = {
        **os.environ,
        "SHIPYARD_URL": live_url,
        "SHIPYARD_TOKEN": admin_token,
        "SHIPYARD_GATEWAY_POLL_SECONDS": "0.2",
        "SHIPYARD_GATEWAY_PREDICTION_LOG_URL": str(tmp_path / "predictions"),
        "SHIPYARD_GATEWAY_PREDICTION_LOG_RATE": "1.0",
        "SHIPYARD_GATEWAY_PREDICTION_LOG_FLUSH_SECONDS": "0.2",
    }
    cli = [sys.executable, "-c", "from shipyard.cli.app import main; main()"]
    command = [*cli, "gateway", "--port", str(port), "--workers", "2"]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _status(f"{url}/v2/health/ready") == 200, START_DEADLINE_S, log)
        yield Served(url, client, rows, answers, log, admin_token, tmp_path / "predictions")
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:  # pragma: no cover - only when shutdown hangs
            process.kill()
            process.wait()


def _status(url: str, **kwargs: Any) -> int:
    try:
        return httpx.get(url, timeout=2, **kwargs).status_code
    except httpx.TransportError:
        return 0


def wait_for(check: Any, deadline_s: float, log: Path) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out; gateway log:\n{log.read_text(errors='replace')[-4000:]}")


def predict_url(served: Served) -> str:
    return f"{served.url}/v1/namespaces/{NS}/endpoints/{ENDPOINT}:predict"


def all_serve(http: httpx.Client, served: Served, revision: int, in_a_row: int = 40) -> bool:
    """Both workers have swapped once ``in_a_row`` answers in a row come from ``revision``."""
    for _ in range(in_a_row):
        response = http.post(predict_url(served), json={"instances": served.rows})
        if response.status_code != 200 or not response.json()["deployed_model_id"].endswith(f"@{revision}"):
            return False
    return True


@dataclass
class Stream:
    """Requests sent back to back from a thread; every outcome is kept."""

    served: Served
    outcomes: list[tuple[int, str, Any]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.served.admin_token}"}
        with httpx.Client(headers=headers, timeout=10) as http:
            while not self.stop.is_set():
                try:
                    response = http.post(predict_url(self.served), json={"instances": self.served.rows})
                except httpx.TransportError as exc:
                    self.outcomes.append((0, "", repr(exc)))
                    continue
                body = response.json()
                self.outcomes.append((response.status_code, response.headers["X-Model-Version"], body.get("predictions")))

    def seen_since(self, start: int, label: str) -> bool:
        return any(version == label for _, version, _ in self.outcomes[start:])


def test_swap_and_rollback_fail_no_request(served: Served) -> None:
    stream = Stream(served)
    thread = threading.Thread(target=stream.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: stream.seen_since(0, "bc:1"), SWITCH_DEADLINE_S, served.log)
        mark = len(stream.outcomes)
        served.client.create_revision(ENDPOINT, [{"model": "bc", "version": 2, "weight": 100}], namespace=NS)
        wait_for(lambda: stream.seen_since(mark, "bc:2"), SWITCH_DEADLINE_S, served.log)
        mark = len(stream.outcomes)
        served.client.rollback_endpoint(ENDPOINT, namespace=NS)
        wait_for(lambda: stream.seen_since(mark, "bc:1"), SWITCH_DEADLINE_S, served.log)
        time.sleep(0.5)  # keep streaming while the other worker settles too
    finally:
        stream.stop.set()
        thread.join(timeout=20)
    failures = [o for o in stream.outcomes if o[0] != 200]
    assert not failures, f"{len(failures)} of {len(stream.outcomes)} requests failed, e.g. {failures[:3]}"
    for _, version, predictions in stream.outcomes:
        assert predictions == served.answers[version], f"{version} answered {predictions}"
    counts = Counter(version for _, version, _ in stream.outcomes)
    assert set(counts) == {"bc:1", "bc:2"}


def test_traffic_split_90_10_over_2000_requests(served: Served) -> None:
    revision = served.client.create_revision(
        ENDPOINT, [{"model": "bc", "version": 1, "weight": 90}, {"model": "bc", "version": 2, "weight": 10}], namespace=NS
    )["revision"]
    headers = {"Authorization": f"Bearer {served.admin_token}"}
    with httpx.Client(headers=headers, timeout=10) as http:
        wait_for(lambda: all_serve(http, served, revision), SWITCH_DEADLINE_S, served.log)
        counts: Counter[str] = Counter()
        for _ in range(2000):
            response = http.post(predict_url(served), json={"instances": served.rows})
            assert response.status_code == 200
            counts[response.headers["X-Model-Version"]] += 1
    mean, sd = 2000 * 0.1, math.sqrt(2000 * 0.1 * 0.9)
    assert mean - 5 * sd <= counts["bc:2"] <= mean + 5 * sd, counts
    assert counts["bc:1"] + counts["bc:2"] == 2000


def protocol_calls(served: Served, endpoint: str = ENDPOINT) -> list[tuple[str, str, Any]]:
    tensor = {"inputs": [{"name": "input", "shape": [ROWS, 30], "datatype": "FP64", "data": np.ravel(served.rows).tolist()}]}
    return [
        ("POST", f"/v1/namespaces/{NS}/endpoints/{endpoint}:predict", {"instances": served.rows}),
        ("POST", f"/v1/models/{NS}.{endpoint}:predict", {"instances": served.rows}),
        ("POST", f"/v1/namespaces/{NS}/endpoints/{endpoint}/invocations", {"dataframe_split": {"data": served.rows}}),
        ("POST", f"/v2/models/{NS}.{endpoint}/infer", tensor),
        ("GET", f"/v2/models/{NS}.{endpoint}", None),
        ("GET", f"/v2/models/{NS}.{endpoint}/ready", None),
        ("GET", f"/v1/models/{NS}.{endpoint}", None),
    ]


def test_only_the_audience_gets_through_on_every_protocol(served: Served) -> None:
    client = served.client
    client.create_namespace(OTHER_NS)
    client.create_user("outsider")
    client.grant_role("admin", user="outsider", namespace=OTHER_NS)
    outsider = client.create_token(user="outsider", scopes=["read", "write"])["token"]
    client.create_service_account("app", namespace=NS)
    client.create_endpoint("other", namespace=NS)
    client.create_revision("other", [{"model": "bc", "version": 1, "weight": 100}], namespace=NS)
    wrong_scope = client.create_token(service_account="app", namespace=NS, scopes=["invoke:other"])["token"]
    right_scope = client.create_token(service_account="app", namespace=NS, scopes=[f"invoke:{ENDPOINT}"])["token"]

    refused = {"no token": None, "another namespace": outsider, "another endpoint": wrong_scope}
    with httpx.Client(base_url=served.url, timeout=10) as http:
        for method, path, body in protocol_calls(served):
            allowed = http.request(method, path, json=body, headers={"Authorization": f"Bearer {right_scope}"})
            assert allowed.status_code == 200, (path, allowed.text)
            for who, token in refused.items():
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                response = http.request(method, path, json=body, headers=headers)
                assert response.status_code in (401, 403, 404), (who, path, response.status_code, response.text)
                assert set(response.json()) == {"error", "message"}
                assert response.headers["X-Request-Id"]


def test_unmodified_tritonclient(served: Served) -> None:
    http = pytest.importorskip("tritonclient.http", reason="tritonclient[http] is not installed (it is in the dev extras)")
    triton = http.InferenceServerClient(url=served.url.removeprefix("http://"))
    headers = {"Authorization": f"Bearer {served.admin_token}"}
    name = f"{NS}.{ENDPOINT}"
    assert triton.is_server_live()
    assert triton.is_server_ready()
    assert triton.is_model_ready(name, headers=headers)
    metadata = triton.get_model_metadata(name, headers=headers)
    assert metadata["inputs"][0]["shape"] == [-1, 30]
    rows = np.array(served.rows, dtype=np.float64)
    for binary in (True, False):
        tensor = http.InferInput("input", list(rows.shape), "FP64")
        tensor.set_data_from_numpy(rows, binary_data=binary)
        outputs = [http.InferRequestedOutput("predict", binary_data=binary), http.InferRequestedOutput("probabilities")]
        # A fresh dict each call: tritonclient writes its Inference-Header-Content-Length into the one it is given.
        result = triton.infer(name, [tensor], outputs=outputs, headers=dict(headers), request_id="t-1")
        assert result.as_numpy("predict").tolist() == served.answers["bc:1"]
        assert result.as_numpy("probabilities").shape == (ROWS, 2)
    default = triton.infer(name, [tensor], headers=dict(headers))  # no outputs named: all of them, in binary
    assert default.as_numpy("predict").tolist() == served.answers["bc:1"]
    bad = http.InferInput("input", [1, 29], "FP64")
    bad.set_data_from_numpy(np.zeros((1, 29)))
    with pytest.raises(Exception, match="invalid_input"):
        triton.infer(name, [bad], headers=dict(headers))


def test_metrics_and_prediction_log_cover_every_worker(served: Served) -> None:
    """Requests spread over both workers; every scrape, whichever worker answers it, counts all of them."""
    sent = 60
    admin = {"Authorization": f"Bearer {served.admin_token}"}
    request_ids = set()
    for i in range(sent):
        # A new connection each time, so the kernel hands requests to both workers.
        response = httpx.post(predict_url(served), json={"instances": served.rows}, headers={**admin, "X-Request-Id": f"r-{i}"})
        assert response.status_code == 200
        request_ids.add(response.headers["X-Request-Id"])
    for _ in range(6):
        text = httpx.get(f"{served.url}/metrics", headers=admin, timeout=10).text
        assert answered(text) == sent, text[:2000]
    assert httpx.get(f"{served.url}/metrics", timeout=10).status_code == 401

    def all_logged() -> bool:
        return prediction_log.read(str(served.predictions)).num_rows >= sent

    wait_for(all_logged, SWITCH_DEADLINE_S, served.log)
    table = prediction_log.read(str(served.predictions), namespace=NS, endpoint=ENDPOINT)
    assert set(table.column("request_id").to_pylist()) == request_ids
    assert set(table.column("status").to_pylist()) == {200}


def answered(metrics_text: str) -> float:
    """The endpoint's ``shipyard_gateway_requests_total``, summed over its label sets."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.name == "shipyard_gateway_requests_total" and sample.labels.get("endpoint") == ENDPOINT
    )
