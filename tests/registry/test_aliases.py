from __future__ import annotations

import pytest

from shipyard.access.caller import Caller
from shipyard.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from shipyard.registry import aliases, models
from shipyard.registry.models import VersionDraft
from shipyard.runtime import Platform
from tests.conftest import TEAM, MakeCaller, held_blob

SYSTEM = Caller.system()
MODEL = "churn"


@pytest.fixture
def versions(platform: Platform, teams: tuple[str, str]) -> list[int]:
    digest = held_blob(platform, TEAM, b"weights")
    with platform.db.session(write=True) as session:
        models.create(session, SYSTEM, TEAM, MODEL)
        return [
            models.create_version(session, SYSTEM, platform.artifacts, TEAM, MODEL, VersionDraft(digest, "sklearn")).version
            for _ in range(4)
        ]


def _set(platform: Platform, alias: str, version: int, caller: Caller = SYSTEM) -> int:
    with platform.db.session(write=True) as session:
        return aliases.set_alias(session, caller, TEAM, MODEL, alias, version).version


def _rollback(platform: Platform, alias: str = "production") -> int:
    with platform.db.session(write=True) as session:
        return aliases.rollback(session, SYSTEM, TEAM, MODEL, alias).version


def _current(platform: Platform, alias: str = "production") -> int:
    with platform.db.session() as session:
        return aliases.resolve(session, SYSTEM, TEAM, MODEL, alias).version


def test_set_resolve_and_list(platform: Platform, versions: list[int]) -> None:
    _set(platform, "production", versions[0])
    _set(platform, "staging", versions[1])
    _set(platform, "champion", versions[0])
    assert _current(platform) == versions[0]
    with platform.db.session() as session:
        assert [a.alias for a in aliases.list_for(session, SYSTEM, TEAM, MODEL)] == ["champion", "production", "staging"]
        model = models.get(session, SYSTEM, TEAM, MODEL)
        assert aliases.aliases_of_version(session, model.id, versions[0]) == ["champion", "production"]
        assert aliases.get_alias(session, SYSTEM, TEAM, MODEL, "staging").updated_by == SYSTEM.name
        with pytest.raises(NotFound, match="no alias 'canary'"):
            aliases.resolve(session, SYSTEM, TEAM, MODEL, "canary")


def test_set_needs_an_existing_version(platform: Platform, versions: list[int]) -> None:
    with pytest.raises(NotFound, match="no version 99"):
        _set(platform, "production", 99)
    with pytest.raises(NotFound):
        _current(platform)


@pytest.mark.parametrize("alias", ["latest", "v3", "Production", "", "1st", "a" * 64, "prod uction", "prod.v2"])
def test_invalid_alias_names(alias: str) -> None:
    with pytest.raises(InvalidInput, match="not 'latest' and not like 'v3'"):
        aliases.validate_alias(alias)


def test_valid_alias_names() -> None:
    for alias in ("production", "a", "canary-2", "blue_green", "v", "v2b", "a" * 63):
        assert aliases.validate_alias(alias) == alias


def test_invalid_names_are_refused_on_set(platform: Platform, versions: list[int]) -> None:
    with pytest.raises(InvalidInput):
        _set(platform, "latest", versions[0])


def test_rollback_walks_back_through_every_move(platform: Platform, versions: list[int]) -> None:
    v1, v2, v3, v4 = versions
    for version in (v1, v2, v3, v4):
        _set(platform, "production", version)
    assert [_rollback(platform) for _ in range(3)] == [v3, v2, v1]
    with pytest.raises(Conflict, match="no earlier version"):
        _rollback(platform)
    assert _current(platform) == v1


def test_rollback_after_new_sets_and_repeats(platform: Platform, versions: list[int]) -> None:
    v1, v2, v3, _ = versions
    _set(platform, "production", v1)
    _set(platform, "production", v2)
    _set(platform, "production", v2)
    assert _rollback(platform) == v1
    _set(platform, "production", v3)
    assert _rollback(platform) == v1
    _set(platform, "production", v2)
    _set(platform, "production", v1)
    assert [_rollback(platform), _rollback(platform)] == [v2, v1]


def test_rollback_with_no_history_is_a_conflict(platform: Platform, versions: list[int]) -> None:
    with pytest.raises(Conflict, match="history: empty"):
        _rollback(platform)
    _set(platform, "production", versions[0])
    with pytest.raises(Conflict, match="no earlier version"):
        _rollback(platform)


def test_aliases_roll_back_independently(platform: Platform, versions: list[int]) -> None:
    v1, v2, v3, _ = versions
    _set(platform, "production", v1)
    _set(platform, "staging", v2)
    _set(platform, "production", v3)
    _set(platform, "staging", v3)
    assert _rollback(platform, "staging") == v2
    assert _current(platform, "production") == v3


def test_history_records_every_move(platform: Platform, versions: list[int]) -> None:
    v1, v2, _, _ = versions
    _set(platform, "production", v1)
    _set(platform, "production", v2)
    _set(platform, "staging", v2)
    _rollback(platform)
    with platform.db.session(write=True) as session:
        aliases.delete_alias(session, SYSTEM, TEAM, MODEL, "production")
    with platform.db.session() as session:
        changes = aliases.history(session, SYSTEM, TEAM, MODEL, "production")
        everything = aliases.history(session, SYSTEM, TEAM, MODEL)
    assert [(c.action, c.version, c.previous_version) for c in changes] == [
        ("set", v1, None),
        ("set", v2, v1),
        ("rollback", v1, v2),
        ("delete", None, v1),
    ]
    assert {c.actor for c in changes} == {SYSTEM.name}
    assert len(everything) == len(changes) + 1
    assert [c.id for c in everything] == sorted(c.id for c in everything)


def test_delete_removes_the_alias_and_its_rollback_stack(platform: Platform, versions: list[int]) -> None:
    v1, v2, v3, _ = versions
    _set(platform, "production", v1)
    _set(platform, "production", v2)
    with platform.db.session(write=True) as session:
        aliases.delete_alias(session, SYSTEM, TEAM, MODEL, "production")
        with pytest.raises(NotFound):
            aliases.delete_alias(session, SYSTEM, TEAM, MODEL, "production")
    with pytest.raises(NotFound):
        _current(platform)
    with pytest.raises(Conflict):
        _rollback(platform)
    _set(platform, "production", v3)
    with pytest.raises(Conflict):
        _rollback(platform)


def test_moving_aliases_needs_the_promote_action(platform: Platform, versions: list[int], make_caller: MakeCaller) -> None:
    editor = make_caller({TEAM: "editor"})
    operator = make_caller({TEAM: "operator"})
    with pytest.raises(PermissionDenied, match="promote"):
        _set(platform, "production", versions[0], editor)
    assert _set(platform, "production", versions[0], operator) == versions[0]
    with platform.db.session(write=True) as session:
        assert aliases.resolve(session, editor, TEAM, MODEL, "production").version == versions[0]
        with pytest.raises(PermissionDenied):
            aliases.rollback(session, editor, TEAM, MODEL, "production")
        with pytest.raises(PermissionDenied):
            aliases.delete_alias(session, editor, TEAM, MODEL, "production")
