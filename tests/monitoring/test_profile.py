"""Reference profiles: what they keep, that JSON gives them back equal, and what they refuse."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from shipyard.errors import InvalidInput
from shipyard.monitoring import CategoricalSummary, NumericSummary, Profile, infer_kind
from shipyard.monitoring.profile import DISCRETE_VALUES


def mixed_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    price = rng.lognormal(3, 1, rows)
    price[rng.random(rows) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, rows),
            "price": price,
            "city": rng.choice(["paris", "lyon", "nice", "lille"], rows, p=[0.4, 0.3, 0.2, 0.1]),
            "member": rng.random(rows) < 0.3,
        }
    )


def numeric(profile: Profile, name: str) -> NumericSummary:
    summary = profile.columns[name].summary
    assert isinstance(summary, NumericSummary)
    return summary


def categorical(profile: Profile, name: str) -> CategoricalSummary:
    summary = profile.columns[name].summary
    assert isinstance(summary, CategoricalSummary)
    return summary


# -- kinds -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("series", "kind"),
    [
        (pd.Series([1, 2, 3]), "numeric"),
        (pd.Series([1.5, np.nan]), "numeric"),
        (pd.Series([1, None], dtype="Int64"), "numeric"),
        (pd.Series([0.5, None], dtype="Float32"), "numeric"),
        (pd.Series([True, False]), "categorical"),
        (pd.Series([True, None], dtype="boolean"), "categorical"),
        (pd.Series(["a", "b"], dtype=object), "categorical"),
        (pd.Series(["a", "b"], dtype="string"), "categorical"),
        (pd.Series(["a", "b"]).astype("category"), "categorical"),
        (pd.Series([1, 2]).astype("category"), "categorical"),
        (pd.Series(pd.to_datetime(["2026-01-01"])), None),
        (pd.Series([1 + 2j]), None),
    ],
)
def test_kind_follows_the_dtype(series: pd.Series, kind: str | None) -> None:
    assert infer_kind(series) == kind


def test_a_column_without_a_kind_is_refused_with_its_dtype() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0], "when": pd.to_datetime(["2026-01-01", "2026-01-02"])})
    with pytest.raises(InvalidInput, match=r"'when' has dtype datetime64.*expected a numeric, bool, string or category"):
        Profile.from_frame(frame)


# -- numeric ---------------------------------------------------------------------------------


def test_numeric_summary_matches_numpy() -> None:
    frame = mixed_frame(20_000)
    profile = Profile.from_frame(frame)
    price = frame["price"].to_numpy()
    finite = price[~np.isnan(price)]
    summary = numeric(profile, "price")
    assert profile.columns["price"].missing == int(np.isnan(price).sum())
    assert profile.columns["price"].missing_rate == pytest.approx(np.isnan(price).mean())
    assert summary.min == finite.min()
    assert summary.max == finite.max()
    assert summary.mean == pytest.approx(finite.mean(), rel=1e-12)
    assert summary.std == pytest.approx(np.std(finite), rel=1e-12)
    assert len(summary.quantiles) == 1001
    assert np.allclose(summary.quantiles, np.quantile(finite, np.linspace(0, 1, 1001)), rtol=1e-12, atol=0)
    assert np.allclose(summary.edges, np.quantile(finite, np.linspace(0, 1, 11)), rtol=1e-12, atol=0)
    assert summary.counts == tuple(np.histogram(finite, bins=np.asarray(summary.edges))[0].tolist())
    assert (summary.below, summary.above) == (0, 0)
    assert summary.present == len(finite)
    assert summary.distinct == len(np.unique(finite))
    assert summary.values is None


def test_infinities_and_nulls_count_as_missing() -> None:
    frame = pd.DataFrame(
        {"x": pd.Series([1.0, np.inf, -np.inf, np.nan, 2.0, 3.0]), "n": pd.array([1, None, 3, 4, None, 6], dtype="Int64")}
    )
    profile = Profile.from_frame(frame)
    assert profile.columns["x"].missing == 3
    assert (numeric(profile, "x").min, numeric(profile, "x").max) == (1.0, 3.0)
    assert profile.columns["n"].missing == 2
    assert numeric(profile, "n").mean == pytest.approx(3.5)


def test_few_distinct_values_are_kept_exactly() -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"rating": rng.choice([1, 2, 3], 1000), "score": rng.standard_normal(1000)})
    profile = Profile.from_frame(frame)
    rating = numeric(profile, "rating")
    assert rating.values == tuple((float(v), int((frame["rating"] == v).sum())) for v in (1, 2, 3))
    assert rating.distinct == 3 <= DISCRETE_VALUES
    assert numeric(profile, "score").values is None


def test_a_constant_column_has_one_bin() -> None:
    profile = Profile.from_frame(pd.DataFrame({"k": [4.0] * 50}))
    summary = numeric(profile, "k")
    assert summary.edges == (4.0, 4.0)
    assert summary.counts == (50,)
    assert summary.std == 0.0


def test_an_all_missing_column_has_no_summary() -> None:
    profile = Profile.from_frame(pd.DataFrame({"x": [np.nan] * 3, "c": pd.Series([None] * 3, dtype=object)}))
    assert profile.columns["x"].summary is None
    assert profile.columns["c"].summary is None
    assert profile.columns["x"].missing_rate == 1.0


# -- categorical -----------------------------------------------------------------------------


def test_categorical_frequencies() -> None:
    frame = mixed_frame(10_000)
    profile = Profile.from_frame(frame)
    city = categorical(profile, "city")
    expected = frame["city"].value_counts()
    assert dict(city.frequencies) == {str(k): int(v) for k, v in expected.items()}
    assert [n for _, n in city.frequencies] == sorted(expected.tolist(), reverse=True)
    assert city.other == 0
    assert city.distinct == 4
    member = categorical(profile, "member")
    assert dict(member.frequencies) == {"True": int(frame["member"].sum()), "False": int((~frame["member"]).sum())}


def test_only_the_top_k_categories_are_listed() -> None:
    labels = [f"c{i:03d}" for i in range(300)]
    # c000 appears 300 times, c001 299 times, ...: the top 100 are c000..c099.
    series = pd.Series(np.repeat(labels, np.arange(300, 0, -1)))
    profile = Profile.from_frame(series.to_frame("code"), top_k=100)
    code = categorical(profile, "code")
    assert [label for label, _ in code.frequencies] == labels[:100]
    assert code.other == int(np.arange(200, 0, -1).sum())
    assert code.distinct == 300
    assert code.present == len(series)


def test_ties_are_ordered_by_label_so_profiles_are_reproducible() -> None:
    frame = pd.DataFrame({"c": ["b", "a", "c", "a", "b", "c"]})
    assert [label for label, _ in categorical(Profile.from_frame(frame), "c").frequencies] == ["a", "b", "c"]
    assert Profile.from_frame(frame) == Profile.from_frame(frame.iloc[::-1].reset_index(drop=True))


def test_categories_become_strings_and_unused_categories_are_dropped() -> None:
    frame = pd.DataFrame(
        {
            "mixed": pd.Series([1, "1", 2, None], dtype=object),
            "cat": pd.Series(["x", "y", "x"], dtype=pd.CategoricalDtype(["x", "y", "z"])),
        }
    )
    profile = Profile.from_frame(frame)
    assert categorical(profile, "mixed").frequencies == (("1", 2), ("2", 1))
    assert profile.columns["mixed"].missing == 1
    assert categorical(profile, "cat").frequencies == (("x", 2), ("y", 1))


# -- aligned to a reference ------------------------------------------------------------------


def test_aligned_profile_counts_in_the_reference_bins_and_categories() -> None:
    rng = np.random.default_rng(2)
    reference = Profile.from_frame(pd.DataFrame({"x": rng.standard_normal(5_000), "c": rng.choice(list("abc"), 5_000)}))
    current_x = rng.normal(0.5, 1.5, 8_000)
    current = pd.DataFrame({"x": current_x, "c": rng.choice(list("abcdefgh"), 8_000)})
    aligned = Profile.from_frame(current, aligned_to=reference, top_k=2)
    ref_x, cur_x = numeric(reference, "x"), numeric(aligned, "x")
    assert cur_x.edges == ref_x.edges
    assert cur_x.below == int(np.sum(current_x < ref_x.min))
    assert cur_x.above == int(np.sum(current_x > ref_x.max))
    assert cur_x.counts == tuple(np.histogram(current_x, bins=np.asarray(ref_x.edges))[0].tolist())
    # top_k=2 lists two categories of its own, and every category the reference lists besides.
    labels = {label for label, _ in categorical(aligned, "c").frequencies}
    assert {"a", "b", "c"} <= labels
    assert len(labels) <= 5


# -- JSON ------------------------------------------------------------------------------------


def test_round_trip_through_json_is_exact() -> None:
    frame = mixed_frame(5_000)
    frame["rating"] = np.random.default_rng(3).choice([1.5, 2.5], len(frame))
    profile = Profile.from_frame(frame)
    text = json.dumps(profile.to_dict())
    again = Profile.from_dict(json.loads(text))
    assert again == profile
    assert json.dumps(again.to_dict()) == text
    assert json.loads(text)["schema_version"] == 1


def test_an_unknown_schema_version_is_refused() -> None:
    data = Profile.from_frame(mixed_frame(100)).to_dict()
    data["schema_version"] = 99
    with pytest.raises(InvalidInput, match="schema_version 99 is not supported; expected 1"):
        Profile.from_dict(data)


@pytest.mark.parametrize(
    "breaks",
    [
        lambda d: d.pop("columns"),
        lambda d: d["columns"][0].update(kind="text"),
        lambda d: d["columns"][0].update(count="many"),
    ],
)
def test_a_malformed_profile_is_refused(breaks: object) -> None:
    data = Profile.from_frame(mixed_frame(100)).to_dict()
    breaks(data)  # type: ignore[operator]
    with pytest.raises(InvalidInput, match="malformed profile"):
        Profile.from_dict(data)


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"x": []}), "at least one row and one column; got 0 rows"),
        (pd.DataFrame(index=range(3)), "at least one row and one column; got 3 rows and 0 columns"),
        ([1, 2, 3], "expected a pandas DataFrame or Series; got list"),
        (pd.DataFrame({0: [1.0]}), "column names must be strings"),
        (pd.DataFrame([[1, 2]], columns=["a", "a"]), r"must be unique; got \['a'\]"),
    ],
)
def test_bad_frames_are_refused(frame: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        Profile.from_frame(frame)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"top_k": 0}, "top_k must be a positive integer; got 0"),
        ({"bins": 2.5}, "bins must be a positive integer; got 2.5"),
        ({"quantiles": 1}, "quantiles must be at least 2"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        Profile.from_frame(mixed_frame(10), **options)  # type: ignore[arg-type]


def test_a_series_is_profiled_as_one_column() -> None:
    predictions = pd.Series(np.linspace(0, 1, 11))
    assert list(Profile.from_frame(predictions).columns) == ["prediction"]
    assert list(Profile.from_frame(predictions.rename("score")).columns) == ["score"]


# -- schema ----------------------------------------------------------------------------------


def test_schema_check_lists_missing_extra_and_changed_columns() -> None:
    profile = Profile.from_frame(mixed_frame(100))
    assert profile.schema == {"age": "numeric", "price": "numeric", "city": "categorical", "member": "categorical"}
    assert profile.check_schema(mixed_frame(50)).ok
    new = (
        mixed_frame(50)
        .drop(columns=["price"])
        .assign(age=lambda f: f["age"].astype(str), member=pd.to_datetime("2026-01-01"), extra=1.0)
    )
    diff = profile.check_schema(new)
    assert not diff.ok
    assert diff.missing == ("price",)
    assert diff.extra == ("extra",)
    assert {(c.column, c.expected, c.got) for c in diff.changed} == {
        ("age", "numeric", "categorical"),
        ("member", "categorical", str(new["member"].dtype)),
    }
    assert profile.check_schema(Profile.from_frame(mixed_frame(20))).ok
