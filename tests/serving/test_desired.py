"""The desired serving state: aliases resolved on read, an ETag that moves with it, platform admins only."""

from __future__ import annotations

from typing import Any

import pytest

from shipyard.access.caller import Caller
from shipyard.errors import PermissionDenied
from shipyard.registry import aliases, models
from shipyard.registry.models import VersionDraft
from shipyard.runtime import Platform
from shipyard.serving import desired, endpoints, revisions
from shipyard.serving.revisions import RevisionSpec
from tests.conftest import OTHER, TEAM, MakeCaller, held_blob

SYSTEM = Caller.system()
MODEL = "churn"


@pytest.fixture
def digests(platform: Platform, teams: tuple[str, str]) -> list[str]:
    """Model 'churn' in team-a with versions 1 and 2 (different bytes), production -> 1, canary -> 2."""
    found = [held_blob(platform, TEAM, f"model bytes {n}".encode()) for n in (1, 2)]
    with platform.db.session(write=True) as session:
        models.create(session, SYSTEM, TEAM, MODEL)
        for digest in found:
            draft = VersionDraft(digest, "sklearn", signature={"inputs": [{"name": "x", "type": "double"}]})
            models.create_version(session, SYSTEM, platform.artifacts, TEAM, MODEL, draft)
        aliases.set_alias(session, SYSTEM, TEAM, MODEL, "production", 1)
        aliases.set_alias(session, SYSTEM, TEAM, MODEL, "canary", 2)
    return found


def _state(platform: Platform, caller: Caller = SYSTEM) -> dict[str, Any]:
    with platform.db.session() as session:
        return desired.build(session, caller)


def _deploy(platform: Platform, name: str, spec: RevisionSpec, namespace: str = TEAM, **audience: Any) -> int:
    with platform.db.session(write=True) as session:
        try:
            endpoints.get(session, SYSTEM, namespace, name)
        except LookupError:
            endpoints.create(session, SYSTEM, namespace, name, audience=audience or None)
        return revisions.create(session, SYSTEM, namespace, name, spec).revision


def _entry(state: dict[str, Any], name: str) -> dict[str, Any]:
    [entry] = [e for e in state["endpoints"] if e["name"] == name]
    return entry


def _move(platform: Platform, alias: str, version: int | None) -> None:
    with platform.db.session(write=True) as session:
        if version is None:
            aliases.delete_alias(session, SYSTEM, TEAM, MODEL, alias)
        else:
            aliases.set_alias(session, SYSTEM, TEAM, MODEL, alias, version)


def test_an_empty_platform_has_an_empty_state_with_an_etag(platform: Platform, teams: tuple[str, str]) -> None:
    with platform.db.session(write=True) as session:
        endpoints.create(session, SYSTEM, TEAM, "nothing-deployed")
    state = _state(platform)
    assert state["endpoints"] == []
    assert isinstance(state["etag"], str)
    assert len(state["etag"]) == 32


def test_an_entry_says_everything_a_gateway_needs(platform: Platform, digests: list[str]) -> None:
    spec = RevisionSpec(
        routes=[{"model": MODEL, "version": 1, "weight": 90}, {"model": MODEL, "alias": "canary", "weight": 10}],
        shadow={"model": MODEL, "alias": "production"},
        replicas_min=2,
        replicas_max=5,
        sticky_header="X-User",
    )
    _deploy(platform, "churn", spec, principals=["alice"])
    entry = _entry(_state(platform), "churn")
    signature = {"inputs": [{"name": "x", "type": "double"}]}
    assert entry == {
        "namespace": TEAM,
        "name": "churn",
        "revision": 1,
        "audience": {"namespace": True, "principals": ["alice"], "anonymous": False},
        "sticky_header": "X-User",
        "replicas": {"min": 2, "max": 5},
        "routes": [
            {
                "model": MODEL,
                "version": 1,
                "format": "sklearn",
                "digest": digests[0],
                "onnx_digest": None,
                "signature": signature,
                "weight": 90,
            },
            {
                "model": MODEL,
                "version": 2,
                "format": "sklearn",
                "digest": digests[1],
                "onnx_digest": None,
                "signature": signature,
                "weight": 10,
            },
        ],
        "shadow": {
            "model": MODEL,
            "version": 1,
            "format": "sklearn",
            "digest": digests[0],
            "onnx_digest": None,
            "signature": signature,
        },
    }


def test_entries_are_ordered_by_namespace_and_name_and_show_the_current_revision(platform: Platform, digests: list[str]) -> None:
    other = held_blob(platform, OTHER, b"other bytes")
    with platform.db.session(write=True) as session:
        models.create(session, SYSTEM, OTHER, MODEL)
        models.create_version(session, SYSTEM, platform.artifacts, OTHER, MODEL, VersionDraft(other, "onnx"))
    one = RevisionSpec(routes=[{"model": MODEL, "version": 1}])
    _deploy(platform, "zebra", one)
    _deploy(platform, "alpha", one)
    _deploy(platform, "alpha", RevisionSpec(routes=[{"model": MODEL, "version": 2}]))
    _deploy(platform, "alpha", one, namespace=OTHER)
    state = _state(platform)
    assert [(e["namespace"], e["name"], e["revision"]) for e in state["endpoints"]] == [
        (TEAM, "alpha", 2),
        (TEAM, "zebra", 1),
        (OTHER, "alpha", 1),
    ]
    assert _entry(state, "zebra")["routes"][0]["digest"] == digests[0]
    assert [e["routes"][0]["digest"] for e in state["endpoints"] if e["name"] == "alpha"] == [digests[1], other]


