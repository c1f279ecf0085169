"""The quantile sketch against numpy on raw data."""

from __future__ import annotations

import numpy as np
import pytest

from shipyard.monitoring import sketch


@pytest.mark.parametrize("size", [1, 2, 7, 1000, 54_321])
def test_quantiles_match_numpy(size: int) -> None:
    values = np.sort(np.random.default_rng(size).standard_normal(size))
    probs = sketch.probabilities(1001)
    assert np.allclose(sketch.quantiles_of_sorted(values, probs), np.quantile(values, probs), rtol=0, atol=1e-12)


def test_quantiles_never_decrease() -> None:
    values = np.sort(np.random.default_rng(3).lognormal(0, 3, 10_000))
    assert np.all(np.diff(sketch.quantiles_of_sorted(values, sketch.probabilities(1001))) >= 0)


def test_cdf_is_within_one_step_of_the_empirical_cdf() -> None:
    values = np.sort(np.random.default_rng(4).gamma(2.0, 1.5, 100_000))
    curve = sketch.quantiles_of_sorted(values, sketch.probabilities(1001))
    points = np.linspace(values[0] - 1, values[-1] + 1, 5_000)
    empirical = np.searchsorted(values, points, side="right") / len(values)
    assert np.max(np.abs(sketch.cdf(curve, points) - empirical)) <= 1 / 1000 + 1 / len(values)


def test_cdf_takes_both_sides_of_a_jump() -> None:
    # 0 for 40 % of the data, then 1 for the rest: the sketch repeats both values.
    values = np.sort(np.r_[np.zeros(400), np.ones(600)])
    curve = sketch.quantiles_of_sorted(values, sketch.probabilities(101))
    at = np.array([-0.5, 0.0, 0.5, 1.0, 1.5])
    right = sketch.cdf(curve, at)
    left = sketch.cdf(curve, at, side="left")
    assert right[0] == 0.0
    step = 0.01 + 1e-12  # one sketch step: 101 quantiles
    assert abs(right[1] - 0.4) <= step
    assert right[3] == right[4] == 1.0
    assert left[1] == 0.0
    assert abs(left[3] - 0.4) <= step


def test_counts_in_bins_match_numpy_histogram() -> None:
    values = np.sort(np.random.default_rng(5).standard_normal(20_000))
    edges = np.array([-1.0, -0.2, 0.0, 0.7, 1.5])
    below, counts, above = sketch.counts_in_bins(values, edges)
    expected, _ = np.histogram(values, bins=edges)  # numpy closes its last bin too
    assert counts.tolist() == expected.tolist()
    assert below == int(np.sum(values < -1.0))
    assert above == int(np.sum(values > 1.5))


def test_counts_in_a_constant_bin() -> None:
    values = np.array([1.0, 2.0, 2.0, 2.0, 3.0])
    below, counts, above = sketch.counts_in_bins(values, np.array([2.0, 2.0]))
    assert (below, counts.tolist(), above) == (1, [3], 1)


def test_shares_from_a_sketch_approximate_exact_counts() -> None:
    values = np.sort(np.random.default_rng(6).exponential(1.0, 50_000))
    curve = sketch.quantiles_of_sorted(values, sketch.probabilities(1001))
    edges = np.array([0.1, 0.5, 1.0, 2.0, 4.0])
    below, counts, above = sketch.counts_in_bins(values, edges)
    est_below, est_inner, est_above = sketch.shares_in_bins(curve, edges)
    assert est_below == pytest.approx(below / len(values), abs=2e-3)
    assert np.allclose(est_inner, counts / len(values), atol=2e-3)
    assert est_above == pytest.approx(above / len(values), abs=2e-3)


def test_regrid_keeps_the_curve() -> None:
    curve = sketch.quantiles_of_sorted(np.sort(np.random.default_rng(7).uniform(0, 10, 5_000)), sketch.probabilities(101))
    finer = sketch.regrid(curve, 1001)
    assert len(finer) == 1001
    assert finer[0] == curve[0]
    assert finer[-1] == curve[-1]
    assert np.allclose(finer[::10], curve)
