"""Tenant isolation over the REST API: every route family, every role, every kind of bad token.

One world per back end is built once for the module: namespaces ``tenant-a`` and
``tenant-b``, each with an experiment, a run (params, metrics, tags, an artifact), a
model with two versions and an alias, and a service account with a token; users holding
each role in ``tenant-a`` plus one user with no role at all. Tests only add records of
their own (names carry a fresh suffix), so they stay independent of order.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from shipyard.runtime import Platform
from shipyard.server.app import create_app
from shipyard.store.models import Token, now_ms

API = "/api/v1"
ROLES = ("viewer", "editor", "operator", "admin")
CALLERS = (*ROLES, "outsider")
A, B = "tenant-a", "tenant-b"
DENIED = frozenset({403, 404})


# -- the shared world -----------------------------------------------------------------------


@dataclass
class World:
    api: TestClient
    platform: Platform
    admin: dict[str, str]
    values: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)

    def headers(self, caller: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[caller]}"}


def _ok(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json() if response.content else {}


def _tenant(api: TestClient, admin: dict[str, str], ns: str, label: str) -> dict[str, str]:
    """One namespace's records; every name and value carries ``label`` so a leak is recognisable."""
    base = f"{API}/namespaces/{ns}"
    values = {"ns": ns}
    values["ns_id"] = _ok(api.post(f"{API}/namespaces", json={"name": ns}, headers=admin), 201)["id"]
    values["exp_name"] = f"{label}-experiment"
    values["exp"] = _ok(api.post(f"{base}/experiments", json={"name": values["exp_name"]}, headers=admin), 201)["id"]
    values["run"] = _ok(api.post(f"{base}/runs", json={"experiment_id": values["exp"]}, headers=admin), 201)["id"]
    values["param_key"], values["param_value"] = f"{label}-param", f"{label}-param-value"
    values["metric"] = f"{label}-metric"
    values["tag_key"], values["tag_value"] = f"{label}-tag", f"{label}-tag-value"
    batch = {
        "metrics": [{"key": values["metric"], "value": 0.25, "step": 1}],
        "params": {values["param_key"]: values["param_value"]},
        "tags": {values["tag_key"]: values["tag_value"]},
    }
    _ok(api.post(f"{base}/runs/{values['run']}/log-batch", json=batch, headers=admin), 204)
    values["artifact"] = f"outputs/{label}-report.txt"
    values["artifact_body"] = f"{label}-artifact-content"
    artifact_url = f"{base}/runs/{values['run']}/artifacts/{values['artifact']}"
    values["artifact_digest"] = _ok(api.put(artifact_url, content=values["artifact_body"].encode(), headers=admin), 201)["digest"]
    model_bytes = f"{label}-model-bytes".encode()
    values["digest"] = _ok(api.put(f"{base}/blobs", content=model_bytes, headers=admin), 201)["digest"]
    assert values["digest"] == hashlib.sha256(model_bytes).hexdigest()
    values["model_name"] = f"{label}-model"
    values["model"] = _ok(api.post(f"{base}/models", json={"name": values["model_name"]}, headers=admin), 201)["id"]
    model = f"{base}/models/{values['model_name']}"
    versions = [
        _ok(
            api.post(
                f"{model}/versions",
                json={"artifact_digest": values["digest"], "format": fmt, "run_id": values["run"]},
                headers=admin,
            ),
            201,
        )
        for fmt in ("onnx", "sklearn")
    ]
    values["version"] = versions[0]["id"]
    for number in (1, 2):
        _ok(api.put(f"{model}/aliases/production", json={"version": number}, headers=admin), 200)
    values["sa_name"] = f"{label}-robot"
    values["sa"] = _ok(api.post(f"{base}/service-accounts", json={"name": values["sa_name"]}, headers=admin), 201)["id"]
    sa_token = _ok(api.post(f"{API}/tokens", json={"service_account": values["sa_name"], "namespace": ns}, headers=admin), 201)
    values["sa_token"], values["sa_token_prefix"] = sa_token["id"], sa_token["prefix"]
    return values


