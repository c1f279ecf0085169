"""Shared fixtures: an isolated environment, both database back ends, a platform, servers."""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shipyard.access import bindings, blobs, namespaces, principals, tokens
from shipyard.access.caller import Caller
from shipyard.access.roles import Role
from shipyard.client import Client
from shipyard.pipelines.executors.ray import RayExecutor
from shipyard.runtime import Platform
from shipyard.server.app import create_app
from shipyard.settings import Settings
from shipyard.store.engine import Database

POSTGRES_ENV = "SHIPYARD_TEST_POSTGRES_URL"


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's ~/.shipyard, tokens or caches."""
    for key in list(os.environ):
        if key.startswith("SHIPYARD_") and key != POSTGRES_ENV:
            monkeypatch.delenv(key)
    home = tmp_path_factory.mktemp("user-home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("SHIPYARD_HOME", str(home / ".shipyard"))


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_ENV} is not set; CI sets it to run the PostgreSQL suite")
    return url


@pytest.fixture(scope="session")
def postgres_template(postgres_server_url: str) -> Iterator[str]:
    """A database migrated once per session; each test copies it, which is much cheaper than migrating."""
    base = make_url(postgres_server_url).set(drivername="postgresql+psycopg")
    name = f"shipyard_template_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    database = Database(base.set(database=name).render_as_string(hide_password=False))
    database.migrate()
    database.dispose()  # CREATE DATABASE ... TEMPLATE needs the template to have no connections
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def scratch_database(server_url: str, template: str | None = None) -> Iterator[str]:
    """Create a uniquely named database (a copy of ``template`` if given) and drop it afterwards."""
    base = make_url(server_url).set(drivername="postgresql+psycopg")
    name = f"shipyard_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    copy = f' TEMPLATE "{template}"' if template else ""
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def postgres_url(postgres_server_url: str, postgres_template: str) -> Iterator[str]:
    """A fresh, migrated database per test, dropped afterwards, so runs never collide."""
    with scratch_database(postgres_server_url, postgres_template) as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def module_platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """One platform per back end shared by a module's tests, which add only records of their own."""
    root = tmp_path_factory.mktemp("module-platform")
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{root / 'shipyard.db'}"
        else:
            url = stack.enter_context(scratch_database(request.getfixturevalue("postgres_server_url")))
        platform = Platform.open(Settings(home=root / "home", database_url=url))
        stack.callback(platform.close)
        platform.ensure_admin()
        yield platform


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs once per back end."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shipyard.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(home=tmp_path / "home", database_url=db_url)


@pytest.fixture
def platform(settings: Settings) -> Iterator[Platform]:
    platform = Platform.open(settings)
    platform.ensure_admin()
    yield platform
    platform.close()


@pytest.fixture
def admin_token(platform: Platform) -> str:
    return platform.settings.admin_token_path.read_text().strip()


@pytest.fixture
def api(platform: Platform) -> Iterator[TestClient]:
    """The app in-process, without a token: pass headers per request."""
    with TestClient(create_app(platform), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def admin_api(api: TestClient, admin_token: str) -> TestClient:
    api.headers["Authorization"] = f"Bearer {admin_token}"
    return api


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def live_url(platform: Platform) -> Iterator[str]:
    """The API on a real socket (uvicorn in a thread)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(platform), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.05)
    else:  # pragma: no cover - only when the server cannot start
        raise RuntimeError("test server did not start")
    yield url
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def client(live_url: str, admin_token: str) -> Iterator[Client]:
    """The SDK as the platform admin, over a real socket."""
    with Client(live_url, admin_token) as sdk:
        yield sdk


TEAM = "team-a"
OTHER = "team-b"
ALL_SCOPES = ("read", "write", "promote", "admin")

MakeCaller = Callable[..., Caller]


@pytest.fixture
def teams(platform: Platform) -> tuple[str, str]:
    with platform.db.session(write=True) as session:
        namespaces.create(session, Caller.system(), TEAM)
        namespaces.create(session, Caller.system(), OTHER)
    return TEAM, OTHER


@pytest.fixture
def make_caller(platform: Platform, teams: tuple[str, str]) -> MakeCaller:
    """A new user holding ``roles`` ({namespace: role}), authenticated through a fresh token."""
    counter = itertools.count(1)

    def make(roles: dict[str, str] | None = None, *, scopes: Sequence[str] = ALL_SCOPES, token_namespace: str = "") -> Caller:
        system = Caller.system()
        with platform.db.session(write=True) as session:
            user = principals.create_user(session, system, f"user-{next(counter)}")
            for namespace, role in (roles or {}).items():
                bindings.grant(session, system, user, namespace, Role.parse(role))
            issued = tokens.issue(session, system, user, scopes=list(scopes), namespace=token_namespace)
        with platform.db.session() as session:
            return tokens.authenticate(session, issued.plaintext)

    return make


def held_blob(platform: Platform, namespace: str, data: bytes) -> str:
    """Store ``data`` as if uploaded into ``namespace``; returns its digest."""
    blob = platform.artifacts.put_bytes(data)
    with platform.db.session(write=True) as session:
        blobs.claim(session, Caller.system(), namespace, blob)
    return blob.digest


@pytest.fixture(scope="session")
def ray_executor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayExecutor]:
    """One local Ray runtime (2 CPUs) for the whole session, shared by every test that runs steps on Ray.

    The suite allows one ``ray.init`` per test process (a runtime costs about 2.5 s and
    1.4 GB), so test modules take this fixture instead of starting their own.
    """
    ray = pytest.importorskip("ray", reason="Ray is in the dev extras; install shipyard[ray]")
    temp = tmp_path_factory.mktemp("ray")
    with pytest.MonkeyPatch.context() as patch:
        # Workers keep the environment they start with, for the rest of the session: give
        # them the isolation _isolated_environment gives each test (no developer settings,
        # caches such as onnxruntime's under a temporary home).
        for key in list(os.environ):
            if key.startswith("SHIPYARD_") and key != POSTGRES_ENV:
                patch.delenv(key)
        patch.setenv("HOME", str(temp))
        patch.setenv("XDG_CACHE_HOME", str(temp / ".cache"))
        patch.setenv("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=str(temp))
    try:
        yield RayExecutor()  # joins the runtime above; RayExecutor() in a test (or executor="ray") does too
    finally:
        ray.shutdown()
        (temp / "ray_current_cluster").unlink(missing_ok=True)  # else the next ray.init(num_cpus=...) thinks one runs
