"""Pipeline overhead per step: a chain of trivial steps on the local executor, from the cache and on Ray.

    .venv/bin/python bench/pipelines.py
    .venv/bin/python bench/pipelines.py --steps 50 --skip-ray

Starts `shipyard up` (SQLite, in a temporary folder) and runs a chain of --steps steps, each
adding one to the previous step's output (bench/_pipeline_chain.py), four ways:

- plain: the same function called directly in a loop (the floor);
- local: the local executor, cache off;
- cache hit: the local executor with the cache on, after a first run that filled it (every step
  must come back "cached");
- ray: the Ray executor on a local Ray runtime (num_cpus=2), cache off; Ray's start-up is not timed.

Each executor first runs an untimed 2-step warm-up chain (fork server, Ray workers). Timings are
wall time of the whole run (the run's records included) divided by the number of steps. It prints
the table with the ratios to plain Python and PASS/FAIL against the targets, writes
bench/results/pipelines.json and exits 1 on any FAIL.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

BENCH = Path(__file__).resolve().parent
# Workers import the steps by module name (_pipeline_chain), so the bench folder goes on the path.
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(BENCH), os.environ.get("PYTHONPATH", "")) if p)

import _pipeline_chain as chain_module  # noqa: E402
import shipyard  # noqa: E402
from shipyard.client import Client  # noqa: E402
from shipyard.pipelines import executors  # noqa: E402
from shipyard.pipelines.control import SdkRecorder  # noqa: E402
from shipyard.pipelines.executors.base import Executor  # noqa: E402
from shipyard.pipelines.runner import Runner, RunResult  # noqa: E402
from tracking import Processes, console, machine_facts, start_shipyard  # noqa: E402

NAMESPACE = "bench"
TARGETS_MS = {"local": 50.0, "cache_hit": 20.0}
PLAIN_REPEATS = 10_000
WARMUP_STEPS = 2


def plain_chain(steps: int) -> tuple[float, int]:
    """Seconds for one plain chain of ``steps`` calls (best of PLAIN_REPEATS) and its result."""
    best, value = float("inf"), 0
    for _ in range(PLAIN_REPEATS):
        began = time.perf_counter()
        value = 0
        for _ in range(steps):
            value = chain_module.add_one_plain(value)
        best = min(best, time.perf_counter() - began)
    return best, value


def timed_run(
    client: Client, executor: Executor, *, steps: int, start: int, cache: bool, progress: Progress, label: str
) -> tuple[float, RunResult]:
    task = progress.add_task(label, total=steps)

    def on_event(kind: str, node: str, details: Any) -> None:
        if kind in ("succeeded", "cached", "failed"):
            progress.advance(task)

    runner = Runner(SdkRecorder(client, NAMESPACE), executor, cache=cache, on_event=on_event)
    began = time.perf_counter()
    result = runner.run(chain_module.chain, {"steps": steps, "start": start})
    return time.perf_counter() - began, result


def check(result: RunResult, steps: int, start: int, expect: str) -> None:
    """Every step finished with status ``expect`` and the last output is start + steps."""
    if result.status != "succeeded":
        raise RuntimeError(f"run {result.run_id} {result.status}: {result.error}")
    statuses = {outcome.status for outcome in result.steps.values()}
    if len(result.steps) != steps or statuses != {expect}:
        raise RuntimeError(f"run {result.run_id}: expected {steps} steps all {expect}, got {len(result.steps)} {statuses}")
    last = "add_one" if steps == 1 else f"add_one_{steps}"
    value = result.output(last)
    if value != start + steps:
        raise RuntimeError(f"run {result.run_id}: {last} gave {value}, expected {start + steps}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="steps in the chain (default 20)")
    parser.add_argument("--skip-ray", action="store_true", help="do not measure the Ray executor")
    parser.add_argument("--results-dir", type=Path, default=BENCH / "results")
    args = parser.parse_args()
    steps: int = args.steps
    load_before = os.getloadavg()[0]
    if steps < 1:
        parser.error("--steps must be at least 1")

    seconds: dict[str, float] = {}
    notes: dict[str, str] = {}
    plain_s, plain_value = plain_chain(steps)
    if plain_value != steps:
        raise RuntimeError(f"plain chain gave {plain_value}, expected {steps}")
    seconds["plain"] = plain_s

    procs = Processes()
    start = int(time.time())  # a fresh start value, so no earlier run's cache answers the cache-off runs
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-pipelines-") as tmp_dir:
        tmp = Path(tmp_dir)
        try:
            with console.status("starting shipyard up..."):
                url, token = start_shipyard(procs, tmp)
            with Client(url, token) as client:
                client.create_namespace(NAMESPACE)
                columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
                with Progress(*columns, console=console) as progress:
                    local = executors.create("local")
                    try:
                        _, warm = timed_run(client, local, steps=WARMUP_STEPS, start=start, cache=False,
                                            progress=progress, label="local: warm-up")  # fmt: skip
                        check(warm, WARMUP_STEPS, start, "succeeded")
                        seconds["local"], result = timed_run(client, local, steps=steps, start=start, cache=False,
                                                             progress=progress, label="local, cache off")  # fmt: skip
                        check(result, steps, start, "succeeded")
                        fill_start = start + 1_000_000
                        _, filled = timed_run(client, local, steps=steps, start=fill_start, cache=True,
                                              progress=progress, label="local, filling the cache")  # fmt: skip
                        check(filled, steps, fill_start, "succeeded")
                        seconds["cache_hit"], hit = timed_run(client, local, steps=steps, start=fill_start, cache=True,
                                                              progress=progress, label="local, cache hit")  # fmt: skip
                        check(hit, steps, fill_start, "cached")
                    finally:
                        local.close()

                    if args.skip_ray:
                        notes["ray"] = "skipped (--skip-ray)"
                    else:
                        seconds["ray"] = measure_ray(client, tmp, steps=steps, start=start + 2_000_000, progress=progress)
        finally:
            procs.stop_all()

    return report(seconds, notes, steps, args.results_dir, load_before)


def measure_ray(client: Client, tmp: Path, *, steps: int, start: int, progress: Progress) -> float:
    import ray

    from shipyard.pipelines.executors.ray import RayExecutor

    with console.status("starting a local Ray runtime (not timed)..."):
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            _temp_dir=str(tmp / "ray"),
            runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([str(BENCH), *sys.path])}},
        )
    try:
        executor = RayExecutor()
        _, warm = timed_run(client, executor, steps=WARMUP_STEPS, start=start, cache=False,
                            progress=progress, label="ray: warm-up")  # fmt: skip
        check(warm, WARMUP_STEPS, start, "succeeded")
        took, result = timed_run(client, executor, steps=steps, start=start, cache=False,
                                 progress=progress, label="ray, cache off")  # fmt: skip
        check(result, steps, start, "succeeded")
        return took
    finally:
        ray.shutdown()


def report(seconds: dict[str, float], notes: dict[str, str], steps: int, results_dir: Path, load_before: float) -> int:
    labels = {
        "plain": "plain Python calls",
        "local": "local executor, cache off",
        "cache_hit": "local executor, cache hit",
        "ray": "Ray executor (num_cpus=2), cache off",
    }
    plain_ms = seconds["plain"] * 1000 / steps
    table = Table(title=f"Pipeline overhead: a chain of {steps} trivial steps")
    for column, justify in (("mode", "left"), ("total s", "right"), ("ms/step", "right"), ("vs plain", "right"),
                            ("target", "right"), ("result", "left")):  # fmt: skip
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    rows: dict[str, dict[str, Any]] = {}
    failed = False
    for mode, label in labels.items():
        if mode not in seconds:
            table.add_row(label, "-", "-", "-", "-", notes.get(mode, "not run"))
            continue
        ms = seconds[mode] * 1000 / steps
        target = TARGETS_MS.get(mode)
        passed = None if target is None else ms < target
        failed |= passed is False
        ratio = ms / plain_ms if plain_ms > 0 else float("inf")
        rows[mode] = {"seconds": seconds[mode], "ms_per_step": ms, "vs_plain": ratio, "target_ms_per_step": target,
                      "pass": passed}  # fmt: skip
        verdict = "" if passed is None else "[green]PASS[/]" if passed else "[red]FAIL[/]"
        table.add_row(
            label,
            f"{seconds[mode]:.6f}" if mode == "plain" else f"{seconds[mode]:.3f}",
            f"{ms:.6f}" if mode == "plain" else f"{ms:.1f}",
            "1x" if mode == "plain" else f"{ratio:,.0f}x",
            "" if target is None else f"< {target:.0f} ms",
            verdict,
        )
    console.print(table)
    results_dir.mkdir(parents=True, exist_ok=True)
    out = results_dir / "pipelines.json"
    payload = {
        "date": date.today().isoformat(),
        "steps": steps,
        "machine": machine_facts(load_before),
        "shipyard": shipyard.__version__,
        "modes": rows,
        "notes": notes,
        "pass": not failed,
    }
    out.write_text(json.dumps(payload, indent=2) + "\n")
    console.print(f"Wrote {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
