"""Barlow Twins: Zbontar, Jing, Misra, LeCun, Deny, ICML 2021 — the cross-correlation of two views'
embeddings, dimension by dimension, must be the identity.

Encoder -> pool -> projector (three Linear layers without bias to ``dim`` = 8192, BatchNorm and ReLU
between, as in their code). Each embedding dimension is standardised over the batch (their
BatchNorm without affine); C = z1ᵀ z2 / N; loss (their Eq. 1) Σ_i (1 − C_ii)² + λ Σ_i Σ_{j≠i} C_ij²,
λ = 5·10⁻³. Under torchrun the statistics and C cover every process's embeddings. Each view goes
through the networks on its own, as in their code (BatchNorm statistics per view).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from sslbench.pretext.base import full_precision
from sslbench.pretext.siamese import TwoViewPretext, gather, mlp
from sslbench.registry import PRETEXTS


@full_precision
def barlow_twins_loss(z1: torch.Tensor, z2: torch.Tensor, lambd: float) -> torch.Tensor:
    """Over every process's rows, so each process returns the loss of the whole batch."""
    z1, z2 = (F.batch_norm(gather(z), None, None, training=True) for z in (z1, z2))
    correlation = z1.T @ z2 / len(z1)
    on_diagonal = correlation.diagonal()
    return (1 - on_diagonal).pow(2).sum() + lambd * (correlation.pow(2).sum() - on_diagonal.pow(2).sum())


@PRETEXTS.register_module()
class BarlowTwins(TwoViewPretext):
    """Cross-correlation of two views' embeddings driven to the identity: Zbontar et al. 2021."""

    def __init__(self, encoder_channels: Sequence[int], crop: int = 768, dim: int = 8192, lambd: float = 5e-3,
                 views: dict | None = None):
        super().__init__(encoder_channels, crop, views)
        if lambd < 0:
            raise ValueError(f"barlow_twins needs lambd >= 0, got {lambd}.")
        self.lambd = lambd
        self.projector = mlp([self.width, dim, dim, dim], bias=False)

    def forward(self, encoder, batch):
        first, second = (self.projector(self.features(encoder, view)) for view in batch["views"].chunk(2))
        return {"loss": barlow_twins_loss(first, second, self.lambd)}
