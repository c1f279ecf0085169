"""The main command: global options, exit codes for API and usage errors, whoami."""

from __future__ import annotations

import pytest

from .conftest import Invoke, as_json


def test_help_lists_every_command_group(shipyard: Invoke) -> None:
    output = shipyard("--help").stdout
    for name in ("whoami", "namespace", "user", "service-account", "token", "role", "experiments", "runs", "models", "alias"):
        assert name in output
    assert "rollback" in output
    assert "audit" in output


def test_whoami_shows_the_admin(shipyard: Invoke) -> None:
    me = as_json(shipyard("whoami", "-o", "json"))
    assert me["name"] == "admin"
    assert me["roles"] == {"*": "platform-admin"}
    assert "admin" in shipyard("whoami").stdout


def test_global_url_and_token_options_override_the_environment(
    shipyard: Invoke, live_url: str, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("SHIPYARD_TOKEN", "not-a-token")
    me = as_json(shipyard("--url", live_url, "--token", admin_token, "whoami", "-o", "json"))
    assert me["name"] == "admin"


def test_a_bad_token_exits_1_with_the_message_on_stderr(shipyard: Invoke) -> None:
    result = shipyard("--token", "sy_wrong", "whoami", code=1)
    assert "Error" in result.stderr
    assert result.stdout == ""


def test_an_unreachable_server_exits_1(shipyard: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_URL", "http://127.0.0.1:9")
    result = shipyard("namespace", "create", "team-a", code=1)  # a POST: no retries, so no back-off to wait for
    assert "cannot reach Shipyard" in result.stderr


def test_usage_errors_exit_2(shipyard: Invoke) -> None:
    shipyard("models", "get", code=2)
    shipyard("audit", "--outcome", "maybe", code=2)
    shipyard("whoami", "-o", "yaml", code=2)
