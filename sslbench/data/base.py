"""The one in-memory form every dataset reader produces."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Sample:
    name: str
    image: np.ndarray  # (H, W, 3) uint8 RGB
    labels: np.ndarray | None  # (H, W) int32 instance ids, 0 = background; None = unlabelled
    source: str = ""  # where it came from, for messages

    @property
    def labelled(self) -> bool:
        return self.labels is not None
