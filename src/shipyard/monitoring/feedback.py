"""Ground truth: the true label of a prediction, sent later by whoever learns it, joined to the prediction log.

Every gateway answer carries ``X-Request-Id`` (the caller may choose it). Feedback names
that id and the label: a number, a string or a boolean for a one-row request, or a list
with one label per row for a multi-row request. A later label for the same request
replaces the earlier one. A call stores up to ``MAX_ITEMS`` labels, all or none.

Labels are kept whether or not the request was sampled into the prediction log (the log
may not be written yet); only those of logged requests join a window (``labelled``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import pandas as pd
from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shipyard.access.caller import Caller
from shipyard.access.roles import Action
from shipyard.errors import InvalidInput, NotFound
from shipyard.monitoring import window as windows
from shipyard.registry import aliases
from shipyard.serving import endpoints, revisions
from shipyard.serving.gateway.validation import schema_from_signature
from shipyard.store.models import Endpoint, Feedback, ModelVersion, RegisteredModel, now_ms

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # the gateway's rule for X-Request-Id
MAX_ITEMS = 10_000
MAX_LABEL_ROWS = 10_000
MAX_LABEL_CHARS = 1_000
MAX_LIST = 10_000
_LOOKUP_CHUNK = 500  # request ids per IN (...) query, well under SQLite's bound-parameter limit
_KINDS = "a number, a string, a boolean, or a list of them with one label per row of a multi-row request"


def _check_scalar(value: Any, where: str) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput(f"{where} is {value}: expected a finite number")
        return
    if isinstance(value, str):
        if not value or len(value) > MAX_LABEL_CHARS:
            raise InvalidInput(f"{where} has {len(value)} characters: expected a string of 1 to {MAX_LABEL_CHARS}")
        return
    got = "null" if value is None else type(value).__name__
    raise InvalidInput(f"{where} is {got}: expected {_KINDS}")


def check_label(label: Any, where: str = "label") -> Any:
    """``label`` when it is a scalar label or a non-empty list of them; InvalidInput saying what is wrong otherwise."""
    if isinstance(label, list | tuple):
        if not 1 <= len(label) <= MAX_LABEL_ROWS:
            raise InvalidInput(f"{where} is a list of {len(label)}: expected 1 to {MAX_LABEL_ROWS} labels, one per row")
        for index, value in enumerate(label):
            _check_scalar(value, f"{where}[{index}]")
        return list(label)
    _check_scalar(label, where)
    return label


def check_request_id(value: Any, where: str = "request_id") -> str:
    if not isinstance(value, str) or not REQUEST_ID.match(value):
        raise InvalidInput(
            f"{where} {value!r} is not a request id: expected 1 to 128 letters, digits or '._:-', "
            "as sent back by the gateway in the X-Request-Id header"
        )
    return value


def check_items(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Request id -> label, every item checked; the last label given for a request wins."""
    if not isinstance(items, list | tuple):
        raise InvalidInput(f"feedback items are {type(items).__name__}: expected a list of {{'request_id', 'label'}}")
    if not 1 <= len(items) <= MAX_ITEMS:
        raise InvalidInput(f"got {len(items)} feedback items: expected 1 to {MAX_ITEMS:,} per call; send more in several calls")
    labels: dict[str, Any] = {}
    for index, item in enumerate(items):
        where = f"items[{index}]" if len(items) > 1 else "feedback"
        if not isinstance(item, Mapping):
            raise InvalidInput(f"{where} is {type(item).__name__}: expected {{'request_id': ..., 'label': ...}}")
        unknown = sorted(set(item) - {"request_id", "label"})
        if unknown or "request_id" not in item or "label" not in item:
            raise InvalidInput(
                f"{where} has fields {sorted(item)}: expected exactly 'request_id' and 'label'"
                + (f" (unknown: {unknown})" if unknown else "")
            )
        request_id = check_request_id(item["request_id"], f"{where}.request_id")
        labels.pop(request_id, None)  # re-insert, so a repeated id counts as given last
        labels[request_id] = check_label(item["label"], f"{where}.label")
    return labels


def record(session: Session, caller: Caller, namespace: str, endpoint_name: str, items: Sequence[Mapping[str, Any]]) -> int:
    """Store labels for requests of an endpoint (upsert, all or none); returns how many requests got one."""
    caller.require(Action.WRITE, namespace)
    endpoint = endpoints.get(session, caller, namespace, endpoint_name)
    labels = check_items(items)
    now = now_ms()
    rows = [
        {"endpoint_id": endpoint.id, "namespace": namespace, "request_id": request_id, "label": label,
         "created_at": now, "created_by": caller.name}
        for request_id, label in labels.items()
    ]  # fmt: skip
    table = cast(Table, Feedback.__table__)
    dialect = postgresql if session.connection().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.endpoint_id, table.c.request_id],
        set_={
            "label": statement.excluded.label,
            "created_at": statement.excluded.created_at,
            "created_by": statement.excluded.created_by,
        },
    )
    session.execute(statement, rows)
    return len(rows)


