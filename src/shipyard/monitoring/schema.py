"""Column kinds, and the schema of a profile checked against new data.

Monitoring compares two kinds of column, decided by dtype alone so that the same column gets
the same kind in training and in production whatever values a batch happens to hold:

- ``numeric``: integers and floats (numpy or pandas' nullable ones);
- ``categorical``: bool, object, string and category columns.

Anything else (datetimes, timedeltas, complex, intervals) has no kind: a profile refuses it
and a schema check reports it as a type change, naming the dtype.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import pandas as pd
from pandas.api import types

from shipyard.errors import InvalidInput

ColumnKind = Literal["numeric", "categorical"]
KINDS: tuple[ColumnKind, ...] = ("numeric", "categorical")


def infer_kind(series: pd.Series) -> ColumnKind | None:
    """The monitoring kind of a column from its dtype, or None where monitoring has none."""
    dtype = series.dtype
    # bool first: numpy counts it as a number, but a flag's values are categories.
    if types.is_bool_dtype(dtype):
        return "categorical"
    if isinstance(dtype, pd.CategoricalDtype) or types.is_object_dtype(dtype) or types.is_string_dtype(dtype):
        return "categorical"
    if types.is_numeric_dtype(dtype) and not types.is_complex_dtype(dtype):
        return "numeric"
    return None


def kind_of(series: pd.Series, column: str) -> ColumnKind:
    """``infer_kind``, raising where the column has no kind."""
    kind = infer_kind(series)
    if kind is None:
        raise InvalidInput(
            f"column {column!r} has dtype {series.dtype}; expected a numeric, bool, string or category column. "
            "Convert it (a datetime to epoch seconds, say) or leave it out of the frame.",
            details={"column": column, "dtype": str(series.dtype)},
        )
    return kind


@dataclass(frozen=True)
class TypeChange:
    column: str
    expected: ColumnKind
    got: str  # a kind, or the dtype where the new column has no kind


@dataclass(frozen=True)
class SchemaDiff:
    """How the columns of new data differ from those of the reference."""

    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    changed: tuple[TypeChange, ...] = ()

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.changed)

    def to_dict(self) -> dict[str, object]:
        return {
            "missing": list(self.missing),
            "extra": list(self.extra),
            "changed": [{"column": c.column, "expected": c.expected, "got": c.got} for c in self.changed],
        }


def diff_kinds(expected: Mapping[str, ColumnKind], got: Mapping[str, str]) -> SchemaDiff:
    """Compare column -> kind maps; ``got`` may hold a dtype name where a column has no kind."""
    return SchemaDiff(
        missing=tuple(name for name in expected if name not in got),
        extra=tuple(name for name in got if name not in expected),
        changed=tuple(TypeChange(name, kind, got[name]) for name, kind in expected.items() if name in got and got[name] != kind),
    )


def frame_kinds(frame: pd.DataFrame) -> dict[str, str]:
    """column -> kind for every column of a frame, the dtype's name where it has no kind."""
    return {str(name): infer_kind(frame[name]) or str(frame[name].dtype) for name in frame.columns}
