"""Aliases (``production``, ``staging``...) with a full history, and rollback.

The history is a stack per alias: ``set`` pushes a version, ``rollback`` pops back to the
one before, so repeated rollbacks walk further back through what the alias served.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.access.caller import Caller
from shipyard.access.roles import Action
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.registry import models
from shipyard.store.models import AliasChange, ModelAlias, ModelVersion, RegisteredModel, now_ms

_ALIAS = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
RESERVED = ("latest",)


def validate_alias(alias: str) -> str:
    if not isinstance(alias, str) or not _ALIAS.match(alias) or alias in RESERVED or re.match(r"^v\d+$", alias):
        raise InvalidInput(
            f"alias {alias!r} is not valid: expected a lowercase name such as 'production' "
            "(letters, digits, '-' or '_'; not 'latest' and not like 'v3')"
        )
    return alias


def get_alias(session: Session, caller: Caller, namespace: str, name: str, alias: str) -> ModelAlias:
    model = models.get(session, caller, namespace, name)
    row = session.get(ModelAlias, (model.id, alias))
    if row is None:
        raise NotFound(f"model {name!r} has no alias {alias!r} in namespace {namespace!r}")
    return row


def list_for(session: Session, caller: Caller, namespace: str, name: str) -> list[ModelAlias]:
    return list_for_model(session, models.get(session, caller, namespace, name).id)


def list_for_model(session: Session, model_id: str) -> list[ModelAlias]:
    return list(session.scalars(select(ModelAlias).where(ModelAlias.model_id == model_id).order_by(ModelAlias.alias)))


def resolve(session: Session, caller: Caller, namespace: str, name: str, alias: str) -> ModelVersion:
    row = get_alias(session, caller, namespace, name, alias)
    return models.get_version(session, caller, namespace, name, row.version)


def set_alias(session: Session, caller: Caller, namespace: str, name: str, alias: str, version: int) -> ModelAlias:
    caller.require(Action.PROMOTE, namespace)
    validate_alias(alias)
    model = models.get(session, caller, namespace, name)
    models.get_version(session, caller, namespace, name, version)
    return _move(session, caller, model, alias, version, "set")


def rollback(session: Session, caller: Caller, namespace: str, name: str, alias: str) -> ModelAlias:
    """Point ``alias`` back at the version it served before the current one."""
    caller.require(Action.PROMOTE, namespace)
    model = models.get(session, caller, namespace, name)
    stack = _stack(session, model.id, alias)
    if len(stack) < 2:
        raise Conflict(
            f"alias {alias!r} of model {name!r} has no earlier version to roll back to "
            f"(history: {stack or 'empty'}); set it explicitly with 'shipyard alias set'"
        )
    return _move(session, caller, model, alias, stack[-2], "rollback")


def delete_alias(session: Session, caller: Caller, namespace: str, name: str, alias: str) -> None:
    caller.require(Action.PROMOTE, namespace)
    row = get_alias(session, caller, namespace, name, alias)
    session.add(
        AliasChange(
            model_id=row.model_id, alias=alias, version=None, previous_version=row.version, action="delete", actor=caller.name
        )
    )
    session.delete(row)


def history(session: Session, caller: Caller, namespace: str, name: str, alias: str | None = None) -> list[AliasChange]:
    model = models.get(session, caller, namespace, name)
    stmt = select(AliasChange).where(AliasChange.model_id == model.id).order_by(AliasChange.id)
    if alias is not None:
        stmt = stmt.where(AliasChange.alias == alias)
    return list(session.scalars(stmt))


def aliases_of_version(session: Session, model_id: str, version: int) -> list[str]:
    return list(
        session.scalars(
            select(ModelAlias.alias)
            .where(ModelAlias.model_id == model_id, ModelAlias.version == version)
            .order_by(ModelAlias.alias)
        )
    )


def _stack(session: Session, model_id: str, alias: str) -> list[int]:
    stack: list[int] = []
    changes = session.scalars(
        select(AliasChange).where(AliasChange.model_id == model_id, AliasChange.alias == alias).order_by(AliasChange.id)
    )
    for change in changes:
        if change.action == "set" and change.version is not None:
            if not stack or stack[-1] != change.version:
                stack.append(change.version)
        elif change.action == "rollback" and stack:
            stack.pop()
        elif change.action == "delete":
            stack.clear()
    return stack


def _move(session: Session, caller: Caller, model: RegisteredModel, alias: str, version: int, action: str) -> ModelAlias:
    # Lock the model row so two moves of one alias cannot interleave their history.
    session.execute(select(RegisteredModel.id).where(RegisteredModel.id == model.id).with_for_update())
    row = session.get(ModelAlias, (model.id, alias))
    previous = row.version if row is not None else None
    if row is None:
        row = ModelAlias(model_id=model.id, alias=alias, version=version, updated_by=caller.name)
        session.add(row)
    else:
        row.version, row.updated_at, row.updated_by = version, now_ms(), caller.name
    session.add(
        AliasChange(model_id=model.id, alias=alias, version=version, previous_version=previous, action=action, actor=caller.name)
    )
    session.flush()
    return row
