"""A/B analysis: is version B of an endpoint better, or faster, than version A, beyond chance?

Over one window of the prediction log, two served versions are compared on:

- quality, over labelled instances (``feedback.labelled``). Classification: accuracy, with a
  two-proportion z-test (pooled standard error under the null hypothesis of equal accuracy)
  and a Wald interval for the difference (unpooled standard error). Regression: the mean
  absolute error, with Welch's t-test on the absolute errors and its Welch-Satterthwaite
  interval.
- latency, per answered request: Welch's t-test on the latencies, with its interval for the
  difference of means. Welch rather than Mann-Whitney U because the question asked of a
  version is "does it cost more time per request", a difference of means in milliseconds
  that the interval reports directly; Welch does not assume equal variances, and with the
  hundreds of requests a window holds the mean's sampling distribution is close to normal
  even for skewed latencies. Mann-Whitney answers another question (does one tend to be
  slower) and gives no interval in milliseconds without all n_A x n_B pairwise differences.

Every difference is B minus A. Each result says both values, the difference, the
``1 - alpha`` confidence interval, the p-value (two-sided), whether it is significant at
``alpha``, and a one-line verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sqlalchemy.orm import Session

from shipyard.access.caller import Caller
from shipyard.errors import InvalidInput
from shipyard.monitoring import feedback, performance
from shipyard.monitoring.window import Window

ALPHA = 0.05
MIN_SAMPLES = 2
PROPORTION_TEST = "two-proportion z-test"
WELCH_TEST = "Welch's t-test"


@dataclass(frozen=True)
class Comparison:
    """One measure of version A against version B."""

    metric: str
    test: str
    a: float | None
    b: float | None
    difference: float | None  # b - a
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    significant: bool
    alpha: float
    n_a: int
    n_b: int
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Estimate:
    """A difference ``b - a`` with its two-sided interval and p-value."""

    a: float
    b: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float


def check_alpha(alpha: float) -> float:
    if not 0 < alpha < 1:
        raise InvalidInput(f"alpha {alpha} is out of range: expected a significance level between 0 and 1, e.g. 0.05")
    return float(alpha)


def two_proportions(successes_a: int, n_a: int, successes_b: int, n_b: int, alpha: float = ALPHA) -> Estimate:
    """Two-proportion z-test (pooled SE) of ``p_b - p_a``, and its Wald interval (unpooled SE)."""
    p_a, p_b = successes_a / n_a, successes_b / n_b
    difference = p_b - p_a
    pooled = (successes_a + successes_b) / (n_a + n_b)
    se_null = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    # With every answer right (or wrong) on both sides there is no variation and no evidence of a difference.
    p_value = 1.0 if se_null == 0 else float(2 * stats.norm.sf(abs(difference) / se_null))
    se = math.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)
    half = float(stats.norm.ppf(1 - alpha / 2)) * se
    return Estimate(p_a, p_b, difference, difference - half, difference + half, p_value)


def welch(values_a: Sequence[float], values_b: Sequence[float], alpha: float = ALPHA) -> Estimate:
    """Welch's t-test of ``mean(b) - mean(a)``, and its interval with Welch-Satterthwaite degrees of freedom."""
    a, b = np.asarray(values_a, dtype=np.float64), np.asarray(values_b, dtype=np.float64)
    mean_a, mean_b = float(a.mean()), float(b.mean())
    difference = mean_b - mean_a
    share_a, share_b = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(share_a + share_b)
    if se == 0:  # both constant: the difference is exact
        return Estimate(mean_a, mean_b, difference, difference, difference, 1.0 if difference == 0 else 0.0)
    freedom = (share_a + share_b) ** 2 / (share_a**2 / (len(a) - 1) + share_b**2 / (len(b) - 1))
    p_value = float(stats.ttest_ind(b, a, equal_var=False).pvalue)
    half = float(stats.t.ppf(1 - alpha / 2, freedom)) * se
    return Estimate(mean_a, mean_b, difference, difference - half, difference + half, p_value)


def _conclude(
    metric: str, test: str, estimate: Estimate, alpha: float, n_a: int, n_b: int, a: int, b: int, describe: str
) -> Comparison:
    significant = estimate.p_value < alpha
    return Comparison(
        metric=metric, test=test, a=estimate.a, b=estimate.b, difference=estimate.difference,
        ci_low=estimate.ci_low, ci_high=estimate.ci_high, p_value=estimate.p_value, significant=significant,
        alpha=alpha, n_a=n_a, n_b=n_b,
        verdict=describe if significant else (
            f"no significant difference in {metric} between version {a} and version {b} at alpha {alpha:g} "
            f"({_show(metric, estimate.a)} vs {_show(metric, estimate.b)}, p = {estimate.p_value:.3g})"
        ),
    )  # fmt: skip


