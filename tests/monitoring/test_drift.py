"""Drift statistics against SciPy on the raw data and against values known by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from shipyard.errors import InvalidInput, NotFound
from shipyard.monitoring import Profile, detect_drift, prediction_drift
from shipyard.monitoring.measures import PSI_EPSILON, chisquare, jensenshannon, psi

# A sketch's CDF is within 1/1000 of the data's; two of them, plus one row on each side.
KS_RESOLUTION = 2 / 1000 + 2e-5


def one(reference: pd.Series, current: pd.Series, method: str | None = None) -> tuple[float, float | None, bool]:
    """Statistic, p-value and verdict for one column, through profiles as in production."""
    ref = Profile.from_frame(reference.rename("x").to_frame())
    report = detect_drift(ref, current.rename("x").to_frame(), methods={"x": method} if method else None)
    result = report.feature("x")
    return result.statistic, result.p_value, result.drifted


def samples(seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return {
        "same": (rng.standard_normal(20_000), rng.standard_normal(50_000)),
        "shifted": (rng.standard_normal(20_000), rng.normal(0.3, 1, 50_000)),
        "scaled": (rng.standard_normal(20_000), rng.normal(0, 1.4, 50_000)),
        "shape": (rng.exponential(1.0, 20_000), rng.gamma(2.0, 0.5, 50_000)),
        "small": (rng.standard_normal(300), rng.normal(0.2, 1, 400)),
    }


# -- Kolmogorov-Smirnov ----------------------------------------------------------------------


@pytest.mark.parametrize("case", ["same", "shifted", "scaled", "shape", "small"])
def test_ks_statistic_matches_scipy_within_sketch_resolution(case: str) -> None:
    reference, current = samples(10)[case]
    statistic, p_value, _ = one(pd.Series(reference), pd.Series(current), "ks")
    expected = stats.ks_2samp(reference, current)
    assert abs(statistic - expected.statistic) <= KS_RESOLUTION
    assert p_value is not None


def test_ks_p_value_is_scipys_asymptotic_one() -> None:
    reference, current = samples(11)["small"]
    statistic, p_value, _ = one(pd.Series(reference), pd.Series(current), "ks")
    n, m = len(reference), len(current)
    assert p_value == pytest.approx(stats.kstwo.sf(statistic, round(n * m / (n + m))), rel=1e-12)
    # And, the statistic being within resolution, close to ks_2samp's own on the raw data.
    assert p_value == pytest.approx(stats.ks_2samp(reference, current, method="asymp").pvalue, abs=0.02)


def test_ks_between_normals_half_a_sd_apart_is_the_analytic_sup() -> None:
    rng = np.random.default_rng(12)
    # sup |Phi(x) - Phi(x - 0.5)| is reached at x = 0.25: 2 * Phi(0.25) - 1.
    analytic = 2 * stats.norm.cdf(0.25) - 1
    assert analytic == pytest.approx(0.1974, abs=1e-4)
    statistic, p_value, drifted = one(pd.Series(rng.standard_normal(200_000)), pd.Series(rng.normal(0.5, 1, 200_000)), "ks")
    assert statistic == pytest.approx(analytic, abs=0.01)
    assert p_value is not None
    assert p_value < 1e-100
    assert drifted


# -- Wasserstein -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["same", "shifted", "scaled", "shape", "small"])
def test_normed_wasserstein_matches_scipy(case: str) -> None:
    reference, current = samples(13)[case]
    statistic, p_value, _ = one(pd.Series(reference), pd.Series(current), "wasserstein")
    expected = stats.wasserstein_distance(reference, current) / np.std(reference)
    assert statistic == pytest.approx(expected, rel=0.01, abs=1e-3)
    assert p_value is None


@pytest.mark.parametrize(
    ("current", "analytic"),
    [
        # A shift moves every quantile by 0.5; doubling the scale moves each by |z|: E|Z| = sqrt(2 / pi).
        (lambda rng: rng.normal(0.5, 1, 300_000), 0.5),
        (lambda rng: rng.normal(0, 2, 300_000), math.sqrt(2 / math.pi)),
    ],
)
def test_normed_wasserstein_on_known_distributions(current: object, analytic: float) -> None:
    rng = np.random.default_rng(14)
    reference = pd.Series(rng.standard_normal(300_000))
    statistic, _, drifted = one(reference, pd.Series(current(rng)), "wasserstein")  # type: ignore[operator]
    assert statistic == pytest.approx(analytic, abs=0.01)
    assert drifted


# -- PSI -------------------------------------------------------------------------------------


def test_psi_of_two_known_histograms() -> None:
    # By hand: proportions 0.25 each against 0.1, 0.2, 0.3, 0.4.
    by_hand = (
        (0.1 - 0.25) * math.log(0.1 / 0.25)
        + (0.2 - 0.25) * math.log(0.2 / 0.25)
        + (0.3 - 0.25) * math.log(0.3 / 0.25)
        + (0.4 - 0.25) * math.log(0.4 / 0.25)
    )
    assert by_hand == pytest.approx(0.2282, abs=1e-4)
    assert psi(np.array([25.0, 25, 25, 25]), np.array([100.0, 200, 300, 400])) == pytest.approx(by_hand, rel=1e-12)
    assert psi(np.array([1.0, 2, 3]), np.array([10.0, 20, 30])) == pytest.approx(0.0, abs=1e-15)


def test_psi_raises_empty_cells_to_epsilon() -> None:
    # The reference has nothing in the third cell: its 0 becomes PSI_EPSILON instead of log(0).
    by_hand = (0.5 - 0.5) * math.log(0.5 / 0.5) + (0.25 - 0.5) * math.log(0.25 / 0.5)
    by_hand += (0.25 - PSI_EPSILON) * math.log(0.25 / PSI_EPSILON)
    assert psi(np.array([50.0, 50, 0]), np.array([50.0, 25, 25])) == pytest.approx(by_hand, rel=1e-12)


def test_binned_psi_equals_psi_over_the_reference_deciles_on_raw_data() -> None:
    rng = np.random.default_rng(15)
    reference, current = rng.standard_normal(30_000), rng.normal(0.2, 1.1, 60_000)
    statistic, _, _ = one(pd.Series(reference), pd.Series(current), "psi")
    edges = np.quantile(reference, np.linspace(0, 1, 11))
    outer = np.r_[-np.inf, edges[1:-1], np.inf]
    ref_counts = np.histogram(reference, bins=outer)[0].astype(float)
    cur_counts = np.histogram(current, bins=outer)[0].astype(float)
    r, c = ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()
    assert statistic == pytest.approx(float(np.sum((c - r) * np.log(c / r))), rel=1e-9)


# -- categorical: Jensen-Shannon and chi-squared ---------------------------------------------


def categories(seed: int) -> tuple[pd.Series, pd.Series]:
    rng = np.random.default_rng(seed)
    reference = pd.Series(rng.choice(list("abcd"), 2_000, p=[0.4, 0.3, 0.2, 0.1]))
    # The current side shifts mass to "d" and brings two categories the reference never had.
    current = pd.Series(rng.choice(list("abcdef"), 3_000, p=[0.35, 0.25, 0.15, 0.15, 0.06, 0.04]))
    return reference, current


def test_jensenshannon_matches_scipy_on_every_category() -> None:
    reference, current = categories(16)
    statistic, p_value, _ = one(reference, current, "jensenshannon")
    labels = sorted(set(reference) | set(current))
    ref = reference.value_counts().reindex(labels, fill_value=0).to_numpy(float)
    cur = current.value_counts().reindex(labels, fill_value=0).to_numpy(float)
    # Unseen categories are pooled into one cell, which leaves Jensen-Shannon unchanged.
    assert statistic == pytest.approx(distance.jensenshannon(ref / ref.sum(), cur / cur.sum(), base=2), rel=1e-9)
    assert p_value is None
    assert jensenshannon(np.array([1.0, 0]), np.array([0.0, 1])) == pytest.approx(1.0)


def test_chisquare_matches_scipy_contingency_with_unseen_pooled() -> None:
    reference, current = categories(17)
    statistic, p_value, _ = one(reference, current, "chisquare")
    ref = reference.value_counts().reindex(list("abcd"), fill_value=0).to_numpy(float)
    cur = current.value_counts().reindex(list("abcd"), fill_value=0).to_numpy(float)
    table = np.vstack([np.r_[ref, 0], np.r_[cur, (~current.isin(list("abcd"))).sum()]])
    expected = stats.chi2_contingency(table, correction=False)
    assert statistic == pytest.approx(expected.statistic, rel=1e-9)
    assert p_value == pytest.approx(expected.pvalue, rel=1e-9)


def test_chisquare_on_two_categories_is_the_pooled_z_test() -> None:
    ref, cur = np.array([120.0, 380]), np.array([170.0, 430])
    p1, p2 = ref[0] / ref.sum(), cur[0] / cur.sum()
    pooled = (ref[0] + cur[0]) / (ref.sum() + cur.sum())
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / ref.sum() + 1 / cur.sum()))
    statistic, p_value = chisquare(ref, cur)
    assert statistic == pytest.approx(z * z, rel=1e-9)
    assert p_value == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)


def test_chisquare_with_one_category_on_both_sides_finds_nothing() -> None:
    assert chisquare(np.array([10.0]), np.array([30.0])) == (0.0, 1.0)


# -- default methods -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "numeric", "categorical"),
    [(1000, "ks", "chisquare"), (1001, "wasserstein", "jensenshannon")],
)
def test_default_method_follows_evidentlys_rule(rows: int, numeric: str, categorical: str) -> None:
    rng = np.random.default_rng(18)
    frame = pd.DataFrame(
        {
            "x": rng.standard_normal(rows),
            "c": rng.choice(list("abc"), rows),
            "flag": rng.choice([0, 1], rows),  # numeric with two values: compared as categories
        }
    )
    report = detect_drift(Profile.from_frame(frame), frame)
    assert report.feature("x").method == numeric
    assert report.feature("c").method == categorical
    assert report.feature("flag").method == categorical


def test_few_values_in_reference_but_many_in_current_is_numeric_again() -> None:
    rng = np.random.default_rng(19)
    reference = pd.DataFrame({"n": rng.choice([1, 2, 3], 5_000)})
    current = pd.DataFrame({"n": rng.choice([1, 2, 3, 4, 5, 6, 7], 5_000)})
    assert detect_drift(Profile.from_frame(reference), current).feature("n").method == "wasserstein"
    same = pd.DataFrame({"n": rng.choice([1, 2, 3], 5_000)})
    assert detect_drift(Profile.from_frame(reference), same).feature("n").method == "jensenshannon"


# -- conclusions -----------------------------------------------------------------------------


def population(rows: int, rng: np.random.Generator, *, shift: float = 0.0, mix: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "income": rng.lognormal(10 + shift, 0.5, rows),
            "age": rng.normal(40, 12, rows),
            "score": rng.uniform(0, 1, rows),
            "region": rng.choice(["north", "south", "east", "west"], rows, p=[0.25 + mix, 0.25, 0.25, 0.25 - mix]),
            "plan": rng.choice(["free", "pro"], rows, p=[0.7, 0.3]),
        }
    )


def test_samples_from_the_same_distribution_do_not_drift() -> None:
    rng = np.random.default_rng(20)
    report = detect_drift(Profile.from_frame(population(20_000, rng)), population(50_000, rng))
    assert report.drifted_features == ()
    assert report.share_drifted == 0.0
    assert not report.dataset_drift
    assert len(report.features) == 5


def test_only_the_shifted_features_drift() -> None:
    rng = np.random.default_rng(21)
    report = detect_drift(Profile.from_frame(population(20_000, rng)), population(50_000, rng, shift=0.1, mix=0.15))
    assert report.drifted_features == ("income", "region")
    assert report.share_drifted == pytest.approx(2 / 5)
    assert not report.dataset_drift
    assert detect_drift(
        Profile.from_frame(population(20_000, rng)), population(50_000, rng, shift=0.1, mix=0.15), drift_share=0.4
    ).dataset_drift


def test_small_reference_uses_tests_and_still_finds_the_shift() -> None:
    rng = np.random.default_rng(22)
    report = detect_drift(Profile.from_frame(population(800, rng)), population(900, rng, shift=0.2, mix=0.2))
    assert report.feature("income").method == "ks"
    assert report.feature("region").method == "chisquare"
    assert set(report.drifted_features) >= {"income", "region"}
    assert report.feature("income").p_value is not None


def test_a_current_profile_gives_the_same_conclusions_as_the_frame() -> None:
    rng = np.random.default_rng(23)
    reference = Profile.from_frame(population(20_000, rng))
    current = population(50_000, rng, shift=0.1, mix=0.15)
    from_frame = detect_drift(reference, current)
    from_profile = detect_drift(reference, Profile.from_frame(current))
    assert from_profile.drifted_features == from_frame.drifted_features
    for a, b in zip(from_frame.features, from_profile.features, strict=True):
        assert b.statistic == pytest.approx(a.statistic, rel=0.02, abs=2e-3)


def test_overrides_pick_the_method_and_threshold() -> None:
    rng = np.random.default_rng(24)
    reference = Profile.from_frame(population(20_000, rng))
    current = population(50_000, rng, shift=0.1, mix=0.15)
    report = detect_drift(reference, current, methods={"age": "psi", "region": "chisquare"}, thresholds={"income": 0.9})
    assert report.feature("age").method == "psi"
    assert report.feature("age").threshold == 0.1
    assert report.feature("region").method == "chisquare"
    assert report.feature("region").p_value is not None
    assert report.feature("income").threshold == 0.9
    assert not report.feature("income").drifted  # its normed Wasserstein is about 0.2, under 0.9


def test_prediction_drift_compares_an_output_profile() -> None:
    rng = np.random.default_rng(25)
    reference = Profile.from_frame(pd.Series(rng.beta(2, 5, 10_000), name="proba"))
    report = prediction_drift(reference, pd.Series(rng.beta(5, 2, 10_000), name="proba"))
    assert report.subject == "predictions"
    assert report.drifted_features == ("proba",)
    assert report.dataset_drift


def test_columns_that_cannot_be_compared_are_skipped_with_a_reason() -> None:
    rng = np.random.default_rng(26)
    reference = Profile.from_frame(population(2_000, rng).assign(empty=np.nan))
    current = (
        population(2_000, rng)
        .drop(columns=["age"])
        .assign(score=lambda f: f["score"].astype(str), income=np.nan, empty=1.0, extra=1)
    )
    report = detect_drift(reference, current)
    assert report.skipped == {
        "age": "missing from the current data",
        "score": "type changed: expected numeric, got categorical",
        "income": "no values in the current data",
        "empty": "no values in the reference",
    }
    assert {f.feature for f in report.features} == {"region", "plan"}
    with pytest.raises(NotFound, match=r"'age' \(skipped: missing from the current data\)"):
        report.feature("age")


def test_report_to_dict_is_json() -> None:
    rng = np.random.default_rng(27)
    report = detect_drift(Profile.from_frame(population(1_000, rng)), population(1_000, rng, shift=0.3))
    data = json.loads(json.dumps(report.to_dict()))
    assert data["subject"] == "inputs"
    assert len(data["features"]) == 5
    assert data["drifted_features"] == list(report.drifted_features)


# -- bad input -------------------------------------------------------------------------------


@pytest.fixture
def reference() -> Profile:
    return Profile.from_frame(population(500, np.random.default_rng(28)))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"methods": {"age": "anova"}},
            r"unknown drift method 'anova' for 'age'; expected one of chisquare, jensenshannon, ks, psi",
        ),
        ({"methods": {"region": "ks"}}, r"'ks' does not apply to 'region', a categorical column; expected one of chisquare"),
        ({"thresholds": {"age": 1.5}}, r"threshold for 'age' \(ks\) is a p-value and must lie in \(0, 1\); got 1.5"),
        ({"methods": {"region": "jensenshannon"}, "thresholds": {"region": 2}}, r"must lie in \(0, 1.0\]; got 2"),
        ({"methods": {"age": "psi"}, "thresholds": {"age": -0.1}}, r"is a distance and must lie in \(0, inf\); got -0.1"),
        ({"thresholds": {"age": float("nan")}}, "must be a finite number"),
        ({"thresholds": {"height": 0.1}}, r"overrides name columns that are not compared: \['height'\]"),
        ({"columns": ["height"]}, r"columns \['height'\] are not in the reference profile"),
        ({"drift_share": 0}, r"drift_share must lie in \(0, 1\]; got 0"),
    ],
)
def test_bad_options_are_refused_before_any_work(reference: Profile, options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        detect_drift(reference, population(10, np.random.default_rng(29)), **options)  # type: ignore[arg-type]


def test_an_empty_current_frame_is_refused(reference: Profile) -> None:
    with pytest.raises(InvalidInput, match="expected current data with at least one row; got an empty frame"):
        detect_drift(reference, population(0, np.random.default_rng(30)))


def test_a_frame_as_reference_is_refused() -> None:
    frame = population(10, np.random.default_rng(31))
    with pytest.raises(InvalidInput, match=r"expected the reference as a Profile .* got DataFrame"):
        detect_drift(frame, frame)  # type: ignore[arg-type]
