"""Metric logging throughput: Shipyard's SDK against the MLflow client, side by side on SQLite.

    .venv/bin/python bench/tracking.py                  # or: make bench
    .venv/bin/python bench/tracking.py --mlflow-per-call 100000

Starts `shipyard up` and `mlflow server` (each on SQLite in a temporary folder), logs the same
metrics through both clients, checks that every point was stored, and prints metrics/s per mode,
the ratios and whether they meet the targets:

- batched: log_batch with 1,000 metrics per call (MLflow's per-request maximum); Shipyard at
  least 5x MLflow.
- per-call: Shipyard's `run.log_metric` inside `shipyard.start_run` (background batcher, timed
  until the block exits with everything stored) against MLflow's synchronous
  `MlflowClient.log_metric`; Shipyard at least 50x MLflow.
- per-call without batching: Shipyard's `client.log_metric` (one request per point), for context.

MLflow lives in its own virtualenv (.bench-venv-mlflow/, created when missing) because it conflicts
with Shipyard's pyarrow; its client side runs there through bench/_mlflow_side.py. Results go to
bench/results/tracking.json, and a chart to bench/results/tracking.png where matplotlib is found.
Exits 1 when a point is missing or a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import date
from pathlib import Path
from typing import Any, TextIO

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

import shipyard

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
MLFLOW_PIN = "3.17.2"
MLFLOW_MAX_BATCH = 1000
KEY = "loss"
TARGETS = {"batched": 5.0, "per_call": 50.0}

console = Console()
if not console.is_terminal:
    console.width = 120  # piped to a log: Rich's 80-column default wraps every table row


# -- processes ---------------------------------------------------------------------------


class Processes:
    """Every child this script starts, each in its own session so one signal stops its workers too."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[Any]] = []

    def start(
        self, cmd: list[str], *, env: dict[str, str], log: TextIO | int, stdout: TextIO | int | None = None
    ) -> subprocess.Popen[Any]:
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=ROOT,
            stdout=log if stdout is None else stdout,
            stderr=log,
            start_new_session=True,
            text=True,
        )
        self._procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self._procs):
            self._signal(proc, signal.SIGTERM)
        for proc in reversed(self._procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._signal(proc, signal.SIGKILL)
                proc.wait(timeout=5)
            # Workers forked by a server may outlive it; its session id is still its pid.
            self._signal(proc, signal.SIGKILL)
        self._procs.clear()

    @staticmethod
    def _signal(proc: subprocess.Popen[Any], sig: signal.Signals) -> None:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)


def machine_facts(load_before: float) -> dict[str, Any]:
    """What a result needs to be read against; other work slows sides unequally, so the load goes with it."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_healthy(name: str, url: str, proc: subprocess.Popen[Any], log: Path, ready: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} before answering; its log:\n{tail(log)}")
        try:
            if httpx.get(url, timeout=2).status_code == 200 and ready():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{name} did not answer {url} within {timeout:.0f}s; its log:\n{tail(log)}")


def clean_env(drop_prefix: str, **extra: str) -> dict[str, str]:
    """The environment minus ``drop_prefix*`` variables, so a developer's settings cannot redirect a server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop_prefix)}
    env.update(extra)
    return env


# -- the MLflow virtualenv ---------------------------------------------------------------


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def probe(python: Path, code: str) -> str | None:
    try:
        done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120, check=False)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def ensure_mlflow_venv(venv: Path) -> str:
    python = venv_python(venv)
    version = probe(python, "import mlflow; print(mlflow.__version__)") if python.exists() else None
    if version == MLFLOW_PIN:
        return version
    console.print(f"Installing mlflow=={MLFLOW_PIN} into {venv} (once; a few minutes)...")
    with console.status("pip install..."):
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"mlflow=={MLFLOW_PIN}"],
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"pip could not install mlflow=={MLFLOW_PIN} into {venv}:\n{done.stderr[-3000:]}")
    version = probe(python, "import mlflow; print(mlflow.__version__)")
    if version != MLFLOW_PIN:
        raise RuntimeError(f"expected mlflow {MLFLOW_PIN} in {venv}, got {version}")
    return version


# -- servers -----------------------------------------------------------------------------


