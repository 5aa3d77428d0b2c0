"""SimCLR: Chen, Kornblith, Norouzi, Hinton, ICML 2020 — two views of a crop must find each other
among all views in the batch.

Two random views per crop (``views.py``); encoder -> global average pool h -> projector g (Linear,
BatchNorm, ReLU, Linear to ``proj_dim``, as in their code) -> z. NT-Xent (their Eq. 1):
ℓ(i, j) = −log exp(sim(z_i, z_j)/τ) / Σ_{k≠i} exp(sim(z_i, z_k)/τ), sim = cosine, averaged over all 2N
views. τ = 0.5, their setting for small batches (CIFAR-10; 0.1 at ImageNet batch 4096). Both views go
through the encoder in one pass, as in their code (one set of BatchNorm statistics).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from sslbench.pretext.base import full_precision
from sslbench.pretext.siamese import TwoViewPretext, gather, mlp, rank
from sslbench.registry import PRETEXTS


@full_precision
def nt_xent(z: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent of this process's (2N, D) embeddings (views of crop i at i and N + i) against every
    process's; the mean over processes is the loss of the whole batch."""
    z = F.normalize(z, dim=1)
    count = z.shape[0]
    rows = torch.arange(count, device=z.device)
    columns = rows + rank() * count  # this process's views among everyone's
    logits = (z @ gather(z).T / temperature).index_put((rows, columns), torch.tensor(float("-inf"), device=z.device))
    return F.cross_entropy(logits, (rows + count // 2) % count + rank() * count)


@PRETEXTS.register_module()
class SimCLR(TwoViewPretext):
    """Contrastive views, NT-Xent over the batch: Chen et al. 2020."""

    def __init__(self, encoder_channels: Sequence[int], crop: int = 768, proj_dim: int = 128,
                 temperature: float = 0.5, views: dict | None = None):
        super().__init__(encoder_channels, crop, views)
        if temperature <= 0:
            raise ValueError(f"simclr needs temperature > 0, got {temperature}.")
        self.temperature = temperature
        self.projector = mlp([self.width, self.width, proj_dim])

    def forward(self, encoder, batch):
        return {"loss": nt_xent(self.projector(self.features(encoder, batch["views"])), self.temperature)}
