"""Drift methods by name, their thresholds, and the default method for a column.

A p-value method reports drift when p < threshold; a distance reports drift when the statistic
>= threshold. The names are Evidently's, so a per-feature override reads the same in both.

The default choice follows the rule of Evidently's DataDriftPreset (evidently 0.7.x), so that
conclusions can be compared column by column:

- a reference with at most ``SMALL_REFERENCE`` (1,000) values in the column gets a test at
  p < 0.05: ``ks`` for numeric columns, ``chisquare`` for categorical ones;
- a larger reference gets a distance at >= 0.1, because at large n a test flags differences too
  small to matter: normed ``wasserstein`` for numeric columns, ``jensenshannon`` for
  categorical ones;
- a numeric column with at most ``DISCRETE_VALUES`` (5) distinct values over reference and
  current together is compared as categories.

Where Evidently differs: for two categories and a small reference it runs a pooled z-test on
proportions, which our chi-squared without Yates' correction equals (same p-value); its
chi-squared for more categories is one-sample against the reference proportions, ours is the
two-sample contingency test; and its Jensen-Shannon uses the natural log where ours uses base 2
(its 0.1 is 0.120 in base 2, so ours flags slightly smaller changes at the same threshold).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shipyard.errors import InvalidInput
from shipyard.monitoring.schema import ColumnKind

SMALL_REFERENCE = 1000


@dataclass(frozen=True)
class Method:
    name: str
    kinds: tuple[ColumnKind, ...]
    p_value: bool  # drifted when p < threshold, else when statistic >= threshold
    default_threshold: float
    maximum: float | None = None  # the largest the statistic can be, where it has one

    def threshold(self, value: float | None, column: str) -> float:
        """``value`` checked against what this method's threshold can be, or the default."""
        if value is None:
            return self.default_threshold
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidInput(f"threshold for {column!r} must be a finite number; got {value!r}")
        if self.p_value and not 0 < value < 1:
            raise InvalidInput(
                f"threshold for {column!r} ({self.name}) is a p-value and must lie in (0, 1); got {value}",
                details={"column": column, "method": self.name, "threshold": value},
            )
        if not self.p_value and not 0 < value <= (self.maximum if self.maximum is not None else math.inf):
            bound = f"(0, {self.maximum}]" if self.maximum is not None else "(0, inf)"
            raise InvalidInput(
                f"threshold for {column!r} ({self.name}) is a distance and must lie in {bound}; got {value}",
                details={"column": column, "method": self.name, "threshold": value},
            )
        return float(value)

    def drifted(self, statistic: float, p_value: float | None, threshold: float) -> bool:
        if self.p_value:
            return p_value is not None and p_value < threshold
        return statistic >= threshold


METHODS: dict[str, Method] = {
    method.name: method
    for method in (
        Method("chisquare", ("numeric", "categorical"), p_value=True, default_threshold=0.05),
        Method("jensenshannon", ("numeric", "categorical"), p_value=False, default_threshold=0.1, maximum=1.0),
        Method("ks", ("numeric",), p_value=True, default_threshold=0.05),
        Method("psi", ("numeric", "categorical"), p_value=False, default_threshold=0.1),
        Method("wasserstein", ("numeric",), p_value=False, default_threshold=0.1),
    )
}


def method_named(name: str, kind: ColumnKind, column: str) -> Method:
    method = METHODS.get(name) if isinstance(name, str) else None
    if method is None:
        raise InvalidInput(
            f"unknown drift method {name!r} for {column!r}; expected one of {', '.join(sorted(METHODS))}",
            details={"column": column, "method": name, "expected": sorted(METHODS)},
        )
    if kind not in method.kinds:
        usable = sorted(n for n, m in METHODS.items() if kind in m.kinds)
        raise InvalidInput(
            f"method {name!r} does not apply to {column!r}, a {kind} column; expected one of {', '.join(usable)}",
            details={"column": column, "method": name, "kind": kind, "expected": usable},
        )
    return method


def default_method(kind: ColumnKind, reference_values: int, *, discrete: bool) -> Method:
    """Evidently's choice for a column with ``reference_values`` non-missing reference values."""
    small = reference_values <= SMALL_REFERENCE
    if kind == "categorical" or discrete:
        return METHODS["chisquare" if small else "jensenshannon"]
    return METHODS["ks" if small else "wasserstein"]
