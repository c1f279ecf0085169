"""Materializers: how a step's output becomes one bytes blob and comes back.

The runner stores each blob in the content-addressed artifact store, and the cache
compares digests, so every ``dump`` is deterministic (equal values give equal bytes) and
no ``load`` ever unpickles. Built-ins, tried in this order:

- ``pandas.parquet``: a DataFrame as Parquet (pyarrow); the index is kept unless it is the default one.
- ``numpy.npy``: an ndarray in ``.npy`` format, without pickle, so object arrays are refused.
- ``sklearn.skops``: a scikit-learn estimator or Pipeline through skops, loaded with the
  types that ``shipyard.registry.formats`` trusts.
- ``path.tar``: a ``pathlib.Path`` to a file or folder, as a normalised ``.tar.gz``.
- ``json``: dicts, lists, tuples, strings, numbers, booleans and None (tuples come back as lists).

More types come from plugins: ``register(MyMaterializer)``, an entry point in the group
``shipyard.materializers``, or a ``"package.module:ClassName"`` passed as the name.
"""

from __future__ import annotations

import gzip
import tarfile
import zipfile
from typing import Any

from shipyard.errors import InvalidInput, ShipyardError
from shipyard.pipelines.materializers._base import Materializer, type_name
from shipyard.pipelines.materializers._json import Json
from shipyard.pipelines.materializers._models import SklearnSkops
from shipyard.pipelines.materializers._paths import PathTar
from shipyard.pipelines.materializers._registry import ENTRY_POINT_GROUP, M, Registry
from shipyard.pipelines.materializers._tabular import NumpyNpy, PandasParquet

__all__ = [
    "ENTRY_POINT_GROUP",
    "Json",
    "Materializer",
    "NumpyNpy",
    "PandasParquet",
    "PathTar",
    "Registry",
    "SklearnSkops",
    "by_name",
    "dump",
    "for_value",
    "load",
    "register",
]


_registry = Registry()


def register(materializer: M, *, first: bool = True) -> M:
    """Add a materializer; by default it is tried before the built-ins."""
    return _registry.register(materializer, first=first)


def by_name(name: str) -> Materializer:
    """The materializer called ``name``, or the class at ``"package.module:ClassName"``."""
    return _registry.by_name(name)


def for_value(value: Any, name: str | None = None) -> Materializer:
    """The materializer ``name`` if given, else the first that handles ``value``."""
    return _registry.for_value(value, name)


def dump(value: Any, name: str | None = None) -> tuple[bytes, str, dict[str, Any]]:
    """``(bytes, materializer name, description)``; the name is what ``load`` needs later."""
    materializer = for_value(value, name)
    try:
        data = materializer.dump(value)
    except ShipyardError:
        raise
    except (ValueError, TypeError) as exc:  # e.g. pyarrow refusing a column of mixed objects
        raise InvalidInput(f"cannot store step output of type {type_name(value)} as {materializer.name}: {exc}") from exc
    if not isinstance(data, bytes):
        raise InvalidInput(f"materializer {materializer.name!r} returned {type_name(data)}: expected bytes")
    # A dotted path is kept as the name, so a process that never registered the class can load it.
    stored_name = name if name is not None and ":" in name else materializer.name
    return data, stored_name, materializer.describe(value)


def load(data: bytes, name: str) -> Any:
    """The value that ``dump`` stored under ``name``."""
    materializer = by_name(name)
    try:
        return materializer.load(data)
    except ShipyardError:
        raise
    except (ValueError, TypeError, EOFError, tarfile.TarError, zipfile.BadZipFile, gzip.BadGzipFile, KeyError) as exc:
        raise InvalidInput(f"the bytes are not a valid {name} artifact: {type(exc).__name__}: {exc}") from exc