def _show(metric: str, value: float) -> str:
    return f"{value:.1%}" if metric == "accuracy" else f"{value:.4g}" if metric == "mae" else f"{value:.3g} ms"


def _too_few(metric: str, test: str, alpha: float, n_a: int, n_b: int, a: int, b: int, what: str) -> Comparison:
    return Comparison(
        metric=metric, test=test, a=None, b=None, difference=None, ci_low=None, ci_high=None, p_value=None,
        significant=False, alpha=alpha, n_a=n_a, n_b=n_b,
        verdict=(
            f"not enough {what} to compare {metric}: version {a} has {n_a}, version {b} has {n_b} "
            f"(at least {MIN_SAMPLES} each); widen the window" + (" or send more feedback" if "labelled" in what else "")
        ),
    )  # fmt: skip


def compare_accuracy(correct_a: Sequence[bool], correct_b: Sequence[bool], a: int, b: int, alpha: float = ALPHA) -> Comparison:
    n_a, n_b = len(correct_a), len(correct_b)
    if min(n_a, n_b) < MIN_SAMPLES:
        return _too_few("accuracy", PROPORTION_TEST, alpha, n_a, n_b, a, b, "labelled instances")
    estimate = two_proportions(int(sum(correct_a)), n_a, int(sum(correct_b)), n_b, alpha)
    level = f"{1 - alpha:.0%}"
    describe = (
        f"version {b} is {'more' if estimate.difference > 0 else 'less'} accurate than version {a}: "
        f"{estimate.b:.1%} vs {estimate.a:.1%}, {estimate.difference * 100:+.1f} points "
        f"({level} CI {estimate.ci_low * 100:+.1f} to {estimate.ci_high * 100:+.1f}), p = {estimate.p_value:.3g}"
    )
    return _conclude("accuracy", PROPORTION_TEST, estimate, alpha, n_a, n_b, a, b, describe)


def compare_errors(errors_a: Sequence[float], errors_b: Sequence[float], a: int, b: int, alpha: float = ALPHA) -> Comparison:
    """Mean absolute error: Welch's t-test on the absolute errors."""
    n_a, n_b = len(errors_a), len(errors_b)
    if min(n_a, n_b) < MIN_SAMPLES:
        return _too_few("mae", WELCH_TEST, alpha, n_a, n_b, a, b, "labelled instances")
    estimate = welch(errors_a, errors_b, alpha)
    describe = (
        f"version {b} has {'larger' if estimate.difference > 0 else 'smaller'} errors than version {a}: "
        f"MAE {estimate.b:.4g} vs {estimate.a:.4g}, difference {estimate.difference:+.4g} "
        f"({1 - alpha:.0%} CI {estimate.ci_low:+.4g} to {estimate.ci_high:+.4g}), p = {estimate.p_value:.3g}"
    )
    return _conclude("mae", WELCH_TEST, estimate, alpha, n_a, n_b, a, b, describe)


def compare_latency(latency_a: Sequence[float], latency_b: Sequence[float], a: int, b: int, alpha: float = ALPHA) -> Comparison:
    """Mean latency per request (ms): Welch's t-test."""
    n_a, n_b = len(latency_a), len(latency_b)
    if min(n_a, n_b) < MIN_SAMPLES:
        return _too_few("latency_ms", WELCH_TEST, alpha, n_a, n_b, a, b, "answered requests")
    estimate = welch(latency_a, latency_b, alpha)
    describe = (
        f"version {b} is {'slower' if estimate.difference > 0 else 'faster'} than version {a}: "
        f"{estimate.b:.3g} ms vs {estimate.a:.3g} ms on average, difference {estimate.difference:+.3g} ms "
        f"({1 - alpha:.0%} CI {estimate.ci_low:+.3g} to {estimate.ci_high:+.3g}), p = {estimate.p_value:.3g}"
    )
    return _conclude("latency_ms", WELCH_TEST, estimate, alpha, n_a, n_b, a, b, describe)


# -- over a window ------------------------------------------------------------------------------


