"""Deployment revisions: validation, who may deploy, immutability, change() and rollback."""

from __future__ import annotations

from typing import Any

import pytest

from shipyard.access import namespaces
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


CHECKS = "revision-checks"


def _serve(platform: Platform, namespace: str, *names: str) -> None:
    """Model 'churn' with versions 1-3 and alias production -> 1, and empty endpoints ``names``."""
    digest = held_blob(platform, namespace, b"model bytes")
    with platform.db.session(write=True) as session:
        models.create(session, SYSTEM, namespace, MODEL)
        for _ in range(3):
            models.create_version(session, SYSTEM, platform.artifacts, namespace, MODEL, VersionDraft(digest, "sklearn"))
        aliases.set_alias(session, SYSTEM, namespace, MODEL, "production", 1)
        for name in names:
            endpoints.create(session, SYSTEM, namespace, name)


@pytest.fixture
def served(platform: Platform, teams: tuple[str, str]) -> str:
    _serve(platform, TEAM, "churn")
    return "churn"


@pytest.fixture(scope="module")
def checks(module_platform: Platform) -> Platform:
    """One platform per back end for checks that share it: endpoint 'refused' only ever sees refusals."""
    with module_platform.db.session(write=True) as session:
        namespaces.create(session, SYSTEM, CHECKS)
        namespaces.create(session, SYSTEM, CHECKS + "-others")
    _serve(module_platform, CHECKS, "refused", "accepted")
    digest = held_blob(module_platform, CHECKS + "-others", b"other bytes")
    with module_platform.db.session(write=True) as session:
        models.create(session, SYSTEM, CHECKS + "-others", "theirs")
        draft = VersionDraft(digest, "sklearn")
        models.create_version(session, SYSTEM, module_platform.artifacts, CHECKS + "-others", "theirs", draft)
    return module_platform


def _create(
    platform: Platform,
    spec: RevisionSpec,
    caller: Caller = SYSTEM,
    reason: str = "deploy",
    where: tuple[str, str] = (TEAM, "churn"),
) -> EndpointRevision:
    with platform.db.session(write=True) as session:
        return revisions.create(session, caller, *where, spec, reason)


def _refuse(checks: Platform, spec: RevisionSpec, reason: str = "deploy") -> None:
    try:
        _create(checks, spec, reason=reason, where=(CHECKS, "refused"))
    finally:
        assert _history(checks, (CHECKS, "refused")) == []


def _accept(checks: Platform, spec: RevisionSpec) -> EndpointRevision:
    return _create(checks, spec, where=(CHECKS, "accepted"))


def _snapshot(revision: EndpointRevision) -> dict[str, Any]:
    return {
        "routes": revision.routes,
        "shadow": revision.shadow,
        "replicas": (revision.replicas_min, revision.replicas_max),
        "sticky_header": revision.sticky_header,
    }


def _history(platform: Platform, where: tuple[str, str] = (TEAM, "churn")) -> list[EndpointRevision]:
    with platform.db.session() as session:
        return revisions.list_for(session, SYSTEM, *where)


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


