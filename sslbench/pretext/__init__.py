"""Pretext tasks: one file each, on the shared contract in ``base``."""

from sslbench.pretext import colorme, imagenet, instance_aware, jigsaw, rotnet, scratch  # noqa: F401  (register)
from sslbench.pretext.base import Pretext

__all__ = ["Pretext"]
