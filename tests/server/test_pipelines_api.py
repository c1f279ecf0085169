"""Pipeline runs over the REST API and the SDK: runs, steps, the step cache, logs, blobs, lineage tags."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.linear_model import LogisticRegression

from shipyard.client import Client
from shipyard.client_pipelines import PIPELINE_RUN_TAG, RUN_ID_VARIABLE, STEP_TAG, STEP_VARIABLE, lineage_tags
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.runtime import Platform
from tests.conftest import OTHER, TEAM
from tests.server.test_endpoints_api import bearer, refused

API = "/api/v1"
BASE = f"{API}/namespaces/{TEAM}"
RUNS = f"{BASE}/pipeline-runs"
GRAPH = {"nodes": {"load": {}, "train": {"inputs": {"data": "load"}}}}


def _blob(api: TestClient, data: bytes, namespace: str = TEAM) -> str:
    put = api.put(f"{API}/namespaces/{namespace}/blobs", content=data)
    assert put.status_code == 201, put.text
    digest: str = put.json()["digest"]
    return digest


def _create(api: TestClient, headers: dict[str, str] | None = None, **body: Any) -> httpx.Response:
    return api.post(RUNS, json={"pipeline": "quickstart", "params": {"rows": 10}, "graph": GRAPH, **body}, headers=headers)


def _new_run(api: TestClient, **body: Any) -> dict[str, Any]:
    created = _create(api, **body)
    assert created.status_code == 201, created.text
    run: dict[str, Any] = created.json()
    return run


def _attempt(run_id: str, step: str, attempt: int = 1) -> str:
    return f"{RUNS}/{run_id}/steps/{step}/attempts/{attempt}"


@pytest.fixture
def lab(admin_api: TestClient, teams: tuple[str, str]) -> TestClient:
    return admin_api


def test_runs_are_created_listed_read_and_moved_on(lab: TestClient) -> None:
    first = _new_run(lab, resources={"cpu": 2}, priority=3)
    assert {k: first[k] for k in ("namespace", "pipeline", "params", "graph", "status", "priority", "executor", "resources")} == {
        "namespace": TEAM,
        "pipeline": "quickstart",
        "params": {"rows": 10},
        "graph": GRAPH,
        "status": "running",
        "priority": 3,
        "executor": "local",
        "resources": {"cpu": 2},
    }
    assert (first["created_by"], first["error"], first["resumed_from"], first["finished_at"]) == ("admin", None, None, None)
    assert lab.put(f"{BASE}/quota", json={"concurrent_runs": 1, "cpu": 8}).status_code == 200  # the next run waits
    queued = _new_run(lab, pipeline="fine-tune", executor="ray", resumed_from=first["id"])
    assert (queued["status"], queued["started_at"], queued["resumed_from"]) == ("queued", None, first["id"])

    assert [r["id"] for r in lab.get(RUNS).json()] == [queued["id"], first["id"]]
    assert [r["id"] for r in lab.get(RUNS, params={"pipeline": "fine-tune"}).json()] == [queued["id"]]
    assert [r["id"] for r in lab.get(RUNS, params={"status": "running"}).json()] == [first["id"]]
    assert [r["id"] for r in lab.get(RUNS, params={"limit": 1}).json()] == [queued["id"]]
    assert lab.get(f"{RUNS}/{first['id']}").json() == first

    moved = lab.patch(f"{RUNS}/{first['id']}", json={"status": "failed", "error": "step 'train' failed"})
    assert moved.status_code == 200, moved.text
    assert (moved.json()["status"], moved.json()["error"]) == ("failed", "step 'train' failed")
    assert moved.json()["finished_at"] is not None
    admitted = lab.get(f"{RUNS}/{queued['id']}").json()
    assert (admitted["status"], admitted["started_at"] is not None) == ("running", True), "the freed slot goes to the queue"
    refused(lab.patch(f"{RUNS}/{first['id']}", json={"status": "running"}), 409, "conflict", "cannot become running", "resume")
    assert lab.patch(f"{RUNS}/{first['id']}", json={"status": "failed"}).status_code == 200  # a retried PATCH is harmless

    refused(lab.get(f"{RUNS}/{'0' * 32}"), 404, "not_found", "does not exist")
    refused(_create(lab, status="running"), 422, "invalid_input", "status")  # only admission starts a run
    refused(_create(lab, resources={"cpu": 64}), 400, "invalid_input", "asks for 64 cpu", "quota")
    refused(_create(lab, executor="slurm"), 422, "invalid_input", "executor")
    refused(_create(lab, pipeline="has space"), 400, "invalid_input", "pipeline name")
    refused(_create(lab, colour="red"), 422, "invalid_input", "colour")
    refused(_create(lab, resumed_from="0" * 32), 404, "not_found", "0" * 32)
    refused(lab.get(RUNS, params={"status": "done"}), 422, "invalid_input", "status")
    refused(lab.get(RUNS, params={"limit": 0}), 422, "invalid_input", "limit")


def test_steps_are_upserted_listed_and_found_in_the_cache(lab: TestClient) -> None:
    run = _new_run(lab)
    digest = _blob(lab, b"rows")
    running = lab.put(_attempt(run["id"], "load"), json={"status": "running", "cache_key": "key-load", "inputs": {}})
    assert running.status_code == 200, running.text
    assert (running.json()["status"], running.json()["attempt"], running.json()["cache_key"]) == ("running", 1, "key-load")
    output = {"digest": digest, "materializer": "json", "size": 4, "description": {"rows": 1}}
    done = lab.put(_attempt(run["id"], "load"), json={"status": "succeeded", "outputs": {"output": output}})
    assert done.status_code == 200, done.text
    assert (done.json()["id"], done.json()["outputs"]) == (running.json()["id"], {"output": output})
    assert lab.put(_attempt(run["id"], "load"), json={"status": "succeeded", "outputs": {"output": output}}).status_code == 200
    refused(lab.put(_attempt(run["id"], "load"), json={"status": "failed"}), 409, "conflict", "cannot become failed")

    failed = lab.put(_attempt(run["id"], "train"), json={"status": "failed", "error": "ValueError: no"})
    assert failed.status_code == 200, failed.text
    retried = lab.put(_attempt(run["id"], "train", 2), json={"status": "running", "inputs": {"data": output | {"rows": 1}}})
    refused(retried, 422, "invalid_input", "rows")
    retried = lab.put(_attempt(run["id"], "train", 2), json={"status": "running", "inputs": {"data": output}})
    assert retried.status_code == 200, retried.text
    steps = lab.get(f"{RUNS}/{run['id']}/steps").json()
    assert [(s["step"], s["attempt"], s["status"]) for s in steps] == [
        ("load", 1, "succeeded"),
        ("train", 1, "failed"),
        ("train", 2, "running"),
    ]

    hit = lab.get(f"{BASE}/step-cache/key-load")
    assert hit.status_code == 200, hit.text
    assert hit.json() == done.json()
    refused(lab.get(f"{BASE}/step-cache/key-none"), 404, "not_found", "key-none")
    refused(lab.get(f"{API}/namespaces/{OTHER}/step-cache/key-load"), 404, "not_found", "key-load")
    refused(lab.get(f"{BASE}/step-cache/bad key"), 422, "invalid_input", "cache_key")

    refused(lab.put(_attempt(run["id"], "load", 0), json={}), 422, "invalid_input", "attempt")
    refused(lab.put(_attempt(run["id"], "load"), json={"status": "done"}), 422, "invalid_input", "status")
    refused(
        lab.put(_attempt(run["id"], "x"), json={"outputs": {"o": {"digest": "abc", "materializer": "j"}}}), 422, "invalid_input"
    )
    refused(lab.put(_attempt(run["id"], "x"), json={"cached_from": "nope"}), 400, "invalid_input", "cached_from")
    refused(lab.put(_attempt("0" * 32, "load"), json={}), 404, "not_found")
    assert lab.patch(f"{RUNS}/{run['id']}", json={"status": "succeeded"}).status_code == 200
    refused(lab.put(_attempt(run["id"], "late"), json={}), 409, "conflict", "has succeeded")


def test_a_finished_attempt_is_reported_in_one_request(lab: TestClient) -> None:
    run = _new_run(lab)
    data = b'{"rows": 3}'
    digest = hashlib.sha256(data).hexdigest()
    usage = {"cpu_seconds": 0.5, "max_rss_mb": 96.0}
    report = {
        "status": "succeeded",
        "cache_key": "key-load",
        "inputs": {},
        "outputs": {"output": {"digest": digest, "materializer": "json", "size": len(data)}},
        "usage": usage,
        "started_at": 1_000,
        "finished_at": 2_000,
        "blobs": {digest: base64.b64encode(data).decode()},
        "logs": [{"message": "loaded 3 rows", "step": "load", "attempt": 1, "run": run["id"]}],
    }
    done = lab.put(_attempt(run["id"], "load"), json=report)
    assert done.status_code == 200, done.text
    assert {k: done.json()[k] for k in ("status", "usage", "started_at", "finished_at")} == {
        "status": "succeeded",
        "usage": usage,
        "started_at": 1_000,
        "finished_at": 2_000,
    }
    assert lab.get(f"{BASE}/blobs/{digest}").content == data
    assert [line["message"] for line in lab.get(f"{RUNS}/{run['id']}/logs").json()] == ["loaded 3 rows"]
    assert lab.put(_attempt(run["id"], "load"), json=report).status_code == 200, "a retried report is accepted"
    assert len(lab.get(f"{RUNS}/{run['id']}/logs").json()) == 1, "and adds no lines"
    assert lab.get(f"{RUNS}/{run['id']}/steps").json()[0]["usage"] == usage

    bad = {digest: base64.b64encode(b"other bytes").decode()}
    refused(lab.put(_attempt(run["id"], "x"), json={"blobs": bad}), 400, "invalid_input", "sha256")
    refused(lab.put(_attempt(run["id"], "x"), json={"blobs": {digest: "not base64!"}}), 422, "invalid_input", "base64")
    refused(lab.put(_attempt(run["id"], "x"), json={"usage": {"cpu_seconds": -1, "max_rss_mb": 1}}), 422, "invalid_input")
    refused(lab.put(_attempt(run["id"], "x"), json={"usage": {"cpu_seconds": 1}}), 422, "invalid_input", "max_rss_mb")
    assert [s["step"] for s in lab.get(f"{RUNS}/{run['id']}/steps").json()] == ["load"]


def test_a_cache_hit_is_looked_up_and_recorded_in_one_request(lab: TestClient) -> None:
    first = _new_run(lab)
    digest = _blob(lab, b"rows")
    output = {"digest": digest, "materializer": "json", "size": 4}
    source = lab.put(
        _attempt(first["id"], "load"), json={"status": "succeeded", "cache_key": "key-load", "outputs": {"output": output}}
    )
    assert source.status_code == 200, source.text
    second = _new_run(lab)
    url = _attempt(second["id"], "load") + ":from-cache"
    miss = lab.post(url, json={"cache_key": "key-none"})
    assert (miss.status_code, miss.content) == (204, b"")
    hit = lab.post(url, json={"cache_key": "key-load", "inputs": {}, "executor": "local"})
    assert hit.status_code == 201, hit.text
    assert {k: hit.json()[k] for k in ("status", "cached_from", "outputs", "cache_key")} == {
        "status": "cached",
        "cached_from": source.json()["id"],
        "outputs": {"output": output},
        "cache_key": "key-load",
    }
    assert [s["step"] for s in lab.get(f"{RUNS}/{second['id']}/steps").json()] == ["load"]
    refused(lab.post(url, json={"cache_key": "bad key"}), 422, "invalid_input", "cache_key")
    refused(lab.post(_attempt(second["id"], "load", 0) + ":from-cache", json={"cache_key": "k"}), 422, "invalid_input")


def test_logs_are_appended_and_paged(lab: TestClient) -> None:
    run = _new_run(lab)
    logs = f"{RUNS}/{run['id']}/logs"
    lines = [
        {"message": f"line {n}", "step": "load", "attempt": 1, "ts": 1000 + n, "level": "INFO", "run": run["id"]}
        for n in range(3)
    ]
    lines.append({"message": "boom", "step": "train", "attempt": 1, "level": "ERROR", "extra": {"logger": "train"}})
    appended = lab.post(logs, json={"lines": lines})
    assert appended.status_code == 204, appended.text
    every = lab.get(logs).json()
    assert [line["message"] for line in every] == ["line 0", "line 1", "line 2", "boom"]
    assert every[3] | {"id": 0, "ts": 0} == {
        "id": 0,
        "step": "train",
        "attempt": 1,
        "ts": 0,
        "level": "ERROR",
        "message": "boom",
        "extra": {"logger": "train"},
    }
    page = lab.get(logs, params={"limit": 2}).json()
    assert [line["message"] for line in page] == ["line 0", "line 1"]
    rest = lab.get(logs, params={"after": page[-1]["id"]}).json()
    assert [line["message"] for line in rest] == ["line 2", "boom"]
    assert [line["message"] for line in lab.get(logs, params={"step": "train"}).json()] == ["boom"]

    refused(lab.post(logs, json={"lines": [{"message": "m"}] * 10_001}), 422, "invalid_input", "lines")
    refused(lab.post(logs, json={"lines": [{"message": "é" * 40_000}]}), 400, "invalid_input", "at most 65536")
    refused(lab.post(logs, json={"lines": [{"message": "m", "run": "other"}]}), 400, "invalid_input", "belongs to run 'other'")
    refused(lab.post(logs, json={"lines": [{"step": "load"}]}), 422, "invalid_input", "message")
    refused(lab.get(logs, params={"limit": 10_001}), 422, "invalid_input", "limit")
    refused(lab.get(logs, params={"after": -1}), 422, "invalid_input", "after")
    assert len(lab.get(logs).json()) == 4


def test_blobs_download_only_from_the_namespace_that_holds_them(lab: TestClient) -> None:
    data = b"materialized step output"
    digest = _blob(lab, data)
    got = lab.get(f"{BASE}/blobs/{digest}")
    assert got.status_code == 200, got.text
    assert got.content == data
    assert (got.headers["X-Shipyard-Digest"], got.headers["Content-Length"]) == (digest, str(len(data)))
    refused(lab.get(f"{API}/namespaces/{OTHER}/blobs/{digest}"), 404, "not_found", "has not been uploaded")
    refused(lab.get(f"{BASE}/blobs/{hashlib.sha256(b'never').hexdigest()}"), 404, "not_found")
    refused(lab.get(f"{BASE}/blobs/not-a-digest"), 422, "invalid_input", "digest")


def test_outsiders_get_404_and_viewers_cannot_write(lab: TestClient, platform: Platform) -> None:
    run = _new_run(lab)
    digest = _blob(lab, b"out")
    assert lab.put(_attempt(run["id"], "load"), json={"status": "succeeded", "cache_key": "k"}).status_code == 200
    outsider = bearer(platform, "outsider", {OTHER: "admin"})
    viewer = bearer(platform, "viewer", {TEAM: "viewer"})
    reads = [
        ("GET", RUNS, None),
        ("GET", f"{RUNS}/{run['id']}", None),
        ("GET", f"{RUNS}/{run['id']}/steps", None),
        ("GET", f"{RUNS}/{run['id']}/logs", None),
        ("GET", f"{BASE}/step-cache/k", None),
        ("GET", f"{BASE}/blobs/{digest}", None),
    ]
    writes = [
        ("POST", RUNS, {"pipeline": "p"}),
        ("PATCH", f"{RUNS}/{run['id']}", {"status": "cancelled"}),
        ("PUT", _attempt(run["id"], "train"), {"status": "running"}),
        ("POST", _attempt(run["id"], "train") + ":from-cache", {"cache_key": "k"}),
        ("POST", f"{RUNS}/{run['id']}/logs", {"lines": [{"message": "x"}]}),
    ]
    for method, url, body in reads + writes:
        refused(lab.request(method, url, json=body, headers=outsider), 404, "not_found", TEAM)
    for method, url, body in reads:
        assert lab.request(method, url, json=body, headers=viewer).status_code == 200, url
    for method, url, body in writes:
        refused(lab.request(method, url, json=body, headers=viewer), 403, "permission_denied", "may not write")
    after = lab.get(f"{RUNS}/{run['id']}").json()
    assert after["status"] == "running"
    assert [s["step"] for s in lab.get(f"{RUNS}/{run['id']}/steps").json()] == ["load"]
    assert lab.get(f"{RUNS}/{run['id']}/logs").json() == []


# -- the SDK ------------------------------------------------------------------------------


def test_the_sdk_records_a_pipeline_run(client: Client, teams: tuple[str, str]) -> None:
    run = client.create_pipeline_run("quickstart", params={"rows": 10}, graph=GRAPH, resources={"cpu": 1}, namespace=TEAM)
    assert (run["status"], run["executor"], run["resources"]) == ("running", "local", {"cpu": 1})
    client.set_quota(concurrent_runs=1, namespace=TEAM)
    queued = client.create_pipeline_run("quickstart", params={}, graph={}, priority=2, trigger="schedule/x/1", namespace=TEAM)
    assert (queued["status"], queued["trigger"], queued["priority"]) == ("queued", "schedule/x/1", 2)
    assert client.get_pipeline_run(run["id"], namespace=TEAM) == run
    assert [r["id"] for r in client.list_pipeline_runs(namespace=TEAM)] == [queued["id"], run["id"]]
    assert [r["id"] for r in client.list_pipeline_runs(status="queued", namespace=TEAM)] == [queued["id"]]
    assert client.list_pipeline_runs(pipeline="ghost", namespace=TEAM) == []
    assert [r["id"] for r in client.list_pipeline_runs(limit=1, namespace=TEAM)] == [queued["id"]]

    data = b"load output"
    digest = client.upload_blob(data, namespace=TEAM)["digest"]
    assert client.download_blob(digest, namespace=TEAM) == data
    with pytest.raises(NotFound):
        client.download_blob(digest, namespace=OTHER)

    assert client.cached_step("k-load", namespace=TEAM) is None
    assert client.record_cached_step(run["id"], "load", 1, cache_key="k-load", namespace=TEAM) is None
    client.record_step(run["id"], "load", 1, status="running", cache_key="k-load", inputs={}, namespace=TEAM)
    output = {"digest": digest, "materializer": "bytes", "size": len(data), "description": {}}
    done = client.record_step(run["id"], "load", 1, status="succeeded", outputs={"output": output}, namespace=TEAM)
    assert (done["status"], done["outputs"], done["usage"]) == ("succeeded", {"output": output}, None)
    small = b"small output"
    small_digest = hashlib.sha256(small).hexdigest()
    usage = {"cpu_seconds": 0.01, "max_rss_mb": 50.0}
    reported = client.record_step(
        run["id"], "split", 1, status="succeeded", cache_key="k-split", inputs={"frame": output},
        outputs={"output": {"digest": small_digest, "materializer": "bytes"}}, usage=usage,
        blobs={small_digest: small}, logs=[{"message": "split", "step": "split", "attempt": 1}], namespace=TEAM,
    )  # fmt: skip
    assert (reported["status"], reported["usage"]) == ("succeeded", usage)
    assert client.download_blob(small_digest, namespace=TEAM) == small
    hit = client.cached_step("k-load", namespace=TEAM)
    assert hit is not None
    assert hit["id"] == done["id"]
    cached = client.record_step(
        queued["id"],
        "load",
        1,
        status="cached",
        cache_key="k-load",
        cached_from=hit["id"],
        outputs=hit["outputs"],
        namespace=TEAM,
    )
    assert cached["cached_from"] == done["id"]
    again = client.record_cached_step(queued["id"], "split", 1, cache_key="k-split", inputs={"frame": output}, namespace=TEAM)
    assert again is not None
    assert (again["status"], again["cached_from"]) == ("cached", reported["id"])
    assert [s["step"] for s in client.list_step_runs(run["id"], namespace=TEAM)] == ["load", "split"]
    with pytest.raises(InvalidInput):
        client.record_step(run["id"], "load", 2, colour="red", namespace=TEAM)

    client.append_logs(run["id"], [{"message": f"m{n}", "step": "load", "attempt": 1} for n in range(5)], namespace=TEAM)
    client.append_logs(run["id"], [{"message": "done"}], namespace=TEAM)
    first = client.read_logs(run["id"], limit=4, namespace=TEAM)
    assert [line["message"] for line in first] == ["split", "m0", "m1", "m2"]
    rest = client.read_logs(run["id"], after=first[-1]["id"], namespace=TEAM)
    assert [line["message"] for line in rest] == ["m3", "m4", "done"]
    assert [line["message"] for line in client.read_logs(run["id"], step="", namespace=TEAM)] == ["done"]

    finished = client.update_pipeline_run(run["id"], status="succeeded", namespace=TEAM)
    assert (finished["status"], finished["error"]) == ("succeeded", None)
    assert client.update_pipeline_run(run["id"], status="succeeded", namespace=TEAM)["finished_at"] == finished["finished_at"]
    with pytest.raises(Conflict):
        client.update_pipeline_run(run["id"], status="running", namespace=TEAM)
    assert client.update_pipeline_run(queued["id"], status="cancelled", error="stopped", namespace=TEAM)["error"] == "stopped"


def test_lineage_tags_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert lineage_tags({"a": "1"}) == {"a": "1"}
    monkeypatch.setenv(STEP_VARIABLE, "run-1/train")
    assert lineage_tags(None) == {PIPELINE_RUN_TAG: "run-1", STEP_TAG: "train"}
    monkeypatch.setenv(RUN_ID_VARIABLE, "run-1")
    assert lineage_tags({STEP_TAG: "mine"}) == {PIPELINE_RUN_TAG: "run-1", STEP_TAG: "mine"}
    monkeypatch.setenv(STEP_VARIABLE, "run-2/train")  # a step of another run names no step of this one
    assert lineage_tags({}) == {PIPELINE_RUN_TAG: "run-1"}
    monkeypatch.delenv(STEP_VARIABLE)
    assert lineage_tags({}) == {PIPELINE_RUN_TAG: "run-1"}


def test_runs_and_models_made_inside_a_step_trace_back_to_it(
    client: Client, teams: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline_run = client.create_pipeline_run("fine-tune", params={}, graph={}, namespace=TEAM)
    monkeypatch.setenv(RUN_ID_VARIABLE, pipeline_run["id"])
    monkeypatch.setenv(STEP_VARIABLE, f"{pipeline_run['id']}/train")
    expected_tags = {PIPELINE_RUN_TAG: pipeline_run["id"], STEP_TAG: "train"}
    run = client.create_run("exp", tags={"team": "a"}, namespace=TEAM)
    assert client.get_run(run["id"], namespace=TEAM)["tags"] == {"team": "a", **expected_tags}

    features = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.2], [0.9, 0.9]])
    model = LogisticRegression().fit(features, [0, 1, 0, 1])
    version = client.register_model("churn", model, training_data=features, run_id=run["id"], tags={"k": "v"}, namespace=TEAM)
    assert version["tags"] == {"k": "v", **expected_tags}
    entry = {"id": pipeline_run["id"], "pipeline": "fine-tune", "status": "running", "step": "train"}
    assert client.lineage("churn", version["version"], namespace=TEAM)["pipeline_run"] == entry

    # Made outside any step, but from a run that was made inside one: found through the run.
    monkeypatch.delenv(RUN_ID_VARIABLE)
    monkeypatch.delenv(STEP_VARIABLE)
    digest = client.upload_blob(b"weights", namespace=TEAM)["digest"]
    plain = client.create_model_version("churn", artifact_digest=digest, format="onnx", run_id=run["id"], namespace=TEAM)
    assert plain["tags"] == {}
    assert client.lineage("churn", plain["version"], namespace=TEAM)["pipeline_run"] == entry
    alone = client.create_model_version("churn", artifact_digest=digest, format="onnx", namespace=TEAM)
    assert client.lineage("churn", alone["version"], namespace=TEAM)["pipeline_run"] is None
