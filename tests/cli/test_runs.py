"""``shipyard experiments`` and ``shipyard runs``."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.client import Client

from .conftest import Invoke, as_json


@pytest.fixture
def runs(client: Client) -> list[str]:
    """Three finished runs in experiment 'churn' with acc 0.8, 0.9, 0.95, and one run elsewhere."""
    ids = []
    for lr, acc in (("0.1", 0.8), ("0.01", 0.9), ("0.001", 0.95)):
        run = client.create_run("churn", name=f"lr-{lr}")
        client.log_batch(run["id"], params={"lr": lr}, metrics=[{"key": "acc", "value": acc, "step": 0}])
        client.end_run(run["id"])
        ids.append(run["id"])
    client.create_run("other")
    return ids


def test_experiments_list(shipyard: Invoke, runs: list[str]) -> None:
    names = {e["name"] for e in as_json(shipyard("experiments", "list", "-o", "json"))}
    assert {"churn", "other"} <= names
    assert "churn" in shipyard("experiments", "list", "-n", "default").stdout


def test_runs_list_filters_orders_and_pages(shipyard: Invoke, runs: list[str]) -> None:
    everything = as_json(shipyard("runs", "list", "-o", "json"))
    assert len(everything) == 4

    found = as_json(
        shipyard(
            "runs",
            "list",
            "--experiment",
            "churn",
            "--filter",
            "metrics.acc > 0.85",
            "--order-by",
            "metrics.acc DESC",
            "-o",
            "json",
        )
    )
    assert [r["id"] for r in found] == [runs[2], runs[1]]

    first_page = shipyard("runs", "list", "--experiment", "churn", "--max-results", "2")
    assert "pass --all" in first_page.stdout
    all_pages = as_json(shipyard("runs", "list", "--experiment", "churn", "--max-results", "2", "--all", "-o", "json"))
    assert sorted(r["id"] for r in all_pages) == sorted(runs)


def test_runs_list_with_an_unknown_experiment_exits_1(shipyard: Invoke, runs: list[str]) -> None:
    result = shipyard("runs", "list", "--experiment", "nope", code=1)
    assert "nope" in result.stderr


def test_runs_get_and_metrics(shipyard: Invoke, runs: list[str], client: Client) -> None:
    run = as_json(shipyard("runs", "get", runs[0], "-o", "json"))
    assert (run["name"], run["params"], run["status"]) == ("lr-0.1", {"lr": "0.1"}, "finished")
    table = shipyard("runs", "get", runs[0]).stdout
    assert "acc=0.8" in table
    assert "lr=0.1" in table

    client.log_batch(runs[0], metrics=[{"key": "loss", "value": 1.0 / (step + 1), "step": step} for step in range(5)])
    points = as_json(shipyard("runs", "metrics", runs[0], "loss", "-o", "json"))
    assert [p["step"] for p in points] == [0, 1, 2, 3, 4]
    assert points[-1]["value"] == pytest.approx(0.2)

    shipyard("runs", "get", "0" * 32, code=1)


def test_runs_artifacts_and_download(shipyard: Invoke, runs: list[str], client: Client, tmp_path: Path) -> None:
    body = b"label,count\nyes,3\nno,5\n" * 1000
    client.upload_artifact(runs[0], body, "reports/counts.csv", media_type="text/csv")

    listed = as_json(shipyard("runs", "artifacts", runs[0], "-o", "json"))
    assert [(a["path"], a["size"]) for a in listed] == [("reports/counts.csv", len(body))]
    assert "reports/counts.csv" in shipyard("runs", "artifacts", runs[0]).stdout

    saved = shipyard("runs", "download", runs[0], "reports/counts.csv", str(tmp_path))
    assert "Saved reports/counts.csv" in saved.stdout
    assert (tmp_path / "counts.csv").read_bytes() == body

    target = tmp_path / "copy.csv"
    result = as_json(shipyard("runs", "download", runs[0], "reports/counts.csv", str(target), "-o", "json"))
    assert (result["destination"], result["size"]) == (str(target), len(body))
    assert target.read_bytes() == body

    missing = shipyard("runs", "download", runs[0], "nope.txt", str(tmp_path / "nope.txt"), code=1)
    assert "nope.txt" in missing.stderr
    assert not (tmp_path / "nope.txt").exists()
