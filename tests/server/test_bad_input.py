"""Bad input over the REST API: each is refused with a 4xx that says what was expected, and changes nothing."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from shipyard.runtime import Platform
from shipyard.server.app import create_app
from shipyard.settings import Settings

API = "/api/v1"
NS = "lab"
LAB = f"{API}/namespaces/{NS}"
MODEL = f"{LAB}/models/classifier"
MODEL_BYTES = b"an onnx model, as far as the registry can tell"


@pytest.fixture(scope="module")
def lab(module_platform: Platform) -> Iterator[TestClient]:
    """The admin's client, with namespace ``lab``: an experiment, a model with one version."""
    token = module_platform.settings.admin_token_path.read_text().strip()
    with TestClient(create_app(module_platform), raise_server_exceptions=False) as api:
        api.headers["Authorization"] = f"Bearer {token}"
        assert api.post(f"{API}/namespaces", json={"name": NS}).status_code == 201
        assert api.post(f"{LAB}/experiments", json={"name": "trials"}).status_code == 201
        digest = api.put(f"{LAB}/blobs", content=MODEL_BYTES).json()["digest"]
        assert api.post(f"{LAB}/models", json={"name": "classifier"}).status_code == 201
        assert api.post(f"{MODEL}/versions", json={"artifact_digest": digest, "format": "onnx"}).status_code == 201
        yield api


@pytest.fixture
def run(lab: TestClient) -> str:
    """A fresh run's URL, so what one test logs never meets another's."""
    created = lab.post(f"{LAB}/runs", json={"experiment_name": "trials"})
    assert created.status_code == 201, created.text
    return f"{LAB}/runs/{created.json()['id']}"


