"""``shipyard pipeline run|resume|runs|show`` and ``shipyard logs`` against a live server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import Invoke, as_json
from tests.pipelines import sample_pipelines as sample

pytestmark = pytest.mark.slow

NS = "ml"
QUICKSTART = "tests.pipelines.sample_pipelines:quickstart"


@pytest.fixture
def ml(shipyard: Invoke) -> Invoke:
    shipyard("namespace", "create", NS)
    return shipyard


def test_run_show_and_logs(ml: Invoke) -> None:
    done = ml("pipeline", "run", QUICKSTART, "-p", "rows=200", "-p", "c=0.5", "-n", NS)
    assert "succeeded" in done.output
    runs = as_json(ml("pipeline", "runs", "-n", NS, "-o", "json"))
    assert len(runs) == 1
    assert runs[0]["params"] == {"rows": 200, "c": 0.5}
    run_id = runs[0]["id"]
    shown = as_json(ml("pipeline", "show", run_id, "-n", NS, "-o", "json"))
    assert {s["step"] for s in shown["steps"]} == {"load", "split", "train", "evaluate"}
    assert all(s["usage"]["cpu_seconds"] >= 0 and s["usage"]["max_rss_mb"] > 0 for s in shown["steps"])
    table = ml("pipeline", "show", run_id, "-n", NS).output
    assert "cpu_s" in table
    assert "max_rss_mb" in table
    logs = ml("logs", run_id, "--step", "load", "-n", NS).output
    assert "loaded 569 rows, keeping 200" in logs
    again = ml("pipeline", "run", QUICKSTART, "-p", "rows=200", "-p", "c=0.5", "-n", NS)
    assert again.output.count("reused (cache)") == 4


def test_a_failed_run_exits_1_and_prints_the_resume_command(ml: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fail_file = tmp_path / "fail"
    fail_file.write_text("x")
    monkeypatch.setenv(sample.FAIL_FILE, str(fail_file))
    failed = ml("pipeline", "run", "tests.pipelines.sample_pipelines:gated", "-n", NS, code=1)
    assert "shipyard pipeline resume" in failed.output
    run_id = as_json(ml("pipeline", "runs", "-n", NS, "-o", "json"))[0]["id"]
    fail_file.unlink()
    resumed = ml("pipeline", "resume", run_id, "-n", NS)
    assert "succeeded" in resumed.output
    assert resumed.output.count("reused (resumed)") == 4


def test_bad_targets_and_parameters_are_refused(ml: Invoke) -> None:
    assert "expected MODULE:NAME" in ml("pipeline", "run", "no-colon", "-n", NS, code=1).output
    assert "is nothing" in ml("pipeline", "run", "tests.pipelines.sample_pipelines:missing", "-n", NS, code=1).output
    assert "unknown" in ml("pipeline", "run", QUICKSTART, "-p", "epochs=3", "-n", NS, code=1).output.lower()
    assert "KEY=VALUE" in ml("pipeline", "run", QUICKSTART, "-p", "novalue", "-n", NS, code=2).output
