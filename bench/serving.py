"""Online serving throughput: Shipyard's gateway against `mlflow models serve` and a bare ONNX app, under wrk.

    .venv/bin/python bench/serving.py                    # or: make bench (tracking, then this)
    .venv/bin/python bench/serving.py --duration 30 --skip-mlflow

Three servers answer the same one-row prediction of the same model (StandardScaler +
LogisticRegression on scikit-learn's breast_cancer data), one after another on the same
machine, each with the same number of worker processes:

- Shipyard: `shipyard up` (control plane and gateway) with everything on: a service-account
  token checked against the endpoint's audience, a 90/10 traffic split between two model
  versions, input validation, Prometheus metrics and a sampled prediction log (10% by default).
- MLflow: `mlflow models serve --env-manager local` on the model saved with mlflow.sklearn, from
  its own virtualenv (.bench-venv-mlflow/, created when missing).
- bare: bench/_bare_app.py, Starlette + orjson + onnxruntime with nothing else: the ceiling.

Each is warmed up, then loaded with wrk for --duration seconds; every server's answer is
checked against the model's local prediction first. After Shipyard's run the script reads the
gateway's /metrics and the prediction log to check that both saw the load. It prints
requests/s, p50 and p99 latency, the ratios and PASS/FAIL against the targets, writes
bench/results/serving.json and a chart bench/results/serving.png, and exits 1 on any FAIL.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import shipyard
from tracking import (
    Processes,
    clean_env,
    console,
    ensure_mlflow_venv,
    free_port,
    machine_facts,
    plot,
    tail,
    venv_python,
    wait_healthy,
)

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WRK = "wrk"
NAMESPACE = "bench"
ENDPOINT = "clf"
MODEL = "breast-cancer-logreg"
SERVICE_ACCOUNT = "scorer"
FLUSH_SECONDS = 2.0
TARGETS = {"requests_per_s": 10_000.0, "p99_ms": 10.0, "vs_mlflow": 10.0, "vs_bare": 0.5}
# How close the gateway's own counts must come to what wrk sent.
METRICS_TOLERANCE = 0.02
LOG_RATE_TOLERANCE = 0.2  # relative: 10% sampling passes between 8% and 12%

Row = list[float]
SETUPS = {
    "shipyard": "shipyard up: gateway with service-account token and audience, 90/10 split over two versions, "
    "input validation, metrics, {rate:.0%} of requests logged; ONNX exports",
    "mlflow": "mlflow models serve --env-manager local, mlflow.sklearn model (pyfunc, scikit-learn)",
    "bare": "bench/_bare_app.py: Starlette + orjson + onnxruntime, no auth, no validation",
}


# -- processes ---------------------------------------------------------------------------


class GracefulProcesses(Processes):
    """Like tracking's Processes, but waits for each whole process group to end before SIGKILL.

    `shipyard up` can exit on SIGTERM before its gateway has finished shutting down (flushing the
    prediction log, removing its Prometheus folder); killing the group at that moment cuts that short.
    """

    def stop_all(self, grace: float = 15.0) -> None:
        groups = [proc.pid for proc in self._procs]
        for pgid in groups:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self._procs:
            with suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        while time.monotonic() < deadline and any(group_alive(pgid) for pgid in groups):
            time.sleep(0.1)
        super().stop_all()  # SIGKILL for whatever is left


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- the model ---------------------------------------------------------------------------


@dataclass
class Models:
    features: np.ndarray[Any, Any]
    row: Row
    versions: dict[int, Any]  # version number -> fitted pipeline (1: C=1.0, 2: C=0.1)

    def expected(self, version: int) -> Any:
        return self.versions[version].predict(np.asarray([self.row])).tolist()[0]


def train() -> Models:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, target = load_breast_cancer(return_X_y=True)
    versions = {
        version: make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000)).fit(features, target)
        for version, c in ((1, 1.0), (2, 0.1))
    }
    # The first row: a clear case (malignant) on which both versions and every runtime agree.
    return Models(features=features, row=[float(v) for v in features[0]], versions=versions)


def export_onnx(model: Any, width: int, path: Path) -> None:
    """The bare app's model: the same pipeline through skl2onnx, labels as the first output, no ZipMap."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    graph = convert_sklearn(
        model, initial_types=[("input", FloatTensorType([None, width]))], options={id(model): {"zipmap": False}}
    )
    path.write_bytes(graph.SerializeToString())


