"""Monitoring over the REST API: reference profiles, feedback, quality per version and A/B tests, and who may see them.

The prediction log is written here as the gateway writes it (``PredictionLog``, into the
home folder's ``predictions``); the real gateway is exercised in tests/monitoring/test_feedback_e2e.py.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn import metrics

from shipyard.runtime import Platform
from shipyard.serving.gateway.config import GatewayConfig
from shipyard.serving.gateway.prediction_log import PredictionLog, PredictionRecord
from tests.conftest import OTHER, TEAM
from tests.server.test_endpoints_api import bearer, refused

API = "/api/v1"
MODEL = f"{API}/namespaces/{TEAM}/models/clf"
ENDPOINT = f"{API}/namespaces/{TEAM}/endpoints/churn"
SIGNATURE = {"inputs": {"type": "columns", "columns": [{"name": "age", "type": "double"}, {"name": "spend", "type": "double"}]},
             "outputs": {"type": "tensor", "dtype": "long", "shape": [-1]}}  # fmt: skip


@pytest.fixture
def lab(admin_api: TestClient, teams: tuple[str, str]) -> TestClient:
    """Model clf (v1, v2, with a signature, no profile) served 50/50 by endpoint churn in team-a."""
    assert admin_api.post(f"{API}/namespaces/{TEAM}/models", json={"name": "clf"}).status_code == 201
    for n in (1, 2):
        digest = admin_api.put(f"{API}/namespaces/{TEAM}/blobs", content=f"model {n}".encode()).json()["digest"]
        body = {"artifact_digest": digest, "format": "onnx", "signature": SIGNATURE}
        assert admin_api.post(f"{MODEL}/versions", json=body).status_code == 201
    assert admin_api.post(f"{API}/namespaces/{TEAM}/endpoints", json={"name": "churn"}).status_code == 201
    routes = [{"model": "clf", "version": 1, "weight": 50}, {"model": "clf", "version": 2, "weight": 50}]
    assert admin_api.post(f"{ENDPOINT}/revisions", json={"routes": routes}).status_code == 201
    return admin_api


def test_a_version_without_a_profile_gets_a_404_that_says_how_to_get_one(lab: TestClient) -> None:
    refused(lab.get(f"{MODEL}/versions/1/profile"), 404, "not_found", "no reference profile", "training_data")
    refused(lab.get(f"{MODEL}/versions/7/profile"), 404, "not_found", "has no version 7")


def test_a_registered_profile_is_served(lab: TestClient) -> None:
    profile = {"schema_version": 1, "rows": 2, "top_k": 100, "columns": [
        {"name": "colour", "kind": "categorical", "count": 2, "missing": 0,
         "categorical": {"frequencies": [["red", 2]], "other": 0, "distinct": 1}}]}  # fmt: skip
    digest = lab.put(f"{API}/namespaces/{TEAM}/blobs", json=profile).json()["digest"]
    model = lab.put(f"{API}/namespaces/{TEAM}/blobs", content=b"model 3").json()["digest"]
    created = lab.post(f"{MODEL}/versions", json={"artifact_digest": model, "format": "onnx", "profile_digest": digest})
    assert created.status_code == 201, created.text
    assert created.json()["profile_digest"] == digest
    assert lab.get(f"{MODEL}/versions/3").json()["profile_digest"] == digest
    assert lab.get(f"{MODEL}/versions/3/profile").json() == profile
    bad = lab.put(f"{API}/namespaces/{TEAM}/blobs", content=b"[1, 2]").json()["digest"]
    refused(lab.post(f"{MODEL}/versions", json={"artifact_digest": model, "format": "onnx", "profile_digest": bad}),
            400, "invalid_input", "expected a profile as a mapping")  # fmt: skip


def test_feedback_is_posted_one_or_many_and_listed(lab: TestClient) -> None:
    assert lab.post(f"{ENDPOINT}/feedback", json={"request_id": "r-1", "label": 1}).json() == {"accepted": 1}
    many = {"items": [{"request_id": "r-2", "label": "yes"}, {"request_id": "r-1", "label": [0, 1]}]}
    assert lab.post(f"{ENDPOINT}/feedback", json=many).json() == {"accepted": 2}
    listed = lab.get(f"{ENDPOINT}/feedback", params={"limit": 10}).json()
    assert {f["request_id"]: f["label"] for f in listed} == {"r-1": [0, 1], "r-2": "yes"}
    assert len(lab.get(f"{ENDPOINT}/feedback", params={"limit": 1}).json()) == 1


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"request_id": "not ok!", "label": 1}, ("is not a request id", "X-Request-Id")),
        ({"request_id": "r-1"}, ("feedback needs", "{'items': [...]}")),
        ({"request_id": "r-1", "label": 1, "items": []}, ("not both",)),
        ({"items": [{"request_id": "r-1", "label": {"a": 1}}]}, ("is dict", "expected a number")),
        ({"items": [{"request_id": f"r-{i}", "label": 1} for i in range(10_001)]}, ("10001", "several calls")),
        ({"items": ["r-1"]}, ("is str", "expected {'request_id'")),
    ],
)
def test_bad_feedback_is_refused_with_what_to_do(lab: TestClient, body: dict[str, Any], words: tuple[str, ...]) -> None:
    refused(lab.post(f"{ENDPOINT}/feedback", json=body), 400, "invalid_input", *words)
    assert lab.get(f"{ENDPOINT}/feedback").json() == []


def test_other_namespaces_and_readers_are_kept_out(lab: TestClient, platform: Platform) -> None:
    outsider = bearer(platform, "outsider", {OTHER: "admin"})
    viewer = bearer(platform, "viewer", {TEAM: "viewer"})
    paths = [f"{ENDPOINT}/feedback", f"{ENDPOINT}/quality", f"{ENDPOINT}/ab?a=1&b=2", f"{MODEL}/versions/1/profile"]
    for path in paths:
        refused(lab.get(path, headers=outsider), 404, "not_found", "not a member")
    refused(lab.post(f"{ENDPOINT}/feedback", json={"request_id": "r-1", "label": 1}, headers=outsider), 404, "not_found")
    refused(lab.post(f"{ENDPOINT}/feedback", json={"request_id": "r-1", "label": 1}, headers=viewer), 403,
            "permission_denied", "may not write")  # fmt: skip
    assert lab.get(f"{ENDPOINT}/feedback", headers=viewer).status_code == 200
    assert lab.get(f"{ENDPOINT}/feedback").json() == []


def write_log(platform: Platform, answers: list[tuple[str, int, list[int], float]]) -> None:
    """Log requests as the gateway does: (request id, version, predictions, latency ms)."""
    log = PredictionLog(GatewayConfig().resolved_prediction_log_url(platform.settings))
    now = int(time.time() * 1000) - 5_000
    for i, (request_id, version, predictions, latency) in enumerate(answers):
        rows = np.arange(len(predictions) * 2, dtype=np.float64).reshape(-1, 2)
        log.add(PredictionRecord(request_id, now + i, TEAM, "churn", 1, "clf", version, "v1", 200, latency, rows, predictions))
    log.flush()


def test_quality_per_version_equals_sklearn_and_ab_compares_them(lab: TestClient, platform: Platform) -> None:
    rng = np.random.default_rng(0)
    answers, labels, truth = [], [], {1: ([], []), 2: ([], [])}
    for i in range(120):
        version = 1 + i % 2
        rows = 1 + i % 3
        predictions = rng.integers(0, 2, rows).tolist()
        # version 1 is right 90% of the time, version 2 60%
        right = rng.random(rows) < (0.9 if version == 1 else 0.6)
        label = [p if ok else 1 - p for p, ok in zip(predictions, right, strict=True)]
        answers.append((f"req-{i}", version, predictions, 2.0 + version + rng.random()))
        if i % 10:  # every tenth request stays unlabelled
            labels.append({"request_id": f"req-{i}", "label": label if rows > 1 else label[0]})
            truth[version][0].extend(label)
            truth[version][1].extend(predictions)
    write_log(platform, answers)
    assert lab.post(f"{ENDPOINT}/feedback", json={"items": labels}).json() == {"accepted": len(labels)}

    found = lab.get(f"{ENDPOINT}/quality", params={"requests": 1000}).json()
    assert (found["model"], found["window"], found["requests"]) == ("clf", {"requests": 1000}, 120)
    by_version = {v["version"]: v for v in found["versions"]}
    for version, (y, guessed) in truth.items():
        got = by_version[version]
        assert (got["task"], got["requests"], got["labelled"]) == ("classification", 60, len(y))
        assert got["metrics"]["accuracy"] == pytest.approx(metrics.accuracy_score(y, guessed))
        assert got["metrics"]["precision"] == pytest.approx(metrics.precision_score(y, guessed))
        assert got["metrics"]["recall"] == pytest.approx(metrics.recall_score(y, guessed))
    assert lab.get(f"{ENDPOINT}/quality", params={"requests": 10}).json()["requests"] == 10

    compared = lab.get(f"{ENDPOINT}/ab").json()
    assert (compared["a"], compared["b"], compared["alpha"]) == (1, 2, 0.05)
    quality = compared["quality"]
    assert (quality["metric"], quality["n_a"], quality["n_b"]) == ("accuracy", len(truth[1][0]), len(truth[2][0]))
    assert quality["significant"] is True
    assert quality["verdict"].startswith("version 2 is less accurate than version 1")
    assert compared["latency"]["significant"] is True  # version 2's latencies are 1 ms higher by construction
    assert compared["latency"]["verdict"].startswith("version 2 is slower")
    refused(lab.get(f"{ENDPOINT}/ab", params={"a": 1, "b": 1}), 400, "invalid_input", "two different versions")
    assert lab.get(f"{ENDPOINT}/ab", params={"alpha": 2}).status_code == 422


def test_an_empty_window_gives_empty_answers(lab: TestClient) -> None:
    found = lab.get(f"{ENDPOINT}/quality", params={"seconds": 60}).json()
    assert (found["requests"], found["labelled"], found["versions"]) == (0, 0, [])
    refused(lab.get(f"{ENDPOINT}/ab"), 400, "invalid_input", "needs requests from two versions")
