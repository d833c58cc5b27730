"""Wilson and bootstrap intervals: known values, coverage, reproducibility."""

from __future__ import annotations

import math

import numpy as np
import pytest

from semcomm import stats


def test_wilson_known_values() -> None:
    # Reference values: Wilson (1927) formula evaluated independently (z = 1.959964).
    lo, hi = stats.wilson_interval(5, 10)
    assert lo == pytest.approx(0.236593, abs=1e-5) and hi == pytest.approx(0.763407, abs=1e-5)
    lo, hi = stats.wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.277530, abs=1e-5)
    lo, hi = stats.wilson_interval(10, 10)
    assert hi == 1.0 and lo == pytest.approx(0.722470, abs=1e-5)
    assert all(math.isnan(v) for v in stats.wilson_interval(0, 0))


def test_wilson_rejects_bad_counts() -> None:
    with pytest.raises(ValueError, match="successes"):
        stats.wilson_interval(11, 10)
    with pytest.raises(ValueError, match="confidence"):
        stats.wilson_interval(1, 10, confidence=1.5)


def test_wilson_coverage() -> None:
    """Coverage of the 95 % interval for p=0.1, n=100 over 2000 trials: within 5 SE."""
    rng = np.random.default_rng(7)
    p, n, trials = 0.1, 100, 2000
    hits = 0
    for k in rng.binomial(n, p, trials):
        lo, hi = stats.wilson_interval(int(k), n)
        hits += lo <= p <= hi
    se = math.sqrt(0.95 * 0.05 / trials)
    assert abs(hits / trials - 0.95) < 5 * se + 0.01  # Wilson is near-nominal here


def test_bootstrap_mean_interval_width_and_seed() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 2.0, 400)
    a = stats.bootstrap_mean_interval(x, n_boot=2000, seed=5)
    b = stats.bootstrap_mean_interval(x, n_boot=2000, seed=5)
    assert a == b  # same seed, same numbers
    assert a != stats.bootstrap_mean_interval(x, n_boot=2000, seed=6)
    lo, hi = a
    assert lo < x.mean() < hi
    expected = 2 * 1.96 * x.std(ddof=1) / math.sqrt(x.size)
    # The percentile width estimates the normal width; its own sampling error is a few %.
    assert (hi - lo) == pytest.approx(expected, rel=0.1)


def test_bootstrap_ignores_non_finite_and_handles_empty() -> None:
    lo, hi = stats.bootstrap_mean_interval(np.array([1.0, np.inf, np.nan, 1.0]))
    assert lo == hi == 1.0
    assert all(math.isnan(v) for v in stats.bootstrap_mean_interval(np.array([np.nan])))


def test_bootstrap_ratio_is_pooled() -> None:
    """The ratio statistic pools counts over images before dividing."""
    num = np.array([[1.0, 0.0], [9.0, 5.0]])
    den = np.array([[10.0, 0.0], [10.0, 10.0]])
    captured = []

    def spy(w: np.ndarray) -> np.ndarray:
        captured.append(w)
        return np.zeros(len(w))

    stats.bootstrap_interval(spy, 2, n_boot=10, seed=0)
    assert captured[0].shape == (10, 2) and np.all(captured[0].sum(axis=1) == 2)
    lo, hi = stats.bootstrap_ratio_interval(num, den, n_boot=500, seed=0)
    # Resamples: {0,0} -> 0.1, {1,1} -> (0.9 + 0.5)/2 = 0.7, mixed -> (0.5 + 0.5)/2 = 0.5
    assert lo == pytest.approx(0.1) and hi == pytest.approx(0.7)
    with pytest.raises(ValueError, match="must be equal"):
        stats.bootstrap_ratio_interval(num, den[:1])


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_wilson_equals_the_closed_form(confidence: float) -> None:
    """scipy's Wilson interval (what we call) against Wilson's formula written out,
    at every k of n = 37 and three confidence levels."""
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    n = 37
    for k in range(n + 1):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        lo, hi = stats.wilson_interval(k, n, confidence)
        assert lo == pytest.approx(max(0.0, centre - half), abs=1e-12)
        assert hi == pytest.approx(min(1.0, centre + half), abs=1e-12)
    assert stats.wilson_interval(0, n, confidence)[0] == 0.0  # prints as 0 in summary.csv
