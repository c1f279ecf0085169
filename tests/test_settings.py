from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from shipyard.settings import DEFAULT_HOME, Settings


def test_home_defaults_to_dot_shipyard_in_the_user_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SHIPYARD_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = Settings()
    assert settings.home == DEFAULT_HOME
    assert settings.resolved_home() == (tmp_path / ".shipyard").resolve()
    assert settings.admin_token_path == (tmp_path / ".shipyard" / "admin.token").resolve()


def test_home_is_expanded_and_resolved(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SHIPYARD_HOME", "~/somewhere/../platform")
    assert Settings().resolved_home() == (tmp_path / "platform").resolve()
    monkeypatch.chdir(tmp_path)
    assert Settings(home=Path("relative")).resolved_home() == (tmp_path / "relative").resolve()


def test_urls_are_derived_from_the_home_and_address(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert settings.resolved_database_url() == f"sqlite:///{tmp_path.resolve() / 'shipyard.db'}"
    assert settings.resolved_artifacts_url() == str(tmp_path.resolve() / "artifacts")
    assert settings.resolved_url() == f"http://{settings.host}:{settings.port}"
    assert Settings(host="0.0.0.0", port=9000).resolved_url() == "http://0.0.0.0:9000"


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {
        "SHIPYARD_DATABASE_URL": "postgresql://db.internal/shipyard",
        "SHIPYARD_ARTIFACTS_URL": "s3://bucket/artifacts",
        "SHIPYARD_HOST": "0.0.0.0",
        "SHIPYARD_PORT": "9999",
        "SHIPYARD_URL": "https://shipyard.example.com/",
        "SHIPYARD_TOKEN": "shp_abc",
        "SHIPYARD_MAX_REQUEST_BYTES": "1024",
        "SHIPYARD_DEFAULT_TOKEN_DAYS": "7",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.resolved_database_url() == values["SHIPYARD_DATABASE_URL"]
    assert settings.resolved_artifacts_url() == values["SHIPYARD_ARTIFACTS_URL"]
    assert settings.resolved_url() == values["SHIPYARD_URL"].rstrip("/")
    assert (settings.host, settings.port, settings.token) == ("0.0.0.0", 9999, "shp_abc")
    assert (settings.max_request_bytes, settings.default_token_days) == (1024, 7)


def test_explicit_arguments_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_PORT", "9999")
    assert Settings(port=1234).port == 1234


@pytest.mark.parametrize(
    ("key", "value"), [("SHIPYARD_PORT", "70000"), ("SHIPYARD_PORT", "http"), ("SHIPYARD_MAX_REQUEST_BYTES", "0")]
)
def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch, key: str, value: str) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError, match=key.removeprefix("SHIPYARD_").lower()):
        Settings()


def test_unrelated_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_SOMETHING_ELSE", "x")
    assert not hasattr(Settings(), "something_else")
