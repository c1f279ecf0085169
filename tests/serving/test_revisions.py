"""Deployment revisions: validation, who may deploy, immutability, change() and rollback."""

from __future__ import annotations

from typing import Any

import pytest

from shipyard.access.caller import Caller
from shipyard.errors import Conflict, InvalidInput, NotFound, NotVisible, PermissionDenied
from shipyard.registry import aliases, models
from shipyard.registry.models import VersionDraft
from shipyard.runtime import Platform
from shipyard.serving import endpoints, revisions
from shipyard.serving.revisions import KEEP, RevisionSpec
from shipyard.store.models import EndpointRevision
from tests.conftest import OTHER, TEAM, MakeCaller, held_blob

SYSTEM = Caller.system()
MODEL = "churn"
V1 = {"model": MODEL, "version": 1}
V2 = {"model": MODEL, "version": 2}
PRODUCTION = {"model": MODEL, "alias": "production"}


@pytest.fixture
def served(platform: Platform, teams: tuple[str, str]) -> str:
    """Model 'churn' with versions 1-3 and alias production -> 1, and an empty endpoint 'churn', in team-a."""
    digest = held_blob(platform, TEAM, b"model bytes")
    with platform.db.session(write=True) as session:
        models.create(session, SYSTEM, TEAM, MODEL)
        for _ in range(3):
            models.create_version(session, SYSTEM, platform.artifacts, TEAM, MODEL, VersionDraft(digest, "sklearn"))
        aliases.set_alias(session, SYSTEM, TEAM, MODEL, "production", 1)
        endpoints.create(session, SYSTEM, TEAM, "churn")
    return "churn"


def _create(platform: Platform, spec: RevisionSpec, caller: Caller = SYSTEM, reason: str = "deploy") -> EndpointRevision:
    with platform.db.session(write=True) as session:
        return revisions.create(session, caller, TEAM, "churn", spec, reason)


def _snapshot(revision: EndpointRevision) -> dict[str, Any]:
    return {
        "routes": revision.routes,
        "shadow": revision.shadow,
        "replicas": (revision.replicas_min, revision.replicas_max),
        "sticky_header": revision.sticky_header,
    }


def _history(platform: Platform) -> list[EndpointRevision]:
    with platform.db.session() as session:
        return revisions.list_for(session, SYSTEM, TEAM, "churn")


def test_revisions_are_numbered_and_become_current(platform: Platform, served: str) -> None:
    first = _create(platform, RevisionSpec(routes=[V1]))
    assert (first.revision, first.routes, first.reason) == (1, [{**V1, "weight": 100}], "deploy")
    assert (first.shadow, first.replicas_min, first.replicas_max, first.sticky_header) == (None, 1, 1, None)
    second = _create(
        platform,
        RevisionSpec(
            routes=[{**V1, "weight": 90}, {**PRODUCTION, "weight": 10}],
            shadow=V2,
            replicas_min=2,
            replicas_max=4,
            sticky_header="X-User",
        ),
        reason="traffic",
    )
    assert second.revision == 2
    assert second.routes == [{**V1, "weight": 90}, {**PRODUCTION, "weight": 10}]
    assert (second.shadow, second.replicas_min, second.replicas_max) == (V2, 2, 4)
    assert (second.sticky_header, second.reason) == ("X-User", "traffic")
    with platform.db.session() as session:
        endpoint = endpoints.get(session, SYSTEM, TEAM, "churn")
        assert endpoint.current_revision == 2
        current = revisions.current(session, endpoint)
        assert current is not None
        assert current.revision == 2
    assert [r.revision for r in _history(platform)] == [1, 2]


def test_earlier_revisions_never_change(platform: Platform, served: str) -> None:
    first = _snapshot(_create(platform, RevisionSpec(routes=[V1], sticky_header="X-User")))
    with platform.db.session(write=True) as session:
        revisions.change(session, SYSTEM, TEAM, "churn", routes=[V2], sticky_header=None)
        revisions.change(session, SYSTEM, TEAM, "churn", replicas=(3, 5))
    with platform.db.session(write=True) as session:
        revisions.rollback(session, SYSTEM, TEAM, "churn")
    history = _history(platform)
    assert [r.revision for r in history] == [1, 2, 3, 4]
    assert _snapshot(history[0]) == first
    assert history[1].routes == [{**V2, "weight": 100}]
    assert (history[2].replicas_min, history[2].replicas_max) == (3, 5)