def list_for(session: Session, caller: Caller, namespace: str, endpoint_name: str, *, limit: int = 100) -> list[Feedback]:
    """An endpoint's labels, newest first."""
    if not 1 <= limit <= MAX_LIST:
        raise InvalidInput(f"limit {limit} is out of range: expected 1 to {MAX_LIST}")
    endpoint = endpoints.get(session, caller, namespace, endpoint_name)
    return list(
        session.scalars(
            select(Feedback)
            .where(Feedback.endpoint_id == endpoint.id, Feedback.namespace == namespace)
            .order_by(Feedback.created_at.desc(), Feedback.id.desc())
            .limit(limit)
        )
    )


def labels_for(session: Session, namespace: str, endpoint_id: str, request_ids: Iterable[str]) -> dict[str, Any]:
    """Request id -> label for those of ``request_ids`` that have one."""
    wanted = sorted(set(request_ids))
    found: dict[str, Any] = {}
    for start in range(0, len(wanted), _LOOKUP_CHUNK):
        chunk = wanted[start : start + _LOOKUP_CHUNK]
        for request_id, label in session.execute(
            select(Feedback.request_id, Feedback.label).where(
                Feedback.endpoint_id == endpoint_id, Feedback.namespace == namespace, Feedback.request_id.in_(chunk)
            )
        ):
            found[request_id] = label
    return found


def labelled(session: Session, namespace: str, endpoint_id: str, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (a window, one row per instance) with a ``label`` column: None where no label joins.

    A scalar label joins a one-row request; a list joins a request with as many rows, row by
    row. Anything else (a scalar for several rows, a list of another length) joins nothing.
    """
    frame = frame.copy()
    if frame.empty:
        frame["label"] = pd.Series(dtype=object)
        return frame
    labels = labels_for(session, namespace, endpoint_id, frame["request_id"])
    sizes = frame.groupby("request_id", sort=False)["row"].transform("size").to_numpy()
    joined: list[Any] = []
    for request_id, row, size in zip(frame["request_id"], frame["row"], sizes, strict=True):
        label = labels.get(request_id)
        if isinstance(label, list):
            joined.append(label[int(row)] if len(label) == size else None)
        else:
            joined.append(label if size == 1 else None)
    frame["label"] = pd.Series(joined, index=frame.index, dtype=object)
    return frame


# -- a window of an endpoint's log, with its labels --------------------------------------------


@dataclass(frozen=True)
class LabelledWindow:
    """An endpoint's window with labels, and what monitoring needs to read it: the model and its signatures."""

    endpoint: Endpoint
    model: str | None
    frame: pd.DataFrame
    signatures: Mapping[int, Mapping[str, Any]]
    routed: Sequence[int]  # versions of the current revision's routes, by weight, heaviest first


def labelled_window(
    session: Session,
    caller: Caller,
    log_url: str,
    namespace: str,
    endpoint_name: str,
    window: windows.Window,
    *,
    end_ms: int,
) -> LabelledWindow:
    """The window of ``endpoint_name``'s prediction log up to ``end_ms``, features named and labels joined."""
    endpoint = endpoints.get(session, caller, namespace, endpoint_name)
    current = revisions.current(session, endpoint)
    routes = sorted(current.routes if current is not None else [], key=lambda r: -int(r.get("weight", 0)))
    # Windows tell versions apart by number only: an endpoint is read as serving its main route's model.
    model = str(routes[0]["model"]) if routes else None
    signatures = _signatures(session, namespace, model) if model is not None else {}
    routed = [v for r in routes if r.get("model") == model and (v := _version_of(session, caller, namespace, r)) is not None]
    names = {version: schema_from_signature(signature).names for version, signature in signatures.items()}

    def names_for(version: int | None) -> Sequence[str] | None:
        return names.get(version) if version is not None else None

    frame = windows.read(log_url, namespace, endpoint.name, window, end_ms=end_ms, names_for=names_for)
    return LabelledWindow(endpoint, model, labelled(session, namespace, endpoint.id, frame), signatures, routed)


def _signatures(session: Session, namespace: str, model: str) -> dict[int, Mapping[str, Any]]:
    found = session.execute(
        select(ModelVersion.version, ModelVersion.signature)
        .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
        .where(RegisteredModel.namespace == namespace, RegisteredModel.name == model)
    ).all()
    return {int(version): signature or {} for version, signature in found}


def _version_of(session: Session, caller: Caller, namespace: str, route: Mapping[str, Any]) -> int | None:
    """The version a route serves now (an alias route follows its alias)."""
    if route.get("version") is not None:
        return int(route["version"])
    try:
        return aliases.resolve(session, caller, namespace, str(route["model"]), str(route["alias"])).version
    except NotFound:  # the alias was deleted since the deploy: the route serves nothing we can name
        return None