@pytest.fixture(scope="module")
def world(module_platform: Platform) -> Iterator[World]:
    admin_token = module_platform.settings.admin_token_path.read_text().strip()
    admin = {"Authorization": f"Bearer {admin_token}"}
    with TestClient(create_app(module_platform), raise_server_exceptions=False) as api:
        a = _tenant(api, admin, A, "alpha")
        b = _tenant(api, admin, B, "bravo")
        built = World(api=api, platform=module_platform, admin=admin)
        built.values = {**{f"a_{k}": v for k, v in a.items()}, **{f"b_{k}": v for k, v in b.items()}}
        # A person who belongs to B only.
        _ok(api.post(f"{API}/users", json={"name": "bob"}, headers=admin), 201)
        _ok(api.post(f"{API}/namespaces/{B}/role-bindings", json={"user": "bob", "role": "editor"}, headers=admin), 200)
        built.values["bob"] = "bob"
        for caller in CALLERS:
            name = f"a-{caller}"
            _ok(api.post(f"{API}/users", json={"name": name}, headers=admin), 201)
            if caller != "outsider":
                grant = {"user": name, "role": caller}
                _ok(api.post(f"{API}/namespaces/{A}/role-bindings", json=grant, headers=admin), 200)
            issued = _ok(api.post(f"{API}/tokens", json={"user": name, "scopes": ["admin"]}, headers=admin), 201)
            built.tokens[caller] = issued["token"]
        # What of B must never reach a caller from A (unless the caller named it in the request).
        built.secrets = [
            b[key]
            for key in (
                "ns",
                "ns_id",
                "exp",
                "exp_name",
                "run",
                "param_key",
                "param_value",
                "metric",
                "tag_key",
                "tag_value",
                "artifact",
                "artifact_body",
                "artifact_digest",
                "digest",
                "model",
                "model_name",
                "version",
                "sa",
                "sa_name",
                "sa_token",
                "sa_token_prefix",
            )
        ]
        yield built


# -- requests as data -----------------------------------------------------------------------


@dataclass(frozen=True)
class Req:
    method: str
    path: str
    json: Any = None
    content: bytes | None = None

    def render(self, values: dict[str, str]) -> Req:
        return Req(self.method, self.path.format(**values), _render(self.json, values), self.content)


def _render(body: Any, values: dict[str, str]) -> Any:
    if isinstance(body, str):
        return body.format(**values)
    if isinstance(body, dict):
        return {_render(k, values): _render(v, values) for k, v in body.items()}
    if isinstance(body, list):
        return [_render(v, values) for v in body]
    return body


def send(world: World, req: Req, headers: dict[str, str]) -> httpx.Response:
    kwargs: dict[str, Any] = {"headers": headers}
    if req.json is not None:
        kwargs["json"] = req.json
    if req.content is not None:
        kwargs["content"] = req.content
    return world.api.request(req.method, API + req.path, **kwargs)


def assert_no_leak(world: World, req: Req, response: httpx.Response) -> None:
    """B's ids, names and data appear in the answer only where the request itself named them."""
    asked = req.path + " " + repr(req.json)
    leaked = [s for s in world.secrets if s in response.text and s not in asked]
    assert not leaked, f"{req.method} {req.path} answered {response.status_code} with B's {leaked}: {response.text[:500]}"


def assert_audited_denial(world: World, principal: str, since: int, req: Req, status: int) -> None:
    events = world.api.get(
        f"{API}/audit",
        params={"outcome": "denied", "principal": principal, "since": since, "limit": 1000},
        headers=world.admin,
    )
    assert events.status_code == 200, events.text
    path = API + req.path.split("?", 1)[0]
    seen = {(e["method"], e["path"], e["status_code"]) for e in events.json()}
    assert (req.method, path, status) in seen, f"denial of {req.method} {path} ({status}) is not in the audit log: {seen}"


@dataclass(frozen=True)
class Case:
    family: str
    name: str
    req: Req
    expect: frozenset[int] = DENIED
    foreign: bool = True  # aimed at B's namespace or B's principals: any 404 is an authorisation 404
    skip: tuple[str, ...] = ()  # callers for whom the request is allowed by design


