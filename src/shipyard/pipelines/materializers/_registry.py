"""The registry: materializers by name, in the order they are tried, plugins included."""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import threading
from typing import Any, TypeVar

from shipyard.errors import InvalidInput
from shipyard.pipelines.materializers._base import Materializer, type_name
from shipyard.pipelines.materializers._json import Json, json_problem
from shipyard.pipelines.materializers._models import SklearnSkops
from shipyard.pipelines.materializers._paths import PathTar
from shipyard.pipelines.materializers._tabular import NumpyNpy, PandasParquet

ENTRY_POINT_GROUP = "shipyard.materializers"
log = logging.getLogger("shipyard.pipelines")

M = TypeVar("M", bound="Materializer | type[Materializer]")


class Registry:
    """Materializers by name and in the order they are tried.

    Order: registered with ``first=True`` (newest first), then entry-point plugins, then
    the built-ins, then registered with ``first=False``. A name registered again replaces
    the old one, so a plugin may override a built-in.
    """

    def __init__(self, *, with_builtins: bool = True, entry_point_group: str | None = ENTRY_POINT_GROUP) -> None:
        self._first: list[Materializer] = []
        self._discovered: list[Materializer] = []
        self._rest: list[Materializer] = [PandasParquet(), NumpyNpy(), SklearnSkops(), PathTar(), Json()] if with_builtins else []
        self._by_path: dict[str, Materializer] = {}
        self._group = entry_point_group
        self._broken: dict[str, str] = {}
        self._lock = threading.RLock()  # re-entrant: a plugin may register() while being discovered

    def register(self, materializer: M, *, first: bool = True) -> M:
        """Add a materializer class or instance; returns it unchanged, so it also works as a class decorator."""
        instance = _instantiate(materializer, repr(materializer))
        self._discover()
        with self._lock:
            self._drop(instance.name)
            if first:
                self._first.insert(0, instance)
            else:
                self._rest.append(instance)
        return materializer

    def by_name(self, name: str) -> Materializer:
        if ":" in name:
            return self._by_dotted_path(name)
        self._discover()
        for materializer in self._ordered():
            if materializer.name == name:
                return materializer
        if name in self._broken:
            raise InvalidInput(f"materializer plugin {name!r} failed to load: {self._broken[name]}")
        known = ", ".join(sorted(m.name for m in self._ordered()))
        raise InvalidInput(f"no materializer is named {name!r}: known are {known}, or name a class as 'package.module:ClassName'")

    def for_value(self, value: Any, name: str | None = None) -> Materializer:
        if name is not None:
            materializer = self.by_name(name)
            if not materializer.handles(value):
                raise InvalidInput(f"materializer {name!r} does not handle step output of type {type_name(value)}")
            return materializer
        self._discover()
        for materializer in self._ordered():
            if materializer.handles(value):
                return materializer
        hint = ""
        if isinstance(value, dict | list | tuple):
            problem = json_problem(value, "value", 0)
            hint = f" ({problem[1]})" if problem else ""
        raise InvalidInput(
            f"step output of type {type_name(value)} has no materializer{hint}: return a DataFrame, ndarray, "
            "scikit-learn model, Path, or JSON-able value, or register one with shipyard.pipelines.materializers.register(...)"
        )

    def names(self) -> list[str]:
        self._discover()
        return [m.name for m in self._ordered()]

    def _ordered(self) -> list[Materializer]:
        return [*self._first, *self._discovered, *self._rest]

    def _drop(self, name: str) -> None:
        for group in (self._first, self._discovered, self._rest):
            group[:] = [m for m in group if m.name != name]

    def _discover(self) -> None:
        """Load entry-point plugins once, on first use, so importing Shipyard imports no plugin."""
        with self._lock:
            if self._group is None:
                return
            group, self._group = self._group, None
            for entry_point in importlib.metadata.entry_points(group=group):
                try:
                    instance = _instantiate(entry_point.load(), f"entry point {entry_point.name!r}")
                except Exception as exc:  # a broken plugin must not take the built-ins down with it
                    self._broken[entry_point.name] = f"{type(exc).__name__}: {exc}"
                    log.warning("materializer plugin %r (%s) skipped: %s", entry_point.name, entry_point.value, exc)
                    continue
                if instance.name != entry_point.name:
                    log.warning(
                        "materializer plugin %r is named %r inside; using %r", entry_point.name, instance.name, instance.name
                    )
                self._drop(instance.name)
                self._discovered.append(instance)

    def _by_dotted_path(self, path: str) -> Materializer:
        with self._lock:
            if path in self._by_path:
                return self._by_path[path]
        module_name, _, qualname = path.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError, ValueError) as exc:
            raise InvalidInput(f"cannot import materializer {path!r}: {exc}") from exc
        instance = _instantiate(obj, repr(path))
        with self._lock:
            return self._by_path.setdefault(path, instance)


def _instantiate(obj: Any, what: str) -> Materializer:
    if isinstance(obj, type) and issubclass(obj, Materializer):
        try:
            obj = obj()
        except TypeError as exc:
            raise InvalidInput(f"materializer {what} cannot be created without arguments: {exc}") from exc
    if not isinstance(obj, Materializer):
        raise InvalidInput(f"{what} is a {type_name(obj)}: expected a Materializer subclass or instance")
    if not isinstance(getattr(obj, "name", None), str) or not obj.name:
        raise InvalidInput(f"materializer {what} has no name: set the class attribute name, e.g. name = 'polars.parquet'")
    return obj
