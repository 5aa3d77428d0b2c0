"""Every pretext loss is computed in fp32 under bf16 autocast (the training loop's mixed precision
on CUDA and on CPUs with native bf16): only the encoder runs in bf16."""

import pytest
import torch
import torch.nn.functional as F

from sslbench.pretext.barlow_twins import barlow_twins_loss
from sslbench.pretext.byol import regression_loss
from sslbench.pretext.dino import dino_loss
from sslbench.pretext.instance_aware import ranking_loss, triplet_loss
from sslbench.pretext.moco_v2 import info_nce
from sslbench.pretext.simclr import nt_xent


@pytest.mark.parametrize("loss", [lambda a, b, c: nt_xent(torch.cat([a, b]), 0.5),
                                  lambda a, b, c: info_nce(a, b, c, 0.2),
                                  lambda a, b, c: regression_loss(a, b),
                                  lambda a, b, c: dino_loss(torch.cat([a, b]), torch.cat([b, c]), c[0], 0.1, 0.04),
                                  lambda a, b, c: barlow_twins_loss(a, b, 5e-3),
                                  lambda a, b, c: triplet_loss(a, b, c, 0.5),
                                  lambda a, b, c: ranking_loss(a[:, 0], b[:, 0], 0.01)],
                         ids=["nt_xent", "info_nce", "byol", "dino", "barlow_twins", "triplet", "count_ranking"])
def test_losses_are_computed_in_fp32_under_bf16_autocast(loss):
    # the encoder's bf16 outputs arrive at the loss; its matmuls must not round to bf16 again
    embeddings = [F.normalize(torch.randn(8, 16, generator=torch.Generator().manual_seed(seed)), dim=1).bfloat16()
                  for seed in (1, 2, 3)]
    reference = loss(*(e.float() for e in embeddings))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = loss(*embeddings)
    assert mixed.dtype == torch.float32 and mixed.item() == pytest.approx(reference.item(), rel=1e-6)