# -- wrk ---------------------------------------------------------------------------------


def lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def write_lua(path: Path, body: str, headers: dict[str, str]) -> Path:
    lines = ['wrk.method = "POST"', f"wrk.body = {lua_string(body)}"]
    lines += [f"wrk.headers[{lua_string(name)}] = {lua_string(value)}" for name, value in headers.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def to_ms(value: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value.strip())
    if found is None:
        raise ValueError(f"cannot read wrk's latency {value!r}")
    return float(found.group(1)) * _UNITS_MS[found.group(2)]


@dataclass
class WrkResult:
    requests: int = 0
    seconds: float = 0.0
    requests_per_s: float = 0.0
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    non_2xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    returncode: int = 0
    output: str = ""

    @property
    def errors(self) -> int:
        return self.non_2xx + sum(self.socket_errors.values())

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.requests > 0 and self.errors == 0 and not math.isnan(self.p99_ms)


def parse_wrk(output: str, returncode: int) -> WrkResult:
    result = WrkResult(returncode=returncode, output=output)
    if found := re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", output, re.MULTILINE):
        result.requests = int(found.group(1))
        result.seconds = to_ms(found.group(2) + found.group(3)) / 1000
    if found := re.search(r"^Requests/sec:\s*([\d.]+)", output, re.MULTILINE):
        result.requests_per_s = float(found.group(1))
    for percentile, name in (("50", "p50_ms"), ("99", "p99_ms")):
        if found := re.search(rf"^\s*{percentile}(?:\.0+)?%\s+([\d.]+(?:us|ms|s|m|h))\s*$", output, re.MULTILINE):
            setattr(result, name, to_ms(found.group(1)))
    if found := re.search(r"Non-2xx or 3xx responses:\s*(\d+)", output):
        result.non_2xx = int(found.group(1))
    if found := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output):
        result.socket_errors = dict(zip(("connect", "read", "write", "timeout"), map(int, found.groups()), strict=True))
    return result


def run_wrk(url: str, lua: Path, seconds: int, args: argparse.Namespace, description: str, log: Path) -> WrkResult:
    cmd = [WRK, "-t", str(args.threads), "-c", str(args.connections), "-d", f"{seconds}s", "--latency", "-s", str(lua), url]
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f} s"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=seconds)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        started = time.monotonic()
        try:
            while proc.poll() is None:
                progress.update(task, completed=min(seconds, time.monotonic() - started))
                time.sleep(0.2)
        finally:
            if proc.poll() is None:
                proc.kill()
            output = proc.communicate()[0]
        progress.update(task, completed=seconds)
    with log.open("a") as handle:
        handle.write(f"$ {' '.join(cmd)}\n{output}\n")
    return parse_wrk(output, proc.returncode)


# -- one server under load ---------------------------------------------------------------


@dataclass
class Measured:
    server: str
    label: str
    setup: str = ""
    check: str = ""
    check_ok: bool = False
    warmup: WrkResult | None = None
    run: WrkResult | None = None
    failure: str = ""  # set when the server could not be measured at all
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failure and self.check_ok and self.run is not None and self.run.ok and self.warmup_ok

    @property
    def warmup_ok(self) -> bool:
        return self.warmup is None or self.warmup.errors == 0

    def as_json(self) -> dict[str, Any]:
        run = self.run
        return {
            "server": self.server,
            "label": self.label,
            "setup": self.setup,
            "ok": self.ok,
            "failure": self.failure or None,
            "check": self.check,
            "check_ok": self.check_ok,
            "requests": run.requests if run else None,
            "seconds": run.seconds if run else None,
            "requests_per_s": run.requests_per_s if run else None,
            "p50_ms": None if run is None or math.isnan(run.p50_ms) else run.p50_ms,
            "p99_ms": None if run is None or math.isnan(run.p99_ms) else run.p99_ms,
            "errors": run.errors if run else None,
            "non_2xx": run.non_2xx if run else None,
            "socket_errors": run.socket_errors if run else None,
            "warmup_requests": self.warmup.requests if self.warmup else None,
            "warmup_errors": self.warmup.errors if self.warmup else None,
            **self.extra,
        }