def refused(response: httpx.Response, status: int, code: str, *words: str) -> str:
    """Assert the status, the error code, and that the message names what was expected."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code, body
    message: str = body["message"]
    missing = [w for w in words if w.lower() not in message.lower()]
    assert not missing, f"message {message!r} does not mention {missing}"
    return message


def run_state(lab: TestClient, run: str) -> dict[str, Any]:
    detail = lab.get(run)
    assert detail.status_code == 200, detail.text
    state: dict[str, Any] = detail.json()
    return {"params": state["params"], "tags": state["tags"], "metrics": state["metrics"]}


# -- malformed bodies -------------------------------------------------------------------------

JSON_ENDPOINTS = [
    pytest.param("POST", f"{LAB}/experiments", id="experiments"),
    pytest.param("POST", f"{LAB}/runs", id="runs"),
    pytest.param("POST", f"{LAB}/runs:search", id="run-search"),
    pytest.param("POST", f"{LAB}/models", id="models"),
    pytest.param("POST", f"{MODEL}/versions", id="versions"),
    pytest.param("PUT", f"{MODEL}/aliases/staging", id="aliases"),
    pytest.param("POST", f"{API}/tokens", id="tokens"),
    pytest.param("POST", f"{API}/namespaces", id="namespaces"),
]


@pytest.mark.parametrize(("method", "url"), JSON_ENDPOINTS)
@pytest.mark.parametrize(
    "body", [b'{"name": ', b"not json at all", b'{"name": "x",}'], ids=["truncated", "text", "trailing-comma"]
)
def test_malformed_json_is_refused(lab: TestClient, method: str, url: str, body: bytes) -> None:
    response = lab.request(method, url, content=body, headers={"Content-Type": "application/json"})
    refused(response, 422, "invalid_input", "not valid JSON", "send a JSON document")


@pytest.mark.parametrize(
    ("method", "url", "body", "words"),
    [
        pytest.param("POST", f"{LAB}/experiments", {"name": 5}, ["name", "string"], id="number-for-name"),
        pytest.param("POST", f"{LAB}/experiments", ["trials"], ["object"], id="list-for-body"),
        pytest.param("POST", f"{LAB}/models", {"name": "m", "tags": {"a": 1}}, ["tags.a"], id="number-for-tag"),
        pytest.param("PUT", f"{MODEL}/aliases/staging", {"version": "two"}, ["version", "integer"], id="text-for-version"),
        pytest.param(
            "PUT", f"{MODEL}/aliases/staging", {"version": 0}, ["version", "greater than or equal to 1"], id="zero-version"
        ),
        pytest.param(
            "POST", f"{MODEL}/versions", {"artifact_digest": "abc", "format": "onnx"}, ["artifact_digest"], id="short-digest"
        ),
        pytest.param(
            "POST", f"{MODEL}/versions", {"artifact_digest": "0" * 64, "format": "joblib"}, ["format", "onnx"], id="bad-format"
        ),
        pytest.param("POST", f"{API}/tokens", {"days": 100000}, ["days", "3650"], id="token-too-long"),
        pytest.param("POST", f"{LAB}/runs:search", {"max_results": 0}, ["max_results"], id="zero-results"),
        pytest.param("POST", f"{LAB}/role-bindings", {"user": "admin", "role": "owner"}, ["role", "viewer"], id="bad-role"),
        pytest.param("POST", f"{LAB}/experiments", {"name": "x", "nmae": "typo"}, ["nmae", "extra"], id="unknown-field"),
    ],
)
def test_wrong_types_are_refused(lab: TestClient, method: str, url: str, body: Any, words: list[str]) -> None:
    refused(lab.request(method, url, json=body), 422, "invalid_input", "request is not valid", *words)


def test_wrong_types_in_a_batch_log_nothing(lab: TestClient, run: str) -> None:
    before = run_state(lab, run)
    batch = {"metrics": [{"key": "loss", "value": "high"}], "params": {"lr": "0.1"}}
    refused(lab.post(f"{run}/log-batch", json=batch), 422, "invalid_input", "metrics.0.value")
    refused(lab.post(f"{run}/log-batch", json={"params": {"lr": 0.1}}), 422, "invalid_input", "params.lr")
    refused(lab.patch(run, json={"status": "exploded"}), 422, "invalid_input", "status", "finished")
    assert run_state(lab, run) == before
    assert lab.get(run).json()["status"] == "running"


@pytest.mark.parametrize(
    ("method", "url", "body", "field"),
    [
        pytest.param("POST", f"{LAB}/experiments", {}, "name", id="experiment-name"),
        pytest.param("POST", f"{LAB}/models", {"description": "no name"}, "name", id="model-name"),
        pytest.param("POST", f"{MODEL}/versions", {"format": "onnx"}, "artifact_digest", id="version-digest"),
        pytest.param("POST", f"{MODEL}/versions", {"artifact_digest": "0" * 64}, "format", id="version-format"),
        pytest.param("PUT", f"{MODEL}/aliases/staging", {}, "version", id="alias-version"),
        pytest.param("POST", f"{LAB}/role-bindings", {"user": "admin"}, "role", id="binding-role"),
        pytest.param("POST", f"{API}/users", {}, "name", id="user-name"),
        pytest.param("PATCH", f"{API}/users/admin", {}, "disabled", id="user-disabled"),
        pytest.param("POST", f"{LAB}/runs/none/log-batch", {"metrics": [{"value": 1.0}]}, "metrics.0.key", id="metric-key"),
    ],
)
def test_missing_fields_are_named(lab: TestClient, method: str, url: str, body: dict[str, Any], field: str) -> None:
    refused(lab.request(method, url, json=body), 422, "invalid_input", f"{field}: is required")


def test_a_missing_body_is_refused(lab: TestClient) -> None:
    refused(lab.post(f"{LAB}/experiments"), 422, "invalid_input", "body: is required")


def test_a_role_binding_names_exactly_one_principal(lab: TestClient) -> None:
    refused(lab.post(f"{LAB}/role-bindings", json={"role": "viewer"}), 400, "invalid_input", "exactly one", "user")
    both = {"user": "admin", "service_account": "robot", "role": "viewer"}
    refused(lab.post(f"{LAB}/role-bindings", json=both), 400, "invalid_input", "exactly one")


# -- records that do not exist ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "body", "words"),
    [
        pytest.param("GET", f"{API}/namespaces/nowhere", None, ["namespace 'nowhere'", "does not exist"], id="namespace"),
        pytest.param("POST", f"{API}/namespaces/nowhere/experiments", {"name": "e"}, ["'nowhere'"], id="namespace-experiment"),
        pytest.param("POST", f"{API}/namespaces/nowhere/runs", {}, ["'nowhere'"], id="namespace-run"),
        pytest.param("POST", f"{API}/namespaces/nowhere/models", {"name": "m"}, ["'nowhere'"], id="namespace-model"),
        pytest.param("GET", f"{API}/namespaces/nowhere/models", None, ["'nowhere'"], id="namespace-models"),
        pytest.param("GET", f"{API}/namespaces/nowhere/role-bindings", None, ["'nowhere'"], id="namespace-bindings"),
        pytest.param("GET", f"{LAB}/experiments/0123abcd", None, ["experiment '0123abcd'", "does not exist"], id="experiment"),
        pytest.param("GET", f"{LAB}/experiments?name=ghost", None, ["experiment 'ghost'"], id="experiment-by-name"),
        pytest.param("POST", f"{LAB}/runs", {"experiment_id": "0123abcd"}, ["experiment '0123abcd'"], id="run-experiment"),
        pytest.param("GET", f"{LAB}/runs/0123abcd", None, ["run '0123abcd'", "does not exist"], id="run"),
        pytest.param("PATCH", f"{LAB}/runs/0123abcd", {"name": "x"}, ["run '0123abcd'"], id="run-patch"),
        pytest.param("POST", f"{LAB}/runs/0123abcd/log-batch", {"params": {"a": "b"}}, ["run '0123abcd'"], id="run-log"),
        pytest.param("GET", f"{LAB}/runs/0123abcd/metrics/loss", None, ["run '0123abcd'"], id="run-metric"),
        pytest.param("GET", f"{LAB}/runs/0123abcd/artifacts", None, ["run '0123abcd'"], id="run-artifacts"),
        pytest.param("GET", f"{MODEL}/nope", None, ["no API route matches"], id="route"),
        pytest.param("GET", f"{LAB}/models/ghost", None, ["model 'ghost'", "does not exist"], id="model"),
        pytest.param("GET", f"{LAB}/models/ghost/versions", None, ["model 'ghost'"], id="model-versions"),
        pytest.param("GET", f"{MODEL}/versions/99", None, ["no version 99"], id="version"),
        pytest.param("GET", f"{MODEL}/versions/99/lineage", None, ["no version 99"], id="version-lineage"),
        pytest.param("GET", f"{MODEL}/versions/99/artifact", None, ["no version 99"], id="version-artifact"),
        pytest.param("PUT", f"{MODEL}/aliases/staging", {"version": 99}, ["no version 99"], id="alias-to-missing-version"),
        pytest.param("GET", f"{MODEL}/aliases/ghost", None, ["no alias 'ghost'"], id="alias"),
        pytest.param("DELETE", f"{MODEL}/aliases/ghost", None, ["no alias 'ghost'"], id="alias-delete"),
        pytest.param("GET", f"{API}/users/ghost", None, ["user 'ghost'"], id="user"),
        pytest.param("DELETE", f"{API}/tokens/0123abcd", None, ["token '0123abcd'"], id="token"),
        pytest.param(
            "POST",
            f"{MODEL}/versions",
            {"artifact_digest": hashlib.sha256(MODEL_BYTES).hexdigest(), "format": "onnx", "run_id": "0123abcd"},
            ["run '0123abcd'"],
            id="version-run",
        ),
    ],
)
def test_unknown_records_give_404(lab: TestClient, method: str, url: str, body: Any, words: list[str]) -> None:
    refused(lab.request(method, url, json=body), 404, "not_found", *words)


def test_unknown_tag_and_artifact_give_404(lab: TestClient, run: str) -> None:
    refused(lab.delete(f"{run}/tags/ghost"), 404, "not_found", "no tag 'ghost'")
    refused(lab.get(f"{run}/artifacts/ghost.txt"), 404, "not_found", "no artifact 'ghost.txt'")


def test_a_version_needs_its_blob_uploaded_first(lab: TestClient) -> None:
    before = lab.get(f"{MODEL}/versions").json()
    absent = hashlib.sha256(b"never uploaded").hexdigest()
    refused(
        lab.post(f"{MODEL}/versions", json={"artifact_digest": absent, "format": "onnx"}),
        400,
        "invalid_input",
        absent,
        "has not been uploaded to namespace",
        "before registering",
    )
    assert lab.get(f"{MODEL}/versions").json() == before


def test_rolling_back_without_history_is_a_conflict(lab: TestClient) -> None:
    alias = f"fresh-{uuid.uuid4().hex[:6]}"
    assert lab.put(f"{MODEL}/aliases/{alias}", json={"version": 1}).status_code == 200
    refused(lab.post(f"{MODEL}/aliases/{alias}/rollback"), 409, "conflict", "no earlier version")
    assert lab.get(f"{MODEL}/aliases/{alias}").json()["version"] == 1


# -- immutability and all-or-nothing batches ---------------------------------------------


def test_a_param_cannot_change_and_the_whole_batch_is_refused(lab: TestClient, run: str) -> None:
    assert lab.post(f"{run}/log-batch", json={"params": {"lr": "0.1"}}).status_code == 204
    before = run_state(lab, run)
    batch = {
        "params": {"lr": "0.2", "depth": "3"},
        "metrics": [{"key": "loss", "value": 0.5}],
        "tags": {"stage": "tuning"},
    }
    message = refused(lab.post(f"{run}/log-batch", json=batch), 409, "immutable_value", "'lr'", "'0.1'", "'0.2'", "immutable")
    assert "another key" in message
    assert run_state(lab, run) == before
    history = lab.get(f"{run}/metrics/loss").json()
    assert history["points"] == []
    # Logging the same value again is not a change.
    assert lab.post(f"{run}/log-batch", json={"params": {"lr": "0.1"}}).status_code == 204


@pytest.mark.parametrize(
    ("batch", "status", "words"),
    [
        pytest.param(
            {"metrics": [{"key": "loss", "value": float(i)} for i in range(10_001)]},
            422,
            ["metrics", "at most 10000"],
            id="too-many-metrics",
        ),
        pytest.param({"params": {f"p{i}": "1" for i in range(1001)}}, 400, ["too many params", "1000"], id="too-many-params"),
        pytest.param({"tags": {f"t{i}": "1" for i in range(1001)}}, 400, ["too many", "1000"], id="too-many-tags"),
        pytest.param(
            {
                "params": {"fine": "1"},
                "tags": {"fine": "1"},
                "metrics": [{"key": "ok", "value": 1.0}, {"key": "bad key!", "value": 2.0}],
            },
            400,
            ["metric key 'bad key!'", "letters, digits"],
            id="one-bad-metric-key",
        ),
        pytest.param({"params": {"ok": "1", "../up": "2"}}, 400, ["param key '../up'"], id="param-key-traversal"),
        pytest.param({"params": {"long": "x" * 6001}}, 400, ["6001 characters", "at most 6000"], id="param-too-long"),
        pytest.param({"tags": {"long": "x" * 8001}}, 400, ["8001 characters", "at most 8000"], id="tag-too-long"),
        pytest.param({"metrics": [{"key": "k" * 251, "value": 1.0}]}, 422, ["metrics.0.key", "250"], id="metric-key-too-long"),
    ],
)
def test_a_refused_batch_logs_nothing(lab: TestClient, run: str, batch: dict[str, Any], status: int, words: list[str]) -> None:
    before = run_state(lab, run)
    refused(lab.post(f"{run}/log-batch", json=batch), status, "invalid_input", *words)
    assert run_state(lab, run) == before
    for key in ("loss", "ok"):
        assert lab.get(f"{run}/metrics/{key}").json()["points"] == []


# -- artifact paths ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw_path", "words"),
    [
        pytest.param("%2e%2e/escape.txt", ["'..'"], id="encoded-dotdot"),
        pytest.param("plots/%2E%2E/%2e%2e/escape.txt", ["'..'"], id="encoded-dotdot-deep"),
        pytest.param("%2e%2e%2fescape.txt", ["'..'"], id="encoded-dotdot-slash"),
        pytest.param("%2e/model.bin", ["'.'"], id="dot-segment"),
        pytest.param("plots//roc.png", ["empty"], id="empty-segment"),
        pytest.param("%2Fetc%2Fpasswd", ["absolute", "relative path"], id="encoded-absolute"),
        pytest.param("/etc/passwd", ["absolute", "relative path"], id="absolute"),
        pytest.param("C:/Windows/win.ini", ["absolute"], id="drive-letter"),
        pytest.param("plots%5C..%5Croc.png", ["backslash"], id="backslashes"),
        pytest.param("plots/%00roc.png", ["segment"], id="nul-byte"),
        pytest.param("plots/roc%3F.png", ["segment", "allowed"], id="question-mark"),
    ],
)
def test_invalid_artifact_paths_are_refused(lab: TestClient, run: str, raw_path: str, words: list[str]) -> None:
    upload = lab.put(f"{run}/artifacts/{raw_path}", content=b"payload")
    refused(upload, 400, "invalid_input", "artifact path", *words)
    refused(lab.get(f"{run}/artifacts/{raw_path}"), 400, "invalid_input", "artifact path")
    assert lab.get(f"{run}/artifacts").json() == []


def test_an_invalid_listing_prefix_is_refused(lab: TestClient, run: str) -> None:
    refused(lab.get(f"{run}/artifacts", params={"prefix": "../other"}), 400, "invalid_input", "'..'")


# -- run search --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("search", "words"),
    [
        pytest.param({"filter": "metrics.accuracy >"}, ["ends early"], id="filter-ends-early"),
        pytest.param({"filter": "accuracy > 0.9"}, ["cannot parse"], id="filter-no-entity"),
        pytest.param({"filter": "weights.accuracy > 0.9"}, ["'weights'", "not a searchable entity"], id="filter-bad-entity"),
        pytest.param({"filter": "metrics.accuracy > 'high'"}, ["compare with a number"], id="filter-metric-text"),
        pytest.param({"filter": "metrics.accuracy LIKE 0.9"}, ["cannot use LIKE"], id="filter-metric-like"),
        pytest.param({"filter": "attributes.colour = 'red'"}, ["attribute 'colour' is unknown"], id="filter-bad-attribute"),
        pytest.param({"filter": "attributes.start_time > 'today'"}, ["compare it with a number"], id="filter-time-text"),
        pytest.param({"filter": "attributes.status = 1"}, ["quoted string"], id="filter-status-number"),
        pytest.param({"filter": "params.a = '1' or params.b = '2'"}, ["cannot parse", "or params"], id="filter-or"),
        pytest.param({"filter": "params.a = '1' and"}, ["ends"], id="filter-trailing-and"),
        pytest.param({"filter": "params.a = 1; DROP TABLE runs"}, ["cannot parse"], id="filter-injection"),
        pytest.param({"order_by": ["weights.accuracy DESC"]}, ["not a searchable entity"], id="order-bad-entity"),
        pytest.param({"order_by": ["attributes.colour"]}, ["attribute 'colour' is unknown"], id="order-bad-attribute"),
        pytest.param({"order_by": ["colour DESC"]}, ["attribute 'colour' is unknown"], id="order-bare-unknown"),
        pytest.param({"page_token": "not-a-token"}, ["page token is not valid"], id="page-token-garbage"),
        pytest.param(
            {"page_token": base64.urlsafe_b64encode(json.dumps({"offset": -5}).encode()).decode()},
            ["page token is not valid"],
            id="page-token-negative",
        ),
    ],
)
def test_invalid_run_searches_are_refused(lab: TestClient, search: dict[str, Any], words: list[str]) -> None:
    refused(lab.post(f"{LAB}/runs:search", json=search), 400, "invalid_input", *words)


def test_too_many_order_by_terms_are_refused(lab: TestClient) -> None:
    search = {"order_by": ["attributes.start_time"] * 11}
    refused(lab.post(f"{LAB}/runs:search", json=search), 422, "invalid_input", "order_by")


# -- aliases, scopes, pickles ------------------------------------------------------------------


@pytest.mark.parametrize(
    "alias",
    ["Production", "latest", "v3", "-canary", "9lives", "a%20b", "x" * 64, "prod.blue"],
    ids=["uppercase", "reserved-latest", "version-like", "leading-dash", "leading-digit", "space", "too-long", "dot"],
)
def test_invalid_alias_names_are_refused(lab: TestClient, alias: str) -> None:
    before = lab.get(f"{MODEL}/aliases").json()
    refused(lab.put(f"{MODEL}/aliases/{alias}", json={"version": 1}), 400, "invalid_input", "is not valid", "lowercase")
    assert lab.get(f"{MODEL}/aliases").json() == before


@pytest.mark.parametrize(
    "scopes", [["superuser"], ["read", "root"], [], ["READ"]], ids=["unknown", "one-unknown", "none", "uppercase"]
)
def test_unknown_token_scopes_are_refused(lab: TestClient, scopes: list[str]) -> None:
    before = lab.get(f"{API}/tokens").json()
    refused(lab.post(f"{API}/tokens", json={"scopes": scopes}), 422, "invalid_input", "scopes")
    assert lab.get(f"{API}/tokens").json() == before


def test_a_pickle_needs_an_explicit_trust_flag(lab: TestClient) -> None:
    before = lab.get(f"{MODEL}/versions").json()
    draft = {"artifact_digest": hashlib.sha256(MODEL_BYTES).hexdigest(), "format": "pickle"}
    refused(lab.post(f"{MODEL}/versions", json=draft), 422, "untrusted_model", "pickle", "arbitrary code", "trust_pickle")
    refused(lab.post(f"{MODEL}/versions", json={**draft, "trust_pickle": False}), 422, "untrusted_model", "skops or ONNX")
    assert lab.get(f"{MODEL}/versions").json() == before


# -- size limits ---------------------------------------------------------------------------


@pytest.fixture
def limited(settings: Settings) -> Iterator[tuple[TestClient, Platform]]:
    """A platform with tiny limits: 2 KiB JSON bodies, 1 KiB artifacts."""
    platform = Platform.open(settings.model_copy(update={"max_request_bytes": 2048, "max_artifact_bytes": 1024}))
    platform.ensure_admin()
    token = platform.settings.admin_token_path.read_text().strip()
    with TestClient(create_app(platform), raise_server_exceptions=False) as api:
        api.headers["Authorization"] = f"Bearer {token}"
        assert api.post(f"{API}/namespaces", json={"name": NS}).status_code == 201
        yield api, platform
    platform.close()


def test_an_oversized_json_body_gets_413_and_logs_nothing(limited: tuple[TestClient, Platform]) -> None:
    api, _ = limited
    run = f"{LAB}/runs/{api.post(f'{LAB}/runs', json={}).json()['id']}"
    batch = {"metrics": [{"key": "loss", "value": float(i), "step": i} for i in range(200)]}
    assert len(json.dumps(batch)) > 2048
    refused(api.post(f"{run}/log-batch", json=batch), 413, "payload_too_large", "over the limit of 2048 bytes", "smaller")
    # Without a declared length, the body is counted as it streams in.
    chunks = iter([json.dumps(batch).encode()[i : i + 512] for i in range(0, len(json.dumps(batch)), 512)])
    streamed = api.post(f"{run}/log-batch", content=chunks, headers={"Content-Type": "application/json"})
    refused(streamed, 413, "payload_too_large", "over the limit of 2048 bytes")
    assert api.get(run).json()["metrics"] == []
    assert api.get(f"{run}/metrics/loss").json()["points"] == []
    failed = api.get(f"{API}/audit", params={"outcome": "failed"}).json()
    assert sum(e["status_code"] == 413 and e["path"] == f"{run}/log-batch" for e in failed) == 2
    # A batch under the limit still goes through.
    assert api.post(f"{run}/log-batch", json={"metrics": [{"key": "loss", "value": 1.0}]}).status_code == 204


def test_an_oversized_artifact_gets_413_and_nothing_is_recorded(limited: tuple[TestClient, Platform]) -> None:
    api, platform = limited
    run = f"{LAB}/runs/{api.post(f'{LAB}/runs', json={}).json()['id']}"
    payload = b"x" * 4096
    upload = api.put(f"{run}/artifacts/model/weights.bin", content=payload)
    refused(upload, 413, "payload_too_large", "larger than the limit of 1024 bytes")
    refused(api.put(f"{LAB}/blobs", content=payload), 413, "payload_too_large", "1024 bytes")
    assert api.get(f"{run}/artifacts").json() == []
    assert not platform.artifacts.exists(hashlib.sha256(payload).hexdigest())
    assert platform.artifacts.clean_temp() == 0, "a refused upload left a partial file behind"
    # The limit is per artifact: one at the limit is fine.
    assert api.put(f"{run}/artifacts/model/weights.bin", content=b"y" * 1024).status_code == 201


# -- regressions found by fuzzing ----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        pytest.param("GET", f"{API}/namespaces/lab%00", None, id="namespace-path"),
        pytest.param("GET", f"{LAB}/runs/a%00b", None, id="run-path"),
        pytest.param("GET", f"{API}/users/a%00b", None, id="user-path"),
        pytest.param("DELETE", f"{API}/tokens/a%00b", None, id="token-path"),
        pytest.param("GET", f"{API}/audit?namespace=a%00b", None, id="audit-query"),
        pytest.param("POST", f"{LAB}/runs:search", {"experiment_ids": ["a\u0000b"]}, id="search-body"),
        pytest.param("POST", f"{LAB}/models", {"name": "nul-model", "description": "a\u0000b"}, id="model-description"),
        pytest.param("POST", f"{API}/tokens", {"name": "a\u0000b"}, id="token-name"),
    ],
)
def test_nul_characters_never_cause_a_server_error(lab: TestClient, method: str, url: str, body: Any) -> None:
    """PostgreSQL text cannot hold NUL: such input is refused with 400 there, never a 500."""
    response = lab.request(method, url, json=body)
    assert response.status_code < 500, response.text
    if response.status_code == 400:
        refused(response, 400, "invalid_input", "NUL")
    if method != "GET" and not url.endswith(":search"):
        events = lab.get(f"{API}/audit", params={"principal": "admin", "limit": 20}).json()
        assert any(e["method"] == method and e["status_code"] == response.status_code for e in events)


def test_nul_in_a_run_tag_is_refused_or_kept_whole(lab: TestClient, run: str) -> None:
    response = lab.post(f"{run}/log-batch", json={"tags": {"note": "a\u0000b"}})
    assert response.status_code in (204, 400), response.text
    tags = run_state(lab, run)["tags"]
    if response.status_code == 400:
        assert "NUL" in response.json()["message"]
        assert tags == {}
    else:
        assert tags == {"note": "a\u0000b"}


@pytest.mark.parametrize("version", [str(2**31), str(2**63), str(2**70), "0", "-1"])
@pytest.mark.parametrize("suffix", ["", "/lineage", "/artifact"], ids=["version", "lineage", "artifact"])
def test_out_of_range_version_numbers_are_refused(lab: TestClient, version: str, suffix: str) -> None:
    refused(lab.get(f"{MODEL}/versions/{version}{suffix}"), 422, "invalid_input", "version")


def test_an_out_of_range_page_token_is_refused(lab: TestClient) -> None:
    token = base64.urlsafe_b64encode(json.dumps({"offset": 2**70}).encode()).decode()
    refused(lab.post(f"{LAB}/runs:search", json={"page_token": token}), 400, "invalid_input", "page token is not valid")
