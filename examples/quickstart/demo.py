"""Quickstart: start Shipyard, train and track a model, register it, promote it, and trace it back.

    make demo          # or: .venv/bin/python examples/quickstart/demo.py [--home DIR] [--port N]
    make demo-stop     # or: .venv/bin/python examples/quickstart/demo.py --stop

The server keeps running after the script ends so that the API, /docs and the CLI can be
explored; its process id is in <home>/server.pid. Running the demo again stops it and
starts over from a fresh home.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

import shipyard
from shipyard.cli.lineage import lineage_tree

REPO = Path(__file__).resolve().parents[2]
DEFAULT_HOME = REPO / ".shipyard-demo"
DEFAULT_PORT = 8420
EXPERIMENT = "quickstart"
MODEL = "breast-cancer"
EPOCHS = 40
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 15

console = Console()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help=f"Home folder for the demo (default {DEFAULT_HOME}).")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="Port to serve on; a free one is used if it is busy.")
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


def stop_server(home: Path) -> bool:
    """Stop the server whose pid is in <home>/server.pid; True if one was running."""
    pid_file = home / "server.pid"
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return False
    stopped = False
    if _is_running(pid) and _looks_like_shipyard(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _is_running(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _is_running(pid):
            os.kill(pid, signal.SIGKILL)
        stopped = True
    pid_file.unlink(missing_ok=True)
    return stopped


def start_server(home: Path, port: int) -> tuple[subprocess.Popen[bytes], str]:
    """Run ``shipyard up`` in the background on a fresh home; its output goes to <home>/server.log."""
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    shipyard_cli = Path(sys.executable).with_name("shipyard")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    with open(home / "server.log", "wb") as log:
        process = subprocess.Popen(
            [str(shipyard_cli), "--home", str(home), "up", "--port", str(port), "--no-gateway"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # keeps serving after this script (and its terminal's Ctrl-C) is gone
        )
    (home / "server.pid").write_text(f"{process.pid}\n")
    return process, f"http://127.0.0.1:{port}"


def wait_until_healthy(process: subprocess.Popen[bytes], url: str, home: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (home / "server.log").read_text(errors="replace")[-2000:]
            raise SystemExit(f"shipyard up exited with code {process.returncode}:\n{log}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    stop_server(home)
    raise SystemExit(f"Shipyard did not answer on {url} within {START_TIMEOUT_S} s; see {home / 'server.log'}")


# -- the machine learning -------------------------------------------------------------


def train(client: shipyard.Client) -> tuple[str, dict[str, Any]]:
    """Train a classifier epoch by epoch inside a tracked run, register it and return (run id, version)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import accuracy_score, confusion_matrix, log_loss, roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    features, labels = load_breast_cancer(return_X_y=True, as_frame=True)
    x_train, x_test, y_train, y_test = train_test_split(features, labels, test_size=0.25, random_state=42, stratify=labels)
    params = {"model": "SGDClassifier", "loss": "log_loss", "alpha": 1e-4, "epochs": EPOCHS, "test_size": 0.25, "seed": 42}
    scaler = StandardScaler().fit(x_train)
    train_scaled, test_scaled = scaler.transform(x_train), scaler.transform(x_test)
    classifier = SGDClassifier(loss="log_loss", alpha=params["alpha"], random_state=42)
    classes = np.unique(labels)

    with shipyard.start_run(EXPERIMENT, name="sgd-baseline", params=params, client=client) as run:
        columns = (TextColumn("training"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"))
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("epochs", total=EPOCHS, status="")
            for epoch in range(EPOCHS):
                classifier.partial_fit(train_scaled, y_train, classes=classes)
                train_loss = log_loss(y_train, classifier.predict_proba(train_scaled))
                val_accuracy = accuracy_score(y_test, classifier.predict(test_scaled))
                run.log_metrics({"train_loss": train_loss, "val_accuracy": val_accuracy}, step=epoch)
                progress.update(task, advance=1, status=f"loss {train_loss:.4f}  val acc {val_accuracy:.3f}")

        model = Pipeline([("scale", scaler), ("classifier", classifier)])
        predictions = model.predict(x_test)
        final = {
            "accuracy": float(accuracy_score(y_test, predictions)),
            "roc_auc": float(roc_auc_score(y_test, model.predict_proba(x_test)[:, 1])),
        }
        run.log_metrics(final, step=EPOCHS)

        matrix = confusion_matrix(y_test, predictions)
        rows = ["actual,predicted_malignant,predicted_benign"]
        rows += [f"{name},{row[0]},{row[1]}" for name, row in zip(("malignant", "benign"), matrix, strict=True)]
        run.client.upload_artifact(run.id, ("\n".join(rows) + "\n").encode(), "confusion_matrix.csv", media_type="text/csv")

        version = run.register_model(MODEL, model, training_data=x_train, metrics=final, description="SGD on breast_cancer")
    console.print(f"Run [bold]{run.id}[/bold]: accuracy {final['accuracy']:.3f}, ROC AUC {final['roc_auc']:.3f}")
    return run.id, version


# -- the tour ---------------------------------------------------------------------


def _shown(path: Path) -> str:
    """A path as short as it can be for copying: relative to where the demo was started, when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def where_to_look(url: str, home: Path) -> None:
    cli = _shown(Path(sys.executable).with_name("shipyard"))
    if home == DEFAULT_HOME:
        stop = "make demo-stop"
    else:
        stop = f"{_shown(Path(sys.executable))} {_shown(Path(__file__).resolve())} --stop --home {home}"
    lines = [
        "[bold]Where to look[/bold]",
        f"  API         {url}/api/v1",
        f"  API docs    {url}/docs",
        f"  Token file  {home / 'admin.token'}  (the platform admin's; keep it private)",
        f"  Server log  {home / 'server.log'}",
        "",
        "[bold]Try the CLI[/bold]",
        f"  export SHIPYARD_HOME={home}",
        f"  export SHIPYARD_URL={url}",
        f"  {cli} runs list --experiment {EXPERIMENT} --order-by 'metrics.roc_auc DESC'",
        f"  {cli} models versions {MODEL}",
        f"  {cli} models lineage {MODEL} 1",
        f"  {cli} alias history {MODEL} production",
        f"  {cli} audit --limit 10",
        "",
        f"[bold]Stop the server[/bold]  {stop}",
    ]
    for line in lines:
        console.print(line, soft_wrap=True, highlight=False)  # whole lines, so commands copy and paste


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    home = args.home.expanduser().resolve()
    if args.stop:
        console.print("Stopped the demo server." if stop_server(home) else f"No demo server is running for {home}.")
        return 0

    if stop_server(home):
        console.print("Stopped the previous demo server.")
    port = args.port
    if not port_is_free(port):
        port = any_free_port()
        console.print(f"Port {args.port} is busy; using {port}.")
    process, url = start_server(home, port)
    with console.status(f"Starting Shipyard on {url} ..."):
        wait_until_healthy(process, url, home)
    console.print(f"Shipyard is up on [bold]{url}[/bold] (home {home}, pid {process.pid}).")

    token = (home / "admin.token").read_text().strip()
    with shipyard.Client(url, token, namespace="default") as client:
        _, version = train(client)
        client.set_alias(MODEL, "production", version["version"])
        console.print(f"Registered [bold]{MODEL}[/bold] v{version['version']} and pointed [bold]production[/bold] at it.")
        console.print()
        console.print(lineage_tree(client.lineage(MODEL, version["version"])))
        console.print()
    where_to_look(url, home)
    return 0


if __name__ == "__main__":
    sys.exit(main())
