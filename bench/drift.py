"""Data drift: Shipyard's monitoring against Evidently's DataDriftPreset, side by side on the same data.

    .venv/bin/python bench/drift.py
    .venv/bin/python bench/drift.py --current-rows 200000 --repeat 5

Generates (seeded) 100,000 reference rows and 1,000,000 current rows of 20 features, 15 numeric
and 5 categorical, a few of them shifted on purpose and the rest drawn from the same distribution,
and writes both to Parquet in a temporary folder. Then:

- Shipyard (this virtualenv): ``Profile.from_frame(reference)`` and ``detect_drift(profile, current)``,
  each timed on its own (median of ``--repeat`` runs), on frames read from those files;
- Evidently 0.7.23 (its own virtualenv, ``.bench-venv-evidently/``, created when missing, because it
  needs pandas<3): ``Report([DataDriftPreset()]).run(...)`` on frames read from the same files, timed
  from the call to the snapshot's per-column values.

Prints per-feature method, score (p-value or distance) and verdict for both, whether the verdicts agree, the times
and the ratio (Evidently's time over Shipyard's profile + check). Target: Shipyard at least 5x
faster with the same per-feature verdicts. Results go to bench/results/drift.json; exit 1 when a
verdict differs or the target is missed.

This file is also the Evidently side: the Evidently virtualenv runs it with ``--side evidently``,
which imports only Evidently, pandas and the standard library.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EVIDENTLY_PIN = "0.7.23"
PACKAGES = [f"evidently=={EVIDENTLY_PIN}", "pandas<3", "pyarrow"]  # evidently 0.7.23 fails to import with pandas 3
TARGET_RATIO = 5.0
SEED = 20261122

# feature -> what changes between reference and current; the rest are drawn alike on both sides.
SHIFTS = {
    "num_00": "mean +0.5 sd",
    "num_01": "sd x1.5",
    "num_02": "log-mean +0.3",
    "num_05": "mean +0.05 sd (small)",
    "cat_00": "proportions moved",
    "cat_01": "10 % new categories",
}


# -- data ----------------------------------------------------------------------------------------


def make_frame(rows: int, *, current: bool, seed: int) -> Any:
    """15 numeric and 5 categorical features; ``current`` applies SHIFTS."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    data["num_00"] = rng.normal(0.5 if current else 0.0, 1.0, rows)
    data["num_01"] = rng.normal(5.0, 3.0 if current else 2.0, rows)
    data["num_02"] = rng.lognormal(0.3 if current else 0.0, 0.75, rows)
    uniform = rng.uniform(0, 1, rows)
    uniform[rng.random(rows) < 0.05] = np.nan  # 5 % missing on both sides
    data["num_03"] = uniform
    data["num_04"] = rng.exponential(2.0, rows)
    data["num_05"] = rng.normal(100.05 if current else 100.0, 1.0, rows)
    for i in range(6, 12):
        data[f"num_{i:02d}"] = rng.normal(i, 1 + i / 10, rows)
    data["num_12"] = rng.gamma(2.0, 3.0, rows)
    data["num_13"] = rng.poisson(3.0, rows).astype(np.int64)
    data["num_14"] = rng.choice([0, 1, 2], rows, p=[0.5, 0.3, 0.2]).astype(np.int64)  # 3 values: compared as categories

    moved = [0.25, 0.25, 0.25, 0.25] if not current else [0.45, 0.25, 0.15, 0.15]
    data["cat_00"] = rng.choice(["red", "green", "blue", "black"], rows, p=moved)
    labels = [f"type_{i}" for i in range(10)]
    cat_01 = rng.choice(labels, rows)
    if current:
        fresh = rng.random(rows) < 0.10
        cat_01[fresh] = rng.choice(["type_new_a", "type_new_b"], int(fresh.sum()))
    data["cat_01"] = cat_01
    zipf = 1 / np.arange(1, 51)
    data["cat_02"] = rng.choice([f"sku_{i:02d}" for i in range(50)], rows, p=zipf / zipf.sum())
    data["cat_03"] = rng.choice(["yes", "no"], rows, p=[0.3, 0.7])
    cat_04 = rng.choice(["a", "b", "c", "d", "e", "f"], rows).astype(object)
    cat_04[rng.random(rows) < 0.03] = None  # 3 % missing on both sides
    data["cat_04"] = cat_04
    return pd.DataFrame(data)


NUMERIC = [f"num_{i:02d}" for i in range(15)]
CATEGORICAL = [f"cat_{i:02d}" for i in range(5)]


# -- the Evidently side (runs in its own virtualenv) -----------------------------------------------