def compare(
    frame: pd.DataFrame, a: int, b: int, *, task: str | None = None, alpha: float = ALPHA, hint: Any = None
) -> dict[str, Any]:
    """Quality and latency of version ``b`` against ``a`` over a labelled window (``feedback.labelled``)."""
    check_alpha(alpha)
    if a == b:
        raise InvalidInput(f"versions a and b are both {a}: compare two different versions")
    performance.check_task(task)
    served = {v: frame[frame["version"] == v] if not frame.empty else frame for v in (a, b)}
    rows = {v: performance.labelled_rows(part) for v, part in served.items()}
    both = pd.concat([rows[a], rows[b]])
    chosen = performance.resolve_task(task, hint, both["label"].tolist(), both["prediction"].tolist())
    if chosen == "regression":
        errors = {v: _absolute_errors(part) for v, part in rows.items()}
        quality = compare_errors(errors[a], errors[b], a, b, alpha)
    else:
        correct = {v: _correct(part) for v, part in rows.items()}
        quality = compare_accuracy(correct[a], correct[b], a, b, alpha)
    latency = {v: _latencies(part) for v, part in served.items()}
    return {
        "a": a,
        "b": b,
        "alpha": alpha,
        "task": chosen,
        "requests": {"a": int(served[a]["request_id"].nunique()), "b": int(served[b]["request_id"].nunique())},
        "quality": quality.to_dict(),
        "latency": compare_latency(latency[a], latency[b], a, b, alpha).to_dict(),
    }


def _correct(rows: pd.DataFrame) -> list[bool]:
    truth, guess = performance.as_classes(rows["label"].tolist(), rows["prediction"].tolist())
    return [t == g for t, g in zip(truth, guess, strict=True)]


def _absolute_errors(rows: pd.DataFrame) -> list[float]:
    try:
        truth = np.asarray(rows["label"].tolist(), dtype=np.float64)
        guess = np.asarray(rows["prediction"].tolist(), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"regression needs numeric labels and predictions ({exc}): ask for task=classification") from exc
    return [float(e) for e in np.abs(truth - guess)]


def _latencies(served: pd.DataFrame) -> list[float]:
    """One latency per answered request (a multi-row request has one latency, repeated on each row)."""
    if served.empty:
        return []
    answered = served[served["status"] < 400].drop_duplicates("request_id")
    return [float(v) for v in answered["latency_ms"]]


def ranked_versions(frame: pd.DataFrame, routed: Sequence[int]) -> list[int]:
    """Versions by requests in the window, most first: those of the current routes, else every one served."""
    if frame.empty:
        return []
    traffic = frame.dropna(subset=["version"]).groupby("version")["request_id"].nunique()
    counts = {int(v): int(n) for v, n in traffic.items()}
    candidates = [v for v in dict.fromkeys(routed) if counts.get(v, 0) > 0]
    if len(candidates) < 2:
        candidates = list(counts)
    return sorted(candidates, key=lambda v: (-counts[v], v))


def pick_pair(frame: pd.DataFrame, routed: Sequence[int], a: int | None = None, b: int | None = None) -> tuple[int, int]:
    """``a`` and ``b`` as given; a missing one is the busiest other version (``ranked_versions``)."""
    if a is not None and b is not None:
        return a, b
    ranked = ranked_versions(frame, routed)
    others = [v for v in ranked if v not in (a, b)]
    needed = (a is None) + (b is None)
    if len(others) < needed:
        seen = ", ".join(str(v) for v in ranked) or "none"
        raise InvalidInput(
            f"an A/B comparison needs requests from two versions; the window holds requests of version(s) {seen}: "
            "name the versions (a and b), widen the window, or split traffic between two versions"
        )
    if a is None:
        a = others.pop(0)
    if b is None:
        b = others.pop(0)
    return a, b


def endpoint_ab(
    session: Session,
    caller: Caller,
    log_url: str,
    namespace: str,
    endpoint: str,
    window: Window,
    *,
    end_ms: int,
    a: int | None = None,
    b: int | None = None,
    alpha: float = ALPHA,
    task: str | None = None,
) -> dict[str, Any]:
    """``compare`` over the window of an endpoint's prediction log; a and b default to ``default_pair``."""
    check_alpha(alpha)
    performance.check_task(task)
    found = feedback.labelled_window(session, caller, log_url, namespace, endpoint, window, end_ms=end_ms)
    a, b = pick_pair(found.frame, found.routed, a, b)
    hint = performance.task_from_signature(found.signatures.get(a)) or performance.task_from_signature(found.signatures.get(b))
    result = compare(found.frame, a, b, task=task, alpha=alpha, hint=hint)
    return {
        "namespace": namespace,
        "endpoint": endpoint,
        "model": found.model,
        "window": window.to_dict(),
        "end_ms": end_ms,
        **result,
    }
