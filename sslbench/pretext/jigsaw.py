"""Jigsaw puzzles: Noroozi & Favaro, ECCV 2016 — name the permutation that shuffled 3×3 tiles.

A ``crop``² crop is split into a 3×3 grid of cells of side crop // 3; from each cell a tile of side
cell − round(jitter × cell) is cut at a random offset (the paper: 64² tiles from 75² cells, jitter
≈ 0.15), so matching edges cannot give the answer away. The nine tiles are shuffled by one of P fixed
permutations; puzzle position i holds the tile of cell ``perm[i]`` and the label is the permutation's
index. Each tile goes through the shared encoder on its own and is standardised on its own (as in the
paper, against low-level shortcuts); pooled features -> per-tile fc6 -> concatenated in puzzle order ->
fc7 -> fc8 over P, cross-entropy.

The permutation set is Noroozi & Favaro's greedy selection by Hamming distance over all 9!
permutations, in its max-min form: each new permutation maximises the minimum distance to those
already chosen (their Algorithm 1 maximises the average; max-min also keeps the closest pair apart).
It starts from a fixed seed, so every run and machine uses the same set; it is cached per process.

Departures from Noroozi & Favaro (listed in docs/deviations.md):

* P = 100 permutations by default where they train with 1000: Xie et al. do not say which P their
  Jigsaw baseline used, and 100 classes keep the fc8 head small for 30 source images and short
  schedules while the closest two puzzles still differ in 6 of 9 tiles (1000: in 5).
  ``--set pretext.num_permutations=1000`` gives their count (2.4 s to build on 2 CPU cores).
* Max-min instead of average Hamming distance (above).
* The shared encoder is the segmentation ResNet, not their AlexNet-style context-free network, and
  the tile size follows ``crop`` (their 64² tiles in 75² cells of a 225² crop).
* On a ViT the tile is cut down to whole patches (jitter grows), since timm would pad a partial
  patch: the smoke preset's 36² tiles would be padded to 3×3 patches of 16 (44 % padding); cut, 2×2.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sslbench.errors import ConfigError
from sslbench.pretext.base import Pretext, global_pool, normalize, random_crops
from sslbench.registry import PRETEXTS

GRID = 3
TILES = GRID * GRID
_SEED = 0


@functools.lru_cache(maxsize=4)
def permutation_set(count: int) -> tuple[tuple[int, ...], ...]:
    """``count`` permutations of the 9 tiles, greedily maximising the minimum pairwise Hamming distance."""
    if not 2 <= count <= math.factorial(TILES):
        raise ValueError(f"jigsaw needs between 2 and 9! = {math.factorial(TILES)} permutations, got {count}.")
    # (9, 9!): row r holds every permutation's entry r, contiguous, so a distance pass is 9 vector ops
    table = np.array(list(itertools.permutations(range(TILES))), dtype=np.uint8).T.copy()

    def distances(j: int) -> np.ndarray:
        same = np.zeros(table.shape[1], dtype=np.uint8)
        for row in table:
            same += row == row[j]
        return TILES - same

    chosen = [int(np.random.default_rng(_SEED).integers(table.shape[1]))]
    nearest = distances(chosen[0])  # each candidate's distance to its closest chosen permutation
    while len(chosen) < count:
        chosen.append(int(nearest.argmax()))
        np.minimum(nearest, distances(chosen[-1]), out=nearest)
    return tuple(tuple(int(v) for v in table[:, j]) for j in chosen)


@PRETEXTS.register_module()
class Jigsaw(Pretext):
    """Jigsaw puzzles (3×3 tiles, P max-Hamming permutations): Noroozi & Favaro 2016."""

    def __init__(self, encoder_channels: Sequence[int], crop: int = 768, num_permutations: int = 100,
                 jitter: float = 0.15, embed_dim: int = 512, hidden_dim: int = 1024):
        super().__init__(encoder_channels)
        if crop < TILES or not 0 <= jitter < 1:
            raise ValueError(f"jigsaw needs crop >= 9 and jitter in [0, 1), got crop={crop}, jitter={jitter}.")
        self.crop = self.min_image_size = crop
        self.cell = crop // GRID
        self.tile = self.cell - round(jitter * self.cell)
        self.permutations = permutation_set(num_permutations)
        self.fc6 = nn.Sequential(nn.Linear(self.encoder_channels[-1], embed_dim), nn.ReLU(inplace=True))
        self.classifier = nn.Sequential(nn.Linear(TILES * embed_dim, hidden_dim), nn.ReLU(inplace=True),
                                        nn.Linear(hidden_dim, num_permutations))

    def init_encoder(self, encoder):
        patch = getattr(encoder, "patch_size", None)  # a ViT's; convolutions take any tile
        if patch:
            if self.cell < patch:
                raise ConfigError(f"jigsaw's cells (pretext.crop // 3 = {self.cell} px) are smaller than the "
                                  f"backbone's {patch}-px patches: set pretext.crop to at least {GRID * patch}.")
            self.tile = max(patch, self.tile // patch * patch)

    def sample(self, images, batch_size, generator):
        crops, boxes = random_crops(images, batch_size, self.crop, generator)
        labels = torch.randint(0, len(self.permutations), (batch_size,), generator=generator)
        # offsets[b, c] = (dy, dx) of cell c's tile inside its cell
        offsets = torch.randint(0, self.cell - self.tile + 1, (batch_size, TILES, 2), generator=generator)
        tiles, size = [], self.tile
        for crop, label, cell_offsets in zip(crops, labels.tolist(), offsets.tolist()):
            for cell in self.permutations[label]:
                y = cell // GRID * self.cell + cell_offsets[cell][0]
                x = cell % GRID * self.cell + cell_offsets[cell][1]
                tiles.append(crop[:, y:y + size, x:x + size])
        return {"tiles": torch.stack(tiles).view(batch_size, TILES, 3, size, size),
                "label": labels.to(crops.device), "boxes": boxes, "offsets": offsets}

    def forward(self, encoder, batch):
        tiles = batch["tiles"]
        x = normalize(tiles.flatten(0, 1))
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) / (x.std(dim=(1, 2, 3), keepdim=True) + 1e-5)
        features = self.fc6(global_pool(encoder, x)).view(tiles.shape[0], -1)
        return {"loss": F.cross_entropy(self.classifier(features), batch["label"])}
