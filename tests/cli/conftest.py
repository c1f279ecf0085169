"""CLI tests: the ``shipyard`` command against a live server on SQLite, as the platform admin."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from shipyard.cli.app import app

Invoke = Callable[..., Result]
GLOBAL_OPTION_VARIABLES = ("SHIPYARD_URL", "SHIPYARD_TOKEN", "SHIPYARD_HOME")


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """The CLI is a thin adapter over the SDK; one back end is enough here."""
    return f"sqlite:///{tmp_path / 'shipyard.db'}"


@pytest.fixture
def shipyard(live_url: str, admin_token: str, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """Run ``shipyard ARGS`` in-process; fails the test unless it exits with ``code``."""
    monkeypatch.setenv("SHIPYARD_URL", live_url)
    monkeypatch.setenv("SHIPYARD_TOKEN", admin_token)
    monkeypatch.setenv("COLUMNS", "250")  # wide tables, so ids are not wrapped
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> Result:
        # --url/--token/--home write os.environ as a real process would; put it back after each command.
        env = {key: os.environ.get(key) for key in GLOBAL_OPTION_VARIABLES}
        result = runner.invoke(app, list(args), env=env)
        assert result.exit_code == code, f"exit {result.exit_code}, expected {code}\n{result.output}"
        return result

    return invoke


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)
