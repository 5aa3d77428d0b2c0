"""Data: readers, the synthetic default, 3-class targets, splits."""

from sslbench.data import (  # noqa: F401  (register the datasets)
    consep, folder, lizard, monusac, monuseg, nuinsseg, pannuke, synthetic, tnbc, unlabeled,
)
from sslbench.data.base import Sample
from sslbench.errors import DataError

__all__ = ["DataError", "Sample"]
