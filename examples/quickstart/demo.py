"""Quickstart: start Shipyard, run the quickstart pipeline end to end, send it traffic, and trace the model back.

    make demo          # or: .venv/bin/python examples/quickstart/demo.py [--home DIR] [--port N] [--executor ray]
    make demo-stop     # or: .venv/bin/python examples/quickstart/demo.py --stop

The pipeline (``pipeline.py`` beside this file) ingests and validates the bundled data,
splits it, trains, evaluates, gates on accuracy, registers the model with its lineage and
deploys it; the demo then calls the endpoint through the serving gateway with the held-out
rows. The server (control plane and gateway) keeps running after the script ends so that
the API, /docs, the gateway and the CLI can be explored; its process id is in
<home>/server.pid. Running the demo again stops it and starts over from a fresh home.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

import shipyard
from shipyard.cli.lineage import lineage_tree
from shipyard.pipelines import Pipeline
from shipyard.pipelines.launcher import run_pipeline
from shipyard.pipelines.runner import RunResult

REPO = Path(__file__).resolve().parents[2]
DEFAULT_HOME = REPO / ".shipyard-demo"
DEFAULT_PORT = 8420
DEFAULT_GATEWAY_PORT = 8421
NAMESPACE = "default"
PIPELINE = "examples.quickstart.pipeline:quickstart"
EXPERIMENT = "quickstart"
MODEL = "breast-cancer"
ENDPOINT = "breast-cancer"
START_TIMEOUT_S = 60
SERVE_TIMEOUT_S = 60
STOP_TIMEOUT_S = 15
REQUEST_FILE = "request.json"  # in the home folder: a ready-made request body for trying the endpoint by hand

console = Console()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help=f"Home folder for the demo (default {DEFAULT_HOME}).")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="API port; a free one is used if it is busy.")
    parser.add_argument(
        "--gateway-port", type=int, default=DEFAULT_GATEWAY_PORT, help="Serving gateway port; a free one is used if it is busy."
    )
    parser.add_argument(
        "--executor", choices=("local", "ray"), default="local", help="Run the steps as local processes or Ray tasks."
    )
    parser.add_argument("--stop", action="store_true", help="Stop the demo server and exit.")
    return parser.parse_args(argv)


# -- the server ---------------------------------------------------------------------


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does, so TIME_WAIT is no obstacle
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def any_free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A stopped server nobody has reaped yet is a zombie: finished, though it still has a pid.
    with contextlib.suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _looks_like_shipyard(pid: int) -> bool:
    """Guard against a stale pid file naming a process that is not ours any more (Linux can tell)."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.exists():
        return True
    return b"shipyard" in cmdline.read_bytes()


