"""``shipyard up`` runs the monitor loop beside a real gateway: traffic is logged, checked, drift fires an alert.

One ``shipyard up`` (API, a gateway with two workers, the monitor loop) serves a logistic
regression on the bundled breast-cancer data, registered through the SDK with its
training data (so it has a reference profile). Replaying the training rows drifts
nowhere; the same rows with one feature moved by three standard deviations drift on that
feature, the alert rule on it fires, its webhook (a local HTTP server) gets the document,
and ``alert.fired`` is in the event log. Resource use is read from the gateway's /metrics.
Stopping ``up`` stops every process it started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest

from shipyard.client import Client
from tests.conftest import free_port
from tests.serving.gateway.fakes import breast_cancer_models

pytestmark = pytest.mark.slow

NS = "team-a"
DEADLINE_S = 90.0
T = TypeVar("T")


@dataclass
class Up:
    url: str
    gateway: str
    token: str
    log: Path
    process: subprocess.Popen[bytes]
    hook_url: str = ""
    hooks: list[dict[str, Any]] = field(default_factory=list)


def wait_for(what: str, probe: Callable[[], T | None], up: Up) -> T:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        found = probe()
        if found is not None and found is not False:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; log:\n{up.log.read_text(errors='replace')[-6000:]}")


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    port, gateway_port = free_port(), free_port()
    env = {
        **os.environ,
        "SHIPYARD_GATEWAY_PORT": str(gateway_port),
        "SHIPYARD_GATEWAY_POLL_SECONDS": "0.2",
        "SHIPYARD_GATEWAY_PREDICTION_LOG_RATE": "1.0",
        "SHIPYARD_GATEWAY_PREDICTION_LOG_FLUSH_SECONDS": "0.2",
        "SHIPYARD_MONITOR_INTERVAL_S": "1",
    }
    log = tmp_path / "up.log"
    command = [str(Path(sys.executable).parent / "shipyard"), "--home", str(tmp_path / "home"), "up", "--port", str(port)]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [*command, "--no-scheduler"], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    found = Up(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{gateway_port}", "", log, process, received)
    try:
        wait_for("the API", lambda: _ok(f"{found.url}/api/v1/health"), found)
        found.token = (tmp_path / "home" / "admin.token").read_text().strip()
        found.hooks = received
        found.hook_url = f"http://127.0.0.1:{hook.server_address[1]}/hook"
        yield found
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        hook.shutdown()
        hook.server_close()


def _ok(url: str, **kwargs: Any) -> bool:
    try:
        return httpx.get(url, timeout=2, **kwargs).status_code == 200
    except httpx.TransportError:
        return False


def _group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_up_monitors_real_traffic_fires_on_drift_and_stops_with_everything(up: Up) -> None:
    x, model, _ = breast_cancer_models()
    with Client(up.url, up.token) as client:
        client.create_namespace(NS)
        version = client.register_model("bc", model, namespace=NS, training_data=x)
        client.create_endpoint("bc", namespace=NS)
        client.create_revision("bc", [{"model": "bc", "version": int(version["version"]), "weight": 100}], namespace=NS)
        client.put_monitor("bc", window={"requests": 1000}, min_rows=50, interval_seconds=1, namespace=NS)
        client.put_alert_rule(
            "bc-drift", endpoint="bc", measure="drift.feature:feature_0", operator=">=", threshold=1,
            webhook=up.hook_url, namespace=NS,
        )  # fmt: skip
        headers = {"Authorization": f"Bearer {up.token}"}
        predict = f"{up.gateway}/v1/namespaces/{NS}/endpoints/bc:predict"

        def serving() -> bool:
            if not _ok(f"{up.gateway}/v2/health/ready"):
                return False
            return httpx.post(predict, json={"instances": x[:1].tolist()}, headers=headers, timeout=5).status_code == 200

        wait_for("the gateway to serve bc", serving, up)
        with httpx.Client(headers=headers, timeout=10) as http:
            for start in range(0, len(x), 10):
                assert http.post(predict, json={"instances": x[start : start + 10].tolist()}).status_code == 200

        def settled(drifted: bool) -> dict[str, Any] | None:
            for check in client.monitor_checks("bc", limit=5, namespace=NS):
                result = check["result"]
                if result["status"] == "ok" and result["rows"] >= len(x) and check["drifted"] == drifted:
                    return check
            return None

        calm = wait_for("a check over the replayed training rows", lambda: settled(False), up)
        measures = calm["result"]["measures"]
        assert measures["drift.count"] == 0.0
        assert measures["resource.memory_mb"] > 10, calm["result"]["notes"]
        assert measures["resource.workers"] >= 1
        assert client.get_alert_rule("bc-drift", namespace=NS)["state"] == "inactive"

        moved = np.array(x, copy=True)
        moved[:, 0] += 3.0
        with httpx.Client(headers=headers, timeout=10) as http:
            for start in range(0, len(moved), 10):
                assert http.post(predict, json={"instances": moved[start : start + 10].tolist()}).status_code == 200
        drifted = wait_for("a check that sees the drift", lambda: settled(True), up)
        assert "feature_0" in drifted["result"]["drift"]["drifted_features"]
        assert drifted["result"]["measures"]["drift.feature:feature_1"] == 0.0
        wait_for("the alert to fire", lambda: client.get_alert_rule("bc-drift", namespace=NS)["state"] == "firing", up)
        wait_for("the webhook", lambda: up.hooks or None, up)
        assert (up.hooks[0]["alert"], up.hooks[0]["state"], up.hooks[0]["endpoint"]) == ("bc-drift", "firing", "bc")
        fired = client.list_events(kind="alert.fired", namespace=NS)
        assert [e["subject"] for e in fired] == ["bc-drift"]
        # The loop stores the webhook's outcome after the POST returns: wait for that, not for the POST.
        [transition] = wait_for(
            "the webhook's outcome on the transition",
            lambda: [t for t in client.alert_history("bc-drift", namespace=NS) if t["notified"]] or None,
            up,
        )
        assert transition["notified"].startswith("delivered: HTTP 204")

    up.process.send_signal(signal.SIGTERM)
    assert up.process.wait(timeout=30) is not None
    deadline = time.monotonic() + 20
    while _group_alive(up.process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _group_alive(up.process.pid), "the gateway or the monitor loop outlived shipyard up"
