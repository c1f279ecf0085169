"""The gateway app in-process against an in-memory control plane: routes, headers, errors."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from starlette.testclient import TestClient

from shipyard.serving.gateway.app import create_app
from shipyard.serving.gateway.config import GatewayConfig
from tests.serving.gateway.fakes import FakeControlPlane

NS = "team-a"
MEMBER = "member-token"
STRANGER = "stranger-token"


@pytest.fixture
def control(control: FakeControlPlane) -> FakeControlPlane:
    """The shared fake, plus a member of the namespace and a member of another one."""
    control.add_token(MEMBER, "alice", {NS: "viewer"})
    control.add_token(STRANGER, "mallory", {"team-b": "admin"})
    return control


@pytest.fixture
def gateway(control: FakeControlPlane) -> Iterator[TestClient]:
    app = create_app(control, GatewayConfig(max_body_bytes=64 * 1024), poll=False)
    app.state.gateway.poller.poll_once()
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {MEMBER}"
        yield client


def rows(trained: tuple[Any, Any, Any], count: int = 3) -> list[list[float]]:
    values: list[list[float]] = trained[0][:count].tolist()
    return values


def test_v1_predict_answers_like_the_model(gateway: TestClient, trained: tuple[Any, Any, Any]) -> None:
    response = gateway.post(f"/v1/namespaces/{NS}/endpoints/ep:predict", json={"instances": rows(trained)})
    assert response.status_code == 200
    assert response.json()["predictions"] == trained[1].predict(np.array(rows(trained))).tolist()
    assert response.json()["model_version"] == "clf:1"
    assert response.headers["X-Model-Version"] == "clf:1"
    assert len(response.headers["X-Request-Id"]) == 32


def test_kserve_v1_path_and_request_id_passthrough(gateway: TestClient, trained: tuple[Any, Any, Any]) -> None:
    response = gateway.post(f"/v1/models/{NS}.ep:predict", json={"instances": rows(trained)}, headers={"X-Request-Id": "abc-1"})
    assert response.status_code == 200
    assert response.headers["X-Request-Id"] == "abc-1"
    assert gateway.get(f"/v1/models/{NS}.ep").json() == {"name": f"{NS}.ep", "ready": True}


def test_mlflow_invocations(gateway: TestClient, trained: tuple[Any, Any, Any]) -> None:
    body = {"dataframe_split": {"data": rows(trained, 2)}}
    response = gateway.post(f"/v1/namespaces/{NS}/endpoints/ep/invocations", json=body)
    assert response.status_code == 200
    assert response.json() == {"predictions": trained[1].predict(np.array(rows(trained, 2))).tolist()}


def test_v2_infer_metadata_and_health(gateway: TestClient, trained: tuple[Any, Any, Any]) -> None:
    data = rows(trained, 2)
    body = {"id": "q", "inputs": [{"name": "input", "shape": [2, 30], "datatype": "FP64", "data": data}]}
    answer = gateway.post(f"/v2/models/{NS}.ep/infer", json=body).json()
    assert (answer["id"], answer["model_name"], answer["model_version"]) == ("q", f"{NS}.ep", "1")
    outputs = {o["name"]: o for o in answer["outputs"]}
    assert outputs["predict"]["data"] == trained[1].predict(np.array(data)).tolist()
    assert outputs["probabilities"]["shape"] == [2, 2]
    metadata = gateway.get(f"/v2/models/{NS}.ep").json()
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, 30]}]
    assert metadata["versions"] == ["1"]
    assert gateway.get(f"/v2/models/{NS}.ep/ready").status_code == 200
    assert gateway.get(f"/v2/models/{NS}.ep/versions/1/ready").status_code == 200
    assert gateway.get(f"/v2/models/{NS}.ep/versions/7/ready").status_code == 404
    assert gateway.get("/v2/health/live").json() == {"live": True}
    assert gateway.get("/v2/health/ready").json() == {"ready": True}


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        ("/v1/namespaces/team-a/endpoints/ep:predict", {"instances": [[1.0] * 29]}, 400, "expected 30 features"),
        ("/v1/namespaces/team-a/endpoints/ep:predict", {"instances": [[1.0] * 29 + ["x"]]}, 400, "instances[0][29]"),
        ("/v1/namespaces/team-a/endpoints/ep:predict", {"instances": [[1.0] * 29 + [None]]}, 400, "null"),
        ("/v1/namespaces/team-a/endpoints/ep/invocations", {"rows": []}, 400, "exactly one"),
        ("/v2/models/team-a.ep/infer", {"inputs": [{"shape": [1, 30], "datatype": "FP64", "data": [1] * 29}]}, 400, "30"),
        ("/v1/namespaces/team-a/endpoints/ep:predict", {"instances": [[1.0] * 30] * 3000}, 413, "limit"),
    ],
)
def test_bad_input_is_a_4xx_that_says_what_was_expected(
    gateway: TestClient, path: str, body: dict[str, Any], status: int, needle: str
) -> None:
    response = gateway.post(path, content=orjson.dumps(body))
    assert response.status_code == status
    answer = response.json()
    assert set(answer) == {"error", "message"}
    assert needle in answer["message"]
    assert response.headers["X-Model-Version"] == "clf:1"


def test_not_json_is_400(gateway: TestClient) -> None:
    response = gateway.post(f"/v1/namespaces/{NS}/endpoints/ep:predict", content=b"instances=1")
    assert (response.status_code, response.json()["error"]) == (400, "invalid_input")


@pytest.mark.parametrize(
    ("token", "endpoint", "status"),
    [(None, "ep", 401), ("nonsense", "ep", 401), (STRANGER, "ep", 404), (MEMBER, "nope", 404), (None, "nope", 401)],
)
def test_callers_outside_the_audience_are_refused(gateway: TestClient, token: str | None, endpoint: str, status: int) -> None:
    headers = {"Authorization": f"Bearer {token}" if token else ""}
    for method, path, body in (
        ("POST", f"/v1/namespaces/{NS}/endpoints/{endpoint}:predict", {"instances": [[0.0] * 30]}),
        ("POST", f"/v1/models/{NS}.{endpoint}:predict", {"instances": [[0.0] * 30]}),
        ("POST", f"/v1/namespaces/{NS}/endpoints/{endpoint}/invocations", {"instances": [[0.0] * 30]}),
        ("POST", f"/v2/models/{NS}.{endpoint}/infer", {"inputs": [{"shape": [1, 30], "datatype": "FP64", "data": [0] * 30}]}),
        ("GET", f"/v2/models/{NS}.{endpoint}", None),
        ("GET", f"/v2/models/{NS}.{endpoint}/ready", None),
    ):
        response = gateway.request(method, path, json=body, headers=headers)
        assert response.status_code == status, (method, path, response.text)
        assert "X-Request-Id" in response.headers


def test_anonymous_audience(gateway: TestClient, control: FakeControlPlane) -> None:
    control.deploy(NS, "open", [("clf", 1, 100)], audience={"anonymous": True})
    gateway.app.state.gateway.poller.poll_once()  # type: ignore[attr-defined]
    body = {"instances": [[0.0] * 30]}
    response = gateway.post(f"/v1/namespaces/{NS}/endpoints/open:predict", json=body, headers={"Authorization": ""})
    assert response.status_code == 200


def test_token_checks_are_cached(gateway: TestClient, control: FakeControlPlane) -> None:
    for _ in range(5):
        gateway.post(f"/v1/namespaces/{NS}/endpoints/ep:predict", json={"instances": [[0.0] * 30]})
    assert control.introspections == 1


def test_pinned_version_and_sticky_header(gateway: TestClient, control: FakeControlPlane) -> None:
    control.deploy(NS, "ep", [("clf", 1, 50), ("clf", 2, 50)], sticky_header="X-User")
    gateway.app.state.gateway.poller.poll_once()  # type: ignore[attr-defined]
    body = {"inputs": [{"name": "input", "shape": [1, 30], "datatype": "FP64", "data": [0] * 30}]}
    assert gateway.post(f"/v2/models/{NS}.ep/versions/2/infer", json=body).json()["model_version"] == "2"
    for user in ("u1", "u2", "u3"):
        seen = {
            gateway.post(f"/v2/models/{NS}.ep/infer", json=body, headers={"X-User": user}).headers["X-Model-Version"]
            for _ in range(10)
        }
        assert len(seen) == 1


def test_shadow_is_logged_and_never_returned(
    gateway: TestClient, control: FakeControlPlane, trained: tuple[Any, Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    control.deploy(NS, "ep", [("clf", 1, 100)], shadow=("clf", 2))
    gateway.app.state.gateway.poller.poll_once()  # type: ignore[attr-defined]
    data = rows(trained, 4)
    with caplog.at_level(logging.INFO, logger="shipyard.serving.shadow"):
        response = gateway.post(f"/v1/namespaces/{NS}/endpoints/ep:predict", json={"instances": data})
    assert response.json()["predictions"] == trained[1].predict(np.array(data)).tolist()
    assert response.headers["X-Model-Version"] == "clf:1"
    (record,) = [r for r in caplog.records if r.name == "shipyard.serving.shadow"]
    assert record.predictions == trained[2].predict(np.array(data)).tolist()  # type: ignore[attr-defined]
    assert record.request_id == response.headers["X-Request-Id"]  # type: ignore[attr-defined]


def test_unknown_routes_answer_json_with_headers(gateway: TestClient) -> None:
    response = gateway.get("/v3/nothing")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert "X-Request-Id" in response.headers


def test_concurrent_requests_with_one_new_token_cost_one_token_check(control: FakeControlPlane) -> None:
    app = create_app(control, GatewayConfig(), poll=False)
    app.state.gateway.poller.poll_once()
    introspect = control.introspect_token

    def slow_introspect(token: str) -> Any:
        time.sleep(0.05)  # long enough for every request below to arrive while the first check is out
        return introspect(token)

    control.introspect_token = slow_introspect  # type: ignore[method-assign]
    app.state.gateway.tokens._introspect = slow_introspect

    async def burst() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {MEMBER}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway", headers=headers) as client:
            body = {"instances": [[0.0] * 30]}
            path = f"/v1/namespaces/{NS}/endpoints/ep:predict"
            answers = await asyncio.gather(*(client.post(path, json=body) for _ in range(20)))
        return [answer.status_code for answer in answers]

    assert asyncio.run(burst()) == [200] * 20
    assert control.introspections == 1