def test_a_route_by_alias_is_kept_as_an_alias(checks: Platform) -> None:
    revision = _accept(checks, RevisionSpec(routes=[PRODUCTION]))
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
def test_bad_routes_are_refused(checks: Platform, routes: list[Any], words: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        _refuse(checks, RevisionSpec(routes=routes))
    assert words in refused.value.message


def test_a_version_and_an_alias_to_the_same_version_are_two_routes(checks: Platform) -> None:
    revision = _accept(checks, RevisionSpec(routes=[{**V1, "weight": 50}, {**PRODUCTION, "weight": 50}]))
    assert [r["weight"] for r in revision.routes] == [50, 50]


@pytest.mark.parametrize(
    ("route", "words"),
    [
        ({"model": "ghost", "version": 1}, "ghost"),
        ({"model": MODEL, "version": 9}, "no version 9"),
        ({"model": MODEL, "alias": "staging"}, "staging"),
    ],
)
def test_unknown_models_versions_and_aliases_are_not_found(checks: Platform, route: dict[str, Any], words: str) -> None:
    with pytest.raises(NotFound, match=words):
        _refuse(checks, RevisionSpec(routes=[route]))
    with pytest.raises(NotFound, match=words):
        _refuse(checks, RevisionSpec(routes=[V1], shadow=route))


def test_a_model_of_another_namespace_cannot_be_routed_to(checks: Platform) -> None:
    with pytest.raises(NotFound, match="theirs"):
        _refuse(checks, RevisionSpec(routes=[{"model": "theirs", "version": 1}]))


@pytest.mark.parametrize("header", ["", "X User", "X_User", "X-User:", "é", "x" * 256])
def test_bad_sticky_headers_are_refused(checks: Platform, header: str) -> None:
    with pytest.raises(InvalidInput, match="sticky header"):
        _refuse(checks, RevisionSpec(routes=[V1], sticky_header=header))


@pytest.mark.parametrize("header", ["X-User", "x-session-id", "Cookie2", "x" * 255])
def test_good_sticky_headers_are_kept(checks: Platform, header: str) -> None:
    assert _accept(checks, RevisionSpec(routes=[V1], sticky_header=header)).sticky_header == header


@pytest.mark.parametrize(("low", "high"), [(0, 1), (-1, 1), (3, 2), (1, 65), (65, 65)])
def test_replicas_out_of_bounds_are_refused(checks: Platform, low: int, high: int) -> None:
    with pytest.raises(InvalidInput, match=f"replicas min {low} and max {high}"):
        _refuse(checks, RevisionSpec(routes=[V1], replicas_min=low, replicas_max=high))


@pytest.mark.parametrize(("low", "high"), [(1, 1), (1, 64), (64, 64), (2, 8)])
def test_replicas_within_bounds_are_kept(checks: Platform, low: int, high: int) -> None:
    revision = _accept(checks, RevisionSpec(routes=[V1], replicas_min=low, replicas_max=high))
    assert (revision.replicas_min, revision.replicas_max) == (low, high)


def test_an_unknown_reason_is_refused(checks: Platform) -> None:
    with pytest.raises(InvalidInput, match="reason 'whim'"):
        _refuse(checks, RevisionSpec(routes=[V1]), reason="whim")


def test_a_revision_of_a_missing_endpoint_is_not_found(checks: Platform) -> None:
    with checks.db.session(write=True) as session, pytest.raises(NotFound, match="'ghost'"):
        revisions.create(session, SYSTEM, CHECKS, "ghost", RevisionSpec(routes=[V1]))


def test_viewers_and_editors_cannot_deploy_change_or_roll_back_but_operators_can(
    platform: Platform, served: str, make_caller: MakeCaller
) -> None:
    _create(platform, RevisionSpec(routes=[V1]))
    _create(platform, RevisionSpec(routes=[V2]))
    for role in ("viewer", "editor"):
        _refused_for(platform, make_caller({TEAM: role}), role)
    operator = make_caller({TEAM: "operator"})
    revision = _create(platform, RevisionSpec(routes=[PRODUCTION]), caller=operator)
    assert (revision.revision, revision.created_by) == (3, operator.name)


def _refused_for(platform: Platform, caller: Caller, role: str) -> None:
    with platform.db.session(write=True) as session:
        with pytest.raises(PermissionDenied, match=f"may not promote in namespace 'team-a': role {role}"):
            revisions.create(session, caller, TEAM, "churn", RevisionSpec(routes=[V1]))
        with pytest.raises(PermissionDenied, match="may not promote"):
            revisions.change(session, caller, TEAM, "churn", replicas=(2, 2))
        with pytest.raises(PermissionDenied, match="may not promote"):
            revisions.rollback(session, caller, TEAM, "churn")
        assert [r.revision for r in revisions.list_for(session, caller, TEAM, "churn")] == [1, 2]


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


def test_rollback_of_a_missing_endpoint_is_not_found(checks: Platform) -> None:
    with checks.db.session(write=True) as session, pytest.raises(NotFound, match="'ghost'"):
        revisions.rollback(session, SYSTEM, CHECKS, "ghost")


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
