from __future__ import annotations

import pytest

from shipyard.access import audit
from shipyard.access.audit import EventDraft
from shipyard.access.caller import Caller
from shipyard.errors import InvalidInput, NotVisible, PermissionDenied
from shipyard.runtime import Platform
from shipyard.store.models import now_ms
from tests.conftest import OTHER, TEAM, MakeCaller


def _draft(namespace: str = TEAM, status: int = 201, principal: str = "alice", **extra: object) -> EventDraft:
    return EventDraft(
        principal=principal,
        action="runs.create",
        method="POST",
        path=f"/api/v1/namespaces/{namespace}/runs",
        namespace=namespace,
        status_code=status,
        **extra,  # type: ignore[arg-type]
    )


def _record(platform: Platform, *drafts: EventDraft) -> list[int]:
    with platform.db.session(write=True) as session:
        events = [audit.record(session, draft) for draft in drafts]
        session.flush()
        return [event.id for event in events]


def test_outcome_follows_status_and_denial() -> None:
    assert _draft(status=200).outcome == "allowed"
    assert _draft(status=401).outcome == "denied"
    assert _draft(status=403).outcome == "denied"
    assert _draft(status=404, denied=True).outcome == "denied"
    assert _draft(status=404).outcome == "failed"
    assert _draft(status=500).outcome == "failed"


def test_record_stores_the_event_and_trims_long_text(platform: Platform, teams: tuple[str, str]) -> None:
    _record(platform, _draft(message="m" * 5000, status=409))
    with platform.db.session() as session:
        (event,) = audit.query(session, Caller.system())
    assert (event.principal, event.method, event.namespace, event.outcome) == ("alice", "POST", TEAM, "failed")
    assert event.time <= now_ms()
    assert len(event.message) == 2000


def test_query_filters_and_pages_newest_first(platform: Platform, teams: tuple[str, str]) -> None:
    drafts = [
        _draft(TEAM, 201, "alice"),
        _draft(OTHER, 403, "bob"),
        _draft(TEAM, 500, "bob"),
        _draft(TEAM, 200, "alice"),
        _draft(OTHER, 200, "alice"),
    ]
    ids = _record(platform, *drafts)
    system = Caller.system()
    with platform.db.session() as session:

        def found(**filters: object) -> list[int]:
            return [e.id for e in audit.query(session, system, **filters)]  # type: ignore[arg-type]

        assert found() == sorted(ids, reverse=True)
        assert found(namespace=TEAM) == [i for i, d in zip(ids, drafts, strict=True) if d.namespace == TEAM][::-1]
        assert found(principal="bob") == [i for i, d in zip(ids, drafts, strict=True) if d.principal == "bob"][::-1]
        assert found(outcome="denied") == [ids[1]]
        assert found(outcome="failed") == [ids[2]]
        assert found(namespace=TEAM, principal="alice", outcome="allowed") == [ids[3], ids[0]]
        assert found(limit=2) == [ids[4], ids[3]]
        assert found(before_id=ids[3], limit=2) == [ids[2], ids[1]]
        assert found(since_ms=now_ms() + 60_000) == []
        assert found(since_ms=0) == found()


def test_query_rejects_bad_arguments(platform: Platform) -> None:
    with platform.db.session() as session:
        for limit in (0, audit.MAX_PAGE + 1):
            with pytest.raises(InvalidInput, match="limit"):
                audit.query(session, Caller.system(), limit=limit)
        with pytest.raises(InvalidInput, match="allowed, denied, failed"):
            audit.query(session, Caller.system(), outcome="maybe")


def test_namespace_admins_see_only_their_namespace(platform: Platform, make_caller: MakeCaller) -> None:
    _record(platform, _draft(TEAM), _draft(OTHER), _draft(TEAM, 403))
    admin = make_caller({TEAM: "admin"})
    editor = make_caller({TEAM: "editor"})
    with platform.db.session() as session:
        events = audit.query(session, admin, namespace=TEAM)
        assert len(events) == 2
        assert {e.namespace for e in events} == {TEAM}
        with pytest.raises(PermissionDenied, match="whole audit log"):
            audit.query(session, admin)
        with pytest.raises(NotVisible):
            audit.query(session, admin, namespace=OTHER)
        with pytest.raises(PermissionDenied):
            audit.query(session, editor, namespace=TEAM)
