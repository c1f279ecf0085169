"""Bar chart of bench/results/tracking.json; run by bench/tracking.py with any Python that has matplotlib.

python bench/_plot.py bench/results/tracking.json bench/results/tracking.png
"""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")  # no display on a server
import matplotlib.pyplot as plt


def main() -> None:
    source, target = sys.argv[1], sys.argv[2]
    with open(source) as handle:
        results = json.load(handle)
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


if __name__ == "__main__":
    main()