def load(measured: Measured, url: str, lua: Path, args: argparse.Namespace, tmp: Path) -> None:
    """Warm-up (not measured), then the measured run."""
    log = tmp / "wrk.log"
    measured.warmup = run_wrk(url, lua, args.warmup, args, f"{measured.server:<9} warm-up", log)
    measured.run = run_wrk(url, lua, args.duration, args, f"{measured.server:<9} measured", log)
    if measured.run.returncode != 0 or measured.run.requests == 0:
        measured.failure = f"wrk failed ({measured.run.returncode}): {measured.run.output.strip()[-400:]}"


def first_answer(url: str, body: dict[str, Any], headers: dict[str, str], timeout: float) -> httpx.Response:
    """Post until the server answers 200 (a freshly deployed endpoint may need a poll or two)."""
    deadline = time.monotonic() + timeout
    last: httpx.Response | None = None
    while time.monotonic() < deadline:
        try:
            last = httpx.post(url, json=body, headers=headers, timeout=10)
            if last.status_code == 200:
                return last
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    if last is None:
        raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")
    return last


# -- Shipyard ----------------------------------------------------------------------------


def count_requests_metric(text: str, name: str = "shipyard_gateway_requests_total") -> float | None:
    """The sum of every sample of ``name`` in Prometheus text, or None when there is none."""
    total, found = 0.0, False
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        metric = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)", line)
        if metric and metric.group(1) == name:
            total += float(metric.group(3))
            found = True
    return total if found else None


def count_logged_rows(folder: Path) -> tuple[int | None, str]:
    """Rows in the prediction log's Parquet files, or None with the reason."""
    import pyarrow.dataset as ds

    files = sorted(folder.rglob("*.parquet")) if folder.exists() else []
    if not files:
        return None, f"no Parquet files under {folder}"
    try:
        return ds.dataset([str(f) for f in files], format="parquet").count_rows(), f"{len(files)} file(s)"
    except Exception as exc:  # a file caught mid-write, or not Parquet after all
        return None, f"cannot read {len(files)} file(s) under {folder}: {type(exc).__name__}: {exc}"


def settled_log_rows(folder: Path, wait: float) -> tuple[int | None, str]:
    """Wait for the gateway's periodic flush, then until the row count stops growing."""
    deadline = time.monotonic() + wait
    time.sleep(FLUSH_SECONDS + 0.5)
    rows, note = count_logged_rows(folder)
    while time.monotonic() < deadline:
        time.sleep(FLUSH_SECONDS)
        again, note = count_logged_rows(folder)
        if again is not None and again == rows:
            return rows, note
        rows = again
    return rows, note


