"""The lineage tree names the pipeline run a model version came from."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from shipyard.cli.lineage import lineage_tree


def rendered(lineage: dict[str, Any]) -> str:
    console = Console(record=True, width=200)
    console.print(lineage_tree(lineage))
    return console.export_text()


def lineage(pipeline_run: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "model": {"name": "churn", "version": 3, "uri": "models:/team-a/churn/3"},
        "aliases": [],
        "artifact": {"format": "sklearn", "size": 10, "digest": "ab" * 32},
        "run": None,
        "datasets": [],
        "pipeline_run": pipeline_run,
    }


def test_a_version_made_in_a_pipeline_shows_its_run_and_step() -> None:
    text = rendered(lineage({"id": "run42", "pipeline": "churn-training", "status": "succeeded", "step": "train"}))
    assert "pipeline run run42 of churn-training (succeeded), step train" in text
    assert "shipyard pipeline show run42" in text


def test_a_version_made_elsewhere_shows_no_pipeline_run() -> None:
    assert "pipeline run" not in rendered(lineage(None))
