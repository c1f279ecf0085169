from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import shipyard
from shipyard.active_run import git_commit, start_run
from shipyard.client import Client
from shipyard.runtime import Platform


@pytest.fixture
def training() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    features = pd.DataFrame({"tenure": rng.normal(size=60), "spend": rng.normal(size=60)})
    labels = (features["tenure"] + features["spend"] > 0).astype(int).to_numpy()
    return features, labels


def _head_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def test_start_run_finishes_and_records_the_git_commit(client: Client) -> None:
    commit = _head_commit()
    if commit is None:
        pytest.skip("the tests are not running inside a git checkout")
    with start_run("sdk", name="ok", params={"alpha": 0.5}, tags={"team": "a"}, client=client) as run:
        for step in range(20):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.log_metrics({"acc": 0.9})
        run.set_tag("stage", "dev")
    found = client.get_run(run.id)
    assert found["status"] == "finished"
    assert found["end_time"] is not None
    assert found["code_version"] == commit
    assert found["tags"]["git.dirty"] in ("true", "false")
    assert (found["params"], found["tags"]["team"], found["tags"]["stage"]) == ({"alpha": "0.5"}, "a", "dev")
    assert len(client.metric_history(run.id, "loss")) == 20


def test_start_run_outside_a_repository_records_no_commit(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert git_commit() is None
    with start_run("sdk", client=client) as run:
        pass
    found = client.get_run(run.id)
    assert found["code_version"] == ""
    assert "git.dirty" not in found["tags"]


def test_start_run_marks_failed_on_an_exception(client: Client) -> None:
    started: list[str] = []

    def train() -> None:
        with start_run("sdk", client=client) as run:
            started.append(run.id)
            run.log_metric("loss", 1.0)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        train()
    (run_id,) = started
    found = client.get_run(run_id)
    assert found["status"] == "failed"
    assert found["end_time"] is not None
    assert [p["value"] for p in client.metric_history(run_id, "loss")] == [1.0]


def test_flush_makes_every_logged_point_visible(client: Client) -> None:
    run = start_run("sdk", client=client, batch_size=50)
    for step in range(300):
        run.log_metric("x", float(step), step=step)
    run.flush()
    assert [p["step"] for p in client.metric_history(run.id, "x")] == list(range(300))
    run.end()


def test_a_batcher_error_surfaces_on_flush(client: Client) -> None:
    run = start_run("sdk", client=client)
    run.log_metric("not valid!", 1.0)
    with pytest.raises(shipyard.InvalidInput, match="metric key"):
        run.flush()
    run.end()
    assert client.get_run(run.id)["status"] == "finished"


def test_errors_come_back_as_the_same_classes(client: Client, live_url: str) -> None:
    run = client.create_run("errors")
    with pytest.raises(shipyard.NotFound):
        client.get_run("0" * 32)
    client.log_params(run["id"], {"lr": 0.1})
    with pytest.raises(shipyard.ImmutableValue, match="immutable"):
        client.log_params(run["id"], {"lr": 0.2})
    client.create_experiment("twice")
    with pytest.raises(shipyard.AlreadyExists):
        client.create_experiment("twice")
    with pytest.raises(shipyard.InvalidInput):
        client.create_namespace("Not Valid")
    with pytest.raises(shipyard.NotFound):
        client.get_namespace("nowhere")
    user = client.create_user("reader")
    client.grant_role("viewer", user="reader")
    token = client.create_token(user=user["name"], scopes=["read"])["token"]
    with Client(live_url, token) as reader:
        assert reader.get_run(run["id"])["id"] == run["id"]
        with pytest.raises(shipyard.PermissionDenied):
            reader.create_experiment("mine")
        with pytest.raises(shipyard.PermissionDenied):
            reader.create_namespace("team-z")
    with Client(live_url, "shp_wrong") as stranger, pytest.raises(shipyard.Unauthenticated):
        stranger.whoami()
    with Client("http://127.0.0.1:9", "x", retries=0) as offline, pytest.raises(shipyard.ClientError) as raised:
        offline.health()
    assert raised.value.http_status == 0


def test_register_and_load_a_model_with_signature_and_dataset(client: Client, training: tuple[pd.DataFrame, np.ndarray]) -> None:
    features, labels = training
    model = LogisticRegression().fit(features, labels)
    with start_run("models", client=client) as run:
        run.log_metric("acc", 0.75)
        version = run.register_model("churn", model, training_data=features)
    assert version["version"] == 1
    assert version["run_id"] == run.id
    assert version["metrics"] == {"acc": 0.75}
    assert version["signature"] == shipyard.infer_signature(features, model.predict(features[:100]))
    assert version["datasets"][0]["digest"] == shipyard.dataset_digest(features)
    assert version["datasets"][0]["rows"] == len(features)
    loaded = client.load_model("churn", 1)
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))
    client.set_alias("churn", "production", 1)
    by_alias = client.load_model("churn", alias="production")
    np.testing.assert_array_equal(by_alias.predict(features), model.predict(features))
    assert [a["path"] for a in client.list_artifacts(run.id)] == ["model/model.skops"]
    lineage = client.lineage("churn", 1)
    assert lineage["run"]["id"] == run.id


def test_pickled_models_need_trust_on_the_client_too(client: Client) -> None:
    with pytest.raises(shipyard.UntrustedModel):
        client.register_model("blob", {"w": 1}, format="pickle")
    client.register_model("blob", {"w": 1}, format="pickle", trust_pickle=True)
    with pytest.raises(shipyard.UntrustedModel):
        client.load_model("blob", 1)
    assert client.load_model("blob", 1, trust_pickle=True) == {"w": 1}


def test_download_artifact_checks_the_digest(client: Client, platform: Platform, tmp_path: Path) -> None:
    run = client.create_run("files")
    source = tmp_path / "report.txt"
    source.write_bytes(b"all good\n" * 1000)
    uploaded = client.upload_artifact(run["id"], source, "reports/report.txt", media_type="text/plain")
    copy = client.download_artifact(run["id"], "reports/report.txt", tmp_path / "out" / "copy.txt")
    assert copy.read_bytes() == source.read_bytes()
    blob = Path(platform.artifacts.blob_path(uploaded["digest"]))
    blob.chmod(0o644)
    blob.write_bytes(b"all bad!\n" * 1000)
    target = tmp_path / "out" / "corrupt.txt"
    with pytest.raises(shipyard.IntegrityFailure):
        client.download_artifact(run["id"], "reports/report.txt", target)
    assert not target.exists()
    assert list(target.parent.iterdir()) == [copy]


def test_iter_runs_walks_every_page(client: Client) -> None:
    created = {client.create_run("paged", name=f"r{i}")["id"] for i in range(12)}
    client.create_run("elsewhere")
    experiment = client.get_experiment_by_name("paged")
    seen = [r["id"] for r in client.iter_runs(experiment_ids=[experiment["id"]], max_results=5)]
    assert len(seen) == len(created)
    assert set(seen) == created
    first = client.search_runs(experiment_ids=[experiment["id"]], max_results=5)
    assert len(first["runs"]) == 5
    assert first["next_page_token"]
