"""The one in-memory form every dataset reader produces."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class Sample:
    name: str
    image: np.ndarray  # (H, W, 3) uint8 RGB
    labels: np.ndarray | None  # (H, W) int32 instance ids, 0 = background; None = unlabelled
    source: str = ""  # where it came from, for messages
    annotation: str = ""  # the file its labels were read from ("" for unlabelled or generated data)
    classes: np.ndarray | None = None  # (H, W) int32 class per pixel, 0 = background; None = no classes
    ignore: np.ndarray | None = None  # (H, W) bool, True = ambiguous area, left out of scoring
    meta: dict[str, str] = field(default_factory=dict)  # what the reader knows, e.g. tissue, patient

    @property
    def labelled(self) -> bool:
        return self.labels is not None


def image_tensor(image: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """(H, W, 3) uint8 array -> contiguous (3, H, W) uint8 tensor on ``device``; read-only arrays
    (memory-mapped or decoded files) are copied, since torch cannot share them."""
    return torch.from_numpy(np.require(image, requirements=["W"])).permute(2, 0, 1).contiguous().to(device)