def test_a_route_by_alias_is_kept_as_an_alias(platform: Platform, served: str) -> None:
    revision = _create(platform, RevisionSpec(routes=[PRODUCTION]))
    assert revision.routes == [{**PRODUCTION, "weight": 100}]


@pytest.mark.parametrize(
    ("routes", "words"),
    [
        ([{**V1, "weight": 90}, {**V2, "weight": 20}], "add up to 110"),
        ([{**V1, "weight": 50}], "add up to 50"),
        ([{**V1, "weight": 0}, {**V2, "weight": 0}], "add up to 0"),
        ([V1, {**V2, "weight": 100}], "weight None"),
        ([{**V1, "weight": 101}], "weight 101"),
        ([{**V1, "weight": -1}], "weight -1"),
        ([{**V1, "weight": 50.5}], "whole number from 0 to 100"),
        ([{**V1, "weight": True}], "weight True"),
        ([{**V1, "weight": "100"}], "weight '100'"),
        ([{**V1, "weight": 50}, {**V1, "weight": 50}], "churn 1 appears twice"),
        ([{**PRODUCTION, "weight": 50}, {**PRODUCTION, "weight": 50}], "churn @production appears twice"),
        ([], "1 to 10 model versions, got 0"),
        ([{**V1, "weight": 10}] * 11, "got 11"),
        ([{"model": MODEL}], "neither or both"),
        ([{"model": MODEL, "version": 1, "alias": "production"}], "neither or both"),
        ([{"version": 1}], "route {'version': 1} is not valid"),
        (["churn:1"], "is not valid"),
        ([{"model": MODEL, "version": "1"}], "version '1' is not a whole number"),
        ([{"model": MODEL, "version": True}], "not a whole number"),
    ],
)
def test_bad_routes_are_refused(platform: Platform, served: str, routes: list[Any], words: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        _create(platform, RevisionSpec(routes=routes))
    assert words in refused.value.message
    assert _history(platform) == []


def test_a_version_and_an_alias_to_the_same_version_are_two_routes(platform: Platform, served: str) -> None:
    revision = _create(platform, RevisionSpec(routes=[{**V1, "weight": 50}, {**PRODUCTION, "weight": 50}]))
    assert [r["weight"] for r in revision.routes] == [50, 50]


@pytest.mark.parametrize(
    ("route", "words"),
    [
        ({"model": "ghost", "version": 1}, "ghost"),
        ({"model": MODEL, "version": 9}, "no version 9"),
        ({"model": MODEL, "alias": "staging"}, "staging"),
    ],
)
def test_unknown_models_versions_and_aliases_are_not_found(
    platform: Platform, served: str, route: dict[str, Any], words: str
) -> None:
    with pytest.raises(NotFound, match=words):
        _create(platform, RevisionSpec(routes=[route]))
    with pytest.raises(NotFound, match=words):
        _create(platform, RevisionSpec(routes=[V1], shadow=route))
    assert _history(platform) == []


def test_a_model_of_another_namespace_cannot_be_routed_to(platform: Platform, served: str) -> None:
    digest = held_blob(platform, OTHER, b"other bytes")
    with platform.db.session(write=True) as session:
        models.create(session, SYSTEM, OTHER, "theirs")
        models.create_version(session, SYSTEM, platform.artifacts, OTHER, "theirs", VersionDraft(digest, "sklearn"))
    with pytest.raises(NotFound, match="theirs"):
        _create(platform, RevisionSpec(routes=[{"model": "theirs", "version": 1}]))


@pytest.mark.parametrize("header", ["", "X User", "X_User", "X-User:", "é", "x" * 256])
def test_bad_sticky_headers_are_refused(platform: Platform, served: str, header: str) -> None:
    with pytest.raises(InvalidInput, match="sticky header"):
        _create(platform, RevisionSpec(routes=[V1], sticky_header=header))


@pytest.mark.parametrize("header", ["X-User", "x-session-id", "Cookie2", "x" * 255])
def test_good_sticky_headers_are_kept(platform: Platform, served: str, header: str) -> None:
    assert _create(platform, RevisionSpec(routes=[V1], sticky_header=header)).sticky_header == header


@pytest.mark.parametrize(("low", "high"), [(0, 1), (-1, 1), (3, 2), (1, 65), (65, 65)])
def test_replicas_out_of_bounds_are_refused(platform: Platform, served: str, low: int, high: int) -> None:
    with pytest.raises(InvalidInput, match=f"replicas min {low} and max {high}"):
        _create(platform, RevisionSpec(routes=[V1], replicas_min=low, replicas_max=high))


@pytest.mark.parametrize(("low", "high"), [(1, 1), (1, 64), (64, 64), (2, 8)])
def test_replicas_within_bounds_are_kept(platform: Platform, served: str, low: int, high: int) -> None:
    revision = _create(platform, RevisionSpec(routes=[V1], replicas_min=low, replicas_max=high))
    assert (revision.replicas_min, revision.replicas_max) == (low, high)


def test_an_unknown_reason_is_refused(platform: Platform, served: str) -> None:
    with pytest.raises(InvalidInput, match="reason 'whim'"):
        _create(platform, RevisionSpec(routes=[V1]), reason="whim")


def test_a_revision_of_a_missing_endpoint_is_not_found(platform: Platform, served: str) -> None:
    with platform.db.session(write=True) as session, pytest.raises(NotFound, match="'ghost'"):
        revisions.create(session, SYSTEM, TEAM, "ghost", RevisionSpec(routes=[V1]))


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_viewers_and_editors_cannot_deploy_change_or_roll_back(
    platform: Platform, served: str, make_caller: MakeCaller, role: str
) -> None:
    caller = make_caller({TEAM: role})
    _create(platform, RevisionSpec(routes=[V1]))
    _create(platform, RevisionSpec(routes=[V2]))
    with platform.db.session(write=True) as session:
        with pytest.raises(PermissionDenied, match=f"may not promote in namespace 'team-a': role {role}"):
            revisions.create(session, caller, TEAM, "churn", RevisionSpec(routes=[V1]))
        with pytest.raises(PermissionDenied, match="may not promote"):
            revisions.change(session, caller, TEAM, "churn", replicas=(2, 2))
        with pytest.raises(PermissionDenied, match="may not promote"):
            revisions.rollback(session, caller, TEAM, "churn")
        assert [r.revision for r in revisions.list_for(session, caller, TEAM, "churn")] == [1, 2]


def test_an_operator_deploys(platform: Platform, served: str, make_caller: MakeCaller) -> None:
    operator = make_caller({TEAM: "operator"})
    revision = _create(platform, RevisionSpec(routes=[PRODUCTION]), caller=operator)
    assert (revision.revision, revision.created_by) == (1, operator.name)


def test_members_of_another_namespace_cannot_see_or_deploy(platform: Platform, served: str, make_caller: MakeCaller) -> None:
    outsider = make_caller({OTHER: "admin"})
    _create(platform, RevisionSpec(routes=[V1]))
    with platform.db.session(write=True) as session:
        with pytest.raises(NotVisible):
            revisions.list_for(session, outsider, TEAM, "churn")
        with pytest.raises(NotVisible):
            revisions.create(session, outsider, TEAM, "churn", RevisionSpec(routes=[V1]))
        with pytest.raises(NotVisible):
            revisions.rollback(session, outsider, TEAM, "churn")


def test_change_replaces_only_what_it_is_given(platform: Platform, served: str) -> None:
    _create(platform, RevisionSpec(routes=[V1], shadow=V2, replicas_min=2, replicas_max=3, sticky_header="X-User"))
    with platform.db.session(write=True) as session:
        routed = revisions.change(session, SYSTEM, TEAM, "churn", routes=[{**V1, "weight": 80}, {**V2, "weight": 20}])
        assert routed.routes == [{**V1, "weight": 80}, {**V2, "weight": 20}]
        assert (routed.shadow, routed.replicas_min, routed.replicas_max, routed.sticky_header) == (V2, 2, 3, "X-User")
        assert routed.reason == "traffic"

        scaled = revisions.change(session, SYSTEM, TEAM, "churn", replicas=(4, 8), reason="scale")
        assert (scaled.routes, scaled.shadow, scaled.sticky_header) == (routed.routes, V2, "X-User")
        assert (scaled.replicas_min, scaled.replicas_max, scaled.reason) == (4, 8, "scale")

        cleared = revisions.change(session, SYSTEM, TEAM, "churn", shadow=None, sticky_header=None)
        assert (cleared.shadow, cleared.sticky_header) == (None, None)
        assert (cleared.routes, cleared.replicas_min, cleared.replicas_max) == (routed.routes, 4, 8)

        kept = revisions.change(session, SYSTEM, TEAM, "churn", shadow=KEEP, sticky_header="X-Session", routes=[PRODUCTION])
        assert (kept.shadow, kept.sticky_header, kept.routes) == (None, "X-Session", [{**PRODUCTION, "weight": 100}])
        assert [r.revision for r in revisions.list_for(session, SYSTEM, TEAM, "churn")] == [1, 2, 3, 4, 5]


def test_change_validates_like_create(platform: Platform, served: str) -> None:
    _create(platform, RevisionSpec(routes=[V1]))
    with platform.db.session(write=True) as session:
        with pytest.raises(InvalidInput, match="add up to 90"):
            revisions.change(session, SYSTEM, TEAM, "churn", routes=[{**V1, "weight": 90}])
        with pytest.raises(InvalidInput, match="replicas"):
            revisions.change(session, SYSTEM, TEAM, "churn", replicas=(5, 1))
    assert [r.revision for r in _history(platform)] == [1]


def test_change_of_an_endpoint_with_nothing_deployed(platform: Platform, served: str) -> None:
    with platform.db.session(write=True) as session:
        with pytest.raises(Conflict, match="nothing deployed yet"):
            revisions.change(session, SYSTEM, TEAM, "churn", replicas=(2, 2))
        first = revisions.change(session, SYSTEM, TEAM, "churn", routes=[V1])
        assert (first.revision, first.routes, first.replicas_min) == (1, [{**V1, "weight": 100}], 1)


def test_rollback_serves_the_revision_before_the_current_one(platform: Platform, served: str) -> None:
    with platform.db.session(write=True) as session:
        with pytest.raises(Conflict, match="no earlier revision"):
            revisions.rollback(session, SYSTEM, TEAM, "churn")
    one = _snapshot(_create(platform, RevisionSpec(routes=[V1], shadow=V2, sticky_header="X-User")))
    with platform.db.session(write=True) as session:
        with pytest.raises(Conflict, match="no earlier revision"):
            revisions.rollback(session, SYSTEM, TEAM, "churn")
    two = _snapshot(_create(platform, RevisionSpec(routes=[PRODUCTION], replicas_min=2, replicas_max=2)))
    assert one != two

    with platform.db.session(write=True) as session:
        back = revisions.rollback(session, SYSTEM, TEAM, "churn")
        assert (back.revision, back.reason, _snapshot(back)) == (3, "rollback", one)
    with platform.db.session(write=True) as session:
        # Rolling back again toggles: the revision before 3 is 2.
        again = revisions.rollback(session, SYSTEM, TEAM, "churn")
        assert (again.revision, _snapshot(again)) == (4, two)
        assert endpoints.get(session, SYSTEM, TEAM, "churn").current_revision == 4
    assert [r.reason for r in _history(platform)] == ["deploy", "deploy", "rollback", "rollback"]


def test_rollback_of_a_missing_endpoint_is_not_found(platform: Platform, served: str) -> None:
    with platform.db.session(write=True) as session, pytest.raises(NotFound, match="'ghost'"):
        revisions.rollback(session, SYSTEM, TEAM, "ghost")


def test_rollback_validates_the_earlier_revision_again(platform: Platform, served: str) -> None:
    """A revision that followed an alias since deleted cannot be served again."""
    with platform.db.session(write=True) as session:
        aliases.set_alias(session, SYSTEM, TEAM, MODEL, "canary", 2)
    _create(platform, RevisionSpec(routes=[{"model": MODEL, "alias": "canary"}]))
    _create(platform, RevisionSpec(routes=[V1]))
    with platform.db.session(write=True) as session:
        aliases.delete_alias(session, SYSTEM, TEAM, MODEL, "canary")
    with platform.db.session(write=True) as session, pytest.raises(NotFound, match="canary"):
        revisions.rollback(session, SYSTEM, TEAM, "churn")
    assert [r.revision for r in _history(platform)] == [1, 2]
