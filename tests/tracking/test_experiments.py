from __future__ import annotations

import pytest

from shipyard.access.caller import Caller
from shipyard.errors import AlreadyExists, InvalidInput, NotFound, NotVisible, PermissionDenied
from shipyard.runtime import Platform
from shipyard.tracking import experiments, runs
from tests.conftest import OTHER, TEAM, MakeCaller


def test_create_get_and_names_per_namespace(platform: Platform, teams: tuple[str, str]) -> None:
    system = Caller.system()
    with platform.db.session(write=True) as session:
        created = experiments.create(session, system, TEAM, "/Users/alice/churn", description="d", tags={"team": "a"})
        twin = experiments.create(session, system, OTHER, "/Users/alice/churn")
        with pytest.raises(AlreadyExists, match=TEAM):
            experiments.create(session, system, TEAM, "/Users/alice/churn")
        with pytest.raises(InvalidInput, match="experiment name"):
            experiments.create(session, system, TEAM, " padded")
    assert twin.id != created.id
    with platform.db.session() as session:
        found = experiments.get(session, system, TEAM, created.id)
        assert (found.name, found.description, found.tags, found.lifecycle_stage) == (
            "/Users/alice/churn",
            "d",
            {"team": "a"},
            "active",
        )
        assert experiments.get_by_name(session, system, OTHER, "/Users/alice/churn").id == twin.id
        with pytest.raises(NotFound):
            experiments.get(session, system, OTHER, created.id)
        with pytest.raises(NotFound, match="'nope'"):
            experiments.get_by_name(session, system, TEAM, "nope")


def test_get_or_create_is_idempotent(platform: Platform, teams: tuple[str, str]) -> None:
    system = Caller.system()
    with platform.db.session(write=True) as session:
        first = experiments.get_or_create(session, system, TEAM, "Default")
    with platform.db.session(write=True) as session:
        assert experiments.get_or_create(session, system, TEAM, "Default").id == first.id


def test_roles(platform: Platform, make_caller: MakeCaller) -> None:
    viewer = make_caller({TEAM: "viewer"})
    editor = make_caller({TEAM: "editor"})
    outsider = make_caller({OTHER: "admin"})
    with platform.db.session(write=True) as session:
        created = experiments.create(session, editor, TEAM, "churn")
        assert created.created_by == editor.name
        with pytest.raises(PermissionDenied):
            experiments.create(session, viewer, TEAM, "mine")
        with pytest.raises(PermissionDenied):
            experiments.get_or_create(session, viewer, TEAM, "mine")
        with pytest.raises(NotVisible):
            experiments.get(session, outsider, TEAM, created.id)
        with pytest.raises(NotVisible):
            experiments.list_in(session, outsider, TEAM)
        assert experiments.get(session, viewer, TEAM, created.id).id == created.id


def test_update_and_soft_delete(platform: Platform, teams: tuple[str, str]) -> None:
    system = Caller.system()
    with platform.db.session(write=True) as session:
        first = experiments.create(session, system, TEAM, "first", tags={"a": "1"})
        second = experiments.create(session, system, TEAM, "second")
        updated_at = first.updated_at
    with platform.db.session(write=True) as session:
        renamed = experiments.update(session, system, TEAM, first.id, name="renamed", description="new", tags={"b": "2"})
        assert (renamed.name, renamed.description, renamed.tags) == ("renamed", "new", {"a": "1", "b": "2"})
        assert renamed.updated_at >= updated_at
        with pytest.raises(AlreadyExists):
            experiments.update(session, system, TEAM, first.id, name="second")
        with pytest.raises(InvalidInput, match="lifecycle stage"):
            experiments.update(session, system, TEAM, first.id, lifecycle_stage="archived")
    with platform.db.session(write=True) as session:
        experiments.update(session, system, TEAM, second.id, lifecycle_stage="deleted")
    with platform.db.session() as session:
        assert [e.id for e in experiments.list_in(session, system, TEAM)] == [first.id]
        assert {e.id for e in experiments.list_in(session, system, TEAM, include_deleted=True)} == {first.id, second.id}
    with platform.db.session(write=True) as session, pytest.raises(InvalidInput, match="is deleted"):
        runs.create(session, system, TEAM, second.id)