def shipyard_side(
    procs: Processes, tmp: Path, models: Models, args: argparse.Namespace, body: dict[str, Any]
) -> tuple[Measured, list[dict[str, Any]]]:
    """Start `shipyard up`, deploy the two versions behind an audience, load the gateway, check metrics and the log."""
    measured = Measured("shipyard", "Shipyard", SETUPS["shipyard"].format(rate=args.log_rate))
    home, port, gateway_port = tmp / "shipyard", free_port(), free_port()
    predictions = home / "predictions"
    log_path = tmp / "shipyard.log"
    entry = Path(sys.executable).parent / "shipyard"
    cmd = [str(entry)] if entry.exists() else [sys.executable, "-c", "from shipyard.cli.app import main; main()"]
    scratch = tmp / "shipyard-tmp"  # the gateway's own temporary folders (Prometheus files) go with ours
    scratch.mkdir()
    env = clean_env(
        "SHIPYARD_",
        TMPDIR=str(scratch),
        SHIPYARD_GATEWAY_PORT=str(gateway_port),
        SHIPYARD_GATEWAY_WORKERS=str(args.workers),
        SHIPYARD_GATEWAY_PREDICTION_LOG_RATE=str(args.log_rate),
        SHIPYARD_GATEWAY_PREDICTION_LOG_URL=str(predictions),
        SHIPYARD_GATEWAY_PREDICTION_LOG_FLUSH_SECONDS=str(FLUSH_SECONDS),
    )
    with console.status("Starting shipyard up (control plane and gateway)..."):
        proc = procs.start([*cmd, "--home", str(home), "up", "--port", str(port)], env=env, log=log_path.open("w"))
        url, gateway = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{gateway_port}"
        token_file = home / "admin.token"
        wait_healthy("shipyard up", f"{url}/api/v1/health", proc, log_path, token_file.exists, timeout=90)
        wait_healthy("the gateway", f"{gateway}/v2/health/live", proc, log_path, lambda: True, timeout=90)
    admin = token_file.read_text().strip()

    with console.status("Registering two versions, creating the endpoint, its audience and a 90/10 revision..."):
        with shipyard.Client(url, admin, namespace=NAMESPACE) as client:
            client.create_namespace(NAMESPACE, description="serving benchmark")
            for version, model in models.versions.items():
                registered = client.register_model(
                    MODEL, model, training_data=models.features, description=f"bench version {version}"
                )
                if registered["version"] != version or not registered.get("onnx_digest"):
                    skipped = registered.get("tags", {}).get("onnx.skipped", "")
                    raise RuntimeError(f"version {registered['version']} has no ONNX export ({skipped or 'no reason given'})")
            client.create_service_account(SERVICE_ACCOUNT, display_name="serving benchmark caller")
            audience = {"namespace": False, "principals": [f"sa:{NAMESPACE}/{SERVICE_ACCOUNT}"], "anonymous": False}
            client.create_endpoint(ENDPOINT, description="serving benchmark", audience=audience)
            client.create_revision(
                ENDPOINT,
                [{"model": MODEL, "version": 1, "weight": 90}, {"model": MODEL, "version": 2, "weight": 10}],
                reason="traffic",
            )
            caller = client.create_token(
                service_account=SERVICE_ACCOUNT, namespace=NAMESPACE, name="bench", scopes=[f"invoke:{ENDPOINT}"], days=1
            )["token"]

    predict_url = f"{gateway}/v1/namespaces/{NAMESPACE}/endpoints/{ENDPOINT}:predict"
    headers = {"Authorization": f"Bearer {caller}"}
    own_requests = 0  # predict requests this script sends besides wrk's, for the metric check
    with console.status("Waiting for the gateway to serve the endpoint..."):
        deadline = time.monotonic() + 60
        answer = None
        while time.monotonic() < deadline:
            own_requests += 1
            try:
                answer = httpx.post(predict_url, json=body, headers=headers, timeout=10)
            except httpx.TransportError:
                answer = None
            if answer is not None and answer.status_code == 200:
                break
            time.sleep(0.25)
    if answer is None or answer.status_code != 200:
        status = "no answer" if answer is None else f"{answer.status_code} {answer.text[:300]}"
        measured.failure = f"the gateway did not serve {NAMESPACE}/{ENDPOINT} within 60s: {status}; log:\n{tail(log_path)}"
        return measured, []
    served = answer.json()
    version = int(str(served.get("model_version", ":0")).rsplit(":", 1)[-1] or 0)
    expected = models.expected(version) if version in models.versions else None
    measured.check_ok = expected is not None and served.get("predictions") == [expected]
    measured.check = f"{served.get('model_version')} answered {served.get('predictions')}, local prediction {expected}"
    # The audience at work: the platform admin is not in it, so the gateway must refuse it (403).
    own_requests += 1
    denied = httpx.post(predict_url, json=body, headers={"Authorization": f"Bearer {admin}"}, timeout=10)
    measured.extra["admin_denied_status"] = denied.status_code
    if denied.status_code != 403:
        measured.check_ok = False
        measured.check += f"; the admin (not in the audience) got {denied.status_code}, expected 403"
    else:
        measured.check += "; admin outside the audience refused with 403"

    lua = write_lua(tmp / "shipyard.lua", json.dumps(body), {"Content-Type": "application/json", **headers})
    load(measured, predict_url, lua, args, tmp)
    checks = verify_all_on(measured, gateway, admin, predictions, own_requests, args)
    return measured, checks