def start_shipyard(procs: Processes, tmp: Path) -> tuple[str, str]:
    home, port = tmp / "shipyard", free_port()
    log_path = tmp / "shipyard.log"
    entry = Path(sys.executable).parent / "shipyard"
    cmd = [str(entry)] if entry.exists() else [sys.executable, "-c", "from shipyard.cli.app import main; main()"]
    proc = procs.start(
        [*cmd, "--home", str(home), "up", "--port", str(port), "--no-gateway", "--no-scheduler"],
        env=clean_env("SHIPYARD_"),
        log=log_path.open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    token_file = home / "admin.token"
    wait_healthy("shipyard up", f"{url}/api/v1/health", proc, log_path, token_file.exists, timeout=90)
    return url, token_file.read_text().strip()


def start_mlflow(procs: Processes, tmp: Path, venv: Path, workers: int) -> str:
    port = free_port()
    log_path = tmp / "mlflow-server.log"
    cmd = [
        str(venv / "bin" / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{tmp / 'mlflow.db'}",
        "--default-artifact-root",
        str(tmp / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    proc = procs.start(
        cmd, env=clean_env("MLFLOW_", MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true"), log=log_path.open("w")
    )
    url = f"http://127.0.0.1:{port}"
    # First start creates and migrates the SQLite schema: allow for it.
    wait_healthy("mlflow server", f"{url}/health", proc, log_path, lambda: True, timeout=180)
    return url


# -- measurements ------------------------------------------------------------------------


def measurement(label: str, side: str, mode: str, calls: int, logged: int, stored: int, seconds: float) -> dict[str, Any]:
    return {
        "label": label,
        "side": side,
        "mode": mode,
        "calls": calls,
        "logged": logged,
        "stored": stored,
        "verified": stored == logged,
        "seconds": round(seconds, 4),
        "metrics_per_s": logged / seconds,
    }


@contextmanager
def progress_task(description: str, total: int) -> Iterator[Callable[[int], None]]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task: TaskID = progress.add_task(description, total=total)
        yield lambda done: progress.update(task, completed=done)


def shipyard_batched(client: shipyard.Client, count: int, batch_size: int) -> dict[str, Any]:
    run_id = client.create_run("bench-batched", name="batched")["id"]
    with progress_task(f"Shipyard  log_batch x{batch_size:,}", count) as advance:
        started = time.perf_counter()
        for start in range(0, count, batch_size):
            now = int(time.time() * 1000)
            metrics = [
                {"key": KEY, "value": step * 0.001, "step": step, "timestamp": now}
                for step in range(start, min(start + batch_size, count))
            ]
            client.log_batch(run_id, metrics=metrics)
            advance(start + len(metrics))
        seconds = time.perf_counter() - started
    client.end_run(run_id)
    stored = len(client.metric_history(run_id, KEY))
    calls = -(-count // batch_size)
    return measurement(f"Shipyard log_batch ({calls} x {batch_size:,})", "shipyard", "batched", calls, count, stored, seconds)


def shipyard_per_call(client: shipyard.Client, count: int) -> dict[str, Any]:
    every = max(1, count // 100)
    with progress_task("Shipyard  run.log_metric (batcher)", count) as advance:
        with shipyard.start_run("bench-per-call", name="per-call", client=client) as run:
            started = time.perf_counter()
            for step in range(count):
                run.log_metric(KEY, step * 0.001, step)
                if (step + 1) % every == 0:
                    advance(step + 1)
        # Timed to the end of the block: exit flushes the batcher and ends the run.
        seconds = time.perf_counter() - started
    stored = len(client.metric_history(run.id, KEY))
    return measurement(f"Shipyard run.log_metric ({count:,} calls)", "shipyard", "per_call", count, count, stored, seconds)


def shipyard_unbatched(client: shipyard.Client, count: int) -> dict[str, Any]:
    run_id = client.create_run("bench-unbatched", name="unbatched")["id"]
    every = max(1, count // 100)
    with progress_task("Shipyard  client.log_metric (no batching)", count) as advance:
        started = time.perf_counter()
        for step in range(count):
            client.log_metric(run_id, KEY, step * 0.001, step=step)
            if (step + 1) % every == 0:
                advance(step + 1)
        seconds = time.perf_counter() - started
    client.end_run(run_id)
    stored = len(client.metric_history(run_id, KEY))
    label = f"Shipyard client.log_metric ({count:,}-call sample)"
    return measurement(label, "shipyard", "per_call_unbatched", count, count, stored, seconds)


def mlflow_side(
    procs: Processes, tmp: Path, venv: Path, tracking_uri: str, mode: str, count: int, batch_size: int
) -> dict[str, Any]:
    """Run bench/_mlflow_side.py in the MLflow venv, feeding its progress lines to a bar."""
    log_path = tmp / f"mlflow-client-{mode}.log"
    every = batch_size if mode == "batched" else max(1, count // 100)
    cmd = [str(venv_python(venv)), str(BENCH / "_mlflow_side.py"), "--mode", mode, "--count", str(count)]
    cmd += ["--batch-size", str(batch_size), "--progress-every", str(every)]
    env = clean_env("MLFLOW_", MLFLOW_TRACKING_URI=tracking_uri, MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    result: dict[str, Any] | None = None
    what = f"log_batch x{batch_size:,}" if mode == "batched" else "MlflowClient.log_metric"
    with log_path.open("w") as log, progress_task(f"MLflow    {what}", count) as advance:
        proc = procs.start(cmd, env=env, log=log, stdout=subprocess.PIPE)
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                message = None
            if not isinstance(message, dict):
                log.write(line)  # stray output from an import: keep it with the log
                continue
            if "done" in message:
                advance(message["done"])
            elif "result" in message:
                result = message["result"]
        proc.wait()
    if proc.returncode != 0 or result is None:
        raise RuntimeError(f"the MLflow client ({mode}) failed with {proc.returncode}:\n{tail(log_path)}")
    calls = -(-count // batch_size) if mode == "batched" else count
    label = f"MLflow log_batch ({calls} x {batch_size:,})" if mode == "batched" else f"MLflow log_metric ({count:,} calls)"
    side_mode = "batched" if mode == "batched" else "per_call"
    return measurement(label, "mlflow", side_mode, calls, count, result["stored"], result["seconds"])


# -- report ------------------------------------------------------------------------------


def rate(value: float) -> str:
    return f"{value:,.0f}/s"


def report(results: dict[str, Any]) -> None:
    detail = Table(title="Measurements (SQLite on both sides)")
    for column in ("what", "calls", "points logged", "points stored", "seconds", "metrics/s"):
        detail.add_column(column, justify="left" if column == "what" else "right")
    for row in results["measurements"]:
        stored = f"[green]{row['stored']:,}[/green]" if row["verified"] else f"[red]{row['stored']:,} (missing points)[/red]"
        detail.add_row(
            row["label"], f"{row['calls']:,}", f"{row['logged']:,}", stored, f"{row['seconds']:.3f}", rate(row["metrics_per_s"])
        )
    console.print(detail)

    summary = Table(title="Shipyard vs MLflow")
    for column in ("mode", "Shipyard", "MLflow", "ratio", "target", "result"):
        summary.add_column(column, justify="left" if column == "mode" else "right")
    for row in results["comparisons"]:
        if row["target"] is None:
            verdict, target = "[dim]context[/dim]", "-"
        else:
            verdict = "[bold green]PASS[/bold green]" if row["passed"] else "[bold red]FAIL[/bold red]"
            target = f">= {row['target']:g}x"
        summary.add_row(row["mode"], rate(row["shipyard"]), rate(row["mlflow"]), f"{row['ratio']:,.1f}x", target, verdict)
    console.print(summary)
    per_call = results["config"]["mlflow_per_call"]
    console.print(
        f"MLflow per-call rate measured on {per_call:,} calls (--mlflow-per-call 100000 logs all 100,000). "
        f"Shipyard per-call without batching measured on a {results['config']['unbatched_sample']:,}-call sample."
    )


def compare(measured: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    def row(mode: str, ours: str, theirs: str, target: float | None) -> dict[str, Any]:
        ratio = measured[ours]["metrics_per_s"] / measured[theirs]["metrics_per_s"]
        return {
            "mode": mode,
            "shipyard": measured[ours]["metrics_per_s"],
            "mlflow": measured[theirs]["metrics_per_s"],
            "ratio": ratio,
            "target": target,
            "passed": None if target is None else ratio >= target,
        }

    return [
        row("batched: log_batch x 1,000", "shipyard_batched", "mlflow_batched", TARGETS["batched"]),
        row("per-call: run.log_metric (batcher) / log_metric", "shipyard_per_call", "mlflow_per_call", TARGETS["per_call"]),
        row("per-call unbatched: client.log_metric / log_metric", "shipyard_unbatched", "mlflow_per_call", None),
    ]


def plot(results_path: Path, png: Path, venv: Path) -> str:
    """Draw with whichever Python has matplotlib; Shipyard's own venv usually does not."""
    for python in (Path(sys.executable), venv_python(venv)):
        if probe(python, "import matplotlib") is not None:
            done = subprocess.run(
                [str(python), str(BENCH / "_plot.py"), str(results_path), str(png)], capture_output=True, text=True, check=False
            )
            if done.returncode == 0:
                return f"chart written to {png}"
            return f"chart skipped: plotting failed: {done.stderr.strip()[-500:]}"
    return "chart skipped: matplotlib is in neither Shipyard's nor MLflow's virtualenv"


# -- main --------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000, help="points per batched and Shipyard per-call mode")
    parser.add_argument(
        "--batch-size", type=int, default=MLFLOW_MAX_BATCH, help="metrics per log_batch call (MLflow allows 1000)"
    )
    parser.add_argument("--mlflow-per-call", type=int, default=10_000, help="MLflow log_metric calls (~3 ms each)")
    parser.add_argument("--unbatched-sample", type=int, default=5_000, help="Shipyard client.log_metric calls, one request each")
    parser.add_argument("--mlflow-venv", type=Path, default=ROOT / ".bench-venv-mlflow", help="created with mlflow when missing")
    parser.add_argument("--mlflow-workers", type=int, default=1, help="mlflow server workers (shipyard up runs one)")
    parser.add_argument("--results-dir", type=Path, default=BENCH / "results")
    parser.add_argument("--keep-temp", action="store_true", help="keep the servers' databases and logs")
    args = parser.parse_args()
    if not 1 <= args.batch_size <= MLFLOW_MAX_BATCH:
        parser.error(f"--batch-size must be 1 to {MLFLOW_MAX_BATCH}: MLflow rejects larger batches")
    for name in ("count", "mlflow_per_call", "unbatched_sample", "mlflow_workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main() -> int:
    args = parse_args()
    # SIGTERM (e.g. from a CI timeout) unwinds like Ctrl-C, so the servers are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    venv = args.mlflow_venv.resolve()
    mlflow_version = ensure_mlflow_venv(venv)

    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="shipyard-bench-"))
    procs = Processes()
    try:
        with console.status("Starting shipyard up and mlflow server..."):
            shipyard_url, token = start_shipyard(procs, tmp)
            mlflow_url = start_mlflow(procs, tmp, venv, args.mlflow_workers)
        console.print(
            f"Shipyard {shipyard.__version__} at {shipyard_url}, MLflow {mlflow_version} at {mlflow_url}; data in {tmp}"
        )

        measured: dict[str, dict[str, Any]] = {}
        with shipyard.Client(shipyard_url, token, namespace="default") as client:
            measured["shipyard_batched"] = shipyard_batched(client, args.count, args.batch_size)
            measured["mlflow_batched"] = mlflow_side(procs, tmp, venv, mlflow_url, "batched", args.count, args.batch_size)
            measured["shipyard_per_call"] = shipyard_per_call(client, args.count)
            measured["shipyard_unbatched"] = shipyard_unbatched(client, args.unbatched_sample)
            measured["mlflow_per_call"] = mlflow_side(
                procs, tmp, venv, mlflow_url, "per-call", args.mlflow_per_call, args.batch_size
            )
    finally:
        with console.status("Stopping servers..."):
            procs.stop_all()
        if args.keep_temp:
            console.print(f"Kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    results = {
        "date": date.today().isoformat(),
        "machine": machine_facts(load_before[0]),
        "shipyard_version": shipyard.__version__,
        "mlflow_version": mlflow_version,
        "config": {
            "count": args.count,
            "batch_size": args.batch_size,
            "mlflow_per_call": args.mlflow_per_call,
            "unbatched_sample": args.unbatched_sample,
            "mlflow_workers": args.mlflow_workers,
            "backend": "sqlite",
        },
        "measurements": list(measured.values()),
        "comparisons": compare(measured),
    }
    report(results)
    load = results["machine"]["load_average_1m"]
    if max(load.values()) > (os.cpu_count() or 1):
        console.print(
            f"[yellow]The machine was busy (1-minute load {load['before']} -> {load['after']}): figures are noisy.[/yellow]"
        )
    args.results_dir.mkdir(parents=True, exist_ok=True)
    results_path = args.results_dir / "tracking.json"
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"Results written to {results_path}; {plot(results_path, args.results_dir / 'tracking.png', venv)}")

    verified = all(row["verified"] for row in results["measurements"])
    passed = all(row["passed"] for row in results["comparisons"] if row["target"] is not None)
    if not verified:
        console.print("[bold red]Some logged points were not stored.[/bold red]")
    return 0 if verified and passed else 1


if __name__ == "__main__":
    sys.exit(main())
