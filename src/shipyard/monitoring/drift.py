"""Data drift and prediction drift of current data against a reference profile.

    reference = Profile.from_frame(training_inputs)          # stored with the model version
    report = detect_drift(reference, todays_inputs)           # a DataFrame or a Profile
    report.drifted_features, report.share_drifted, report.dataset_drift

Each column gets one method (see ``methods``: Evidently's default rule unless ``methods``
names one for it) and one threshold (the method's default unless ``thresholds`` names one).
Columns that cannot be compared (missing from the current data, of another kind, or with no
values on one side) are left out of the share and listed in ``skipped`` with the reason.
Prediction drift is the same comparison on a profile of the model's outputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from shipyard.errors import InvalidInput, NotFound
from shipyard.monitoring import histograms, measures
from shipyard.monitoring.methods import Method, default_method, method_named
from shipyard.monitoring.profile import (
    DISCRETE_VALUES,
    CategoricalSummary,
    ColumnProfile,
    NumericSummary,
    Profile,
    current_profile,
)
from shipyard.monitoring.schema import ColumnKind, SchemaDiff

DRIFT_SHARE = 0.5  # Evidently's default: the data set drifts when half its columns do


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: ColumnKind
    method: str
    statistic: float
    p_value: float | None  # None for distances
    threshold: float
    drifted: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DriftReport:
    subject: str  # "inputs" or "predictions"
    features: tuple[FeatureDrift, ...]
    skipped: Mapping[str, str] = field(default_factory=dict)
    drift_share: float = DRIFT_SHARE

    @property
    def drifted_features(self) -> tuple[str, ...]:
        return tuple(result.feature for result in self.features if result.drifted)

    @property
    def share_drifted(self) -> float:
        return len(self.drifted_features) / len(self.features) if self.features else 0.0

    @property
    def dataset_drift(self) -> bool:
        return bool(self.features) and self.share_drifted >= self.drift_share

    def feature(self, name: str) -> FeatureDrift:
        for result in self.features:
            if result.feature == name:
                return result
        reason = f" (skipped: {self.skipped[name]})" if name in self.skipped else ""
        raise NotFound(f"no drift result for {name!r}{reason}; compared: {', '.join(f.feature for f in self.features)}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "features": [result.to_dict() for result in self.features],
            "skipped": dict(self.skipped),
            "drift_share": self.drift_share,
            "drifted_features": list(self.drifted_features),
            "share_drifted": self.share_drifted,
            "dataset_drift": self.dataset_drift,
        }


def detect_drift(
    reference: Profile,
    current: pd.DataFrame | pd.Series | Profile,
    *,
    columns: Sequence[str] | None = None,
    methods: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    drift_share: float = DRIFT_SHARE,
    subject: str = "inputs",
) -> DriftReport:
    """Compare every column of ``reference`` (or those in ``columns``) with ``current``.

    ``methods`` and ``thresholds`` map a column to the method or threshold it should use
    instead of the default.
    """
    if not isinstance(reference, Profile):
        raise InvalidInput(
            f"expected the reference as a Profile (Profile.from_frame or Profile.from_dict); got {type(reference).__name__}"
        )
    if isinstance(drift_share, bool) or not isinstance(drift_share, int | float) or not 0 < drift_share <= 1:
        raise InvalidInput(f"drift_share must lie in (0, 1]; got {drift_share!r}")
    selected = _selected(reference, columns)
    methods, thresholds = dict(methods or {}), dict(thresholds or {})
    _check_overrides(reference, selected, methods, thresholds)
    observed, diff = current_profile(reference, current)
    results: list[FeatureDrift] = []
    skipped: dict[str, str] = {}
    for name in selected:
        ref = reference.columns[name]
        cur = observed.columns.get(name) if observed is not None else None
        reason = _why_not_comparable(name, ref, cur, diff)
        if reason is not None:
            skipped[name] = reason
            continue
        assert cur is not None  # _why_not_comparable checked it
        results.append(_compare(ref, cur, methods.get(name), thresholds.get(name)))
    return DriftReport(subject=subject, features=tuple(results), skipped=skipped, drift_share=float(drift_share))


def prediction_drift(
    reference: Profile,
    current: pd.DataFrame | pd.Series | Profile,
    *,
    columns: Sequence[str] | None = None,
    methods: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    drift_share: float = DRIFT_SHARE,
) -> DriftReport:
    """Drift of a model's outputs: ``detect_drift`` on the profile of its predictions."""
    return detect_drift(
        reference,
        current,
        columns=columns,
        methods=methods,
        thresholds=thresholds,
        drift_share=drift_share,
        subject="predictions",
    )


