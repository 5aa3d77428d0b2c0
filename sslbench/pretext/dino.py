"""DINO: Caron, Touvron, Misra, Jégou, Mairal, Bojanowski, Joulin, ICCV 2021 ("Emerging Properties in
Self-Supervised Vision Transformers") — self-distillation without labels: a student matches a momentum
teacher's sharpened, centred distribution over K prototypes for another view of the same crop.

Student: encoder -> global average pool -> DINO head (their code's ``DINOHead``: a 3-layer MLP, hidden
2048 with GELU, BatchNorm after each hidden layer if ``head_batch_norm`` (their ``use_bn_in_head``), to a
256-d bottleneck, L2-normalised, then a weight-normalised linear layer without bias
to K = 65,536 prototypes whose norm is fixed at 1, i.e. rows of unit length). Teacher: a momentum copy of
encoder and head, τ from 0.996 to 1 on BYOL's cosine schedule. Loss (their Eq. 1 and Algorithm 1):
H(t, s) = −Σ_k softmax((t − c)/τ_t)_k · log softmax(s/τ_s)_k between the teacher's output t for one view
and the student's s for the other, both ways, averaged; τ_s = 0.1, τ_t warms up linearly from 0.04 to
0.07 over the first 30 % of the steps (their 30 of 100 epochs) and stays there. The center c starts at
0 and follows the teacher: c ← m·c + (1 − m)·mean(t over every process's views), m = 0.9, after each
forward, so a teacher output never sees the center its own batch moved. Both views go through each
network in one pass, as their code passes same-sized crops (one set of BatchNorm statistics).

Departures from the paper (listed in docs/deviations.md): two global views of each crop and no
multi-crop (their "2×224" ablation; no 96² local views at this benchmark's CPU sizes), so the views'
scale range is the (0.14, 1) their code recommends without multi-crop; the views are this benchmark's
shared H&E views (views.py), not their colour jitter, grayscale, solarisation and per-view blur
probabilities; the loop's constant weight decay and no gradient clipping or frozen last layer in the
first epoch. A ViT's features are pooled patch tokens (the encoder returns token maps, no class token),
a ResNet's the usual average pool, as in their ResNet-50 run.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from sslbench.pretext.base import full_precision
from sslbench.pretext.siamese import MomentumPretext, gather, mlp, momentum_copy
from sslbench.registry import PRETEXTS


def teacher_targets(teacher: torch.Tensor, center: torch.Tensor, temperature: float | torch.Tensor) -> torch.Tensor:
    """The teacher's centred, sharpened distribution over the prototypes, per row."""
    return F.softmax((teacher - center) / temperature, dim=1)


@full_precision
def dino_loss(student: torch.Tensor, teacher: torch.Tensor, center: torch.Tensor, student_temperature: float,
              teacher_temperature: float | torch.Tensor) -> torch.Tensor:
    """(2N, K) outputs, view 1 of crop i at row i and view 2 at N + i: the teacher's distribution of each
    view is the target of the student's for the other view; mean over crops, then over the two pairs."""
    targets = teacher_targets(teacher, center, teacher_temperature).chunk(2)
    log_predictions = F.log_softmax(student / student_temperature, dim=1).chunk(2)
    return sum(-(target * log_prediction).sum(1).mean()
               for target, log_prediction in zip(targets, reversed(log_predictions))) / 2


@torch.no_grad()
def teacher_entropy(teacher: torch.Tensor, center: torch.Tensor, temperature: float | torch.Tensor) -> torch.Tensor:
    """Mean entropy of the teacher's targets, their Sec. 5.3 collapse monitor: log K when the targets
    are uniform (collapse by centering), 0 when one prototype takes all (collapse by sharpening)."""
    return torch.special.entr(teacher_targets(teacher.float(), center, temperature)).sum(1).mean()


class DINOHead(nn.Module):
    """MLP to a bottleneck, L2 normalisation, then unit-length prototypes: weight normalisation with its
    gain fixed at 1 (their ``norm_last_layer``) is a row-normalised weight, so no parametrisation is needed."""

    def __init__(self, width: int, hidden_dim: int, bottleneck_dim: int, prototypes: int, batch_norm: bool = False):
        super().__init__()
        self.mlp = mlp([width, hidden_dim, hidden_dim, bottleneck_dim], batch_norm=batch_norm, activation=nn.GELU)
        for layer in self.mlp:
            if isinstance(layer, nn.Linear):  # their init; the last layer keeps nn.Linear's, as in their code
                nn.init.trunc_normal_(layer.weight, std=0.02)
                nn.init.zeros_(layer.bias)
        self.prototypes = nn.Parameter(nn.Linear(bottleneck_dim, prototypes, bias=False).weight.detach())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.mlp(x), dim=1) @ F.normalize(self.prototypes, dim=1).T


@PRETEXTS.register_module()
class DINO(MomentumPretext):
    """Self-distillation with a momentum teacher, centering and sharpening: Caron et al. 2021."""

    def __init__(self, encoder_channels: Sequence[int], crop: int = 768, hidden_dim: int = 2048,
                 bottleneck_dim: int = 256, prototypes: int = 65536, student_temperature: float = 0.1,
                 teacher_temperature: tuple[float, float] = (0.04, 0.07), teacher_warmup: float = 0.3,
                 center_momentum: float = 0.9, momentum: float = 0.996, head_batch_norm: bool = False,
                 views: dict | None = None):
        super().__init__(encoder_channels, crop, views)
        start, end = teacher_temperature
        if not (0 < start and 0 < end and student_temperature > 0 and 0 <= teacher_warmup <= 1
                and 0 <= center_momentum < 1 and 0 <= momentum <= 1):
            raise ValueError(f"dino needs temperatures > 0, teacher_warmup in [0, 1], center_momentum in [0, 1) "
                             f"and momentum in [0, 1]; got student_temperature={student_temperature}, "
                             f"teacher_temperature={tuple(teacher_temperature)}, teacher_warmup={teacher_warmup}, "
                             f"center_momentum={center_momentum}, momentum={momentum}.")
        self.student_temperature, self.teacher_temperatures = student_temperature, (start, end)
        self.teacher_warmup, self.center_momentum, self.base_momentum = teacher_warmup, center_momentum, momentum
        self.projector = DINOHead(self.width, hidden_dim, bottleneck_dim, prototypes, head_batch_norm)
        self.target_projector = momentum_copy(self.projector)
        # buffers: checkpointed with the pretext, so a resumed run continues its center and schedule
        self.register_buffer("center", torch.zeros(prototypes))
        self.register_buffer("progress", torch.zeros(()))  # share of the steps taken

    def teacher_temperature(self) -> torch.Tensor:
        start, end = self.teacher_temperatures
        warmed = (self.progress / self.teacher_warmup).clamp(max=1) if self.teacher_warmup else 1
        return start + (end - start) * warmed

    def forward(self, encoder, batch):
        views = batch["views"]
        student = self.projector(self.features(encoder, views))
        teacher = self.target_features(views)
        temperature = self.teacher_temperature()
        loss = dino_loss(student, teacher, self.center, self.student_temperature, temperature)
        entropy = teacher_entropy(teacher, self.center, temperature)
        self.update_center(teacher)
        return {"loss": loss, "teacher_entropy": entropy}

    @torch.no_grad()
    def update_center(self, teacher: torch.Tensor) -> None:
        """c ← m·c + (1 − m)·(mean teacher output over every process's views)."""
        self.center.lerp_(gather(teacher).float().mean(0), 1 - self.center_momentum)

    def after_step(self, encoder, step, steps):
        super().after_step(encoder, step, steps)
        self.progress.fill_(step / steps)
