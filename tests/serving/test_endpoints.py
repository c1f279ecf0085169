"""Serving endpoints: names, audiences, who may create and change them, and tenant isolation."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from shipyard.access import namespaces
from shipyard.access.caller import Caller
from shipyard.errors import AlreadyExists, InvalidInput, NotFound, NotVisible, PermissionDenied
from shipyard.registry import models
from shipyard.registry.models import VersionDraft
from shipyard.runtime import Platform
from shipyard.serving import endpoints, revisions
from shipyard.serving.revisions import RevisionSpec
from shipyard.store.models import EndpointRevision
from tests.conftest import OTHER, TEAM, MakeCaller, held_blob

SYSTEM = Caller.system()
CHECKS = "endpoint-checks"


@pytest.fixture(scope="module")
def checks(module_platform: Platform) -> Platform:
    """One platform per back end for refusals, which leave namespace 'endpoint-checks' empty."""
    with module_platform.db.session(write=True) as session:
        namespaces.create(session, SYSTEM, CHECKS)
    return module_platform


def test_create_get_list_update_and_delete(platform: Platform, teams: tuple[str, str]) -> None:
    with platform.db.session(write=True) as session:
        created = endpoints.create(session, SYSTEM, TEAM, "churn", description="Churn scores")
        endpoints.create(session, SYSTEM, TEAM, "aardvark")
        endpoints.create(session, SYSTEM, OTHER, "churn")
        assert (created.namespace, created.name, created.current_revision) == (TEAM, "churn", None)
        assert created.audience == {"namespace": True, "principals": [], "anonymous": False}
        assert created.created_by == SYSTEM.name
        with pytest.raises(AlreadyExists, match="'churn' already exists in namespace 'team-a'"):
            endpoints.create(session, SYSTEM, TEAM, "churn")
    with platform.db.session(write=True) as session:
        assert [e.name for e in endpoints.list_in(session, SYSTEM, TEAM)] == ["aardvark", "churn"]
        before = endpoints.get(session, SYSTEM, TEAM, "churn").updated_at
        updated = endpoints.update(session, SYSTEM, TEAM, "churn", description="v2", audience={"principals": ["bob"]})
        assert (updated.description, updated.audience["principals"]) == ("v2", ["bob"])
        assert updated.updated_at >= before
        # Leaving a field out leaves it as it is.
        assert endpoints.update(session, SYSTEM, TEAM, "churn").description == "v2"
    with platform.db.session(write=True) as session:
        endpoints.delete(session, SYSTEM, TEAM, "churn")
    with platform.db.session() as session:
        with pytest.raises(NotFound, match="'churn' does not exist in namespace 'team-a'"):
            endpoints.get(session, SYSTEM, TEAM, "churn")
        assert [e.name for e in endpoints.list_in(session, SYSTEM, TEAM)] == ["aardvark"]
        assert endpoints.get(session, SYSTEM, OTHER, "churn").namespace == OTHER


@pytest.mark.parametrize("name", ["", "Churn", "churn_v2", "-churn", "churn-", "a" * 64, "a/b", "churn@prod"])
def test_endpoint_names_are_dns_labels(checks: Platform, name: str) -> None:
    with checks.db.session(write=True) as session, pytest.raises(InvalidInput, match="endpoint name"):
        endpoints.create(session, SYSTEM, CHECKS, name)
    with checks.db.session() as session:
        assert endpoints.list_in(session, SYSTEM, CHECKS) == []


def test_create_in_a_missing_namespace_is_not_found(checks: Platform) -> None:
    with checks.db.session(write=True) as session, pytest.raises(NotFound, match="ghost"):
        endpoints.create(session, SYSTEM, "ghost", "churn")


def test_audience_is_normalised(platform: Platform, teams: tuple[str, str]) -> None:
    audience = {"namespace": False, "principals": ["carol", "sa:team-a/scorer", "alice", "carol"]}
    with platform.db.session(write=True) as session:
        created = endpoints.create(session, SYSTEM, TEAM, "churn", audience=audience)
        assert created.audience == {
            "namespace": False,
            "principals": ["alice", "carol", "sa:team-a/scorer"],
            "anonymous": False,
        }


@pytest.mark.parametrize(
    ("audience", "words"),
    [
        ({"everyone": True}, "['everyone'] are unknown"),
        ({"namespace": "yes"}, "true or false"),
        ({"anonymous": 1}, "true or false"),
        ({"principals": "alice"}, "is a list"),
        ({"principals": ["alice"] * 1001}, "at most 1000"),
        ({"principals": ["bad name"]}, "'bad name' is not valid"),
        ({"principals": [7]}, "7 is not valid"),
        ({"principals": ["sa:Team/x"]}, "is not valid"),
    ],
)
def test_bad_audiences_are_refused(checks: Platform, audience: dict[str, object], words: str) -> None:
    with checks.db.session(write=True) as session:
        with pytest.raises(InvalidInput) as refused:
            endpoints.create(session, SYSTEM, CHECKS, "churn", audience=audience)
        assert words in refused.value.message
    with checks.db.session() as session:
        assert endpoints.list_in(session, SYSTEM, CHECKS) == []


def test_only_a_namespace_admin_may_open_an_endpoint_to_anonymous_callers(platform: Platform, make_caller: MakeCaller) -> None:
    operator = make_caller({TEAM: "operator"})
    admin = make_caller({TEAM: "admin"})
    with platform.db.session(write=True) as session:
        with pytest.raises(PermissionDenied, match="may not admin in namespace 'team-a'"):
            endpoints.create(session, operator, TEAM, "open", audience={"anonymous": True})
        endpoints.create(session, operator, TEAM, "closed")
        with pytest.raises(PermissionDenied, match="may not admin"):
            endpoints.update(session, operator, TEAM, "closed", audience={"anonymous": True})
    with platform.db.session(write=True) as session:
        assert endpoints.get(session, operator, TEAM, "closed").audience["anonymous"] is False
        opened = endpoints.create(session, admin, TEAM, "open", audience={"anonymous": True})
        assert opened.audience["anonymous"] is True
        assert endpoints.update(session, admin, TEAM, "closed", audience={"anonymous": True}).audience["anonymous"] is True


def test_viewers_and_editors_read_but_cannot_create_change_or_delete(platform: Platform, make_caller: MakeCaller) -> None:
    with platform.db.session(write=True) as session:
        endpoints.create(session, SYSTEM, TEAM, "churn")
    for role in ("viewer", "editor"):
        _refused_for(platform, make_caller({TEAM: role}), role)


def _refused_for(platform: Platform, caller: Caller, role: str) -> None:
    with platform.db.session(write=True) as session:
        with pytest.raises(PermissionDenied, match=f"role {role}"):
            endpoints.create(session, caller, TEAM, "mine")
        with pytest.raises(PermissionDenied, match="promote"):
            endpoints.update(session, caller, TEAM, "churn", description="changed")
        with pytest.raises(PermissionDenied, match="promote"):
            endpoints.delete(session, caller, TEAM, "churn")
    with platform.db.session() as session:
        assert [e.name for e in endpoints.list_in(session, caller, TEAM)] == ["churn"]
        found = endpoints.get(session, caller, TEAM, "churn")
        assert found.description == ""


def test_an_operator_creates_changes_and_deletes(platform: Platform, make_caller: MakeCaller) -> None:
    operator = make_caller({TEAM: "operator"})
    with platform.db.session(write=True) as session:
        created = endpoints.create(session, operator, TEAM, "churn", audience={"principals": ["alice"]})
        assert created.created_by == operator.name
        endpoints.update(session, operator, TEAM, "churn", description="scores")
    with platform.db.session(write=True) as session:
        assert endpoints.get(session, operator, TEAM, "churn").description == "scores"
        endpoints.delete(session, operator, TEAM, "churn")
    with platform.db.session() as session:
        assert endpoints.list_in(session, operator, TEAM) == []


def test_endpoints_of_another_namespace_are_invisible(platform: Platform, make_caller: MakeCaller) -> None:
    member_of_a = make_caller({TEAM: "admin"})
    with platform.db.session(write=True) as session:
        endpoints.create(session, SYSTEM, OTHER, "secret")
    with platform.db.session(write=True) as session:
        with pytest.raises(NotVisible, match="'team-b' does not exist or you are not a member"):
            endpoints.get(session, member_of_a, OTHER, "secret")
        with pytest.raises(NotVisible):
            endpoints.list_in(session, member_of_a, OTHER)
        with pytest.raises(NotVisible):
            endpoints.create(session, member_of_a, OTHER, "mine")
        with pytest.raises(NotVisible):
            endpoints.update(session, member_of_a, OTHER, "secret", description="mine now")
        with pytest.raises(NotVisible):
            endpoints.delete(session, member_of_a, OTHER, "secret")
        # Asking about a missing endpoint of B tells nothing more than asking about an existing one.
        with pytest.raises(NotVisible, match="'team-b' does not exist or you are not a member"):
            endpoints.get(session, member_of_a, OTHER, "ghost")
    with platform.db.session() as session:
        assert endpoints.get(session, SYSTEM, OTHER, "secret").description == ""


def test_token_limits_apply(platform: Platform, make_caller: MakeCaller) -> None:
    without_promote = make_caller({TEAM: "admin"}, scopes=("read", "write"))
    limited = make_caller({TEAM: "admin", OTHER: "admin"}, token_namespace=TEAM)
    with platform.db.session(write=True) as session:
        with pytest.raises(PermissionDenied, match="scopes"):
            endpoints.create(session, without_promote, TEAM, "churn")
        endpoints.create(session, limited, TEAM, "churn")
        with pytest.raises(NotVisible):
            endpoints.create(session, limited, OTHER, "churn")


def test_delete_removes_the_revisions_too(platform: Platform, teams: tuple[str, str]) -> None:
    digest = held_blob(platform, TEAM, b"model bytes")
    with platform.db.session(write=True) as session:
        models.create(session, SYSTEM, TEAM, "churn")
        models.create_version(session, SYSTEM, platform.artifacts, TEAM, "churn", VersionDraft(digest, "sklearn"))
        endpoints.create(session, SYSTEM, TEAM, "churn")
        spec = RevisionSpec(routes=[{"model": "churn", "version": 1}])
        revisions.create(session, SYSTEM, TEAM, "churn", spec)
        revisions.create(session, SYSTEM, TEAM, "churn", spec)
    with platform.db.session(write=True) as session:
        endpoints.delete(session, SYSTEM, TEAM, "churn")
    with platform.db.session(write=True) as session:
        assert session.scalar(select(func.count()).select_from(EndpointRevision)) == 0
        # The name is free again, and a new endpoint starts from revision 1.
        endpoints.create(session, SYSTEM, TEAM, "churn")
        spec = RevisionSpec(routes=[{"model": "churn", "version": 1}])
        assert revisions.create(session, SYSTEM, TEAM, "churn", spec).revision == 1
