"""First start: create the platform admin and write its token to a 0600 file."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.access import tokens
from shipyard.access.caller import Caller
from shipyard.access.roles import ALL_NAMESPACES, Role
from shipyard.store.models import Namespace, Principal, RoleBinding

ADMIN_NAME = "admin"
DEFAULT_NAMESPACE = "default"


def has_platform_admin(session: Session) -> bool:
    return session.scalar(select(RoleBinding).where(RoleBinding.role == Role.PLATFORM_ADMIN.value).limit(1)) is not None


def ensure_platform_admin(session: Session, token_path: Path, *, days: int = 365) -> bool:
    """On an empty store create the ``admin`` user, its token and the ``default`` namespace."""
    if has_platform_admin(session):
        return False
    system = Caller.system()
    admin = session.scalar(select(Principal).where(Principal.kind == "user", Principal.name == ADMIN_NAME))
    if admin is None:
        admin = Principal(kind="user", namespace="", name=ADMIN_NAME, display_name="Platform admin", created_by=system.name)
        session.add(admin)
        session.flush()
    session.add(
        RoleBinding(principal_id=admin.id, namespace=ALL_NAMESPACES, role=Role.PLATFORM_ADMIN.value, created_by=system.name)
    )
    if session.scalar(select(Namespace).where(Namespace.name == DEFAULT_NAMESPACE)) is None:
        session.add(Namespace(name=DEFAULT_NAMESPACE, description="Created on first start.", created_by=system.name))
    issued = tokens.issue(session, system, admin, name="bootstrap", scopes=["admin"], days=days)
    write_secret(token_path, issued.plaintext)
    return True


def write_secret(path: Path, secret: str) -> None:
    """Write ``secret`` readable by the owner only, atomically (temp file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temp, 0o600)
    os.replace(temp, path)
