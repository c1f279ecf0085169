"""``shipyard schedule``, ``shipyard event``, ``shipyard pipeline queue|cancel`` and ``shipyard namespace quota``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import Invoke, as_json

NS = "ml"
TARGET = "tests.pipelines.sample_pipelines:quickstart"


@pytest.fixture
def ml(shipyard: Invoke) -> Invoke:
    shipyard("namespace", "create", NS)
    return shipyard


def test_schedules_are_created_shown_paused_resumed_and_deleted(ml: Invoke) -> None:
    created = as_json(
        ml("schedule", "create", "nightly", TARGET, "--cron", "0 2 * * *", "--timezone", "Europe/Paris", "-p", "rows=100",
           "--priority", "4", "-n", NS, "-o", "json")
    )  # fmt: skip
    assert (created["cron"], created["timezone"], created["params"], created["priority"]) == (
        "0 2 * * *", "Europe/Paris", {"rows": 100}, 4,
    )  # fmt: skip
    assert created["workdir"] == str(Path.cwd().resolve())
    assert created["next_due_at"] is not None
    ml("schedule", "create", "on-data", TARGET, "--on", "dataset.version:catalogue", "-n", NS)
    chained = as_json(ml("schedule", "create", "after", TARGET, "--on", "pipeline.finished:prep", "--on-status", "failed",
                         "-n", NS, "-o", "json"))  # fmt: skip
    assert chained["on_event"] == {"kind": "pipeline.finished", "subject": "prep", "status": "failed"}
    listed = as_json(ml("schedule", "list", "-n", NS, "-o", "json"))
    assert [s["name"] for s in listed] == ["after", "nightly", "on-data"]
    assert "nightly" in ml("schedule", "list", "-n", NS).output

    assert as_json(ml("schedule", "pause", "nightly", "-n", NS, "-o", "json"))["enabled"] is False
    assert as_json(ml("schedule", "resume", "nightly", "-n", NS, "-o", "json"))["enabled"] is True
    shown = as_json(ml("schedule", "show", "nightly", "-n", NS, "-o", "json"))
    assert (shown["name"], shown["fires"]) == ("nightly", [])
    assert "No firings yet" in ml("schedule", "show", "nightly", "-n", NS).output
    ml("schedule", "delete", "nightly", "-n", NS)
    assert "does not exist" in ml("schedule", "show", "nightly", "-n", NS, code=1).output


def test_bad_schedules_are_refused_with_what_to_do(ml: Invoke) -> None:
    assert "give --cron, --on, or both" in ml("schedule", "create", "x", TARGET, "-n", NS, code=1).output
    assert "is not valid" in ml("schedule", "create", "x", TARGET, "--cron", "every day", "-n", NS, code=1).output
    assert "KIND:SUBJECT" in ml("schedule", "create", "x", TARGET, "--on", "catalogue", "-n", NS, code=2).output
    assert "Input should be" in ml("schedule", "create", "x", TARGET, "--on", "model.deleted:x", "-n", NS, code=1).output
    assert as_json(ml("schedule", "list", "-n", NS, "-o", "json")) == []


def test_events_are_emitted_and_listed(ml: Invoke) -> None:
    emitted = as_json(ml("event", "emit", "dataset.version", "catalogue", "--payload", '{"version": 3}', "-n", NS, "-o", "json"))
    assert (emitted["kind"], emitted["subject"], emitted["payload"]) == ("dataset.version", "catalogue", {"version": 3})
    ml("event", "emit", "alert.fired", "drift-price", "-n", NS)
    listed = as_json(ml("event", "list", "-n", NS, "-o", "json"))
    assert [e["kind"] for e in listed] == ["dataset.version", "alert.fired"]
    assert [e["subject"] for e in as_json(ml("event", "list", "--kind", "alert.fired", "-n", NS, "-o", "json"))] == [
        "drift-price"
    ]
    assert "payload is not JSON" in ml("event", "emit", "dataset.version", "x", "--payload", "{", "-n", NS, code=2).output
    # Finished pipelines are reported by the platform itself, not by callers.
    assert "Input should be" in ml("event", "emit", "pipeline.finished", "train", "-n", NS, code=1).output


def test_quota_queue_and_cancel(ml: Invoke) -> None:
    assert "none" in ml("namespace", "quota", NS).output
    quota = as_json(ml("namespace", "quota", NS, "--cpu", "4", "--memory", "8Gi", "--runs", "1", "-o", "json"))
    assert (quota["cpu"], quota["memory_mb"], quota["gpu"], quota["concurrent_runs"]) == (4.0, 8192, None, 1)
    assert "memory" in ml("namespace", "quota", NS, "--memory", "lots", code=1).output.lower()
    queue = ml("pipeline", "queue", "-n", NS).output
    assert "4 CPU, 8192 MiB, 1 runs at once" in queue
    assert "Running: 0 run(s)" in queue
    assert as_json(ml("pipeline", "queue", "-n", NS, "-o", "json"))["queued"] == []
    removed = as_json(ml("namespace", "quota", NS, "--remove", "-o", "json"))
    assert removed == {"namespace": NS, "quota": None}
    assert "does not exist" in ml("pipeline", "cancel", "0" * 32, "-n", NS, code=1).output
