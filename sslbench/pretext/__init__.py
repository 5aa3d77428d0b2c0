"""Pretext tasks: one file each, on the shared contract in ``base``."""

from sslbench.pretext import (  # noqa: F401  (register)
    barlow_twins, byol, colorme, dino, imagenet, instance_aware, jigsaw, mae, moco_v2, rotnet, scratch, simclr)
from sslbench.pretext.base import Pretext

__all__ = ["Pretext"]
