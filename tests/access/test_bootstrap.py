from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from shipyard.access import bootstrap, namespaces, tokens
from shipyard.access.caller import Caller
from shipyard.access.roles import ALL_NAMESPACES, Role
from shipyard.runtime import Platform
from shipyard.store.models import Principal, RoleBinding


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_start_creates_admin_token_file_and_default_namespace(platform: Platform) -> None:
    path = platform.settings.admin_token_path
    assert _mode(path) == 0o600
    plaintext = path.read_text().strip()
    with platform.db.session() as session:
        caller = tokens.authenticate(session, plaintext)
        assert caller.name == bootstrap.ADMIN_NAME
        assert caller.is_platform_admin
        assert namespaces.get(session, caller, bootstrap.DEFAULT_NAMESPACE).name == bootstrap.DEFAULT_NAMESPACE
        assert bootstrap.has_platform_admin(session)


def test_bootstrap_is_idempotent(platform: Platform) -> None:
    path = platform.settings.admin_token_path
    before = path.read_text()
    assert platform.ensure_admin() is False
    assert path.read_text() == before
    with platform.db.session() as session:
        admins = session.scalar(select(func.count()).select_from(RoleBinding).where(RoleBinding.role == Role.PLATFORM_ADMIN))
        users = session.scalar(select(func.count()).select_from(Principal).where(Principal.name == bootstrap.ADMIN_NAME))
    assert (admins, users) == (1, 1)


def test_bootstrap_again_after_losing_every_admin_reuses_the_user(platform: Platform, tmp_path: Path) -> None:
    with platform.db.session(write=True) as session:
        admin_id = session.scalar(select(Principal.id).where(Principal.name == bootstrap.ADMIN_NAME))
        session.execute(delete(RoleBinding).where(RoleBinding.namespace == ALL_NAMESPACES))
    new_path = tmp_path / "again" / "admin.token"
    with platform.db.session(write=True) as session:
        assert bootstrap.ensure_platform_admin(session, new_path) is True
    with platform.db.session() as session:
        caller = tokens.authenticate(session, new_path.read_text().strip())
        assert caller.principal_id == admin_id
        assert caller.is_platform_admin
        assert len(namespaces.list_visible(session, Caller.system())) == 1


def test_write_secret_is_owner_only_even_with_a_loose_umask(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "secret.token"
    path.parent.mkdir()
    path.write_text("old")
    path.chmod(0o644)
    old_umask = os.umask(0)
    try:
        bootstrap.write_secret(path, "new-secret")
    finally:
        os.umask(old_umask)
    assert path.read_text() == "new-secret\n"
    assert _mode(path) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secret.token"]


def test_write_secret_creates_missing_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "token"
    bootstrap.write_secret(path, "s")
    assert path.read_text() == "s\n"


@pytest.mark.parametrize("home_exists", [True, False])
def test_platform_open_creates_the_home(tmp_path: Path, home_exists: bool) -> None:
    from shipyard.settings import Settings

    home = tmp_path / "home"
    if home_exists:
        home.mkdir()
    platform = Platform.open(Settings(home=home))
    try:
        assert platform.ensure_admin() is True
        assert _mode(home / "admin.token") == 0o600
    finally:
        platform.close()
