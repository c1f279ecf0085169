"""Bar charts of bench/results/*.json; run by bench/tracking.py and bench/serving.py with any Python that has matplotlib.

python bench/_plot.py bench/results/tracking.json bench/results/tracking.png
python bench/_plot.py bench/results/serving.json bench/results/serving.png
"""

from __future__ import annotations

import json
import sys
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on a server
import matplotlib.pyplot as plt


def main() -> None:
    source, target = sys.argv[1], sys.argv[2]
    with open(source) as handle:
        results = json.load(handle)
    if results.get("kind") == "serving":
        serving(results, target)
    else:
        tracking(results, target)


def tracking(results: dict[str, Any], target: str) -> None:
    rows = [(row["label"], row["side"], row["metrics_per_s"]) for row in results["measurements"]]
    colors = {"shipyard": "#1f77b4", "mlflow": "#ff7f0e"}

    fig, ax = plt.subplots(figsize=(9, 0.55 * len(rows) + 1.5))
    labels = [label for label, _, _ in rows]
    values = [value for _, _, value in rows]
    bars = ax.barh(labels, values, color=[colors[side] for _, side, _ in rows])
    ax.invert_yaxis()
    # Rates span four orders of magnitude: a linear axis would hide the per-call MLflow bar.
    ax.set_xscale("log")
    ax.set_xlabel("metrics per second (log scale, higher is better)")
    cpus = results["machine"]["cpus"]
    ax.set_title(
        f"Metric logging: Shipyard {results['shipyard_version']} vs MLflow {results['mlflow_version']}\n"
        f"SQLite on both sides, {cpus} cores, {results['date']}"
    )
    for bar, value in zip(bars, values, strict=True):
        ax.text(value * 1.05, bar.get_y() + bar.get_height() / 2, f"{value:,.0f}/s", va="center", fontsize=8)
    ax.set_xlim(right=max(values) * 6)
    fig.tight_layout()
    fig.savefig(target, dpi=120)


def serving(results: dict[str, Any], target: str) -> None:
    """Requests/s on the left, p50 and p99 latency on the right, one bar group per server."""
    rows = [row for row in results["servers"] if row.get("requests_per_s") and not row.get("failure")]
    colors = {"shipyard": "#1f77b4", "mlflow": "#ff7f0e", "bare": "#7f7f7f"}
    labels = [row["label"] for row in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 0.7 * len(rows) + 2.2))

    rates = [row["requests_per_s"] for row in rows]
    bars = left.barh(labels, rates, color=[colors.get(row["server"], "#2ca02c") for row in rows])
    left.invert_yaxis()
    left.set_xlabel("requests per second (higher is better)")
    for bar, value in zip(bars, rates, strict=True):
        left.text(value, bar.get_y() + bar.get_height() / 2, f" {value:,.0f}/s", va="center", fontsize=8)
    left.set_xlim(right=max(rates, default=1) * 1.3)

    height = 0.38
    positions = range(len(rows))
    for offset, key, shade in ((-height / 2, "p50_ms", 0.55), (height / 2, "p99_ms", 1.0)):
        values = [row[key] or 0 for row in rows]
        shades = [colors.get(row["server"], "#2ca02c") for row in rows]
        drawn = right.barh([p + offset for p in positions], values, height=height, color=shades, alpha=shade)
        for bar, value in zip(drawn, values, strict=True):
            right.text(value, bar.get_y() + bar.get_height() / 2, f" {value:,.2f} ms", va="center", fontsize=7)
    right.set_yticks(list(positions), [""] * len(rows))
    right.invert_yaxis()
    # MLflow's latency is tens of times the others': a log axis keeps every bar readable.
    right.set_xscale("log")
    right.set_xlabel("latency in ms, p50 (light) and p99 (dark), log scale, lower is better")
    right.set_xlim(right=max((row["p99_ms"] or 1 for row in rows), default=1) * 8)

    config, machine = results["config"], results["machine"]
    mlflow = f" vs MLflow {results['mlflow_version']}" if results.get("mlflow_version") else ""
    fig.suptitle(
        f"One-row predictions: Shipyard {results['shipyard_version']}{mlflow} vs a bare ONNX app\n"
        f"wrk {config['connections']} connections, {config['workers']} workers each, {config['duration_s']} s, "
        f"{machine['cpus']} cores, {results['date']}"
    )
    fig.tight_layout()
    fig.savefig(target, dpi=120)


if __name__ == "__main__":
    main()
