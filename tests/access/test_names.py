from __future__ import annotations

import pytest

from shipyard.access.names import namespace_name, principal_name, record_name
from shipyard.errors import InvalidInput


@pytest.mark.parametrize("value", ["a", "team-a", "0", "a" * 63, "ml-42-prod"])
def test_valid_namespace_names(value: str) -> None:
    assert namespace_name(value) == value


@pytest.mark.parametrize("value", ["", "A", "team_a", "-a", "a-", "a" * 64, "a.b", "tëam", " a", 7])
def test_invalid_namespace_names(value: object) -> None:
    with pytest.raises(InvalidInput, match="expected 1-63 lowercase letters") as raised:
        namespace_name(value)  # type: ignore[arg-type]
    assert repr(value) in str(raised.value)


@pytest.mark.parametrize("value", ["alice", "Alice.Smith", "alice@example.com", "a_b-c", "x"])
def test_valid_principal_names(value: str) -> None:
    assert principal_name(value) == value


@pytest.mark.parametrize("value", ["", "-alice", "alice-", "al ice", "alice/x", "a" * 256, None])
def test_invalid_principal_names(value: object) -> None:
    with pytest.raises(InvalidInput, match="not valid"):
        principal_name(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["churn", "Churn model v2", "a:b@c+d", "x" * 255, "0"])
def test_valid_record_names(value: str) -> None:
    assert record_name(value, "model") == value


@pytest.mark.parametrize("value", ["", " churn", "churn ", "_churn", "a/b", "x" * 256, "a\nb", "a#b"])
def test_invalid_record_names(value: str) -> None:
    with pytest.raises(InvalidInput, match="model name") as raised:
        record_name(value, "model")
    assert "expected 1-255 characters" in str(raised.value)


def test_slashes_only_where_allowed() -> None:
    assert record_name("/Users/alice/exp", "experiment", allow_slash=True) == "/Users/alice/exp"
    with pytest.raises(InvalidInput, match="experiment name") as raised:
        record_name("a/b", "experiment")
    assert "/" not in str(raised.value).split("expected", 1)[1]
    with pytest.raises(InvalidInput, match="experiment name"):
        record_name("a\\b", "experiment", allow_slash=True)