def _case(family: str, name: str, method: str, path: str, json: Any = None, **options: Any) -> Case:
    content = options.pop("content", None)
    return Case(family, name, Req(method, path, json, content), **options)


NS_B = "/namespaces/{b_ns}"
RUN_B = NS_B + "/runs/{b_run}"
MODEL_B = NS_B + "/models/{b_model_name}"
RUN_A_WITH_B = "/namespaces/{a_ns}/runs/{b_run}"
FILTERED = frozenset({200, 404})

CASES = [
    _case("namespaces", "list", "GET", "/namespaces", expect=frozenset({200}), foreign=False),
    _case("namespaces", "get", "GET", NS_B),
    _case("namespaces", "delete", "DELETE", NS_B),
    _case("service-accounts", "list", "GET", NS_B + "/service-accounts"),
    _case("service-accounts", "create", "POST", NS_B + "/service-accounts", {"name": "intruder"}),
    _case("role-bindings", "list", "GET", NS_B + "/role-bindings"),
    _case("role-bindings", "grant-self-admin", "POST", NS_B + "/role-bindings", {"user": "{me}", "role": "admin"}),
    _case("role-bindings", "revoke-member", "DELETE", NS_B + "/role-bindings?user=bob"),
    _case(
        "role-bindings",
        "grant-self-platform-admin",
        "POST",
        "/namespaces/*/role-bindings",
        {"user": "{me}", "role": "platform-admin"},
    ),
    _case("tokens", "issue-for-b-service-account", "POST", "/tokens", {"service_account": "{b_sa_name}", "namespace": "{b_ns}"}),
    _case("tokens", "list-of-b-service-account", "GET", "/tokens?service_account={b_sa_name}&namespace={b_ns}"),
    _case("tokens", "revoke-b-token", "DELETE", "/tokens/{b_sa_token}"),
    _case("tokens", "issue-for-b-member", "POST", "/tokens", {"user": "bob"}),
    _case("tokens", "list-of-b-member", "GET", "/tokens?user=bob"),
    _case("users", "list", "GET", "/users"),
    _case("users", "get-b-member", "GET", "/users/bob", skip=("admin",)),
    _case("users", "disable-b-member", "PATCH", "/users/bob", {"disabled": True}),
    _case("audit", "all", "GET", "/audit"),
    _case("audit", "of-b", "GET", "/audit?namespace={b_ns}"),
    _case("experiments", "list", "GET", NS_B + "/experiments"),
    _case("experiments", "by-name", "GET", NS_B + "/experiments?name={b_exp_name}"),
    _case("experiments", "get", "GET", NS_B + "/experiments/{b_exp}"),
    _case("experiments", "create", "POST", NS_B + "/experiments", {"name": "intruder"}),
    _case("experiments", "patch", "PATCH", NS_B + "/experiments/{b_exp}", {"description": "defaced"}),
    _case("experiments", "get-via-a", "GET", "/namespaces/{a_ns}/experiments/{b_exp}", foreign=False),
    _case("experiments", "patch-via-a", "PATCH", "/namespaces/{a_ns}/experiments/{b_exp}", {"description": "x"}, foreign=False),
    _case("runs", "create", "POST", NS_B + "/runs", {"experiment_id": "{b_exp}"}),
    _case(
        "runs", "create-in-a-under-b-experiment", "POST", "/namespaces/{a_ns}/runs", {"experiment_id": "{b_exp}"}, foreign=False
    ),
    _case(
        "runs",
        "create-in-a-with-b-parent",
        "POST",
        "/namespaces/{a_ns}/runs",
        {"experiment_id": "{a_exp}", "parent_run_id": "{b_run}"},
        foreign=False,
    ),
    _case("runs", "get", "GET", RUN_B),
    _case("runs", "get-via-a", "GET", RUN_A_WITH_B, foreign=False),
    _case("runs", "patch", "PATCH", RUN_B, {"status": "killed"}),
    _case("runs", "patch-via-a", "PATCH", RUN_A_WITH_B, {"status": "killed"}, foreign=False),
    _case("runs", "log-batch", "POST", RUN_B + "/log-batch", {"params": {"injected": "1"}}),
    _case("runs", "log-batch-via-a", "POST", RUN_A_WITH_B + "/log-batch", {"params": {"injected": "1"}}, foreign=False),
    _case("runs", "search", "POST", NS_B + "/runs:search", {}),
    _case(
        "runs",
        "search-a-by-b-experiment",
        "POST",
        "/namespaces/{a_ns}/runs:search",
        {"experiment_ids": ["{b_exp}"]},
        expect=FILTERED,
        foreign=False,
    ),
    _case(
        "runs",
        "search-a-by-b-run-id",
        "POST",
        "/namespaces/{a_ns}/runs:search",
        {"filter": "attributes.run_id = '{b_run}'"},
        expect=FILTERED,
        foreign=False,
    ),
    _case("runs", "metric-history", "GET", RUN_B + "/metrics/{b_metric}"),
    _case("runs", "metric-history-via-a", "GET", RUN_A_WITH_B + "/metrics/{b_metric}", foreign=False),
    _case("runs", "delete-tag", "DELETE", RUN_B + "/tags/{b_tag_key}"),
    _case("runs", "delete-tag-via-a", "DELETE", RUN_A_WITH_B + "/tags/{b_tag_key}", foreign=False),
    _case("artifacts", "upload", "PUT", RUN_B + "/artifacts/intruder.txt", content=b"intruder"),
    _case("artifacts", "upload-via-a", "PUT", RUN_A_WITH_B + "/artifacts/intruder.txt", content=b"intruder", foreign=False),
    _case("artifacts", "list", "GET", RUN_B + "/artifacts"),
    _case("artifacts", "list-via-a", "GET", RUN_A_WITH_B + "/artifacts", foreign=False),
    _case("artifacts", "download", "GET", RUN_B + "/artifacts/{b_artifact}"),
    _case("artifacts", "download-via-a", "GET", RUN_A_WITH_B + "/artifacts/{b_artifact}", foreign=False),
    _case("blobs", "upload", "PUT", NS_B + "/blobs", content=b"intruder"),
    _case("models", "list", "GET", NS_B + "/models"),
    _case("models", "create", "POST", NS_B + "/models", {"name": "intruder"}),
    _case("models", "get", "GET", MODEL_B),
    _case("models", "patch", "PATCH", MODEL_B, {"description": "defaced"}),
    _case("models", "get-via-a", "GET", "/namespaces/{a_ns}/models/{b_model_name}", foreign=False),
    _case("versions", "list", "GET", MODEL_B + "/versions"),
    _case("versions", "create", "POST", MODEL_B + "/versions", {"artifact_digest": "{a_digest}", "format": "onnx"}),
    _case("versions", "get", "GET", MODEL_B + "/versions/1"),
    _case("versions", "patch", "PATCH", MODEL_B + "/versions/1", {"description": "defaced"}),
    _case(
        "versions",
        "create-in-a-from-b-run",
        "POST",
        "/namespaces/{a_ns}/models/{a_model_name}/versions",
        {"artifact_digest": "{a_digest}", "format": "onnx", "run_id": "{b_run}"},
        foreign=False,
    ),
    _case("lineage", "get", "GET", MODEL_B + "/versions/1/lineage"),
    _case("version-artifact", "download", "GET", MODEL_B + "/versions/1/artifact"),
    _case("aliases", "list", "GET", MODEL_B + "/aliases"),
    _case("aliases", "get", "GET", MODEL_B + "/aliases/production"),
    _case("aliases", "set", "PUT", MODEL_B + "/aliases/production", {"version": 1}),
    _case("aliases", "delete", "DELETE", MODEL_B + "/aliases/production"),
    _case("aliases", "rollback", "POST", MODEL_B + "/aliases/production/rollback"),
    _case("aliases", "history", "GET", MODEL_B + "/aliases/production/history"),
]


