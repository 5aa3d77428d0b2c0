"""Pretext tasks: one file each, on the shared contract in ``base``."""

from sslbench.pretext import instance_aware, scratch  # noqa: F401  (register)
from sslbench.pretext.base import Pretext

__all__ = ["Pretext"]
