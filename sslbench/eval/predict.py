"""Whole-image inference with overlapping tiles (bounded memory on 1000² images)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sslbench.data.base import image_tensor
from sslbench.engine.accel import autocast
from sslbench.pretext.base import normalize

_ALIGN = 32  # encoder stride: U-Net skips need sides divisible by it


def _starts(length: int, tile: int, stride: int) -> list[int]:
    starts = list(range(0, max(length - tile, 0) + 1, stride))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


@torch.no_grad()
def predict_probabilities(model: nn.Module, image: np.ndarray, device: torch.device,
                          tile: int = 512, overlap: int = 64) -> np.ndarray:
    """(H, W, 3) uint8 -> (classes, H, W) float32 softmax, tiles averaged where they overlap."""
    model.eval()
    height, width = image.shape[:2]
    tile = -(-min(tile, max(height, width)) // _ALIGN) * _ALIGN
    x = image_tensor(image, device)[None]
    pad_h, pad_w = max(0, tile - height), max(0, tile - width)
    x = F.pad(normalize(x), (0, pad_w, 0, pad_h), mode="replicate")
    full_h, full_w = x.shape[-2:]
    total = weight = None
    for top in _starts(full_h, tile, tile - overlap):
        for left in _starts(full_w, tile, tile - overlap):
            with autocast(device):
                logits = model(x[..., top:top + tile, left:left + tile]).float()
            if total is None:
                total = torch.zeros((logits.shape[1], full_h, full_w), device=device)
                weight = torch.zeros((1, full_h, full_w), device=device)
            total[:, top:top + tile, left:left + tile] += logits[0].softmax(0)
            weight[:, top:top + tile, left:left + tile] += 1
    return (total / weight)[:, :height, :width].cpu().numpy()
