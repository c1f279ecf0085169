"""A/B analysis on cases with a known answer: formulas checked by hand and against SciPy on the same numbers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from shipyard.errors import InvalidInput
from shipyard.monitoring import ab


def test_two_proportions_match_the_hand_computed_z_test_and_wald_interval() -> None:
    # 45 of 50 right for A, 30 of 50 for B.
    found = ab.two_proportions(45, 50, 30, 50, alpha=0.05)
    pooled = 75 / 100
    z = (0.6 - 0.9) / math.sqrt(pooled * (1 - pooled) * (1 / 50 + 1 / 50))
    assert z == pytest.approx(-3.4641016, rel=1e-6)
    assert found.p_value == pytest.approx(2 * (1 - stats.norm.cdf(abs(z))))
    se = math.sqrt(0.9 * 0.1 / 50 + 0.6 * 0.4 / 50)
    assert (found.a, found.b, found.difference) == pytest.approx((0.9, 0.6, -0.3))
    assert (found.ci_low, found.ci_high) == pytest.approx((-0.3 - 1.959964 * se, -0.3 + 1.959964 * se), rel=1e-6)


def test_the_z_test_is_the_chi_squared_test_without_correction() -> None:
    found = ab.two_proportions(120, 200, 140, 210)
    table = np.array([[120, 80], [140, 70]])
    chi2 = stats.chi2_contingency(table, correction=False)
    assert found.p_value == pytest.approx(chi2.pvalue)


def test_equal_and_degenerate_proportions_show_no_difference() -> None:
    same = ab.two_proportions(40, 50, 40, 50)
    assert (same.difference, same.p_value) == (0.0, 1.0)
    perfect = ab.two_proportions(10, 10, 20, 20)
    assert (perfect.p_value, perfect.ci_low, perfect.ci_high) == (1.0, 0.0, 0.0)


def test_welch_matches_scipy_p_value_and_confidence_interval() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(10, 2, 40), rng.normal(11, 4, 60)
    found = ab.welch(a, b, alpha=0.1)
    reference = stats.ttest_ind(b, a, equal_var=False)
    interval = reference.confidence_interval(confidence_level=0.9)
    assert found.p_value == pytest.approx(reference.pvalue)
    assert (found.ci_low, found.ci_high) == pytest.approx((interval.low, interval.high))
    assert found.difference == pytest.approx(b.mean() - a.mean())


def test_welch_on_constant_samples_is_exact() -> None:
    assert ab.welch([2.0, 2.0], [2.0, 2.0]).p_value == 1.0
    moved = ab.welch([2.0, 2.0], [3.0, 3.0])
    assert (moved.difference, moved.ci_low, moved.ci_high, moved.p_value) == (1.0, 1.0, 1.0, 0.0)


def window(a: dict[str, Any], b: dict[str, Any]) -> pd.DataFrame:
    """Labelled windows of two versions: ``correct`` (bools) and ``latency`` per one-row request."""
    rows = []
    for version, spec in ((1, a), (2, b)):
        for i, (correct, latency) in enumerate(zip(spec["correct"], spec["latency"], strict=True)):
            rows.append(
                {"request_id": f"v{version}-{i}", "row": 0, "version": version, "status": 200, "latency_ms": float(latency),
                 "prediction": 1, "label": 1 if correct else 0, "probabilities": None}
            )  # fmt: skip
    return pd.DataFrame(rows)


def test_a_clearly_better_and_faster_version_is_significant() -> None:
    rng = np.random.default_rng(7)
    n = 400
    a = {"correct": rng.random(n) < 0.70, "latency": rng.lognormal(np.log(5.0), 0.3, n)}
    b = {"correct": rng.random(n) < 0.85, "latency": rng.lognormal(np.log(4.0), 0.3, n)}
    found = ab.compare(window(a, b), 1, 2)
    quality, latency = found["quality"], found["latency"]
    assert (found["task"], quality["metric"], quality["test"]) == ("classification", "accuracy", ab.PROPORTION_TEST)
    expected = ab.two_proportions(int(a["correct"].sum()), n, int(b["correct"].sum()), n)
    assert quality["p_value"] == pytest.approx(expected.p_value)
    assert quality["significant"] is True
    assert quality["ci_low"] > 0
    assert quality["verdict"].startswith("version 2 is more accurate than version 1")
    reference = stats.ttest_ind(b["latency"], a["latency"], equal_var=False)
    assert latency["p_value"] == pytest.approx(reference.pvalue)
    assert latency["significant"] is True
    assert latency["ci_high"] < 0
    assert latency["verdict"].startswith("version 2 is faster than version 1")
    assert (latency["n_a"], latency["n_b"]) == (n, n)


def test_versions_drawn_from_one_distribution_are_not_significant() -> None:
    rng = np.random.default_rng(11)
    n = 400
    a = {"correct": rng.random(n) < 0.8, "latency": rng.lognormal(np.log(5.0), 0.3, n)}
    b = {"correct": rng.random(n) < 0.8, "latency": rng.lognormal(np.log(5.0), 0.3, n)}
    found = ab.compare(window(a, b), 1, 2)
    for result in (found["quality"], found["latency"]):
        assert result["significant"] is False
        assert result["ci_low"] < 0 < result["ci_high"]
        assert result["verdict"].startswith("no significant difference")


def test_regression_compares_absolute_errors_with_welch() -> None:
    rng = np.random.default_rng(5)
    truth = rng.normal(0, 1, 300)
    rows = []
    for version, noise in ((1, 1.0), (2, 0.5)):
        guesses = truth + rng.normal(0, noise, 300)
        rows += [{"request_id": f"{version}-{i}", "row": 0, "version": version, "status": 200, "latency_ms": 1.0 + i % 3,
                  "prediction": float(g), "label": float(t), "probabilities": None}
                 for i, (t, g) in enumerate(zip(truth, guesses, strict=True))]  # fmt: skip
    frame = pd.DataFrame(rows)
    found = ab.compare(frame, 1, 2, task="regression")
    errors = {v: np.abs(frame[frame.version == v].prediction - frame[frame.version == v].label) for v in (1, 2)}
    reference = stats.ttest_ind(errors[2], errors[1], equal_var=False)
    assert found["quality"]["metric"] == "mae"
    assert found["quality"]["p_value"] == pytest.approx(reference.pvalue)
    assert found["quality"]["a"] == pytest.approx(errors[1].mean())
    assert found["quality"]["verdict"].startswith("version 2 has smaller errors than version 1")


def test_too_little_data_says_so_instead_of_testing() -> None:
    frame = window({"correct": [True], "latency": [1.0]}, {"correct": [True, False, True], "latency": [1.0, 2.0, 3.0]})
    found = ab.compare(frame, 1, 2)
    assert found["quality"]["p_value"] is None
    assert found["quality"]["significant"] is False
    assert "not enough labelled instances" in found["quality"]["verdict"]
    assert "send more feedback" in found["quality"]["verdict"]
    assert "not enough answered requests" in found["latency"]["verdict"]


def test_latency_counts_each_request_once_and_skips_failures() -> None:
    rows = [
        {"request_id": "r1", "row": 0, "version": 1, "status": 200, "latency_ms": 3.0},
        {"request_id": "r1", "row": 1, "version": 1, "status": 200, "latency_ms": 3.0},
        {"request_id": "r2", "row": 0, "version": 1, "status": 500, "latency_ms": 90.0},
        {"request_id": "r3", "row": 0, "version": 1, "status": 200, "latency_ms": 5.0},
    ]
    assert ab._latencies(pd.DataFrame(rows)) == [3.0, 5.0]


def test_the_default_pair_is_the_two_busiest_routed_versions() -> None:
    frame = pd.DataFrame({"request_id": [f"r{i}" for i in range(10)], "version": [1] * 5 + [2] * 3 + [3] * 2})
    assert ab.pick_pair(frame, routed=[3, 2]) == (2, 3)
    assert ab.pick_pair(frame, routed=[1]) == (1, 2)  # one route only: the busiest versions served
    assert ab.pick_pair(frame, routed=[1, 2, 3], b=1) == (2, 1)
    assert ab.pick_pair(frame, routed=[], a=3, b=1) == (3, 1)
    with pytest.raises(InvalidInput, match=r"version\(s\) 1: name the versions"):
        ab.pick_pair(frame[frame.version == 1], routed=[1, 2])


def test_bad_arguments_are_refused() -> None:
    frame = window({"correct": [True] * 3, "latency": [1.0] * 3}, {"correct": [True] * 3, "latency": [1.0] * 3})
    with pytest.raises(InvalidInput, match="between 0 and 1"):
        ab.compare(frame, 1, 2, alpha=1.5)
    with pytest.raises(InvalidInput, match="two different versions"):
        ab.compare(frame, 1, 1)