def _values(world: World, me: str) -> dict[str, str]:
    return {**world.values, "me": me, "uid": uuid.uuid4().hex[:10]}


# -- B's records, seen from every role in A -------------------------------------------------


@pytest.mark.parametrize(
    ("case", "caller"),
    [
        pytest.param(case, caller, id=f"{case.family}:{case.name}-as-{caller}")
        for case in CASES
        for caller in CALLERS
        if caller not in case.skip
    ],
)
def test_b_is_invisible_from_a(world: World, case: Case, caller: str) -> None:
    req = case.req.render(_values(world, f"a-{caller}"))
    since = now_ms()
    response = send(world, req, world.headers(caller))
    assert response.status_code in case.expect, f"{req.method} {req.path}: {response.status_code} {response.text[:300]}"
    assert_no_leak(world, req, response)
    authorisation_404 = case.foreign or caller == "outsider"
    if response.status_code in (401, 403) or (response.status_code == 404 and authorisation_404):
        assert response.json()["error"] in ("permission_denied", "not_found")
        assert_audited_denial(world, f"a-{caller}", since, req, response.status_code)


def _snapshot_of_b(world: World) -> dict[str, Any]:
    def get(path: str) -> Any:
        return _ok(world.api.get(API + path.format(**world.values), headers=world.admin), 200)

    return {
        "experiments": get(NS_B + "/experiments?include_deleted=true"),
        "run": get(RUN_B),
        "artifacts": get(RUN_B + "/artifacts"),
        "models": get(NS_B + "/models"),
        "versions": get(MODEL_B + "/versions"),
        "alias_history": get(MODEL_B + "/aliases/production/history"),
        "service_accounts": get(NS_B + "/service-accounts"),
        "bindings": get(NS_B + "/role-bindings"),
        "bob": get("/users/bob"),
        "sa_tokens": get("/tokens?service_account={b_sa_name}&namespace={b_ns}"),
        "runs": _ok(
            world.api.post(API + f"/namespaces/{B}/runs:search", json={"include_deleted": True}, headers=world.admin), 200
        ),
    }


