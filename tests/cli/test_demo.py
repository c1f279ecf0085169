"""``make demo``: the quickstart pipeline end to end (deployed, then called through the gateway), on a temporary home."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from shipyard.client import Client

DEMO = Path(__file__).resolve().parents[2] / "examples" / "quickstart" / "demo.py"


def _run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, str(DEMO), *args], capture_output=True, text=True, env=env, timeout=240, check=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
    except httpx.TransportError:
        return False
    return True


@pytest.mark.slow
def test_demo_runs_the_pipeline_deploys_serves_and_leaves_the_server_running(tmp_path: Path) -> None:
    home = tmp_path / "demo-home"
    port, gateway_port = _free_port(), _free_port()
    url, gateway = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{gateway_port}"
    try:
        demo = _run_demo("--home", str(home), "--port", str(port), "--gateway-port", str(gateway_port))
        assert demo.returncode == 0, demo.stdout + demo.stderr
        token = (home / "admin.token").read_text().strip()
        assert token not in demo.stdout

        with Client(url, token) as client:
            production = client.get_model_version("breast-cancer", alias="production")
            lineage = client.lineage("breast-cancer", production["version"])
            endpoint = client.get_endpoint("breast-cancer")
            pipeline_run = client.get_pipeline_run(lineage["pipeline_run"]["id"])
            steps = {s["step"]: s["status"] for s in client.list_step_runs(pipeline_run["id"])}
        # The pipeline ran every step, and the model traces back to it.
        assert pipeline_run["status"] == "succeeded"
        assert pipeline_run["pipeline"] == "quickstart"
        expected = ("ingest", "validate", "split", "train", "evaluate", "gate", "register", "deploy")
        assert steps == dict.fromkeys(expected, "succeeded")
        assert lineage["pipeline_run"]["step"] == "register"
        assert f"pipeline run {pipeline_run['id']}" in demo.stdout
        run_id = lineage["run"]["id"]
        assert f"run {run_id}" in demo.stdout
        assert lineage["datasets"][0]["digest"]
        assert production["signature"]["inputs"]["type"] == "columns"
        assert {"accuracy", "f1", "roc_auc"} <= set(lineage["run"]["metrics"])

        # It was deployed, and the demo's traffic went through the gateway.
        assert endpoint["current"]["routes"] == [{"model": "breast-cancer", "version": production["version"], "weight": 100}]
        assert "Sent 143 requests" in demo.stdout
        assert f"served by breast-cancer:{production['version']}" in demo.stdout
        predict = f"{gateway}/v1/namespaces/default/endpoints/breast-cancer:predict"
        body = (home / "request.json").read_bytes()  # the request the demo leaves for trying by hand
        answer = httpx.post(predict, content=body, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] in ([0], [1])
        assert answer.headers["X-Model-Version"] == f"breast-cancer:{production['version']}"

        assert "/docs" in demo.stdout
        assert predict in demo.stdout
        assert str(home / "admin.token") in demo.stdout
    finally:
        stopped = _run_demo("--stop", "--home", str(home))
    assert stopped.returncode == 0
    assert "Stopped the demo server" in stopped.stdout
    assert not _answers(f"{url}/api/v1/health")
    assert not _answers(f"{gateway}/v2/health/live"), "the gateway stops with the control plane"
    assert not (home / "server.pid").exists()
