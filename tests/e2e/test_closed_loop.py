"""The closed loop end to end on ``shipyard up`` (control plane, gateway, scheduler, monitor loop).

A model trained on the bundled breast-cancer data serves an endpoint. Traffic from the
training distribution raises nothing; traffic with one feature shifted makes the monitor
find drift on that feature alone, the alert fires, its event launches the retraining
pipeline on fresh data, and the new version passes the gate, soaks as a canary and is
promoted. Then fresh data with corrupted labels makes a candidate that looks fine offline;
its canary loses quality on labelled live traffic and is rolled back automatically. Every
step is read back through the API and the audit log.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from shipyard.client import Client
from tests.conftest import free_port
from tests.e2e.test_crash_safety import ServerProcess

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "examples" / "quickstart" / "data" / "breast_cancer.csv"
TEAM = "team-a"
ENDPOINT = "cancer"
SHIFTED = "worst_texture"
DEADLINE_S = 240.0


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerProcess]:
    for key, value in {
        "SHIPYARD_SCHEDULER_INTERVAL_S": "0.3",
        "SHIPYARD_MONITOR_INTERVAL_S": "0.5",
        "SHIPYARD_GATEWAY_PORT": str(free_port()),
        "SHIPYARD_GATEWAY_WORKERS": "1",
        "SHIPYARD_GATEWAY_POLL_SECONDS": "0.2",
        "SHIPYARD_GATEWAY_PREDICTION_LOG_RATE": "1.0",
        "SHIPYARD_GATEWAY_PREDICTION_LOG_FLUSH_SECONDS": "0.2",
    }.items():
        monkeypatch.setenv(key, value)
    logs = tmp_path / "logs"
    logs.mkdir()
    process = ServerProcess(tmp_path / "home", free_port(), None, logs, extra=(), gateway=True)
    process.start()
    yield process
    process.stop()


def waiting(
    what: str, check: Callable[[], Any], server: ServerProcess, deadline_s: float = DEADLINE_S, explain: Callable[[], Any] = str
) -> Any:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} ({explain()}); server log:\n{server.log()[-6000:]}")


class Traffic:
    """Sends rows through the gateway one request each, then their true labels as feedback."""

    def __init__(self, client: Client, gateway: str, token: str) -> None:
        self.client = client
        self.http = httpx.Client(base_url=gateway, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        self.url = f"/v1/namespaces/{TEAM}/endpoints/{ENDPOINT}:predict"
        self.failures = 0

    def send(self, rows: pd.DataFrame) -> list[str]:
        ids, items = [], []
        for _, row in rows.iterrows():
            response = self.http.post(self.url, json={"instances": [row.drop("target").tolist()]})
            if response.status_code != 200:
                self.failures += 1
                continue
            ids.append(response.headers["X-Request-Id"])
            items.append({"request_id": ids[-1], "label": int(row["target"])})
        if items:
            self.client.log_feedback_batch(ENDPOINT, items, namespace=TEAM)
        return ids

    def until(self, rows: pd.DataFrame, done: Callable[[], bool]) -> None:
        """Keep sending ``rows`` (round and round) until ``done``, from this thread."""
        start = 0
        while not done():
            self.send(rows.iloc[start : start + 20])
            start = (start + 20) % max(len(rows) - 20, 1)


def shifted(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the one feature moved by three standard deviations (of the whole data set)."""
    moved = frame.copy()
    moved[SHIFTED] = moved[SHIFTED] + 3 * pd.read_csv(DATA)[SHIFTED].std()
    return moved


def gateway_ready(gateway: str, token: str) -> bool:
    try:
        response = httpx.post(
            f"{gateway}/v1/namespaces/{TEAM}/endpoints/{ENDPOINT}:predict",
            json={"instances": [[1.0] * 30]},
            headers={"Authorization": f"Bearer {token}"},
            timeout=2,
        )
    except httpx.TransportError:
        return False
    return response.status_code == 200