def test_denied_writes_change_nothing_in_b(world: World) -> None:
    before = _snapshot_of_b(world)
    writes = [c for c in CASES if c.foreign and c.req.method != "GET"]
    for caller in CALLERS:
        for case in writes:
            response = send(world, case.req.render(_values(world, f"a-{caller}")), world.headers(caller))
            assert response.status_code in DENIED, f"{case.family}:{case.name} as {caller}: {response.text[:300]}"
    assert _snapshot_of_b(world) == before


# -- what each role may do inside its own namespace ----------------------------------------

NS_A = "/namespaces/{a_ns}"
RUN_A = NS_A + "/runs/{a_run}"
MODEL_A = NS_A + "/models/{a_model_name}"


@dataclass(frozen=True)
class Rule:
    """``req`` answered with ``expect[caller]``; ``setup`` runs first as the platform admin."""

    name: str
    req: Req
    expect: dict[str, int]
    setup: tuple[Req, ...] = ()


def _expect(viewer: int, editor: int, operator: int, admin: int, outsider: int = 404) -> dict[str, int]:
    return {"viewer": viewer, "editor": editor, "operator": operator, "admin": admin, "outsider": outsider}


def _set_alias(version: int) -> Req:
    return Req("PUT", MODEL_A + "/aliases/al-{uid}", {"version": version})