def test_the_etag_is_stable_until_something_changes(platform: Platform, digests: list[str]) -> None:
    _deploy(platform, "churn", RevisionSpec(routes=[{"model": MODEL, "version": 1}]))
    first = _state(platform)
    assert _state(platform) == first
    _deploy(platform, "churn", RevisionSpec(routes=[{"model": MODEL, "version": 1}], replicas_min=2, replicas_max=2))
    assert _state(platform)["etag"] != first["etag"]
    with platform.db.session(write=True) as session:
        endpoints.update(session, SYSTEM, TEAM, "churn", audience={"principals": ["bob"]})
    after_audience = _state(platform)
    assert _entry(after_audience, "churn")["audience"]["principals"] == ["bob"]
    assert after_audience["etag"] != first["etag"]


def test_an_endpoint_deployed_by_alias_follows_the_alias(platform: Platform, digests: list[str]) -> None:
    _deploy(platform, "churn", RevisionSpec(routes=[{"model": MODEL, "alias": "production"}]))
    before = _state(platform)
    route = _entry(before, "churn")["routes"][0]
    assert (route["version"], route["digest"]) == (1, digests[0])

    _move(platform, "production", 2)
    after = _state(platform)
    entry = _entry(after, "churn")
    assert entry["revision"] == 1  # no new revision: the alias moved, not the endpoint
    assert (entry["routes"][0]["version"], entry["routes"][0]["digest"]) == (2, digests[1])
    assert after["etag"] != before["etag"]

    _move(platform, "production", 1)
    assert _state(platform) == before


def test_an_endpoint_deployed_by_version_ignores_alias_moves(platform: Platform, digests: list[str]) -> None:
    _deploy(platform, "churn", RevisionSpec(routes=[{"model": MODEL, "version": 1}]))
    before = _state(platform)
    _move(platform, "production", 2)
    _move(platform, "canary", None)
    assert _state(platform) == before


def test_a_deleted_alias_leaves_an_error_and_the_other_routes(platform: Platform, digests: list[str]) -> None:
    spec = RevisionSpec(
        routes=[{"model": MODEL, "version": 1, "weight": 70}, {"model": MODEL, "alias": "canary", "weight": 30}],
        shadow={"model": MODEL, "alias": "canary"},
    )
    _deploy(platform, "churn", spec)
    _deploy(platform, "healthy", RevisionSpec(routes=[{"model": MODEL, "version": 2}]))
    assert "error" not in _entry(_state(platform), "churn")

    _move(platform, "canary", None)
    state = _state(platform)
    broken = _entry(state, "churn")
    assert "redeploy" in broken["error"]
    assert [(r["version"], r["weight"]) for r in broken["routes"]] == [(1, 70)]
    assert broken["shadow"] is None
    assert "error" not in _entry(state, "healthy")

    # Setting the alias again heals the entry without a new revision.
    _move(platform, "canary", 2)
    healed = _entry(_state(platform), "churn")
    assert "error" not in healed
    assert [(r["version"], r["weight"]) for r in healed["routes"]] == [(1, 70), (2, 30)]
    assert healed["revision"] == 1


def test_an_entry_whose_only_route_vanished_has_no_routes(platform: Platform, digests: list[str]) -> None:
    _deploy(platform, "churn", RevisionSpec(routes=[{"model": MODEL, "alias": "canary"}]))
    _move(platform, "canary", None)
    entry = _entry(_state(platform), "churn")
    assert entry["routes"] == []
    assert "redeploy" in entry["error"]


NOT_PLATFORM_ADMINS: list[tuple[dict[str, str], tuple[str, ...], str]] = [
    ({TEAM: "admin"}, ("read", "write", "promote", "admin"), ""),  # a namespace admin
    ({TEAM: "viewer"}, ("read",), ""),
    ({"*": "platform-admin"}, ("read", "write", "promote"), ""),  # a token without the admin scope
    ({"*": "platform-admin"}, ("read", "write", "promote", "admin"), TEAM),  # a token limited to a namespace
]


def test_only_platform_admins_read_the_desired_state(platform: Platform, digests: list[str], make_caller: MakeCaller) -> None:
    _deploy(platform, "churn", RevisionSpec(routes=[{"model": MODEL, "version": 1}]))
    for roles, scopes, token_namespace in NOT_PLATFORM_ADMINS:
        caller = make_caller(roles, scopes=scopes, token_namespace=token_namespace)
        with pytest.raises(PermissionDenied, match="only a platform admin may read the desired serving state"):
            _state(platform, caller)
    assert _state(platform, make_caller({"*": "platform-admin"})) == _state(platform)