def test_drift_retrains_gates_canaries_and_promotes_and_a_worse_candidate_is_rolled_back(
    server: ServerProcess, tmp_path: Path
) -> None:
    token = (server.home / "admin.token").read_text().strip()
    gateway = f"http://127.0.0.1:{server.env['SHIPYARD_GATEWAY_PORT']}"
    data = pd.read_csv(DATA)
    # The split the quickstart pipeline makes: traffic drawn from it is "from the training distribution".
    train, _ = train_test_split(data, test_size=0.25, random_state=42, stratify=data["target"])
    moved = shifted(train)  # the same rows, which the retrained version will have been trained on
    fresh = tmp_path / "fresh.csv"  # the next batch of data: the feature has moved
    shifted(data).to_csv(fresh, index=False)
    mislabelled = tmp_path / "mislabelled.csv"  # a batch whose labels were corrupted upstream
    shifted(data).assign(target=1 - data["target"]).to_csv(mislabelled, index=False)

    with Client(server.url, token) as client:
        client.create_namespace(TEAM)
        model = Pipeline([("scale", StandardScaler()), ("classifier", LogisticRegression(max_iter=5000))])
        model.fit(train.drop(columns="target"), train["target"])
        client.register_model(
            ENDPOINT, model, training_data=train.drop(columns="target"), metrics={"accuracy": 0.97}, namespace=TEAM
        )
        client.set_alias(ENDPOINT, "production", 1, namespace=TEAM)
        client.deploy(ENDPOINT, ENDPOINT, version=1, namespace=TEAM)
        # The window holds as many requests as the training split has rows: replaying the split gives the
        # reference itself, so no feature can drift by chance (30 p-value tests at 0.05 would, now and then).
        client.put_monitor(ENDPOINT, window={"requests": len(train)}, min_rows=100, interval_seconds=1, namespace=TEAM)
        client.put_alert_rule(
            "cancer-drift", endpoint=ENDPOINT, measure="drift.count", operator=">=", threshold=1, namespace=TEAM
        )
        quickstart = "examples.quickstart.pipeline:quickstart"
        common = {"model": ENDPOINT, "deploy": False, "threshold": 0.9}
        client.put_schedule(
            "retrain-on-drift", quickstart, on_event={"kind": "alert.fired", "subject": "cancer-drift"},
            params={**common, "data": str(fresh)}, workdir=str(REPO), namespace=TEAM,
        )  # fmt: skip
        client.put_schedule(
            "retrain-on-new-data", quickstart, on_event={"kind": "dataset.version", "subject": "catalogue"},
            params={**common, "data": str(mislabelled)}, workdir=str(REPO), namespace=TEAM,
        )  # fmt: skip
        canary = {"weight": 20, "soak_seconds": 4, "min_requests": 15, "min_labels": 10, "max_quality_drop": 0.05}
        client.put_loop(
            ENDPOINT, model=ENDPOINT, gate={"window_requests": 150, "min_samples": 100}, canary=canary, namespace=TEAM
        )
        waiting("the gateway to serve v1", lambda: gateway_ready(gateway, token), server)
        traffic = Traffic(client, gateway, token)

        def wait_until(what: str, check: Callable[[], Any], server: ServerProcess) -> Any:
            return waiting(what, check, server, explain=lambda: _state(client))

        # 1. Traffic like the training data: checks run, nothing drifts, the alert stays quiet.
        traffic.send(train.sample(frac=1, random_state=1))
        check = wait_until("a check over the replayed split", lambda: _latest_check(client, rows=len(train)), server)
        assert check["result"]["measures"]["drift.count"] == 0, check["result"]["features"]
        assert _rule(client)["state"] == "inactive"

        # 2. One feature shifts: drift on it alone, the alert fires, retraining starts.
        traffic.send(moved.sample(frac=1, random_state=2))
        fired = wait_until("the drift alert to fire", lambda: _transition(client, "firing"), server)
        assert fired["detail"]["drifted_features"] == [SHIFTED]
        drifted = [f["feature"] for f in _latest_check(client, rows=len(train))["result"]["features"] if f.get("drifted")]
        assert drifted == [SHIFTED]

        # 3. The retrained version passes the gate on labelled recent traffic, soaks, is promoted.
        cycle = wait_until("a canary", lambda: _cycle(client, ("canary", "promoted", "rejected", "rolled_back")), server)
        assert cycle["state"] != "rejected", cycle["reason"]
        sender = threading.Thread(
            target=traffic.until, args=(moved, lambda: _cycle(client, ("promoted", "rolled_back", "failed")) is not None)
        )
        sender.start()
        done = wait_until("the canary's verdict", lambda: _cycle(client, ("promoted", "rolled_back", "failed")), server)
        sender.join(timeout=60)
        assert done["state"] == "promoted", done["reason"]
        assert done["candidate_version"] == 2
        assert done["detail"]["gate"]["candidate"] > done["detail"]["gate"]["baseline"]
        run = client.get_pipeline_run(done["detail"]["lineage"]["pipeline_run"], namespace=TEAM)
        assert run["trigger"].startswith("schedule/retrain-on-drift/")
        assert _production(client) == 2
        assert _routes(client) == [(2, 100)]

        # 4. A candidate from corrupted data looks fine offline but fails live: rolled back by itself.
        client.put_loop(
            ENDPOINT, model=ENDPOINT, gate={"data": "registry", "min_improvement": -0.05}, canary=canary, namespace=TEAM
        )
        client.emit_event("dataset.version", "catalogue", {"version": 2}, namespace=TEAM)
        wait_until("a second canary", lambda: _cycle(client, ("canary", "rolled_back", "rejected"), version=3), server)
        sender = threading.Thread(
            target=traffic.until, args=(moved, lambda: _cycle(client, ("rolled_back", "promoted"), version=3) is not None)
        )
        sender.start()
        worse = wait_until("the rollback", lambda: _cycle(client, ("rolled_back", "promoted", "failed"), version=3), server)
        sender.join(timeout=60)
        assert worse["state"] == "rolled_back", worse["reason"]
        assert "accuracy" in worse["reason"]
        assert _routes(client) == [(2, 100)]
        assert _production(client) == 2
        assert traffic.failures == 0, "no request may fail while versions are swapped"

        actions = [
            e["action"] for e in reversed(client.audit_events(namespace=TEAM, limit=1000)) if e["action"].startswith("loop ")
        ]
        assert actions == ["loop gating", "loop canary", "loop promoted", "loop gating", "loop canary", "loop rolled_back"]