def verify_all_on(
    measured: Measured, gateway: str, admin: str, predictions: Path, own_requests: int, args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Did the gateway count every request in /metrics, and log about ``--log-rate`` of them?"""
    sent = own_requests + sum(r.requests for r in (measured.warmup, measured.run) if r is not None)
    metrics = check_row("metrics", sent, expected=1.0)
    try:
        response = httpx.get(f"{gateway}/metrics", headers={"Authorization": f"Bearer {admin}"}, timeout=10)
    except httpx.TransportError as exc:
        response, metrics["detail"] = None, f"GET /metrics failed: {exc}"
    counted = None
    if response is not None and response.status_code != 200:
        metrics["detail"] = f"GET /metrics answered {response.status_code}: {response.text[:200]}"
    elif response is not None:
        counted = count_requests_metric(response.text)
        metrics["detail"] = "no shipyard_gateway_requests_total samples in /metrics"
    if counted is not None:
        # wrk counts only completed responses: up to one request per connection may still be in flight at the end.
        passed = abs(counted - sent) <= max(METRICS_TOLERANCE * sent, 2 * args.connections)
        detail = f"sum of shipyard_gateway_requests_total {counted:,.0f} for {sent:,} requests sent"
        metrics.update(counted=counted, ratio=counted / sent if sent else math.nan, passed=passed, detail=detail)
        metrics["status"] = "ok" if passed else "off"

    log = check_row("prediction_log", sent, expected=args.log_rate)
    with console.status(f"Waiting for the prediction log to flush (every {FLUSH_SECONDS:g}s)..."):
        rows, note = settled_log_rows(predictions, wait=4 * FLUSH_SECONDS + 4)
    if rows is None and args.log_rate == 0 and not any(predictions.rglob("*.parquet")):
        rows = 0  # nothing sampled, nothing written: what --log-rate 0 asks for
    log["detail"] = note if rows is None else f"0 rows ({note})"
    if rows is not None and (rows > 0 or args.log_rate == 0):
        share = rows / sent if sent else math.nan
        passed = abs(share - args.log_rate) <= LOG_RATE_TOLERANCE * args.log_rate if args.log_rate > 0 else rows == 0
        detail = f"{rows:,} rows for {sent:,} requests sent (configured {args.log_rate:g}; {note})"
        log.update(rows=rows, ratio=share, passed=passed, detail=detail, status="ok" if passed else "off")
    return [metrics, log]


def check_row(name: str, sent: int | None, *, expected: float, detail: str = "") -> dict[str, Any]:
    """A check that fails as "missing" until a measurement fills it in."""
    return {
        "check": name,
        "status": "missing",
        "passed": False,
        "detail": detail,
        "sent": sent,
        "expected": expected,
        "ratio": None,
    }


# -- MLflow ------------------------------------------------------------------------------


def mlflow_side(procs: Processes, tmp: Path, venv: Path, models: Models, args: argparse.Namespace) -> Measured:
    measured = Measured("mlflow", "MLflow", SETUPS["mlflow"])
    model_dir = tmp / "mlflow-model"
    with console.status("Training and saving the model in the MLflow virtualenv..."):
        side = [str(venv_python(venv)), str(BENCH / "_mlflow_serving_side.py"), "--model-dir", str(model_dir)]
        done = subprocess.run(
            [*side, "--row", json.dumps(models.row)],
            capture_output=True,
            text=True,
            check=False,
            env=clean_env("MLFLOW_", MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true"),
        )
    (tmp / "mlflow-train.log").write_text(done.stderr)
    if done.returncode != 0:
        measured.failure = f"training in the MLflow venv failed ({done.returncode}):\n{done.stderr[-2000:]}"
        return measured
    trained = json.loads(done.stdout.strip().splitlines()[-1])
    measured.extra["mlflow_sklearn"] = trained["sklearn"]

    port, log_path = free_port(), tmp / "mlflow-serve.log"
    env = clean_env("MLFLOW_", MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"  # it starts `uvicorn` by name
    cmd = [str(venv / "bin" / "mlflow"), "models", "serve", "-m", str(model_dir), "--env-manager", "local"]
    cmd += ["-h", "127.0.0.1", "-p", str(port), "--workers", str(args.workers)]
    with console.status("Starting mlflow models serve..."):
        proc = procs.start(cmd, env=env, log=log_path.open("w"))
        url = f"http://127.0.0.1:{port}"
        wait_healthy("mlflow models serve", f"{url}/ping", proc, log_path, lambda: True, timeout=180)
    body = {"inputs": [models.row]}
    answer = first_answer(f"{url}/invocations", body, {}, timeout=30)
    got = answer.json().get("predictions") if answer.status_code == 200 else answer.text[:300]
    measured.check_ok = answer.status_code == 200 and got == trained["prediction"] == [models.expected(1)]
    measured.check = f"answered {got}, local prediction {trained['prediction']} (MLflow venv) / {[models.expected(1)]}"
    lua = write_lua(tmp / "mlflow.lua", json.dumps(body), {"Content-Type": "application/json"})
    load(measured, f"{url}/invocations", lua, args, tmp)
    return measured


# -- bare --------------------------------------------------------------------------------


def bare_side(procs: Processes, tmp: Path, models: Models, args: argparse.Namespace) -> Measured:
    measured = Measured("bare", "bare", SETUPS["bare"])
    onnx_path = tmp / "bare.onnx"
    export_onnx(models.versions[1], len(models.row), onnx_path)
    port, log_path = free_port(), tmp / "bare.log"
    cmd = [sys.executable, "-m", "uvicorn", "_bare_app:app", "--app-dir", str(BENCH), "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--workers", str(args.workers), "--no-access-log", "--log-level", "warning"]
    with console.status("Starting the bare app..."):
        proc = procs.start(cmd, env=clean_env("BENCH_", BENCH_ONNX_PATH=str(onnx_path)), log=log_path.open("w"))
        url = f"http://127.0.0.1:{port}"
        wait_healthy("the bare app", f"{url}/health", proc, log_path, lambda: True, timeout=60)
    body = {"instances": [models.row]}
    answer = first_answer(f"{url}/predict", body, {}, timeout=30)
    got = answer.json().get("predictions") if answer.status_code == 200 else answer.text[:300]
    measured.check_ok = answer.status_code == 200 and got == [models.expected(1)]
    measured.check = f"answered {got}, local prediction {[models.expected(1)]}"
    lua = write_lua(tmp / "bare.lua", json.dumps(body), {"Content-Type": "application/json"})
    load(measured, f"{url}/predict", lua, args, tmp)
    return measured


# -- report ------------------------------------------------------------------------------


def verdict(passed: bool | None) -> str:
    if passed is None:
        return "[dim]skipped[/dim]"
    return "[bold green]PASS[/bold green]" if passed else "[bold red]FAIL[/bold red]"


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def targets(servers: dict[str, dict[str, Any]], checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ours, theirs, bare = servers.get("shipyard"), servers.get("mlflow"), servers.get("bare")

    def rate(row: dict[str, Any] | None) -> float | None:
        return row["requests_per_s"] if row and row["ok"] else None

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    def row(name: str, value: float | None, shown: str, goal: str, passed: bool | None) -> dict[str, Any]:
        return {"target": name, "value": value, "shown": "-" if value is None else shown, "goal": goal, "passed": passed}

    ours_rate, p99 = rate(ours), ours["p99_ms"] if ours and ours["ok"] else None
    vs_mlflow, vs_bare = ratio(ours_rate, rate(theirs)), ratio(ours_rate, rate(bare))
    rows = [
        row(
            "Shipyard requests/s", ours_rate, f"{ours_rate or 0:,.0f}", ">= 10,000", (ours_rate or 0) >= TARGETS["requests_per_s"]
        ),
        row("Shipyard p99 latency", p99, f"{p99 or 0:,.2f} ms", "< 10 ms", p99 is not None and p99 < TARGETS["p99_ms"]),
        row(
            "Shipyard / MLflow",
            vs_mlflow,
            f"{vs_mlflow or 0:,.1f}x",
            ">= 10x",
            None if theirs is None else (vs_mlflow or 0) >= TARGETS["vs_mlflow"],
        ),
        row("Shipyard / bare", vs_bare, f"{vs_bare or 0:.0%}", ">= 50%", (vs_bare or 0) >= TARGETS["vs_bare"]),
    ]
    for server in servers.values():
        errors = 0 if server["failure"] else (server["errors"] or 0) + (server["warmup_errors"] or 0)
        shown = "failed" if server["failure"] else f"{errors:,} errors"
        goal = "right, 0 errors"
        rows.append(row(f"{server['label']}: first answer right, no errors", errors, shown, goal, server["ok"]))
    names = {"metrics": "metrics: requests counted / sent", "prediction_log": "prediction log: rows / requests sent"}
    for check in checks:
        shown = f"{check['ratio']:.3f}" if check["ratio"] is not None else check["status"]
        rows.append(row(names[check["check"]], 0.0, shown, f"about {check['expected']:g}", check["passed"]))
    return rows


def report(results: dict[str, Any]) -> None:
    config = results["config"]
    title = "One-row predictions under wrk"
    table = Table(
        title=f"{title} ({config['connections']} connections, {config['workers']} workers each, {config['duration_s']} s)"
    )
    for column in ("server", "req/s", "p50 ms", "p99 ms", "requests", "errors", "answer"):
        table.add_column(column, justify="left" if column == "server" else "right")
    for row in results["servers"]:
        if row["failure"]:
            table.add_row(row["label"], "-", "-", "-", "-", "[red]failed[/red]", "-")
            continue
        errors = row["errors"] or 0
        shown_errors = f"[red]{errors:,}[/red]" if errors or (row["warmup_errors"] or 0) else "0"
        if row["warmup_errors"]:
            shown_errors += f" [red](+{row['warmup_errors']:,} in warm-up)[/red]"
        check = "[green]right[/green]" if row["check_ok"] else "[red]WRONG[/red]"
        rps = row["requests_per_s"] or 0.0
        latency = fmt_ms(row["p50_ms"]), fmt_ms(row["p99_ms"])
        table.add_row(row["label"], f"{rps:,.0f}", *latency, f"{row['requests'] or 0:,}", shown_errors, check)
    console.print(table)
    for row in results["servers"]:
        console.print(f"[bold]{row['label']}[/bold]: {row['setup']}")
        if row["failure"]:
            console.print(f"  [red]failed: {row['failure']}[/red]")
        else:
            console.print(f"  first answer: {row['check']}", style=None if row["check_ok"] else "red")

    for check in results["checks"]:
        style = "green" if check["passed"] else "red"
        console.print(f"[{style}]{check['check']}: {check['status'].upper()}[/{style}] - {check['detail']}")

    summary = Table(title="Targets")
    for column in ("target", "measured", "goal", "result"):
        summary.add_column(column, justify="left" if column == "target" else "right")
    for row in results["targets"]:
        summary.add_row(row["target"], row["shown"], row["goal"], verdict(row["passed"]))
    console.print(summary)


# -- main --------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=15, help="seconds of measured load per server")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of unmeasured load before each run")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of every server")
    parser.add_argument("--log-rate", type=float, default=0.1, help="share of Shipyard's requests in the prediction log")
    parser.add_argument("--skip-mlflow", action="store_true", help="measure Shipyard and the bare app only")
    parser.add_argument("--mlflow-venv", type=Path, default=ROOT / ".bench-venv-mlflow", help="created with mlflow when missing")
    parser.add_argument("--results-dir", type=Path, default=BENCH / "results")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temporary folder (models, logs, prediction log)")
    args = parser.parse_args()
    for name in ("duration", "warmup", "connections", "threads", "workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.threads > args.connections:
        parser.error("--threads cannot exceed --connections (wrk gives each thread at least one connection)")
    if not 0 <= args.log_rate <= 1:
        parser.error("--log-rate is a share between 0 and 1")
    return args


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds like Ctrl-C, so the servers are stopped
    if shutil.which(WRK) is None:
        console.print(
            "[red]wrk is not installed.[/red] Install it with: [bold]sudo apt-get install wrk[/bold] (or brew install wrk)"
        )
        return 2
    venv = args.mlflow_venv.resolve()
    mlflow_version = None if args.skip_mlflow else ensure_mlflow_venv(venv)

    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="shipyard-bench-serving-"))
    everything: list[GracefulProcesses] = []
    measured: list[Measured] = []
    checks: list[dict[str, Any]] = []

    def one_server(side: Callable[[Processes], Measured | tuple[Measured, list[dict[str, Any]]]], name: str, label: str) -> None:
        """Run one side with its own processes, and stop them before the next side starts."""
        procs = GracefulProcesses()
        everything.append(procs)
        try:
            outcome = side(procs)
            found, more = outcome if isinstance(outcome, tuple) else (outcome, [])
            measured.append(found)
            checks.extend(more)
        except (RuntimeError, shipyard.ShipyardError, httpx.HTTPError, OSError, ValueError) as exc:
            setup = SETUPS[name].format(rate=args.log_rate)
            measured.append(Measured(name, label, setup, failure=f"{type(exc).__name__}: {exc}"))
        finally:
            with console.status(f"Stopping {name}..."):
                procs.stop_all()

    try:
        with console.status("Training both versions and exporting ONNX..."):
            models = train()
        body = {"instances": [models.row]}
        console.print(
            f"Shipyard {shipyard.__version__}, MLflow {mlflow_version or '(skipped)'}, wrk {wrk_version()}; data in {tmp}"
        )
        one_server(lambda procs: shipyard_side(procs, tmp, models, args, body), "shipyard", "Shipyard")
        if not args.skip_mlflow:
            one_server(lambda procs: mlflow_side(procs, tmp, venv, models, args), "mlflow", "MLflow")
        one_server(lambda procs: bare_side(procs, tmp, models, args), "bare", "bare")
    finally:
        for procs in everything:
            procs.stop_all()
        if args.keep_temp:
            console.print(f"Kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    if not checks:
        checks = [
            check_row(name, None, expected=expected, detail="not checked: Shipyard was not measured")
            for name, expected in (("metrics", 1.0), ("prediction_log", args.log_rate))
        ]
    servers = {m.server: m.as_json() for m in measured}
    results = {
        "kind": "serving",
        "date": date.today().isoformat(),
        "machine": machine_facts(load_before[0]),
        "shipyard_version": shipyard.__version__,
        "mlflow_version": mlflow_version,
        "wrk_version": wrk_version(),
        "config": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "connections": args.connections,
            "threads": args.threads,
            "workers": args.workers,
            "log_rate": args.log_rate,
            "traffic": {"version 1 (C=1.0)": 90, "version 2 (C=0.1)": 10},
            "skip_mlflow": args.skip_mlflow,
        },
        "servers": list(servers.values()),
        "checks": checks,
        "targets": targets(servers, checks),
    }
    results["passed"] = all(row["passed"] is not False for row in results["targets"])
    report(results)
    # The load itself saturates every core, so only the load before the run says whether other work was there.
    if load_before[0] > (os.cpu_count() or 1) / 2:
        console.print(
            f"[yellow]The machine was busy before the run (1-minute load {load_before[0]:.2f}): figures are noisy.[/yellow]"
        )
    args.results_dir.mkdir(parents=True, exist_ok=True)
    results_path = args.results_dir / "serving.json"
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"Results written to {results_path}; {plot(results_path, args.results_dir / 'serving.png', venv)}")
    console.print(verdict(results["passed"]))
    return 0 if results["passed"] else 1


def wrk_version() -> str:
    done = subprocess.run([WRK, "--version"], capture_output=True, text=True, check=False)
    found = re.search(r"wrk (\S+)", done.stdout + done.stderr)
    return found.group(1) if found else "unknown"


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        console.print("[red]Interrupted: servers stopped.[/red]")
        sys.exit(130)
