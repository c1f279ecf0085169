"""The MLflow half of bench/tracking.py; runs inside the MLflow virtualenv, never imports Shipyard.

    python bench/_mlflow_side.py --mode batched --count 100000 --batch-size 1000
    python bench/_mlflow_side.py --mode per-call --count 10000

Needs MLFLOW_TRACKING_URI. Writes JSON lines to stdout: ``{"done": n}`` while logging (for the
caller's progress bar) and one ``{"result": {...}}`` at the end with the timing and the number
of points the server returns from get_metric_history.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from mlflow import MlflowClient
from mlflow.entities import Metric

KEY = "loss"

# The protocol keeps the real stdout; anything MLflow prints (run links, warnings) goes to stderr,
# which the caller keeps as a log.
_protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w")
os.dup2(sys.stderr.fileno(), sys.stdout.fileno())


def emit(payload: dict[str, object]) -> None:
    _protocol.write(json.dumps(payload) + "\n")
    _protocol.flush()


def log_batched(client: MlflowClient, run_id: str, count: int, batch_size: int, every: int) -> None:
    for start in range(0, count, batch_size):
        now = int(time.time() * 1000)
        metrics = [Metric(KEY, step * 0.001, now, step) for step in range(start, min(start + batch_size, count))]
        client.log_batch(run_id, metrics=metrics)
        done = start + len(metrics)
        if done % every < batch_size or done == count:
            emit({"done": done})


def log_per_call(client: MlflowClient, run_id: str, count: int, every: int) -> None:
    # MlflowClient.log_metric is synchronous: one REST request per point, like mlflow.log_metric.
    for step in range(count):
        client.log_metric(run_id, KEY, step * 0.001, step=step)
        if (step + 1) % every == 0 or step + 1 == count:
            emit({"done": step + 1})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["batched", "per-call"], required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--progress-every", type=int, default=500)
    args = parser.parse_args()

    client = MlflowClient()
    experiment_id = client.create_experiment(f"bench-{args.mode}-{time.time_ns()}")
    run_id = client.create_run(experiment_id).info.run_id

    started = time.perf_counter()
    if args.mode == "batched":
        log_batched(client, run_id, args.count, args.batch_size, args.progress_every)
    else:
        log_per_call(client, run_id, args.count, args.progress_every)
    seconds = time.perf_counter() - started

    client.set_terminated(run_id)
    stored = len(client.get_metric_history(run_id, KEY))
    emit({"result": {"mode": args.mode, "logged": args.count, "stored": stored, "seconds": seconds, "run_id": run_id}})


if __name__ == "__main__":
    main()