def _latest_check(client: Client, *, rows: int) -> dict[str, Any] | None:
    checks = client.monitor_checks(ENDPOINT, limit=1, namespace=TEAM)
    if checks and checks[0]["rows"] >= rows and checks[0]["status"] == "ok":
        return checks[0]
    return None


def _rule(client: Client) -> dict[str, Any]:
    return client.get_alert_rule("cancer-drift", namespace=TEAM)


def _transition(client: Client, state: str) -> dict[str, Any] | None:
    return next((t for t in client.alert_history("cancer-drift", namespace=TEAM) if t["to_state"] == state), None)


def _cycle(client: Client, states: tuple[str, ...], *, version: int | None = None) -> dict[str, Any] | None:
    for cycle in client.loop_cycles(ENDPOINT, namespace=TEAM):
        if cycle["state"] in states and (version is None or cycle["candidate_version"] == version):
            return cycle
    return None


def _routes(client: Client) -> list[tuple[int, int]]:
    current = client.get_endpoint(ENDPOINT, namespace=TEAM)["current"]
    return [(r["version"], r["weight"]) for r in current["routes"]]


def _production(client: Client) -> int:
    aliases = client.get_model(ENDPOINT, namespace=TEAM)["aliases"]
    return int(next(a["version"] for a in aliases if a["alias"] == "production"))


def _state(client: Client) -> dict[str, Any]:
    """What a failed wait reports: the loop's cycles, the rule, the newest check."""
    checks = client.monitor_checks(ENDPOINT, limit=1, namespace=TEAM)
    return {
        "cycles": [(c["candidate_version"], c["state"], c["reason"]) for c in client.loop_cycles(ENDPOINT, namespace=TEAM)],
        "rule": _rule(client)["state"],
        "check": {k: checks[0]["result"].get(k) for k in ("status", "message", "version", "rows")} if checks else None,
        "drifted": [f["feature"] for f in checks[0]["result"]["features"] if f.get("drifted")] if checks else None,
        "runs": [(r["pipeline"], r["status"], r.get("error")) for r in client.list_pipeline_runs(namespace=TEAM)],
    }
