"""BYOL: Grill et al., NeurIPS 2020 — predict a slowly moving target network's projection of the
other view; no negatives.

Online: encoder -> pool -> projector (Linear to 4096, BatchNorm, ReLU, Linear to 256) -> predictor
(same shape, 256 -> 4096 -> 256). Target: a momentum copy of encoder and projector, updated after every
optimizer step with τ = 1 − (1 − τ_base)(cos(πk/K) + 1)/2, τ_base = 0.996 (their schedule, k the step,
K the total). Loss (their Eq. 2, symmetrised): 2 − 2·cos(q(view 1), z'(view 2)) + the same with the
views swapped, averaged over the batch. Each view goes through the networks on its own, as in their
code (BatchNorm statistics per view).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from sslbench.pretext.base import full_precision
from sslbench.pretext.siamese import MomentumPretext, mlp, momentum_copy
from sslbench.registry import PRETEXTS


@full_precision
def regression_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """2 − 2 cos: the squared distance of the L2-normalised vectors, averaged over the batch."""
    return (2 - 2 * F.cosine_similarity(prediction, target, dim=1)).mean()


@PRETEXTS.register_module()
class BYOL(MomentumPretext):
    """Online predictor regresses a momentum target's projection, no negatives: Grill et al. 2020."""

    def __init__(self, encoder_channels: Sequence[int], crop: int = 768, hidden_dim: int = 4096, dim: int = 256,
                 momentum: float = 0.996, views: dict | None = None):
        super().__init__(encoder_channels, crop, views)
        if not 0 <= momentum <= 1:
            raise ValueError(f"byol needs momentum in [0, 1], got {momentum}.")
        self.base_momentum = momentum
        self.projector = mlp([self.width, hidden_dim, dim])
        self.predictor = mlp([dim, hidden_dim, dim])
        self.target_projector = momentum_copy(self.projector)

    def forward(self, encoder, batch):
        views = batch["views"].chunk(2)
        first, second = (self.predictor(self.projector(self.features(encoder, view))) for view in views)
        target_first, target_second = (self.target_features(view) for view in views)
        return {"loss": regression_loss(first, target_second) + regression_loss(second, target_first)}
