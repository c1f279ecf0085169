"""``make demo``: the quickstart script end to end, on a temporary home and a free port."""

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
        httpx.get(f"{url}/api/v1/health", timeout=2)
    except httpx.TransportError:
        return False
    return True


@pytest.mark.slow
def test_demo_trains_registers_promotes_and_leaves_the_server_running(tmp_path: Path) -> None:
    home = tmp_path / "demo-home"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    try:
        demo = _run_demo("--home", str(home), "--port", str(port))
        assert demo.returncode == 0, demo.stdout + demo.stderr
        token = (home / "admin.token").read_text().strip()
        assert token not in demo.stdout

        with Client(url, token) as client:
            production = client.get_model_version("breast-cancer", alias="production")
            lineage = client.lineage("breast-cancer", production["version"])
        run_id = lineage["run"]["id"]
        assert f"run {run_id}" in demo.stdout
        assert lineage["datasets"][0]["digest"]
        assert production["signature"]["inputs"]["type"] == "columns"
        assert {"accuracy", "roc_auc", "train_loss", "val_accuracy"} <= set(lineage["run"]["metrics"])
        assert "/docs" in demo.stdout
        assert str(home / "admin.token") in demo.stdout
    finally:
        stopped = _run_demo("--stop", "--home", str(home))
    assert stopped.returncode == 0
    assert "Stopped the demo server" in stopped.stdout
    assert not _answers(url)
    assert not (home / "server.pid").exists()
