"""MoCo v2: Chen, Fan, Girshick, He, 2020 (MoCo, He et al. CVPR 2020, with SimCLR's MLP head and
blur) — a query must match its key among a queue of earlier keys.

Query q = MLP(pool(encoder(view 1))) (Linear, ReLU, Linear to ``dim``); key k = the same through a
momentum copy of encoder and MLP (θ_k ← m θ_k + (1 − m) θ_q after every optimizer step, m = 0.999),
on view 2, without gradient. InfoNCE (MoCo Eq. 1): −log exp(q·k/τ) / (exp(q·k/τ) + Σ_queue exp(q·n/τ)),
q, k, n L2-normalised, τ = 0.2. Then the batch's keys (every process's) replace the oldest in the queue.

Queue length: MoCo's 65,536 keys span 256 steps at batch 256; at this benchmark's batch 8 they would
span 8,192 steps, far longer than the key encoder's ~1,000-step memory (1 / (1 − m)), so the default
is 4,096 (512 steps), inside MoCo's ablation range (their Table 1: 256 to 65,536). Not reproduced:
MoCo's shuffled BatchNorm across GPUs (the key encoder uses its own batch's statistics).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from sslbench.pretext.base import full_precision
from sslbench.pretext.siamese import MomentumPretext, gather, mlp, momentum_copy
from sslbench.registry import PRETEXTS


@full_precision
def info_nce(query: torch.Tensor, key: torch.Tensor, queue: torch.Tensor, temperature: float) -> torch.Tensor:
    """Row i's positive is key i, its negatives the queue's rows; all L2-normalised."""
    positive = (query * key).sum(1, keepdim=True)
    logits = torch.cat([positive, query @ queue.T], 1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(query), dtype=torch.long, device=query.device))


@PRETEXTS.register_module()
class MoCoV2(MomentumPretext):
    """Momentum key encoder + queue of negatives, InfoNCE: He et al. 2020 / Chen et al. 2020 (v2)."""

    def __init__(self, encoder_channels: Sequence[int], crop: int = 768, dim: int = 128, queue: int = 4096,
                 momentum: float = 0.999, temperature: float = 0.2, views: dict | None = None):
        super().__init__(encoder_channels, crop, views)
        if queue < 1 or not 0 <= momentum <= 1 or temperature <= 0:
            raise ValueError(f"moco_v2 needs queue >= 1, momentum in [0, 1] and temperature > 0; got "
                             f"queue={queue}, momentum={momentum}, temperature={temperature}.")
        self.base_momentum, self.temperature = momentum, temperature
        self.projector = mlp([self.width, self.width, dim], batch_norm=False)
        self.target_projector = momentum_copy(self.projector)
        # random unit keys until real ones arrive, as in MoCo's code; buffers: checkpointed, not trained
        self.register_buffer("queue", F.normalize(torch.randn(queue, dim), dim=1))
        self.register_buffer("queue_next", torch.zeros((), dtype=torch.long))

    def momentum(self, step, steps):
        return self.base_momentum

    def forward(self, encoder, batch):
        first, second = batch["views"].chunk(2)
        query = F.normalize(self.projector(self.features(encoder, first)).float(), dim=1)
        key = F.normalize(self.target_features(second).float(), dim=1)
        loss = info_nce(query, key, self.queue.clone(), self.temperature)
        self.enqueue(key)
        return {"loss": loss}

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Every process's ``keys``, in rank order, overwrite the oldest in the queue (a ring buffer whose
        position stays on the device: no sync); so all processes hold the same queue."""
        keys = gather(keys)
        slots = (self.queue_next + torch.arange(len(keys), device=keys.device)) % len(self.queue)
        self.queue[slots] = keys.to(self.queue.dtype)
        self.queue_next.copy_((self.queue_next + len(keys)) % len(self.queue))
