"""Pure statistics shared by the summary table, ``compare`` and the dashboard.

Timing samples are skewed (a run can only be slowed down by the machine, never sped
up), so location is the median and spread the inter-quartile range, not mean and
standard deviation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as _scipy_stats


def median(samples: Sequence[float]) -> float:
    return float(np.median(samples))


def quartiles(samples: Sequence[float]) -> tuple[float, float, float]:
    """25th, 50th and 75th percentiles (linear interpolation): the band around the median."""
    q1, q2, q3 = np.percentile(samples, [25, 50, 75])
    return float(q1), float(q2), float(q3)


def iqr(samples: Sequence[float]) -> float:
    """Inter-quartile range (75th minus 25th percentile, linear interpolation)."""
    q1, _, q3 = quartiles(samples)
    return q3 - q1


def ratio_with_spread(
    numerator: Sequence[float], denominator: Sequence[float]
) -> tuple[float, float, float]:
    """Ratio of medians with a rough 50% interval ``(ratio, low, high)``.

    The interval divides the numerator's quartiles by the denominator's opposite
    quartiles: a conservative band that needs no distributional assumption and is
    wide exactly when either side is noisy.
    """
    n25, n50, n75 = np.percentile(numerator, [25, 50, 75])
    d25, d50, d75 = np.percentile(denominator, [25, 50, 75])
    return float(n50 / d50), float(n25 / d75), float(n75 / d25)


def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Mann-Whitney U p-value: could ``a`` and ``b`` come from one distribution?

    Rank-based, so it assumes no normality and is robust to outliers; with fewer than
    two samples on a side no test is possible and the p-value is 1.
    """
    if len(a) < 2 or len(b) < 2:
        return 1.0
    if np.ptp(np.concatenate([a, b])) == 0:
        return 1.0
    return float(_scipy_stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)


def geometric_mean(values: Sequence[float]) -> float:
    """Geometric mean: the right average of ratios (a 2x and a 0.5x cancel out)."""
    values = [v for v in values if v > 0 and math.isfinite(v)]
    return float(math.exp(np.mean(np.log(values)))) if values else float("nan")


def error_metrics(actual: np.ndarray, expected: np.ndarray, prefix: str = "") -> dict[str, float]:
    """Maximum and mean absolute error and relative L2 error of ``actual`` against ``expected``."""
    diff = np.asarray(actual, np.float64) - np.asarray(expected, np.float64)
    norm = float(np.linalg.norm(np.asarray(expected, np.float64)))
    return {
        f"{prefix}max_abs_err": float(np.max(np.abs(diff))) if diff.size else 0.0,
        f"{prefix}mean_abs_err": float(np.mean(np.abs(diff))) if diff.size else 0.0,
        f"{prefix}rel_l2_err": float(np.linalg.norm(diff) / norm) if norm > 0 else float("nan"),
    }