def evidently_side(reference_path: str, current_path: str, numeric: list[str], categorical: list[str]) -> dict[str, Any]:
    import evidently
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.legacy.calculations.stattests.registry import _registered_stat_tests
    from evidently.presets import DataDriftPreset

    reference = pd.read_parquet(reference_path)
    current = pd.read_parquet(current_path)
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    # Evidently reports a method by its display name; its registry gives the short name.
    names = {test.display_name: name for name, by_type in _registered_stat_tests.items() for test in by_type.values()}

    started = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )
    metrics = snapshot.dict()["metrics"]
    seconds = time.perf_counter() - started

    features: dict[str, Any] = {}
    share = None
    for metric in metrics:
        config = metric["config"]
        if config.get("type", "").endswith("DriftedColumnsCount"):
            share = metric["value"]["share"]
        elif config.get("type", "").endswith("ValueDrift"):
            display, threshold, value = config["method"], config["threshold"], float(metric["value"])
            # Tests report a p-value (drift below the threshold), distances a distance (drift at or above it).
            p_value = "p_value" in display
            features[config["column"]] = {
                "method": names.get(display, display),
                "score": value,
                "threshold": threshold,
                "drifted": value < threshold if p_value else value >= threshold,
            }
    return {"version": evidently.__version__, "seconds": seconds, "features": features, "share_drifted": share}


# -- the Shipyard side -----------------------------------------------------------------------------


def shipyard_side(reference: Any, current: Any, repeat: int) -> dict[str, Any]:
    from shipyard.monitoring import Profile, detect_drift

    profile_times, check_times = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        profile = Profile.from_frame(reference)
        profile_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        report = detect_drift(profile, current)
        check_times.append(time.perf_counter() - started)
    # The score is what Evidently reports too: the p-value for a test, the distance for a distance.
    features = {
        f.feature: {
            "method": f.method,
            "statistic": f.statistic,
            "score": f.statistic if f.p_value is None else f.p_value,
            "threshold": f.threshold,
            "drifted": f.drifted,
        }
        for f in report.features
    }
    return {
        "profile_seconds": statistics.median(profile_times),
        "check_seconds": statistics.median(check_times),
        "profile_runs": profile_times,
        "check_runs": check_times,
        "profile_json_bytes": len(json.dumps(profile.to_dict())),
        "features": features,
        "skipped": dict(report.skipped),
        "share_drifted": report.share_drifted,
    }


def ensure_evidently_venv(venv: Path) -> str:
    """Evidently 0.7.23 in its own virtualenv: it does not import with pandas 3."""
    from tracking import console, probe, venv_python

    python = venv_python(venv)
    check = "import evidently, pandas, pyarrow; print(evidently.__version__)"
    version = probe(python, check) if python.exists() else None
    if version == EVIDENTLY_PIN:
        return version
    console.print(f"Installing evidently=={EVIDENTLY_PIN} into {venv} (once; a few minutes)...")
    with console.status("pip install..."):
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *PACKAGES],
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"pip could not install evidently=={EVIDENTLY_PIN} into {venv}:\n{done.stderr[-3000:]}")
    version = probe(python, check)
    if version != EVIDENTLY_PIN:
        raise RuntimeError(f"expected evidently {EVIDENTLY_PIN} importable in {venv}, got {version}")
    return version


def run_evidently(venv: Path, reference_path: Path, current_path: Path) -> dict[str, Any]:
    from tracking import venv_python

    cmd = [str(venv_python(venv)), str(Path(__file__).resolve()), "--side", "evidently"]
    cmd += ["--reference", str(reference_path), "--current", str(current_path)]
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env["DO_NOT_TRACK"] = "1"  # no usage telemetry from the peer
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the Evidently side failed with {done.returncode}:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


# -- report ----------------------------------------------------------------------------------------


