"""Speed goals of data work that unit tests used to assert: reading the shared MoNuSeg training set
(goal: under 60 s) and building the Jigsaw permutation set (goal: under 2 s).
Run: python -m pytest benchmarks/test_data_speed.py --benchmark-only"""

import warnings
from pathlib import Path

import pytest

from sslbench.data.io import DataWarning
from sslbench.data.monuseg import MoNuSeg
from sslbench.pretext.jigsaw import permutation_set

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.mark.skipif(not (SHARED_DATA / "monuseg2018_train").is_dir(), reason="shared MoNuSeg data absent")
def test_read_monuseg_training_set(benchmark):
    def read():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            return MoNuSeg(SHARED_DATA / "monuseg2018_train").load()

    samples = benchmark.pedantic(read, rounds=1, iterations=1)
    assert len(samples) == 30 and benchmark.stats.stats.max < 60


def test_jigsaw_permutation_set(benchmark):
    def build():
        permutation_set.cache_clear()
        return permutation_set(100)

    assert len(benchmark.pedantic(build, rounds=3, iterations=1)) == 100 and benchmark.stats.stats.max < 2.0
