"""Metric speed: the one-pass overlap table against the per-nucleus reference, on a 1000×1000 map
with ~600 nuclei (MoNuSeg-sized). Run: python -m pytest benchmarks/test_metrics_speed.py --benchmark-only"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sslbench.eval.metrics import all_metrics

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the reference lives with the tests
from reference_metrics import random_label_pair, reference_metrics  # noqa: E402

GROUP = "metrics 1000x1000, ~600 nuclei"


@pytest.fixture(scope="module")
def case():
    gt, pred = random_label_pair(np.random.default_rng(0), size=1000, n_nuclei=600)
    start = time.perf_counter()
    expected = reference_metrics(gt, pred)
    return gt, pred, expected, time.perf_counter() - start


@pytest.mark.benchmark(group=GROUP)
def test_fast_all_metrics(benchmark, case):
    gt, pred, expected, reference_seconds = case
    assert benchmark(all_metrics, gt, pred) == expected
    if not benchmark.disabled:
        assert benchmark.stats.stats.min * 20 <= reference_seconds, "goal: at least 20x the reference"


@pytest.mark.benchmark(group=GROUP)
def test_reference_per_nucleus(benchmark, case):
    gt, pred, expected, _ = case
    assert benchmark.pedantic(reference_metrics, args=(gt, pred), rounds=3, iterations=1) == expected