def compare(ours: dict[str, Any], theirs: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for feature in NUMERIC + CATEGORICAL:
        a, b = ours["features"].get(feature), theirs["features"].get(feature)
        rows.append(
            {
                "feature": feature,
                "change": SHIFTS.get(feature, ""),
                "shipyard": a,
                "evidently": b,
                "same_method": bool(a and b and a["method"] == b["method"]),
                "agree": bool(a and b and a["drifted"] == b["drifted"]),
            }
        )
    return rows


def show(results: dict[str, Any]) -> None:
    from rich.table import Table

    from tracking import console

    table = Table(title="Per-feature drift: Shipyard vs Evidently DataDriftPreset")
    for column in ("feature", "change", "Shipyard method", "score", "drift", "Evidently method", "score ", "drift ", "agree"):
        table.add_column(column, justify="right" if column.startswith("score") else "left")
    for row in results["features"]:
        a, b = row["shipyard"] or {}, row["evidently"] or {}
        table.add_row(
            row["feature"],
            row["change"],
            a.get("method", "-"),
            _score(a),
            _verdict(a),
            b.get("method", "-"),
            _score(b),
            _verdict(b),
            "[green]yes[/green]" if row["agree"] else "[red]NO[/red]",
        )
    console.print(table)

    times = Table(title="Times (seconds)")
    for column in ("what", "seconds"):
        times.add_column(column, justify="left" if column == "what" else "right")
    s, e = results["shipyard"], results["evidently"]
    times.add_row(f"Shipyard Profile.from_frame (reference, {results['reference_rows']:,} rows)", f"{s['profile_seconds']:.3f}")
    times.add_row(f"Shipyard detect_drift (current, {results['current_rows']:,} rows)", f"{s['check_seconds']:.3f}")
    times.add_row("Shipyard total", f"{s['profile_seconds'] + s['check_seconds']:.3f}")
    times.add_row(f"Evidently {e['version']} DataDriftPreset", f"{e['seconds']:.3f}")
    console.print(times)

    verdict = results["verdict"]
    status = "[green]PASS[/green]" if verdict["pass"] else "[red]FAIL[/red]"
    console.print(
        f"Ratio Evidently / Shipyard total: [bold]{verdict['ratio_total']:.1f}x[/bold] "
        f"(check alone: {verdict['ratio_check']:.1f}x; target >= {TARGET_RATIO:.0f}x). "
        f"Verdicts agree on {verdict['agreeing']}/{verdict['compared']} features; "
        f"methods match on {verdict['same_method']}/{verdict['compared']}. "
        f"Share drifted: Shipyard {s['share_drifted']:.2f}, Evidently {e['share_drifted']}. {status}"
    )
    console.print(
        "Jensen-Shannon distances differ by design: Shipyard's are in base 2 (0 to 1), Evidently's in the natural "
        "log, sqrt(ln 2) = 0.833 times as large. Both flag drift at >= 0.1. The score is a p-value for tests "
        "(ks, chisquare, z) and a distance otherwise."
    )


def _score(side: dict[str, Any]) -> str:
    if not side:
        return "-"
    return f"{side['score']:.4f}" if side["score"] >= 1e-4 else f"{side['score']:.1e}"


def _verdict(side: dict[str, Any]) -> str:
    if not side:
        return "-"
    return "[bold red]drift[/bold red]" if side["drifted"] else "ok"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference-rows", type=int, default=100_000)
    parser.add_argument("--current-rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="Shipyard runs; the median is reported")
    parser.add_argument("--venv", type=Path, default=ROOT / ".bench-venv-evidently")
    parser.add_argument("--results-dir", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--side", choices=["evidently"], help=argparse.SUPPRESS)
    parser.add_argument("--reference", help=argparse.SUPPRESS)
    parser.add_argument("--current", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.side == "evidently":
        print(json.dumps(evidently_side(args.reference, args.current, NUMERIC, CATEGORICAL)))
        return 0

    import pandas as pd

    from tracking import console, machine_facts

    load_before = os.getloadavg()[0]
    version = ensure_evidently_venv(args.venv)
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-drift-") as tmp:
        reference_path, current_path = Path(tmp) / "reference.parquet", Path(tmp) / "current.parquet"
        with console.status("Generating data..."):
            make_frame(args.reference_rows, current=False, seed=SEED).to_parquet(reference_path)
            make_frame(args.current_rows, current=True, seed=SEED + 1).to_parquet(current_path)
        reference, current = pd.read_parquet(reference_path), pd.read_parquet(current_path)
        with console.status(f"Shipyard ({args.repeat} runs)..."):
            ours = shipyard_side(reference, current, args.repeat)
        del reference, current
        with console.status(f"Evidently {version} DataDriftPreset..."):
            theirs = run_evidently(args.venv, reference_path, current_path)

    rows = compare(ours, theirs)
    total = ours["profile_seconds"] + ours["check_seconds"]
    verdict = {
        "ratio_total": theirs["seconds"] / total,
        "ratio_check": theirs["seconds"] / ours["check_seconds"],
        "agreeing": sum(row["agree"] for row in rows),
        "same_method": sum(row["same_method"] for row in rows),
        "compared": len(rows),
    }
    verdict["pass"] = verdict["ratio_total"] >= TARGET_RATIO and verdict["agreeing"] == len(rows)
    results = {
        "date": date.today().isoformat(),
        "machine": machine_facts(load_before),
        "reference_rows": args.reference_rows,
        "current_rows": args.current_rows,
        "repeat": args.repeat,
        "shipyard": ours,
        "evidently": theirs,
        "features": rows,
        "verdict": verdict,
    }
    show(results)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / "drift.json").write_text(json.dumps(results, indent=2))
    console.print(f"Machine: {results['machine']}. Results: {args.results_dir / 'drift.json'}")
    return 0 if verdict["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
