"""Drift measures: each compares the reference and the current distribution of one column.

The statistics are SciPy's where SciPy has one; what is ours is how the distributions reach
them (sketches and binned counts instead of raw rows):

- ``ks``: the two-sample Kolmogorov-Smirnov statistic, sup |F_ref - F_cur|, over the two
  sketches' CDFs (within about two sketch steps of ``scipy.stats.ks_2samp`` on the raw data).
  The p-value is that of ``ks_2samp(method="asymp")``: ``scipy.stats.kstwo`` at the effective
  size n*m/(n+m), and beyond ``KS_EXACT_LIMIT`` its limit ``kstwobign`` (the Kolmogorov
  distribution), because ``kstwo`` takes seconds there and the two agree to a fraction of a
  per cent.
- ``wasserstein``: W1, the area between the two quantile functions, divided by the reference's
  population std (floored at ``NORM_FLOOR`` so a constant reference gives a finite number):
  ``scipy.stats.wasserstein_distance / np.std(reference)``, read from the sketches.
- ``psi``: population stability index, sum (c - r) * ln(c / r) over proportions per cell. An
  empty cell would make the log infinite, so proportions below ``PSI_EPSILON`` (0.01 %) are
  raised to it on both sides first.
- ``jensenshannon``: ``scipy.spatial.distance.jensenshannon`` in base 2, so it lies in [0, 1].
- ``chisquare``: ``scipy.stats.chi2_contingency`` on the 2 x k table of counts, without Yates'
  correction: for two cells that is exactly the pooled two-proportion z-test.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats
from scipy.spatial import distance

from shipyard.monitoring import sketch
from shipyard.monitoring.profile import NumericSummary

PSI_EPSILON = 1e-4
NORM_FLOOR = 1e-3
KS_EXACT_LIMIT = 10_000


def ks(reference: NumericSummary, current: NumericSummary) -> tuple[float, float]:
    """(statistic, p-value) of the two-sample Kolmogorov-Smirnov test, from the sketches."""
    ref, cur = reference.curve(), current.curve()
    # Both CDFs are linear between their sketch points, so the largest gap is at one of them.
    points = np.union1d(ref, cur)
    statistic = float(np.max(np.abs(sketch.cdf(ref, points) - sketch.cdf(cur, points))))
    n, m = reference.present, current.present
    effective = n * m / (n + m)
    if effective <= KS_EXACT_LIMIT:
        p_value = float(stats.kstwo.sf(statistic, round(effective)))
    else:
        p_value = float(stats.kstwobign.sf(statistic * math.sqrt(effective)))
    return statistic, min(max(p_value, 0.0), 1.0)


def wasserstein(reference: NumericSummary, current: NumericSummary) -> float:
    """W1 between the two sketches' quantile functions, over the reference's std."""
    size = max(len(reference.quantiles), len(current.quantiles))
    gap = np.abs(sketch.regrid(reference.curve(), size) - sketch.regrid(current.curve(), size))
    # Trapezoids over evenly spaced probabilities: the mean of neighbouring gaps, step 1 / (size - 1).
    area = float((gap[1:] + gap[:-1]).sum()) / (2 * (size - 1))
    return area / max(reference.std, NORM_FLOOR)


def psi(reference: sketch.Floats, current: sketch.Floats) -> float:
    ref = np.maximum(reference / reference.sum(), PSI_EPSILON)
    cur = np.maximum(current / current.sum(), PSI_EPSILON)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def jensenshannon(reference: sketch.Floats, current: sketch.Floats) -> float:
    return float(distance.jensenshannon(reference / reference.sum(), current / current.sum(), base=2))


def chisquare(reference: sketch.Floats, current: sketch.Floats) -> tuple[float, float]:
    """(statistic, p-value) of chi-squared on the contingency table; one cell gives (0, 1)."""
    if len(reference) < 2:
        return 0.0, 1.0  # one category on both sides: nothing to tell apart
    result = stats.chi2_contingency(np.vstack([reference, current]), correction=False)
    return float(result.statistic), float(result.pvalue)
