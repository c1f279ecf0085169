"""The quantile sketch: a numeric column's distribution kept as evenly spaced quantiles.

A sketch is the list of values at probabilities ``linspace(0, 1, size)``; its first value is the
minimum and its last the maximum. Read as a curve through the points (value_k, p_k), it is a
piecewise-linear CDF that stays within one step (1 / (size - 1)) of the data's empirical CDF for
continuous data: 1,001 quantiles give 0.1 %. That is what lets monitoring compare against a
reference without keeping the reference rows.

Every function here takes sorted or sketched float64 arrays and is vectorised: no Python loop
runs per row.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]


def probabilities(size: int) -> Floats:
    return np.linspace(0.0, 1.0, size)


def quantiles_of_sorted(values: Floats, probs: Floats) -> Floats:
    """Quantiles of sorted, non-empty data by linear interpolation (numpy's default method)."""
    position = probs * (len(values) - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, len(values) - 1)
    fraction = position - low
    result = values[low] + fraction * (values[high] - values[low])
    # Rounding in the interpolation can put a quantile one ulp below its left neighbour; a
    # sketch must be non-decreasing for the CDF below to be one.
    return np.maximum.accumulate(result)


def cdf(sketch: Floats, x: Floats, *, side: Literal["left", "right"] = "right") -> Floats:
    """The sketch's CDF at ``x``, linear between sketch points.

    Where values repeat the curve jumps; ``side="right"`` gives the value after the jump (the
    CDF proper, P[X <= x]) and ``side="left"`` the value before it (P[X < x]).
    """
    probs = probabilities(len(sketch))
    upper = np.searchsorted(sketch, x, side=side)
    inside = (upper > 0) & (upper < len(sketch))
    high = np.clip(upper, 1, len(sketch) - 1)
    low = high - 1
    width = sketch[high] - sketch[low]
    # Where inside holds, sketch[low] <= x <= sketch[high] with width > 0; elsewhere it is unused.
    safe = np.where(width > 0, width, 1.0)
    interpolated = probs[low] + (x - sketch[low]) / safe * (probs[high] - probs[low])
    return np.where(inside, interpolated, np.where(upper == 0, 0.0, 1.0))


def regrid(sketch: Floats, size: int) -> Floats:
    """The same curve read at ``size`` evenly spaced probabilities (for sketches of different sizes)."""
    if len(sketch) == size:
        return sketch
    return np.interp(probabilities(size), probabilities(len(sketch)), sketch)


def counts_in_bins(values: Floats, edges: Floats) -> tuple[int, Ints, int]:
    """Exact counts of sorted values below ``edges[0]``, in each bin, and above ``edges[-1]``.

    Bins are half-open ``[e_i, e_i+1)`` except the last, which is closed so that the maximum of
    the data the edges came from falls inside. Edges may repeat once (a constant column has the
    single bin ``[v, v]``).
    """
    left = np.searchsorted(values, edges, side="left")
    at_or_below_last = int(np.searchsorted(values, edges[-1], side="right"))
    bounds = np.append(left[:-1], at_or_below_last)
    return int(left[0]), np.diff(bounds).astype(np.int64), len(values) - at_or_below_last


def shares_in_bins(sketch: Floats, edges: Floats) -> tuple[float, Floats, float]:
    """Estimated shares below, in and above the bins of ``edges`` (as in ``counts_in_bins``), from a sketch."""
    before = cdf(sketch, edges, side="left")
    through_last = float(cdf(sketch, edges[-1:], side="right")[0])
    bounds = np.append(before[:-1], through_last)
    return float(before[0]), np.maximum(np.diff(bounds), 0.0), 1.0 - through_last
