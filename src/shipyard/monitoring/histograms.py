"""Side-by-side counts of one column, reference against current, for the binned measures.

Each function returns two float arrays over the same cells (categories, exact values, or the
reference's bins), which PSI, Jensen-Shannon and chi-squared then compare. Cells empty on both
sides are dropped: they carry no information and chi-squared cannot divide by them.

Pooling: current categories the reference never listed share one "unseen" cell with the
reference's own "other" count (its categories beyond top_k). Pooling cells the reference has
none of leaves Jensen-Shannon unchanged (each such cell adds c/2 * log 2, linear in c) and
keeps a burst of new labels from inflating chi-squared's degrees of freedom.
"""

from __future__ import annotations

import numpy as np

from shipyard.monitoring import sketch
from shipyard.monitoring.profile import CategoricalSummary, NumericSummary

Cells = tuple[sketch.Floats, sketch.Floats]


def categories(reference: CategoricalSummary, current: CategoricalSummary) -> Cells:
    seen = dict(current.frequencies)
    ref = [count for _, count in reference.frequencies]
    cur = [seen.get(label, 0) for label, _ in reference.frequencies]
    ref.append(reference.other)
    cur.append(current.present - sum(cur))
    return _nonempty(np.asarray(ref, dtype=np.float64), np.asarray(cur, dtype=np.float64))


def values(reference: NumericSummary, current: NumericSummary) -> Cells:
    """Cells for the exact values of a discrete numeric column (both sides must carry them)."""
    # Callers check that both carry values (see drift._discrete).
    assert reference.values is not None
    assert current.values is not None
    seen = dict(current.values)
    ref = [count for _, count in reference.values]
    cur = [seen.get(value, 0) for value, _ in reference.values]
    ref.append(0)
    cur.append(current.present - sum(cur))
    return _nonempty(np.asarray(ref, dtype=np.float64), np.asarray(cur, dtype=np.float64))


def bins(reference: NumericSummary, current: NumericSummary) -> Cells:
    """Cells for the reference's bins, the outer two stretched to -inf and +inf.

    Exact where the current profile was counted in the same edges (built ``aligned_to`` the
    reference); otherwise the current counts are read from its sketch, to within its resolution.
    """
    ref = np.asarray(reference.counts, dtype=np.float64)
    ref[0] += reference.below
    ref[-1] += reference.above
    if current.edges == reference.edges:
        cur = np.asarray(current.counts, dtype=np.float64)
        cur[0] += current.below
        cur[-1] += current.above
    else:
        below, inner, above = sketch.shares_in_bins(current.curve(), np.asarray(reference.edges, dtype=np.float64))
        cur = inner * current.present
        cur[0] += below * current.present
        cur[-1] += above * current.present
    return _nonempty(ref, cur)


def outside(reference: NumericSummary, current: NumericSummary) -> float:
    """Share of current values below the reference's minimum or above its maximum."""
    if current.edges == reference.edges:
        return (current.below + current.above) / current.present
    below, _, above = sketch.shares_in_bins(current.curve(), np.asarray([reference.min, reference.max]))
    return below + above


def unseen(reference: CategoricalSummary, current: CategoricalSummary) -> float:
    """Share of current values in categories the reference does not list.

    Exact when the reference listed all its categories (``other == 0``) and the current
    profile was built aligned to it; otherwise an upper bound.
    """
    listed = {label for label, _ in reference.frequencies}
    known = sum(count for label, count in current.frequencies if label in listed)
    return (current.present - known) / current.present


def _nonempty(ref: sketch.Floats, cur: sketch.Floats) -> Cells:
    keep = (ref > 0) | (cur > 0)
    return ref[keep], cur[keep]
