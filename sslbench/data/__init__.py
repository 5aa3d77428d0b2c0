"""Data: readers, the synthetic default, 3-class targets, splits."""

from sslbench.data import synthetic  # noqa: F401  (registers the dataset)
from sslbench.data.base import Sample
from sslbench.errors import DataError

__all__ = ["DataError", "Sample"]
