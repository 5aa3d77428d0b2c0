"""Data: readers, the synthetic default, 3-class targets, splits."""

from sslbench.data import folder, monuseg, synthetic, unlabeled  # noqa: F401  (register the datasets)
from sslbench.data.base import Sample
from sslbench.errors import DataError

__all__ = ["DataError", "Sample"]
