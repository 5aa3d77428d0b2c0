"""The statistics every comparison in a leaderboard is worded by: Student-t intervals of paired
differences, the power a comparison had, the seeds that would resolve it, and a verdict that claims
equivalence only against a margin named in advance (the suite's ``equivalence_margin``)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from scipy.stats import nct
from scipy.stats import t as student_t

MAX_SEEDS = 1000  # beyond this "seeds to resolve" is reported as out of reach


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float] | None:
    """Student-t interval of the mean (df = n − 1, sample std); None below two values. Over 3 seeds, or
    over the 14 MoNuSeg test images, it keeps its coverage for roughly normal differences, where a
    percentile bootstrap over so few values is too narrow (about 80 % coverage over 4 values)."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    half = student_t.ppf(0.5 + level / 2, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean - half, mean + half


def power(mean: float, sd: float, n: int, alpha: float = 0.05) -> float:
    """Chance that a two-sided paired t-test over ``n`` values detects a true difference ``mean`` whose
    values scatter with sample std ``sd`` (noncentral t)."""
    if n < 2:
        return 0.0
    if sd == 0:
        return 1.0 if mean else alpha
    critical = student_t.ppf(1 - alpha / 2, n - 1)
    shift = mean / (sd / math.sqrt(n))
    return float(nct.sf(critical, n - 1, shift) + nct.cdf(-critical, n - 1, shift))


def seeds_to_resolve(mean: float, sd: float, target: float = 0.8) -> int | None:
    """The fewest paired values (seeds) at which the observed difference would be detected with
    ``target`` power, taking the observed mean and std as the truth; None past MAX_SEEDS."""
    return next((n for n in range(2, MAX_SEEDS + 1) if power(mean, sd, n) >= target), None)


def verdict(values: Sequence[float], margin: float | None = None) -> str:
    """'difference detected' when the 95 % interval excludes 0; 'equivalent within ±margin' when the
    90 % interval (two one-sided tests at 5 %) lies inside ±margin; else 'no difference detected'."""
    interval = t_interval(values)
    if interval is None:
        return "one seed: no interval"
    if interval[0] > 0 or interval[1] < 0:
        return "difference detected"
    low, high = t_interval(values, 0.90)
    if margin is not None and -margin < low and high < margin:
        return f"equivalent within ±{margin:g}"
    return "no difference detected"


def mean_and_interval(values: Sequence[float]) -> str:
    """"+0.40 [−1.90, +2.70]": the mean and its 95 % t-interval (the mean alone below two values)."""
    interval = t_interval(values)
    return f"{statistics.fmean(values):+.2f}" + ("" if interval is None else f" [{interval[0]:+.2f}, {interval[1]:+.2f}]")


def describe(values: Sequence[float], margin: float | None = None) -> str:
    """One comparison in words: mean [95 % interval], verdict, and for an unresolved one the power it
    had and the seeds that would resolve it ("+0.40 [−1.90, +2.70]: no difference detected; power 0.09,
    ~52 seeds for 80 %")."""
    interval = t_interval(values)
    text = f"{mean_and_interval(values)}: {verdict(values, margin)}"
    if interval is not None and interval[0] <= 0 <= interval[1]:
        mean, sd = statistics.fmean(values), statistics.stdev(values)
        needed = seeds_to_resolve(mean, sd)
        text += (f"; power {power(mean, sd, len(values)):.2f}, "
                 + (f"{needed} seeds for 80 %" if needed else f"over {MAX_SEEDS} seeds for 80 %"))
    return text
