"""Data quality checks of current data against a reference profile."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from shipyard.errors import InvalidInput
from shipyard.monitoring import Profile, QualityThresholds, check_quality


def frame(rows: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "amount": rng.uniform(10, 100, rows),
            "country": rng.choice(["fr", "de", "es"], rows),
            "note": rng.choice(["a", "b", None], rows, p=[0.45, 0.45, 0.1]),
        }
    )


def by_check(report: object) -> dict[tuple[str, str], object]:
    return {(c.feature, c.check): c for c in report.checks}  # type: ignore[attr-defined]


def test_data_like_the_reference_passes() -> None:
    rng = np.random.default_rng(40)
    report = check_quality(Profile.from_frame(frame(5_000, rng)), frame(5_000, rng))
    assert report.ok
    assert report.failures == ()
    assert set(by_check(report)) == {
        ("amount", "missing_rate"),
        ("amount", "out_of_range"),
        ("country", "missing_rate"),
        ("country", "unseen_categories"),
        ("note", "missing_rate"),
        ("note", "unseen_categories"),
    }


def test_a_rise_in_missing_values_fails() -> None:
    rng = np.random.default_rng(41)
    reference = Profile.from_frame(frame(5_000, rng))
    current = frame(5_000, rng)
    current.loc[: len(current) // 4 - 1, "amount"] = np.nan  # 25 % missing where there were none
    check = by_check(check_quality(reference, current))[("amount", "missing_rate")]
    assert check.reference == 0.0  # type: ignore[attr-defined]
    assert check.current == pytest.approx(0.25)  # type: ignore[attr-defined]
    assert check.failed  # type: ignore[attr-defined]


def test_out_of_range_share_is_exact_for_a_frame() -> None:
    rng = np.random.default_rng(42)
    reference = Profile.from_frame(frame(5_000, rng))
    current = frame(10_000, rng)
    current.loc[:599, "amount"] = 1_000.0  # above the maximum
    current.loc[600:999, "amount"] = -5.0  # below the minimum
    low, high = reference.columns["amount"].summary.min, reference.columns["amount"].summary.max  # type: ignore[union-attr]
    outside = int(((current["amount"] < low) | (current["amount"] > high)).sum())
    assert 1_000 <= outside < 1_050  # the 1,000 put there, and any uniform draw past the reference's extremes
    check = by_check(check_quality(reference, current))[("amount", "out_of_range")]
    assert check.current == outside / len(current)  # type: ignore[attr-defined]
    assert check.failed  # type: ignore[attr-defined]
    # A current profile built on its own gives the share from its sketch.
    approx = by_check(check_quality(reference, Profile.from_frame(current)))[("amount", "out_of_range")]
    assert approx.current == pytest.approx(0.1, abs=2e-3)  # type: ignore[attr-defined]


def test_unseen_categories_share() -> None:
    rng = np.random.default_rng(43)
    reference = Profile.from_frame(frame(5_000, rng))
    current = frame(4_000, rng)
    current.loc[:399, "country"] = "it"
    current.loc[400:599, "country"] = "pt"
    check = by_check(check_quality(reference, current))[("country", "unseen_categories")]
    assert check.current == pytest.approx(600 / 4_000)  # type: ignore[attr-defined]
    assert check.failed  # type: ignore[attr-defined]
    lenient = check_quality(reference, current, thresholds=QualityThresholds(unseen_share=0.2))
    assert not by_check(lenient)[("country", "unseen_categories")].failed  # type: ignore[attr-defined]


def test_schema_violations_are_reported() -> None:
    rng = np.random.default_rng(44)
    reference = Profile.from_frame(frame(1_000, rng))
    current = frame(1_000, rng).drop(columns=["note"]).assign(amount=lambda f: f["amount"].astype(str), extra=0)
    report = check_quality(reference, current)
    assert not report.ok
    assert report.schema.missing == ("note",)
    assert report.schema.extra == ("extra",)
    assert [(c.column, c.expected, c.got) for c in report.schema.changed] == [("amount", "numeric", "categorical")]
    assert {c.feature for c in report.checks} == {"country"}
    assert json.loads(json.dumps(report.to_dict()))["schema"]["missing"] == ["note"]


@pytest.mark.parametrize("value", [-0.1, 1.0, float("inf"), True])
def test_thresholds_must_be_shares(value: object) -> None:
    with pytest.raises(InvalidInput, match=r"missing_rate_increase is a share and must lie in \[0, 1\)"):
        QualityThresholds(missing_rate_increase=value)  # type: ignore[arg-type]


def test_an_empty_current_frame_is_refused() -> None:
    rng = np.random.default_rng(45)
    with pytest.raises(InvalidInput, match="at least one row"):
        check_quality(Profile.from_frame(frame(10, rng)), frame(0, rng))