WRITER = _expect(403, 201, 201, 201)
RULES = [
    Rule("read-run", Req("GET", RUN_A), _expect(200, 200, 200, 200)),
    Rule("read-model", Req("GET", MODEL_A), _expect(200, 200, 200, 200)),
    Rule("create-experiment", Req("POST", NS_A + "/experiments", {"name": "exp-{uid}"}), WRITER),
    Rule("patch-experiment", Req("PATCH", NS_A + "/experiments/{a_exp}", {"description": "{uid}"}), _expect(403, 200, 200, 200)),
    Rule("create-run", Req("POST", NS_A + "/runs", {"experiment_id": "{a_exp}"}), WRITER),
    Rule("patch-run", Req("PATCH", RUN_A, {"name": "run-{uid}"}), _expect(403, 200, 200, 200)),
    Rule(
        "log-batch",
        Req("POST", RUN_A + "/log-batch", {"metrics": [{"key": "m-{uid}", "value": 1.0}], "params": {"p-{uid}": "1"}}),
        _expect(403, 204, 204, 204),
    ),
    Rule(
        "delete-tag",
        Req("DELETE", RUN_A + "/tags/t-{uid}"),
        _expect(403, 204, 204, 204),
        setup=(Req("POST", RUN_A + "/log-batch", {"tags": {"t-{uid}": "x"}}),),
    ),
    Rule("upload-artifact", Req("PUT", RUN_A + "/artifacts/up-{uid}.txt", content=b"uploaded"), WRITER),
    Rule("upload-blob", Req("PUT", NS_A + "/blobs", content=b"a blob"), WRITER),
    Rule("create-model", Req("POST", NS_A + "/models", {"name": "model-{uid}"}), WRITER),
    Rule("patch-model", Req("PATCH", MODEL_A, {"description": "{uid}"}), _expect(403, 200, 200, 200)),
    Rule("register-version", Req("POST", MODEL_A + "/versions", {"artifact_digest": "{a_digest}", "format": "sklearn"}), WRITER),
    Rule("patch-version", Req("PATCH", MODEL_A + "/versions/1", {"description": "{uid}"}), _expect(403, 200, 200, 200)),
    Rule("set-alias", _set_alias(1), _expect(403, 403, 200, 200)),
    Rule(
        "rollback-alias",
        Req("POST", MODEL_A + "/aliases/al-{uid}/rollback"),
        _expect(403, 403, 200, 200),
        setup=(_set_alias(1), _set_alias(2)),
    ),
    Rule("delete-alias", Req("DELETE", MODEL_A + "/aliases/al-{uid}"), _expect(403, 403, 204, 204), setup=(_set_alias(1),)),
    Rule("create-service-account", Req("POST", NS_A + "/service-accounts", {"name": "sa-{uid}"}), _expect(403, 403, 403, 201)),
    Rule(
        "issue-service-account-token",
        Req("POST", "/tokens", {"service_account": "{a_sa_name}", "namespace": "{a_ns}"}),
        _expect(403, 403, 403, 201),
    ),
    Rule(
        "grant-role",
        Req("POST", NS_A + "/role-bindings", {"user": "spare-{uid}", "role": "viewer"}),
        _expect(403, 403, 403, 200),
        setup=(Req("POST", "/users", {"name": "spare-{uid}"}),),
    ),
    Rule(
        "revoke-role",
        Req("DELETE", NS_A + "/role-bindings?user=spare-{uid}"),
        _expect(403, 403, 403, 204),
        setup=(
            Req("POST", "/users", {"name": "spare-{uid}"}),
            Req("POST", NS_A + "/role-bindings", {"user": "spare-{uid}", "role": "editor"}),
        ),
    ),
    Rule(
        "raise-own-role",
        Req("POST", NS_A + "/role-bindings", {"user": "{me}", "role": "admin"}),
        _expect(403, 403, 403, 200),
    ),
    Rule("read-namespace-audit", Req("GET", "/audit?namespace={a_ns}"), _expect(403, 403, 403, 200)),
    Rule("read-whole-audit", Req("GET", "/audit"), _expect(403, 403, 403, 403, outsider=403)),
    Rule("create-namespace", Req("POST", "/namespaces", {"name": "ns-{uid}"}), _expect(403, 403, 403, 403, outsider=403)),
    Rule("delete-namespace", Req("DELETE", NS_A), _expect(403, 403, 403, 403, outsider=403)),
    Rule("create-user", Req("POST", "/users", {"name": "user-{uid}"}), _expect(403, 403, 403, 403, outsider=403)),
]


