"""Data quality of current data against a reference profile.

Four checks, each per column where it applies:

- schema: columns missing from the current data, extra columns, and kind changes;
- ``missing_rate``: fails when the share of missing values rose by more than the threshold
  (absolute, in rate points: 0.05 is five points);
- ``out_of_range``: numeric; fails when the share of current values outside the reference's
  [min, max] exceeds the threshold;
- ``unseen_categories``: categorical; fails when the share of current values in categories the
  reference does not list exceeds the threshold.

Give a DataFrame for exact shares; a current Profile built on its own gives them read from
its sketch and top categories (see ``histograms``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import pandas as pd

from shipyard.errors import InvalidInput
from shipyard.monitoring import histograms
from shipyard.monitoring.profile import CategoricalSummary, NumericSummary, Profile, current_profile
from shipyard.monitoring.schema import SchemaDiff

Check = Literal["missing_rate", "out_of_range", "unseen_categories"]


@dataclass(frozen=True)
class QualityThresholds:
    missing_rate_increase: float = 0.05
    out_of_range_share: float = 0.05
    unseen_share: float = 0.05

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or not 0 <= value < 1:
                raise InvalidInput(f"{item.name} is a share and must lie in [0, 1); got {value!r}")


@dataclass(frozen=True)
class QualityCheck:
    feature: str
    check: Check
    reference: float  # the reference's value (0 for shares the reference has by definition none of)
    current: float
    threshold: float
    failed: bool


@dataclass(frozen=True)
class QualityReport:
    schema: SchemaDiff
    checks: tuple[QualityCheck, ...]

    @property
    def failures(self) -> tuple[QualityCheck, ...]:
        return tuple(check for check in self.checks if check.failed)

    @property
    def ok(self) -> bool:
        return self.schema.ok and not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "schema": self.schema.to_dict(), "checks": [asdict(check) for check in self.checks]}


def check_quality(
    reference: Profile,
    current: pd.DataFrame | pd.Series | Profile,
    *,
    thresholds: QualityThresholds | None = None,
) -> QualityReport:
    if not isinstance(reference, Profile):
        raise InvalidInput(
            f"expected the reference as a Profile (Profile.from_frame or Profile.from_dict); got {type(reference).__name__}"
        )
    limits = thresholds or QualityThresholds()
    observed, diff = current_profile(reference, current)
    changed = {change.column for change in diff.changed}
    checks: list[QualityCheck] = []
    for name, ref in reference.columns.items():
        cur = observed.columns.get(name) if observed is not None else None
        if cur is None or name in changed:
            continue  # the schema part of the report says why
        increase = cur.missing_rate - ref.missing_rate
        checks.append(
            QualityCheck(
                name,
                "missing_rate",
                ref.missing_rate,
                cur.missing_rate,
                limits.missing_rate_increase,
                failed=increase > limits.missing_rate_increase,
            )
        )
        a, b = ref.summary, cur.summary
        if isinstance(a, NumericSummary) and isinstance(b, NumericSummary):
            share = histograms.outside(a, b)
            checks.append(
                QualityCheck(
                    name, "out_of_range", 0.0, share, limits.out_of_range_share, failed=share > limits.out_of_range_share
                )
            )
        elif isinstance(a, CategoricalSummary) and isinstance(b, CategoricalSummary):
            share = histograms.unseen(a, b)
            checks.append(
                QualityCheck(name, "unseen_categories", 0.0, share, limits.unseen_share, failed=share > limits.unseen_share)
            )
    return QualityReport(schema=diff, checks=tuple(checks))