def _selected(reference: Profile, columns: Sequence[str] | None) -> list[str]:
    if columns is None:
        return list(reference.columns)
    if isinstance(columns, str):
        raise InvalidInput(f"columns must be a list of column names; got the string {columns!r}")
    unknown = [name for name in columns if name not in reference.columns]
    if unknown:
        raise InvalidInput(
            f"columns {unknown} are not in the reference profile; expected some of {', '.join(reference.columns)}",
            details={"unknown": unknown},
        )
    return list(columns)


def _check_overrides(reference: Profile, selected: list[str], methods: dict[str, str], thresholds: dict[str, float]) -> None:
    """Fail before any work on an override that names no compared column or cannot be used."""
    strays = sorted(name for name in {*methods, *thresholds} if name not in selected)
    if strays:
        raise InvalidInput(
            f"overrides name columns that are not compared: {strays}; expected some of {', '.join(selected)}",
            details={"unknown": strays},
        )
    for name in {*methods, *thresholds}:
        column = reference.columns[name]
        method = method_named(methods[name], column.kind, name) if name in methods else _default(column, None)
        method.threshold(thresholds.get(name), name)


def _why_not_comparable(name: str, ref: ColumnProfile, cur: ColumnProfile | None, diff: SchemaDiff) -> str | None:
    for change in diff.changed:
        if change.column == name:
            return f"type changed: expected {change.expected}, got {change.got}"
    if cur is None:
        return "missing from the current data"
    if ref.summary is None:
        return "no values in the reference"
    if cur.summary is None:
        return "no values in the current data"
    return None


def _discrete(ref: ColumnProfile, cur: ColumnProfile | None) -> bool:
    """A numeric column with few distinct values on both sides together: compared as categories."""
    if not isinstance(ref.summary, NumericSummary) or ref.summary.values is None:
        return False
    if cur is None:
        return True  # what the reference alone says; used only to check overrides early
    if not isinstance(cur.summary, NumericSummary) or cur.summary.values is None:
        return False
    union = {value for value, _ in ref.summary.values} | {value for value, _ in cur.summary.values}
    return len(union) <= DISCRETE_VALUES


def _default(ref: ColumnProfile, cur: ColumnProfile | None) -> Method:
    return default_method(ref.kind, ref.present, discrete=_discrete(ref, cur))


def _compare(ref: ColumnProfile, cur: ColumnProfile, method_name: str | None, threshold: float | None) -> FeatureDrift:
    method = method_named(method_name, ref.kind, ref.name) if method_name is not None else _default(ref, cur)
    limit = method.threshold(threshold, ref.name)
    statistic, p_value = _measure(method.name, ref, cur)
    return FeatureDrift(
        feature=ref.name,
        kind=ref.kind,
        method=method.name,
        statistic=statistic,
        p_value=p_value,
        threshold=limit,
        drifted=method.drifted(statistic, p_value, limit),
    )


def _measure(method: str, ref: ColumnProfile, cur: ColumnProfile) -> tuple[float, float | None]:
    a, b = ref.summary, cur.summary
    if isinstance(a, NumericSummary) and isinstance(b, NumericSummary):
        if method == "ks":
            return measures.ks(a, b)
        if method == "wasserstein":
            return measures.wasserstein(a, b), None
        cells = histograms.values(a, b) if _discrete(ref, cur) else histograms.bins(a, b)
    elif isinstance(a, CategoricalSummary) and isinstance(b, CategoricalSummary):
        cells = histograms.categories(a, b)
    else:  # pragma: no cover - kinds were checked equal, and each kind has its one summary type
        raise InvalidInput(f"cannot compare {ref.name!r}: its reference and current summaries differ in kind")
    if method == "chisquare":
        return measures.chisquare(*cells)
    if method == "psi":
        return measures.psi(*cells), None
    return measures.jensenshannon(*cells), None