@pytest.mark.parametrize(
    ("rule", "caller"), [pytest.param(rule, caller, id=f"{rule.name}-as-{caller}") for rule in RULES for caller in CALLERS]
)
def test_roles_within_a(world: World, rule: Rule, caller: str) -> None:
    values = _values(world, f"a-{caller}")
    for step in rule.setup:
        prepared = send(world, step.render(values), world.admin)
        assert prepared.status_code < 300, prepared.text
    req = rule.req.render(values)
    since = now_ms()
    response = send(world, req, world.headers(caller))
    assert response.status_code == rule.expect[caller], response.text
    if response.status_code in (403, 404):
        assert_audited_denial(world, f"a-{caller}", since, req, response.status_code)
        if response.status_code == 403:
            assert "may not" in response.json()["message"] or "only a platform admin" in response.json()["message"]


def test_a_token_scope_narrows_the_role(world: World) -> None:
    """An A admin's read-only token reads but cannot write, whatever the role allows."""
    issued = _ok(world.api.post(f"{API}/tokens", json={"scopes": ["read"]}, headers=world.headers("admin")), 201)
    read_only = {"Authorization": f"Bearer {issued['token']}"}
    values = _values(world, "a-admin")
    assert send(world, Req("GET", RUN_A).render(values), read_only).status_code == 200
    req = Req("POST", NS_A + "/experiments", {"name": "exp-{uid}"}).render(values)
    since = now_ms()
    response = send(world, req, read_only)
    assert response.status_code == 403
    assert "scopes ['read']" in response.json()["message"]
    assert_audited_denial(world, "a-admin", since, req, 403)


# -- tokens that do not authenticate --------------------------------------------------------


@pytest.fixture(scope="module")
def bad_tokens(world: World) -> dict[str, dict[str, str]]:
    """A missing, an unknown, a revoked and an expired token (the last two of A's admin)."""
    revoked = _ok(world.api.post(f"{API}/tokens", json={"user": "a-admin", "scopes": ["admin"]}, headers=world.admin), 201)
    _ok(world.api.delete(f"{API}/tokens/{revoked['id']}", headers=world.admin), 200)
    expired = _ok(world.api.post(f"{API}/tokens", json={"user": "a-admin", "scopes": ["admin"]}, headers=world.admin), 201)
    with world.platform.db.session(write=True) as session:
        session.execute(update(Token).where(Token.id == expired["id"]).values(expires_at=now_ms() - 1000))
    return {
        "missing": {},
        "unknown": {"Authorization": "Bearer shp_not-a-real-token"},
        "revoked": {"Authorization": f"Bearer {revoked['token']}"},
        "expired": {"Authorization": f"Bearer {expired['token']}"},
    }


UNAUTHENTICATED_MESSAGE = {"missing": "no token", "unknown": "not valid", "revoked": "revoked", "expired": "expired"}


@pytest.mark.parametrize("kind", list(UNAUTHENTICATED_MESSAGE))
@pytest.mark.parametrize("case", [pytest.param(case, id=f"{case.family}:{case.name}") for case in CASES])
def test_bad_tokens_get_401_everywhere(world: World, bad_tokens: dict[str, dict[str, str]], case: Case, kind: str) -> None:
    req = case.req.render(_values(world, "a-admin"))
    since = now_ms()
    response = send(world, req, bad_tokens[kind])
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"] == "unauthenticated"
    assert UNAUTHENTICATED_MESSAGE[kind] in response.json()["message"]
    assert_no_leak(world, req, response)
    assert_audited_denial(world, "anonymous", since, req, 401)


def test_revoking_a_token_takes_effect_at_once(world: World) -> None:
    issued = _ok(world.api.post(f"{API}/tokens", json={"user": "a-viewer"}, headers=world.admin), 201)
    own = {"Authorization": f"Bearer {issued['token']}"}
    assert world.api.get(f"{API}/namespaces/{A}", headers=own).status_code == 200
    _ok(world.api.delete(f"{API}/tokens/{issued['id']}", headers=own), 200)
    assert world.api.get(f"{API}/namespaces/{A}", headers=own).status_code == 401
