"""A compact reference profile of a data frame, so monitoring never needs the raw training data.

A ``Profile`` is what gets stored next to a model version (one for its inputs, one for its
outputs) and what every drift and quality check compares new data against. It is plain data:
``to_dict()`` gives JSON-ready values and ``from_dict()`` reads them back to an equal profile.

Per column it keeps the kind (see ``schema``), the row count and the missing count, and:

- numeric: min, max, mean, population std (ddof=0), a quantile sketch (1,001 quantiles by
  default, see ``sketch``), counts in bins cut at the reference's own deciles (for PSI and
  binned tests), and, for columns with at most ``DISCRETE_VALUES`` distinct values, the exact
  count of each value;
- categorical: the counts of the ``top_k`` most frequent categories, the count of all others,
  and the number of distinct categories. Categories are kept as strings (``str(value)``) so a
  profile survives JSON; a column holding both ``1`` and ``"1"`` counts them as one.

Missing means NaN, None, pandas' NA, and for numeric columns also +/-inf: an infinite value has
no place in a quantile sketch, and Evidently drops it the same way before comparing.

A profile of *current* data can be built ``aligned_to`` a reference: numeric columns are then
counted in the reference's bins (with counts below its minimum and above its maximum) and every
category the reference lists is counted, so comparisons against that reference are exact rather
than read from the current sketch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from shipyard.errors import InvalidInput
from shipyard.monitoring import sketch
from shipyard.monitoring.schema import KINDS, ColumnKind, SchemaDiff, diff_kinds, frame_kinds, kind_of

SCHEMA_VERSION = 1
QUANTILES = 1001
BINS = 10
TOP_K = 100
# Numeric columns with this few distinct values (reference and current together) are compared
# as categories, as Evidently does: a sketch or a Wasserstein distance says little about a flag.
DISCRETE_VALUES = 5


@dataclass(frozen=True)
class NumericSummary:
    min: float
    max: float
    mean: float
    std: float
    quantiles: tuple[float, ...]
    edges: tuple[float, ...]
    counts: tuple[int, ...]
    below: int = 0
    above: int = 0
    distinct: int = 0
    values: tuple[tuple[float, int], ...] | None = None

    @property
    def present(self) -> int:
        return self.below + sum(self.counts) + self.above

    def curve(self) -> sketch.Floats:
        """The quantile sketch as an array, for the functions of ``sketch``."""
        return np.asarray(self.quantiles, dtype=np.float64)


@dataclass(frozen=True)
class CategoricalSummary:
    frequencies: tuple[tuple[str, int], ...]
    other: int = 0
    distinct: int = 0

    @property
    def present(self) -> int:
        return sum(count for _, count in self.frequencies) + self.other


Summary = NumericSummary | CategoricalSummary


@dataclass(frozen=True)
class ColumnProfile:
    name: str
    kind: ColumnKind
    count: int
    missing: int
    summary: Summary | None  # None when every value is missing

    @property
    def present(self) -> int:
        return self.count - self.missing

    @property
    def missing_rate(self) -> float:
        return self.missing / self.count if self.count else 0.0


@dataclass(frozen=True)
class Profile:
    columns: Mapping[str, ColumnProfile]
    rows: int
    top_k: int = TOP_K
    schema_version: int = SCHEMA_VERSION
    _kinds: dict[str, ColumnKind] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_kinds", {name: column.kind for name, column in self.columns.items()})

    @property
    def schema(self) -> dict[str, ColumnKind]:
        return dict(self._kinds)

    def check_schema(self, data: pd.DataFrame | Profile) -> SchemaDiff:
        """Columns missing from ``data``, extra in it, or of another kind than here."""
        got: dict[str, str] = dict(data.schema) if isinstance(data, Profile) else frame_kinds(_as_frame(data))
        return diff_kinds(self._kinds, got)

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame | pd.Series,
        *,
        aligned_to: Profile | None = None,
        top_k: int = TOP_K,
        bins: int = BINS,
        quantiles: int = QUANTILES,
    ) -> Profile:
        """Profile every column of ``frame`` (a Series is profiled as a one-column frame)."""
        frame = _as_frame(frame)
        _check_positive(top_k=top_k, bins=bins)
        if quantiles < 2:
            raise InvalidInput(f"quantiles must be at least 2 (the minimum and the maximum); got {quantiles}")
        if frame.shape[0] == 0 or frame.shape[1] == 0:
            raise InvalidInput(
                f"expected a data frame with at least one row and one column; got {frame.shape[0]} rows "
                f"and {frame.shape[1]} columns",
                details={"rows": frame.shape[0], "columns": frame.shape[1]},
            )
        columns: dict[str, ColumnProfile] = {}
        for name in frame.columns:
            series = frame[name]
            kind = kind_of(series, name)
            like = aligned_to.columns.get(name) if aligned_to is not None else None
            if like is not None and like.kind != kind:
                like = None  # a type change: profiled on its own, and reported by the checks
            if kind == "numeric":
                columns[name] = _numeric_column(name, series, like, bins=bins, quantiles=quantiles)
            else:
                columns[name] = _categorical_column(name, series, like, top_k=top_k)
        return cls(columns=columns, rows=int(frame.shape[0]), top_k=top_k)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "rows": self.rows,
            "top_k": self.top_k,
            "columns": [_column_to_dict(column) for column in self.columns.values()],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Profile:
        if not isinstance(data, Mapping):
            raise InvalidInput(f"expected a profile as a mapping (Profile.to_dict()); got {type(data).__name__}")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise InvalidInput(
                f"profile schema_version {version!r} is not supported; expected {SCHEMA_VERSION}. "
                "Rebuild the profile with Profile.from_frame on this version of Shipyard.",
                details={"schema_version": version, "supported": [SCHEMA_VERSION]},
            )
        try:
            columns = [_column_from_dict(item) for item in data["columns"]]
            return cls(
                columns={column.name: column for column in columns},
                rows=int(data["rows"]),
                top_k=int(data["top_k"]),
                schema_version=SCHEMA_VERSION,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"malformed profile: {exc!r}; expected the shape that Profile.to_dict() writes") from exc


def current_profile(reference: Profile, data: pd.DataFrame | pd.Series | Profile) -> tuple[Profile | None, SchemaDiff]:
    """The current side of a comparison, and how its schema differs from the reference's.

    A frame is profiled aligned to the reference, over the columns both have with the same kind
    (the others are in the diff). None where no column can be compared.
    """
    if isinstance(data, Profile):
        return data, reference.check_schema(data)
    frame = _as_frame(data)
    if frame.shape[0] == 0:
        raise InvalidInput("expected current data with at least one row; got an empty frame", details={"rows": 0})
    diff = reference.check_schema(frame)
    changed = {change.column for change in diff.changed}
    comparable = [name for name in frame.columns if name in reference.columns and name not in changed]
    if not comparable:
        return None, diff
    return Profile.from_frame(frame[comparable], aligned_to=reference, top_k=reference.top_k), diff


# -- building --------------------------------------------------------------------------------


def _as_frame(data: pd.DataFrame | pd.Series) -> pd.DataFrame:
    if isinstance(data, pd.Series):
        return data.to_frame(name=str(data.name) if data.name is not None else "prediction")
    if not isinstance(data, pd.DataFrame):
        raise InvalidInput(f"expected a pandas DataFrame or Series; got {type(data).__name__}")
    names = list(data.columns)
    odd = [name for name in names if not isinstance(name, str)]
    if odd:
        raise InvalidInput(f"column names must be strings; got {odd[:5]!r}. Rename them, e.g. frame.columns.astype(str).")
    if len(set(names)) != len(names):
        dupes = sorted({name for name in names if names.count(name) > 1})
        raise InvalidInput(f"column names must be unique; got {dupes} more than once")
    return data


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInput(f"{name} must be a positive integer; got {value!r}")


def _finite_sorted(series: pd.Series) -> sketch.Floats:
    """The column's finite values, sorted; NaN, NA and +/-inf left out."""
    values = np.sort(series.to_numpy(dtype=np.float64, na_value=np.nan))
    # np.sort puts -inf first and +inf then NaN last, so the finite values are one slice: no mask copy.
    start = int(np.searchsorted(values, -np.inf, side="right"))
    stop = int(np.searchsorted(values, np.inf, side="left"))
    return values[start:stop]


