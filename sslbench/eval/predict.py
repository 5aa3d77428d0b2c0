"""Whole-image inference with overlapping tiles (bounded memory on 1000² images)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sslbench.data.base import image_tensor
from sslbench.data.image import normalize

_ALIGN = 32  # encoder stride: U-Net skips need sides divisible by it


def _full_precision(device: torch.device) -> AbstractContextManager:
    return nullcontext()


def _alone(value: object) -> list:
    return [value]


@dataclass(frozen=True)
class Inference:
    """How this process predicts, given by the caller (eval knows no training engine or process group):
    ``autocast(device)``, the precision context of every forward pass; for sharded evaluation this
    process's ``rank`` of ``world_size`` processes and ``gather(value)``, every process's value in rank
    order. The default: one process, full precision."""

    autocast: Callable[[torch.device], AbstractContextManager] = _full_precision
    rank: int = 0
    world_size: int = 1
    gather: Callable[[object], list] = _alone


def _starts(length: int, tile: int, stride: int) -> list[int]:
    starts = list(range(0, max(length - tile, 0) + 1, stride))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


@torch.no_grad()
def predict_probabilities(model: nn.Module, image: np.ndarray, device: torch.device, tile: int = 512,
                          overlap: int = 64, flips: bool = False, inference: Inference = Inference(),
                          on_tile: Callable[[int, int], None] | None = None) -> np.ndarray:
    """(H, W, 3) uint8 -> (classes, H, W) float32 softmax, tiles averaged where they overlap; with
    ``flips`` each tile's softmax is also averaged over its horizontal, vertical and double flip.
    Every forward pass runs under ``inference.autocast``; ``on_tile(done, total)`` follows each tile."""
    model.eval()
    height, width = image.shape[:2]
    tile = -(-min(tile, max(height, width)) // _ALIGN) * _ALIGN
    x = image_tensor(image, device)[None]
    pad_h, pad_w = max(0, tile - height), max(0, tile - width)
    x = F.pad(normalize(x), (0, pad_w, 0, pad_h), mode="replicate")
    full_h, full_w = x.shape[-2:]
    total = weight = None
    corners = [(top, left) for top in _starts(full_h, tile, tile - overlap)
               for left in _starts(full_w, tile, tile - overlap)]
    for done, (top, left) in enumerate(corners, start=1):
        probs = _tile_probabilities(model, x[..., top:top + tile, left:left + tile], device, flips,
                                    inference.autocast)
        if total is None:
            total = torch.zeros((probs.shape[0], full_h, full_w), device=device)
            weight = torch.zeros((1, full_h, full_w), device=device)
        total[:, top:top + tile, left:left + tile] += probs
        weight[:, top:top + tile, left:left + tile] += 1
        if on_tile is not None:
            on_tile(done, len(corners))
    return (total / weight)[:, :height, :width].cpu().numpy()


def _tile_probabilities(model: nn.Module, tile: torch.Tensor, device: torch.device, flips: bool,
                        autocast: Callable[[torch.device], AbstractContextManager]) -> torch.Tensor:
    """(1, 3, h, w) -> (classes, h, w) softmax; the flipped views run as one batch."""
    views = [(), (-1,), (-2,), (-2, -1)] if flips else [()]
    batch = torch.cat([tile.flip(dims) if dims else tile for dims in views])
    with autocast(device):
        probs = model(batch).float().softmax(1)
    return torch.stack([p.flip(dims) if dims else p for p, dims in zip(probs, views)]).mean(0)