def _descendants(pid: int) -> list[int]:
    """The processes ``pid`` started, and theirs (Linux can tell, from /proc; elsewhere none are known)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def stop_server(home: Path) -> bool:
    """Stop the server whose pid is in <home>/server.pid, and the gateway it started; True if one was running."""
    pid_file = home / "server.pid"
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return False
    stopped = False
    if _is_running(pid) and _looks_like_shipyard(pid):
        # `shipyard up` ends as soon as its API has stopped; the gateway (and its workers)
        # follow a moment later, so wait for them too: a new demo may want their port.
        family = [pid, *_descendants(pid)]
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while any(_is_running(p) for p in family) and time.monotonic() < deadline:
            time.sleep(0.1)
        for left in (p for p in family if _is_running(p) and _looks_like_shipyard(p)):
            os.kill(left, signal.SIGKILL)
        stopped = True
    pid_file.unlink(missing_ok=True)
    return stopped


def free_or_any(port: int, what: str) -> int:
    if port_is_free(port):
        return port
    found = any_free_port()
    console.print(f"Port {port} is busy; the {what} uses {found}.")
    return found


def start_server(home: Path, port: int, gateway_port: int) -> tuple[subprocess.Popen[bytes], str, str]:
    """Run ``shipyard up`` (control plane and gateway) in the background on a fresh home; output goes to <home>/server.log."""
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    shipyard_cli = Path(sys.executable).with_name("shipyard")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env["SHIPYARD_GATEWAY_PORT"] = str(gateway_port)
    env["SHIPYARD_GATEWAY_WORKERS"] = "1"  # one worker process is plenty for a demo, and starts fastest on a laptop
    env["SHIPYARD_GATEWAY_PREDICTION_LOG_RATE"] = "1.0"  # keep every request of the demo's traffic in the log
    with open(home / "server.log", "wb") as log:
        process = subprocess.Popen(
            [str(shipyard_cli), "--home", str(home), "up", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # keeps serving after this script (and its terminal's Ctrl-C) is gone
        )
    (home / "server.pid").write_text(f"{process.pid}\n")
    return process, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{gateway_port}"


def wait_until_healthy(process: subprocess.Popen[bytes], urls: list[str], home: Path) -> None:
    """Until every URL answers 200 (the API's and the gateway's health routes)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    waiting = list(urls)
    while waiting and time.monotonic() < deadline:
        if process.poll() is not None:
            log = (home / "server.log").read_text(errors="replace")[-2000:]
            raise SystemExit(f"shipyard up exited with code {process.returncode}:\n{log}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(waiting[0], timeout=1).status_code == 200:
                waiting.pop(0)
                continue
        time.sleep(0.1)
    if waiting:
        stop_server(home)
        raise SystemExit(f"Shipyard did not answer on {waiting[0]} within {START_TIMEOUT_S} s; see {home / 'server.log'}")


# -- the pipeline ---------------------------------------------------------------------


def load_pipeline() -> Pipeline:
    """The quickstart pipeline, imported by its package name from the repository root.

    Step processes import the steps again by the name they were imported under, so it
    must come in as ``examples.quickstart.pipeline``, not as a module ``pipeline`` from
    this script's folder (which Python puts first on sys.path).
    """
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    module, _, name = PIPELINE.partition(":")
    found: Pipeline = getattr(importlib.import_module(module), name)
    return found


class StepBoard:
    """A Rich progress bar over the steps, fed by the runner's events (``on_event``)."""

    def __init__(self, steps: int) -> None:
        columns = (TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        self.progress = Progress(*columns, console=console)
        self.task = self.progress.add_task("pipeline", total=steps)

    def __call__(self, kind: str, node: str, details: Mapping[str, Any]) -> None:
        if kind == "started":
            self.progress.update(self.task, description=f"running {node}")
        if kind in ("succeeded", "cached"):
            self.progress.advance(self.task)
        error = escape(str(details.get("error")))
        note = {
            "cached": f"  [green]{node}[/green] reused from the cache",
            "succeeded": f"  [green]{node}[/green] done in {details.get('seconds', 0):.2f} s",
            "retrying": f"  [yellow]{node}[/yellow] failed, retrying in {details.get('delay', 0):g} s: {error}",
            "failed": f"  [red]{node}[/red] failed: {error}",
        }.get(kind)
        if note:
            self.progress.console.print(note, highlight=False)


def run_quickstart(client: shipyard.Client, executor: str) -> RunResult:
    quickstart = load_pipeline()
    params = {"model": MODEL, "endpoint": ENDPOINT, "deploy": True}
    steps = list(quickstart.build(**params).nodes)  # checked before anything runs
    console.print(f"Running [bold]{PIPELINE}[/bold] on the {executor} executor: {' -> '.join(steps)}")
    board = StepBoard(len(steps))
    with board.progress:
        result = run_pipeline(quickstart, params, namespace=NAMESPACE, executor=executor, client=client, on_event=board)
        board.progress.update(board.task, description=f"pipeline {result.status}")
    return result


# -- the traffic ----------------------------------------------------------------------


def predict_url(gateway: str) -> str:
    return f"{gateway}/v1/namespaces/{NAMESPACE}/endpoints/{ENDPOINT}:predict"


def wait_until_served(http: httpx.Client, gateway: str, row: Mapping[str, float], version: int) -> None:
    """The gateway follows the control plane by polling; wait until it answers with the new version (loaded and warmed)."""
    expected = f"{MODEL}:{version}"
    deadline = time.monotonic() + SERVE_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            response = http.post(predict_url(gateway), json={"instances": [row]})
            if response.status_code == 200 and response.headers.get("X-Model-Version") == expected:
                return
        time.sleep(0.2)
    raise SystemExit(f"the gateway {gateway} did not serve {expected} within {SERVE_TIMEOUT_S} s; see the server log")


def send_traffic(http: httpx.Client, gateway: str, test: pd.DataFrame) -> dict[str, Any]:
    """One request per held-out row, as a client would send them; the answers are scored against the labels."""
    labels = test["target"].tolist()
    rows = test.drop(columns="target").to_dict(orient="records")
    latencies, predictions, versions = [], [], set()
    for row in rows:
        started = time.perf_counter()
        response = http.post(predict_url(gateway), json={"instances": [row]})
        latencies.append(time.perf_counter() - started)
        response.raise_for_status()
        predictions.append(response.json()["predictions"][0])
        versions.add(response.headers.get("X-Model-Version"))
    right = sum(int(p == y) for p, y in zip(predictions, labels, strict=True))
    milliseconds = np.array(latencies) * 1000
    return {
        "requests": len(rows),
        "accuracy": right / len(rows),
        "versions": sorted(versions),
        "p50_ms": float(np.percentile(milliseconds, 50)),
        "p99_ms": float(np.percentile(milliseconds, 99)),
    }


# -- the tour ---------------------------------------------------------------------


def _shown(path: Path) -> str:
    """A path as short as it can be for copying: relative to where the demo was started, when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def where_to_look(url: str, gateway: str, home: Path, run_id: str, version: int | None) -> None:
    cli = _shown(Path(sys.executable).with_name("shipyard"))
    if home == DEFAULT_HOME:
        stop = "make demo-stop"
    else:
        stop = f"{_shown(Path(sys.executable))} {_shown(Path(__file__).resolve())} --stop --home {home}"
    token_file = home / "admin.token"
    lines = [
        "[bold]Where to look[/bold]",
        f"  API             {url}/api/v1",
        f"  API docs        {url}/docs",
        f"  Gateway         {predict_url(gateway)}",
        f"  Token file      {token_file}  (the platform admin's; keep it private)",
        f"  Prediction log  {home / 'predictions'}  (Parquet, written every few seconds)",
        f"  Server log      {home / 'server.log'}",
        "",
        "[bold]Try the CLI[/bold] (from the repository root)",
        f"  export SHIPYARD_HOME={home}",
        f"  export SHIPYARD_URL={url}",
        f"  {cli} pipeline runs",
        f"  {cli} pipeline show {run_id}",
        f"  {cli} logs {run_id} --step train",
        f"  {cli} runs list --experiment {EXPERIMENT} --order-by 'metrics.roc_auc DESC'",
        f"  {cli} models versions {MODEL}",
    ]
    if version is not None:
        lines += [f"  {cli} models lineage {MODEL} {version}", f"  {cli} endpoint revisions {ENDPOINT}"]
    lines += [
        f"  {cli} pipeline run {PIPELINE}                     # all from the cache but deploy",
        f"  {cli} pipeline run {PIPELINE} -p threshold=0.99   # the gate stops it",
        f"  {cli} audit --limit 10",
        "",
        "[bold]Call the endpoint[/bold] (one held-out row is in request.json)",
        f'  curl -H "Authorization: Bearer $(cat {token_file})" -d @{home / REQUEST_FILE} \\',
        f"       {predict_url(gateway)}",
        "",
        f"[bold]Stop the server[/bold]  {stop}",
    ]
    for line in lines:
        console.print(line, soft_wrap=True, highlight=False, markup=line.startswith("[bold]"))  # whole lines, so commands copy


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    home = args.home.expanduser().resolve()
    if args.stop:
        console.print("Stopped the demo server." if stop_server(home) else f"No demo server is running for {home}.")
        return 0

    if stop_server(home):
        console.print("Stopped the previous demo server.")
    port = free_or_any(args.port, "API")
    gateway_port = free_or_any(args.gateway_port, "gateway")
    process, url, gateway = start_server(home, port, gateway_port)
    with console.status(f"Starting Shipyard on {url} (gateway {gateway}) ..."):
        wait_until_healthy(process, [f"{url}/api/v1/health", f"{gateway}/v2/health/live"], home)
    console.print(f"Shipyard is up on [bold]{url}[/bold], gateway on [bold]{gateway}[/bold] (home {home}, pid {process.pid}).")

    token = (home / "admin.token").read_text().strip()
    with shipyard.Client(url, token, namespace=NAMESPACE) as client:
        result = run_quickstart(client, args.executor)
        if result.status != "succeeded":
            console.print(f"[red]Pipeline run {result.run_id} {result.status}:[/red] {escape(result.error or '')}")
            where_to_look(url, gateway, home, result.run_id, None)
            return 1
        metrics, deployed = result.output("evaluate"), result.output("deploy")
        version = int(deployed["version"])
        console.print(
            f"Pipeline run [bold]{result.run_id}[/bold] succeeded: test accuracy {metrics['accuracy']:.3f}, "
            f"ROC AUC {metrics['roc_auc']:.3f}; registered [bold]{MODEL}[/bold] v{version} ({deployed['alias']}) "
            f"and deployed it to the endpoint [bold]{ENDPOINT}[/bold] (revision {deployed['revision']})."
        )
        console.print()

        test = result.output("split", "test")  # the held-out rows, read back from the run's stored outputs
        first = test.drop(columns="target").iloc[0].to_dict()
        (home / REQUEST_FILE).write_text(json.dumps({"instances": [first]}, indent=2) + "\n")
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=10) as http:
            with console.status(f"Waiting for the gateway to load {MODEL} v{version} ..."):
                wait_until_served(http, gateway, first, version)
            traffic = send_traffic(http, gateway, test)
        console.print(
            f"Sent {traffic['requests']} requests (one held-out row each) to {predict_url(gateway)}: "
            f"served by {', '.join(traffic['versions'])}, accuracy {traffic['accuracy']:.3f} against the labels, "
            f"latency p50 {traffic['p50_ms']:.1f} ms, p99 {traffic['p99_ms']:.1f} ms (HTTP round trip).",
            highlight=False,
        )
        console.print()
        console.print(lineage_tree(client.lineage(MODEL, version)))
        console.print()
    where_to_look(url, gateway, home, result.run_id, version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