def _numeric_column(name: str, series: pd.Series, like: ColumnProfile | None, *, bins: int, quantiles: int) -> ColumnProfile:
    values = _finite_sorted(series)
    count = len(series)
    if len(values) == 0:
        return ColumnProfile(name=name, kind="numeric", count=count, missing=count, summary=None)
    mean = float(values.mean())
    deviations = values - mean
    std = math.sqrt(float(np.dot(deviations, deviations)) / len(values))
    if like is not None and isinstance(like.summary, NumericSummary):
        edges = np.asarray(like.summary.edges, dtype=np.float64)
    else:
        edges = np.unique(sketch.quantiles_of_sorted(values, sketch.probabilities(bins + 1)))
        if len(edges) == 1:
            edges = np.repeat(edges, 2)  # a constant column: the one bin [v, v]
    below, counts, above = sketch.counts_in_bins(values, edges)
    changes = values[1:] != values[:-1]
    distinct = 1 + int(np.count_nonzero(changes))
    exact = None
    if distinct <= DISCRETE_VALUES:  # indices of each run only where there are few: a million otherwise
        starts = np.flatnonzero(np.r_[True, changes])
        tallies = np.diff(np.append(starts, len(values)))
        exact = tuple((float(v), int(n)) for v, n in zip(values[starts].tolist(), tallies.tolist(), strict=True))
    summary = NumericSummary(
        min=float(values[0]),
        max=float(values[-1]),
        mean=mean,
        std=std,
        quantiles=tuple(sketch.quantiles_of_sorted(values, sketch.probabilities(quantiles)).tolist()),
        edges=tuple(edges.tolist()),
        counts=tuple(counts.tolist()),
        below=below,
        above=above,
        distinct=distinct,
        values=exact,
    )
    return ColumnProfile(name=name, kind="numeric", count=count, missing=count - len(values), summary=summary)


