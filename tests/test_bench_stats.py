"""The statistics leaderboards word their comparisons by: intervals that keep their coverage at the
sizes the tables have (3 seeds, 14 test images), power, and verdicts."""

import numpy as np
import pytest

from sslbench.bench.stats import describe, power, seeds_to_resolve, t_interval, verdict


@pytest.mark.parametrize("size", [3, 4, 14])
def test_t_interval_keeps_95_percent_coverage_at_table_sizes(size):
    rng = np.random.default_rng(size)
    covered = sum(low < 1.0 < high for low, high in (t_interval(rng.normal(1.0, 2.0, size)) for _ in range(4000)))
    assert 0.935 <= covered / 4000 <= 0.965
    # a percentile bootstrap over as few values covers clearly less: the reason it was dropped
    boot = 0
    for _ in range(1000):
        values = rng.normal(1.0, 2.0, size)
        means = values[rng.integers(size, size=(1000, size))].mean(1)
        low, high = np.percentile(means, [2.5, 97.5])
        boot += low < 1.0 < high
    assert boot / 1000 < 0.93


def test_power_and_seeds_match_the_textbook_paired_t_test():
    # effect size 1 (mean = sd): 10 pairs give 80 % power at alpha 0.05, two-sided
    assert power(1.0, 1.0, 10) == pytest.approx(0.803, abs=0.002)
    assert seeds_to_resolve(1.0, 1.0) == 10 and seeds_to_resolve(0.5, 1.0) == 34
    assert power(1.0, 1.0, 20) > power(1.0, 1.0, 10) > power(0.5, 1.0, 10)
    assert seeds_to_resolve(0.001, 5.0) is None  # out of reach


def test_verdicts_claim_equivalence_only_against_a_named_margin():
    assert t_interval([1.0]) is None and verdict([1.0]) == "one seed: no interval"
    assert verdict([2.0, 2.5, 3.1]) == "difference detected"
    small = [0.1, -0.2, 0.05]
    assert verdict(small) == "no difference detected"  # no margin named: never "equivalent"
    assert verdict(small, margin=1.0) == "equivalent within ±1"
    assert verdict(small, margin=0.1) == "no difference detected"
    text = describe([0.4, -1.5, 2.3])
    assert text.startswith("+0.40 [-4.32, +5.12]: no difference detected; power 0.06, ")
    assert text.endswith(" seeds for 80 %")
