"""scikit-learn models through skops, reusing ``shipyard.registry.formats``."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import PurePosixPath
from typing import Any

from shipyard.pipelines.materializers._base import Materializer
from shipyard.registry import formats


class SklearnSkops(Materializer):
    name = "sklearn.skops"
    media_type = "application/x-skops"

    def handles(self, value: Any) -> bool:
        module = type(value).__module__
        return (module == "sklearn" or module.startswith("sklearn.")) and hasattr(value, "fit")

    def dump(self, value: Any) -> bytes:
        data, _ = formats.dump_model(value, formats.SKLEARN)
        return _canonical_skops(data)

    def load(self, data: bytes) -> Any:
        return formats.load_model(data, formats.SKLEARN)

    def describe(self, value: Any) -> dict[str, Any]:
        from sklearn.exceptions import NotFittedError
        from sklearn.utils.validation import check_is_fitted

        try:
            check_is_fitted(value)
            fitted = True
        except (NotFittedError, TypeError):
            fitted = False
        facts: dict[str, Any] = {"class": type(value).__qualname__, "module": type(value).__module__, "fitted": fitted}
        if isinstance(getattr(value, "steps", None), list):
            facts["steps"] = [[str(step[0]), type(step[1]).__qualname__] for step in value.steps]
        return facts


_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def _canonical_skops(data: bytes) -> bytes:
    """Rewrite a skops zip so equal models give equal bytes.

    skops names objects and array files by ``id()`` (and some by uuid) and stamps zip
    entries with the current time. Renumber both in order of first appearance in the
    schema and write entries with a fixed time; the loader only needs ids to match.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as src:
        entries = set(src.namelist())
        schema = json.loads(src.read("schema.json"))
        ids: dict[Any, int] = {}
        files: dict[str, str] = {}

        def renumber(node: Any) -> None:
            if isinstance(node, dict):
                if "__id__" in node:  # from 1: skops skips memoising a falsy id
                    node["__id__"] = ids.setdefault(node["__id__"], len(ids) + 1)
                file = node.get("file")
                if isinstance(file, str) and file in entries:
                    node["file"] = files.setdefault(file, f"{len(files) + 1}{PurePosixPath(file).suffix}")
                for child in node.values():
                    renumber(child)
            elif isinstance(node, list):
                for child in node:
                    renumber(child)

        renumber(schema)
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
            _zip_write(dst, "schema.json", json.dumps(schema, indent=2).encode())
            for old, new in sorted(files.items(), key=lambda item: item[1]):
                _zip_write(dst, new, src.read(old))
    return out.getvalue()


def _zip_write(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)