def _categorical_column(name: str, series: pd.Series, like: ColumnProfile | None, *, top_k: int) -> ColumnProfile:
    count = len(series)
    tally = series.value_counts(dropna=True, sort=False)
    tally = tally[tally.to_numpy() > 0]  # a category dtype lists its unused categories with 0
    labels = tally.index.astype(str)
    if not labels.is_unique:  # e.g. 1 and "1" in an object column: one category once made strings
        tally = pd.Series(tally.to_numpy(), index=labels).groupby(level=0, sort=False).sum()
    else:
        tally = pd.Series(tally.to_numpy(), index=labels)
    present = int(tally.sum())
    if present == 0:
        return ColumnProfile(name=name, kind="categorical", count=count, missing=count, summary=None)
    keep = _top(tally, top_k)
    if like is not None and isinstance(like.summary, CategoricalSummary):
        listed = [label for label, _ in like.summary.frequencies]
        keep = keep.union(tally.index.intersection(pd.Index(listed)), sort=False)
    kept = tally.loc[keep]
    # Most frequent first, ties by label, so the same data always gives an equal profile.
    order = np.lexsort((kept.index.to_numpy(dtype=str), -kept.to_numpy()))
    frequencies = tuple(
        (str(label), int(n)) for label, n in zip(kept.index[order].tolist(), kept.to_numpy()[order].tolist(), strict=True)
    )
    summary = CategoricalSummary(frequencies=frequencies, other=present - sum(n for _, n in frequencies), distinct=len(tally))
    return ColumnProfile(name=name, kind="categorical", count=count, missing=count - present, summary=summary)


def _top(tally: pd.Series, k: int) -> pd.Index:
    """Labels of the k largest counts, ties at the cut broken by label."""
    if len(tally) <= k:
        return tally.index
    counts = tally.to_numpy()
    cut = np.partition(counts, len(counts) - k)[len(counts) - k]
    candidates = tally[counts >= cut]  # usually k, more only where counts tie at the cut
    order = np.lexsort((candidates.index.to_numpy(dtype=str), -candidates.to_numpy()))
    return candidates.index[order[:k]]


# -- (de)serialising -------------------------------------------------------------------------


def _column_to_dict(column: ColumnProfile) -> dict[str, Any]:
    out: dict[str, Any] = {"name": column.name, "kind": column.kind, "count": column.count, "missing": column.missing}
    summary = column.summary
    if isinstance(summary, NumericSummary):
        out["numeric"] = {
            "min": summary.min,
            "max": summary.max,
            "mean": summary.mean,
            "std": summary.std,
            "quantiles": list(summary.quantiles),
            "edges": list(summary.edges),
            "counts": list(summary.counts),
            "below": summary.below,
            "above": summary.above,
            "distinct": summary.distinct,
            "values": None if summary.values is None else [[v, n] for v, n in summary.values],
        }
    elif isinstance(summary, CategoricalSummary):
        out["categorical"] = {
            "frequencies": [[label, n] for label, n in summary.frequencies],
            "other": summary.other,
            "distinct": summary.distinct,
        }
    return out


def _column_from_dict(item: Mapping[str, Any]) -> ColumnProfile:
    kind = item["kind"]
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is not one of {KINDS}")
    summary: Summary | None = None
    if item.get("numeric") is not None:
        n = item["numeric"]
        values = n.get("values")
        summary = NumericSummary(
            min=float(n["min"]),
            max=float(n["max"]),
            mean=float(n["mean"]),
            std=float(n["std"]),
            quantiles=tuple(float(q) for q in n["quantiles"]),
            edges=tuple(float(e) for e in n["edges"]),
            counts=tuple(int(c) for c in n["counts"]),
            below=int(n["below"]),
            above=int(n["above"]),
            distinct=int(n["distinct"]),
            values=None if values is None else tuple((float(v), int(c)) for v, c in values),
        )
    elif item.get("categorical") is not None:
        c = item["categorical"]
        summary = CategoricalSummary(
            frequencies=tuple((str(label), int(n)) for label, n in c["frequencies"]),
            other=int(c["other"]),
            distinct=int(c["distinct"]),
        )
    return ColumnProfile(
        name=str(item["name"]), kind=kind, count=int(item["count"]), missing=int(item["missing"]), summary=summary
    )
