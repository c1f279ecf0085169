"""Serving endpoints over the REST API: endpoints, revisions, rollback, desired state, introspection."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from shipyard.access import bindings, principals, tokens
from shipyard.access.caller import Caller
from shipyard.access.roles import Role
from shipyard.runtime import Platform
from shipyard.server.app import create_app
from tests.conftest import OTHER, TEAM

API = "/api/v1"
ENDPOINTS = f"{API}/namespaces/{TEAM}/endpoints"
CHURN = f"{ENDPOINTS}/churn"
DESIRED = f"{API}/serving/desired-state"
SHARED = f"{API}/namespaces/refusals/endpoints"


def bearer(platform: Platform, name: str, roles: dict[str, str]) -> dict[str, str]:
    """Headers for a new user holding ``roles``."""
    system = Caller.system()
    with platform.db.session(write=True) as session:
        user = principals.create_user(session, system, name)
        for namespace, role in roles.items():
            bindings.grant(session, system, user, namespace, Role.parse(role))
        issued = tokens.issue(session, system, user, scopes=["read", "write", "promote", "admin"])
    return {"Authorization": f"Bearer {issued.plaintext}"}


def refused(response: httpx.Response, status: int, code: str, *words: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code, body
    message: str = body["message"]
    missing = [w for w in words if w.lower() not in message.lower()]
    assert not missing, f"message {message!r} does not mention {missing}"
    return message


@pytest.fixture
def lab(admin_api: TestClient, teams: tuple[str, str]) -> TestClient:
    """Model 'churn' in team-a with versions 1 and 2, alias production -> 1."""
    _add_models(admin_api, TEAM)
    return admin_api


def _add_models(api: TestClient, namespace: str) -> None:
    model = f"{API}/namespaces/{namespace}/models/churn"
    assert api.post(f"{API}/namespaces/{namespace}/models", json={"name": "churn"}).status_code == 201
    for n in (1, 2):
        digest = api.put(f"{API}/namespaces/{namespace}/blobs", content=f"model {n}".encode()).json()["digest"]
        created = api.post(f"{model}/versions", json={"artifact_digest": digest, "format": "onnx"})
        assert created.status_code == 201, created.text
    assert api.put(f"{model}/aliases/production", json={"version": 1}).status_code == 200


@pytest.fixture(scope="module")
def shared(module_platform: Platform) -> Iterator[TestClient]:
    """For refusals, which change nothing: namespace 'refusals' with the same model and an empty endpoint 'churn'."""
    token = module_platform.settings.admin_token_path.read_text().strip()
    with TestClient(create_app(module_platform), raise_server_exceptions=False) as api:
        api.headers["Authorization"] = f"Bearer {token}"
        assert api.post(f"{API}/namespaces", json={"name": "refusals"}).status_code == 201
        _add_models(api, "refusals")
        assert api.post(SHARED, json={"name": "churn"}).status_code == 201
        yield api


def deploy(api: TestClient, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
    return api.post(f"{CHURN}/revisions", json=body, headers=headers)


def test_create_list_get_patch_and_delete(lab: TestClient) -> None:
    created = lab.post(ENDPOINTS, json={"name": "churn", "description": "scores", "audience": {"principals": ["bob", "al"]}})
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["name"], body["namespace"], body["description"]) == ("churn", TEAM, "scores")
    assert body["audience"] == {"namespace": True, "principals": ["al", "bob"], "anonymous": False}
    assert (body["current_revision"], body["current"]) == (None, None)
    assert lab.post(ENDPOINTS, json={"name": "aardvark"}).status_code == 201
    refused(lab.post(ENDPOINTS, json={"name": "churn"}), 409, "already_exists", "'churn' already exists")

    assert [e["name"] for e in lab.get(ENDPOINTS).json()] == ["aardvark", "churn"]
    assert lab.get(CHURN).json() == body

    patched = lab.patch(CHURN, json={"description": "new"})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["description"], patched.json()["audience"]) == ("new", body["audience"])
    patched = lab.patch(CHURN, json={"audience": {"namespace": False}})
    assert patched.json()["audience"] == {"namespace": False, "principals": [], "anonymous": False}

    assert lab.delete(CHURN).status_code == 204
    refused(lab.get(CHURN), 404, "not_found", "'churn' does not exist")
    refused(lab.delete(CHURN), 404, "not_found", "churn")
    assert [e["name"] for e in lab.get(ENDPOINTS).json()] == ["aardvark"]


def test_revisions_and_rollback(lab: TestClient) -> None:
    assert lab.post(ENDPOINTS, json={"name": "churn"}).status_code == 201
    refused(lab.post(f"{CHURN}/rollback"), 409, "conflict", "no earlier revision")
    first = deploy(lab, {"routes": [{"model": "churn", "alias": "production"}]})
    assert first.status_code == 201, first.text
    assert (first.json()["revision"], first.json()["routes"]) == (1, [{"model": "churn", "alias": "production", "weight": 100}])
    second = deploy(
        lab,
        {
            "routes": [{"model": "churn", "version": 1, "weight": 90}, {"model": "churn", "version": 2, "weight": 10}],
            "shadow": {"model": "churn", "version": 2},
            "replicas": {"min": 2, "max": 3},
            "sticky_header": "X-User",
            "reason": "traffic",
        },
    )
    assert second.status_code == 201, second.text
    assert {k: second.json()[k] for k in ("revision", "shadow", "replicas_min", "replicas_max", "sticky_header", "reason")} == {
        "revision": 2,
        "shadow": {"model": "churn", "version": 2},
        "replicas_min": 2,
        "replicas_max": 3,
        "sticky_header": "X-User",
        "reason": "traffic",
    }
    detail = lab.get(CHURN).json()
    assert (detail["current_revision"], detail["current"]) == (2, second.json())

    rolled = lab.post(f"{CHURN}/rollback")
    assert rolled.status_code == 201, rolled.text
    assert (rolled.json()["revision"], rolled.json()["reason"]) == (3, "rollback")
    assert rolled.json()["routes"] == first.json()["routes"]
    assert rolled.json()["shadow"] is None

    listed = lab.get(f"{CHURN}/revisions").json()
    assert [r["revision"] for r in listed] == [1, 2, 3]
    assert listed[:2] == [first.json(), second.json()]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, "routes"),
        ({"routes": []}, "routes"),
        ({"routes": [{"model": "churn", "version": 1, "weight": 101}]}, "weight"),
        ({"routes": [{"model": "churn", "version": 0}]}, "version"),
        ({"routes": [{"model": "churn", "version": 1, "colour": "red"}]}, "colour"),
        ({"routes": [{"model": "churn", "version": 1}], "replicas": {"min": 0}}, "min"),
        ({"routes": [{"model": "churn", "version": 1}], "replicas": {"max": 65}}, "max"),
        ({"routes": [{"model": "churn", "version": 1}], "reason": "rollback"}, "reason"),
        ({"routes": [{"model": "churn", "version": 1}], "surprise": 1}, "surprise"),
    ],
)
def test_malformed_revision_bodies_are_422(shared: TestClient, body: dict[str, Any], words: str) -> None:
    refused(shared.post(f"{SHARED}/churn/revisions", json=body), 422, "invalid_input", "request is not valid", words)
    assert shared.get(f"{SHARED}/churn/revisions").json() == []


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [
        (
            {"routes": [{"model": "churn", "version": 1, "weight": 90}, {"model": "churn", "version": 2, "weight": 20}]},
            400,
            "invalid_input",
            "add up to 110",
        ),
        ({"routes": [{"model": "churn", "version": 1, "weight": 50}] * 2}, 400, "invalid_input", "appears twice"),
        ({"routes": [{"model": "churn"}]}, 400, "invalid_input", "neither or both"),
        ({"routes": [{"model": "churn", "version": 1}], "replicas": {"min": 3, "max": 2}}, 400, "invalid_input", "replicas"),
        ({"routes": [{"model": "churn", "version": 1}], "sticky_header": "X User"}, 400, "invalid_input", "sticky header"),
        ({"routes": [{"model": "churn", "version": 7}]}, 404, "not_found", "no version 7"),
        ({"routes": [{"model": "churn", "alias": "staging"}]}, 404, "not_found", "staging"),
        ({"routes": [{"model": "ghost", "version": 1}]}, 404, "not_found", "ghost"),
    ],
)
def test_invalid_revisions_say_why(shared: TestClient, body: dict[str, Any], status: int, code: str, words: str) -> None:
    refused(shared.post(f"{SHARED}/churn/revisions", json=body), status, code, words)
    assert shared.get(f"{SHARED}/churn").json()["current_revision"] is None


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "churn", "audience": {"everyone": True}}, "everyone"),
        ({"name": "churn", "audience": {"anonymous": "sometimes"}}, "anonymous"),
        ({"name": "churn", "owner": "me"}, "owner"),
    ],
)
def test_malformed_endpoint_bodies_are_422(shared: TestClient, body: dict[str, Any], words: str) -> None:
    refused(shared.post(SHARED, json=body), 422, "invalid_input", "request is not valid", words)
    assert [e["name"] for e in shared.get(SHARED).json()] == ["churn"]


def test_bad_endpoint_names_and_principals_are_400(shared: TestClient) -> None:
    refused(shared.post(SHARED, json={"name": "Churn"}), 400, "invalid_input", "endpoint name 'Churn' is not valid")
    body = {"name": "other", "audience": {"principals": ["two words"]}}
    refused(shared.post(SHARED, json=body), 400, "invalid_input", "'two words' is not valid")
    assert [e["name"] for e in shared.get(SHARED).json()] == ["churn"]


def test_roles_over_the_api(platform: Platform, lab: TestClient) -> None:
    editor = bearer(platform, "eddie", {TEAM: "editor"})
    operator = bearer(platform, "olga", {TEAM: "operator"})
    refused(lab.post(ENDPOINTS, json={"name": "churn"}, headers=editor), 403, "permission_denied", "promote")
    assert lab.post(ENDPOINTS, json={"name": "churn"}, headers=operator).status_code == 201
    body = {"routes": [{"model": "churn", "version": 1}]}
    refused(deploy(lab, body, editor), 403, "permission_denied", "eddie may not promote")
    assert deploy(lab, body, operator).status_code == 201
    refused(lab.post(f"{CHURN}/rollback", headers=editor), 403, "permission_denied", "promote")
    refused(lab.patch(CHURN, json={"audience": {"anonymous": True}}, headers=operator), 403, "permission_denied", "admin")
    # The editor still reads.
    assert lab.get(CHURN, headers=editor).json()["current_revision"] == 1
    assert [r["revision"] for r in lab.get(f"{CHURN}/revisions", headers=editor).json()] == [1]


def test_another_namespaces_member_gets_404(platform: Platform, lab: TestClient) -> None:
    outsider = bearer(platform, "mallory", {OTHER: "admin"})
    assert lab.post(ENDPOINTS, json={"name": "churn"}).status_code == 201
    assert deploy(lab, {"routes": [{"model": "churn", "version": 1}]}).status_code == 201
    for response in (
        lab.get(CHURN, headers=outsider),
        lab.get(ENDPOINTS, headers=outsider),
        lab.get(f"{CHURN}/revisions", headers=outsider),
        lab.patch(CHURN, json={"description": "mine"}, headers=outsider),
        lab.post(f"{CHURN}/rollback", headers=outsider),
        lab.delete(CHURN, headers=outsider),
        lab.post(ENDPOINTS, json={"name": "mine"}, headers=outsider),
    ):
        refused(response, 404, "not_found", "'team-a' does not exist or you are not a member")
    assert lab.get(CHURN).json()["description"] == ""


def test_desired_state_with_etags(platform: Platform, lab: TestClient) -> None:
    assert lab.post(ENDPOINTS, json={"name": "churn"}).status_code == 201
    assert deploy(lab, {"routes": [{"model": "churn", "alias": "production"}]}).status_code == 201
    first = lab.get(DESIRED)
    assert first.status_code == 200, first.text
    etag = first.json()["etag"]
    [entry] = first.json()["endpoints"]
    assert (entry["name"], entry["revision"], entry["routes"][0]["version"]) == ("churn", 1, 1)

    for given in (f'"{etag}"', etag):
        cached = lab.get(DESIRED, headers={"If-None-Match": given})
        assert (cached.status_code, cached.content, cached.headers["etag"]) == (304, b"", f'"{etag}"')
    assert lab.get(DESIRED, headers={"If-None-Match": '"stale"'}).json() == first.json()

    assert lab.put(f"{API}/namespaces/{TEAM}/models/churn/aliases/production", json={"version": 2}).status_code == 200
    moved = lab.get(DESIRED, headers={"If-None-Match": f'"{etag}"'})
    assert moved.status_code == 200
    assert moved.json()["etag"] != etag
    assert (moved.json()["endpoints"][0]["revision"], moved.json()["endpoints"][0]["routes"][0]["version"]) == (1, 2)

    team_admin = bearer(platform, "ada", {TEAM: "admin"})
    refused(lab.get(DESIRED, headers=team_admin), 403, "permission_denied", "only a platform admin")


def test_token_introspection(platform: Platform, lab: TestClient) -> None:
    created = lab.post(f"{API}/tokens", json={"namespace": TEAM, "scopes": ["invoke:churn"], "name": "scorer"})
    assert created.status_code == 201, created.text
    plaintext = created.json()["token"]
    found = lab.post(f"{API}/tokens:introspect", json={"token": plaintext})
    assert found.status_code == 200, found.text
    assert (found.json()["active"], found.json()["scopes"], found.json()["token_namespace"]) == (
        True,
        ["invoke:churn"],
        TEAM,
    )
    unknown = lab.post(f"{API}/tokens:introspect", json={"token": "shp_nothing"}).json()
    assert (unknown["active"], "not valid" in unknown["reason"]) == (False, True)
    refused(lab.post(f"{API}/tokens:introspect", json={}), 422, "invalid_input", "token")
    refused(lab.post(f"{API}/tokens", json={"scopes": ["invoke:churn"]}), 400, "invalid_input", "pass that namespace too")
    refused(lab.post(f"{API}/tokens", json={"namespace": TEAM, "scopes": ["invoke:Churn"]}), 422, "invalid_input", "scopes")

    team_admin = bearer(platform, "ada", {TEAM: "admin"})
    refused(
        lab.post(f"{API}/tokens:introspect", json={"token": plaintext}, headers=team_admin),
        403,
        "permission_denied",
        "only a platform admin may introspect tokens",
    )
