from __future__ import annotations

import time
from typing import Any

import pytest

from shipyard.errors import NotFound, PermissionDenied, Unauthenticated
from shipyard.serving.gateway.audience import Audience, Identity, TokenCache, authorize

NS = "team-a"
HOUR_MS = 3_600_000


def identity(**fields: Any) -> Identity:
    data: dict[str, Any] = {
        "active": True,
        "principal": "alice",
        "roles": {},
        "scopes": ["read"],
        "token_namespace": "",
        "expires_at": int(time.time() * 1000) + HOUR_MS,
    }
    data.update(fields)
    return Identity.parse(data)


def test_anonymous_audience_needs_no_token() -> None:
    authorize(NS, "ep", Audience(anonymous=True), None)


def test_members_of_the_namespace_may_call() -> None:
    authorize(NS, "ep", Audience(), identity(roles={NS: "viewer"}))


def test_platform_admins_may_call_any_namespace_endpoint() -> None:
    authorize(NS, "ep", Audience(), identity(roles={"*": "platform-admin"}))


def test_named_principals_may_call_without_a_role() -> None:
    authorize(NS, "ep", Audience(namespace=False, principals=frozenset({"alice"})), identity())


def test_an_endpoint_scoped_token_may_call_only_its_endpoint() -> None:
    scoped = identity(principal="sa:team-a/app", scopes=["invoke:ep"], token_namespace=NS)
    authorize(NS, "ep", Audience(namespace=False), scoped)
    with pytest.raises(PermissionDenied):
        authorize(NS, "other", Audience(namespace=False), scoped)


def test_no_token_is_401() -> None:
    with pytest.raises(Unauthenticated):
        authorize(NS, "ep", Audience(), None)


@pytest.mark.parametrize("bad", [{"active": False}, {"expires_at": int(time.time() * 1000) - 1}], ids=["inactive", "expired"])
def test_invalid_or_expired_token_is_401(bad: dict[str, Any]) -> None:
    with pytest.raises(Unauthenticated):
        authorize(NS, "ep", Audience(), identity(roles={NS: "admin"}, **bad))


def test_a_token_confined_to_another_namespace_gets_404_even_for_an_admin() -> None:
    with pytest.raises(NotFound):
        authorize(NS, "ep", Audience(), identity(roles={"*": "platform-admin"}, token_namespace="team-b"))


def test_a_stranger_to_the_namespace_gets_404() -> None:
    with pytest.raises(NotFound):
        authorize(NS, "ep", Audience(), identity(roles={"team-b": "admin"}))


def test_a_member_outside_the_audience_gets_403() -> None:
    with pytest.raises(PermissionDenied):
        authorize(NS, "ep", Audience(namespace=False, principals=frozenset({"bob"})), identity(roles={NS: "viewer"}))


class Introspect:
    def __init__(self, answers: dict[str, dict[str, Any]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def __call__(self, token: str) -> dict[str, Any]:
        self.asked.append(token)
        return self.answers.get(token, {"active": False})


def test_cache_reuses_answers_until_the_ttl_passes() -> None:
    now = [100.0]
    introspect = Introspect({"good": {"active": True, "principal": "alice", "roles": {NS: "viewer"}}})
    cache = TokenCache(introspect, ttl=5, clock=lambda: now[0])
    assert cache.cached("good") is None
    assert cache.lookup("good").principal == "alice"
    assert cache.lookup("good").principal == "alice"
    assert cache.cached("good") is not None
    assert introspect.asked == ["good"]
    now[0] += 5.1
    assert cache.cached("good") is None
    cache.lookup("good")
    assert introspect.asked == ["good", "good"]


def test_cache_keeps_negative_answers_and_never_the_plaintext() -> None:
    introspect = Introspect({})
    cache = TokenCache(introspect, ttl=5)
    assert not cache.lookup("shp_secret").active
    assert not cache.lookup("shp_secret").active
    assert introspect.asked == ["shp_secret"]
    assert "shp_secret" not in repr(cache.__dict__)
