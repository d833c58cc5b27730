"""Confidence intervals: Wilson for error rates, percentile bootstrap for image metrics.

Both return a two-sided interval at ``confidence`` (default 95 %). The bootstrap
resamples *images* (with replacement) and recomputes the statistic on each resample,
so a point statistic such as mIoU, which pools confusion counts over the images,
gets an interval that respects the pooling (weights form, see :func:`bootstrap_weights`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist

import numpy as np


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence {confidence!r} must be in (0, 1)")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson 1927; Agresti & Coull 1998),
    computed by ``scipy.stats.binomtest(k, n).proportion_ci(method="wilson")``.

    Input
    -----
    successes : int   events counted (e.g. block errors), 0 <= successes <= trials
    trials : int      Bernoulli trials (e.g. code blocks); 0 gives (nan, nan)

    Output
    ------
    (lo, hi) : floats in [0, 1]; lo is exactly 0 at zero events (hi exactly 1 at
    ``successes == trials``), so a zero-error point has an upper bound to plot.
    """
    from scipy.stats import binomtest

    if trials < 0 or not 0 <= successes <= max(trials, 0):
        raise ValueError(f"need 0 <= successes ({successes}) <= trials ({trials})")
    _z(confidence)  # validates confidence with our one-line message
    if trials == 0:
        return math.nan, math.nan
    ci = binomtest(int(successes), int(trials)).proportion_ci(
        confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def bootstrap_weights(n: int, n_boot: int, seed: int) -> np.ndarray:
    """Resampling weights: [n_boot, n] int64, each row multinomial(n, 1/n) counts.

    Row b says how often each of the n images appears in resample b, so any pooled
    statistic is ``f(weights[b] @ per_image_counts)``.
    """
    if n < 1 or n_boot < 1:
        raise ValueError(f"bootstrap needs n >= 1 and n_boot >= 1, got n={n}, n_boot={n_boot}")
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot)


def bootstrap_interval(
    statistic: Callable[[np.ndarray], np.ndarray],
    n: int,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of a statistic of n images (Efron & Tibshirani 1993, 13.3).

    Input
    -----
    statistic : callable, weights [B, n] float64 -> values [B]
        The statistic recomputed under resampling weights (see :func:`bootstrap_weights`);
        NaN values (e.g. mIoU of a resample with no labelled pixels) are dropped.
    n : number of images; n_boot : resamples; seed : makes the interval reproducible

    Output
    ------
    (lo, hi) : floats; (nan, nan) when every resample is NaN.
    """
    _z(confidence)  # validates confidence
    weights = bootstrap_weights(n, n_boot, seed).astype(np.float64)
    values = np.asarray(statistic(weights), dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan, math.nan
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(values, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def bootstrap_mean_interval(
    values: np.ndarray, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` [n] (non-finite dropped)."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan
    return bootstrap_interval(lambda w: w @ x / x.size, x.size, n_boot, confidence, seed)


def bootstrap_ratio_interval(
    numerators: np.ndarray,
    denominators: np.ndarray,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Interval of a pooled ratio such as mIoU, resampling images.

    Input
    -----
    numerators, denominators : [n, C] per-image counts (e.g. intersection and union
        pixels per class). The statistic is the mean over classes c with a non-zero
        pooled denominator of sum_i num[i, c] / sum_i den[i, c].
    """
    num = np.asarray(numerators, dtype=np.float64)
    den = np.asarray(denominators, dtype=np.float64)
    if num.shape != den.shape or num.ndim != 2:
        raise ValueError(
            f"numerators {num.shape} and denominators {den.shape} must be equal [n, C]")

    def pooled(w: np.ndarray) -> np.ndarray:
        top, bottom = w @ num, w @ den
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1.0), np.nan)
        counted = np.isfinite(ratio).sum(axis=1)
        return np.where(counted > 0, np.nansum(ratio, axis=1) / np.maximum(counted, 1), np.nan)

    return bootstrap_interval(pooled, num.shape[0], n_boot, confidence, seed)
