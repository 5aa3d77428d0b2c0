"""Shared by the torchrun worker and the test that checks it (the same seeded problem on both sides)."""

import os
from pathlib import Path

import torch

BACKBONE = dict(type="SmpEncoder", name="resnet18")
HEAD = dict(type="Unet", classes=3, decoder_channels=(32, 16, 16, 8, 8))
# DDP's averaging is checked to 1e-5, finer than bf16 rounding, which "auto" uses on CPUs with native bf16
FP32 = dict(amp=False, channels_last=False)


def torchrun_env() -> dict[str, str]:
    """The environment of a torchrun the tests start: one thread per process, this folder importable
    (the workers import ddp_reference), and the caller's PYTHONPATH kept, so the workers import the
    sslbench under test, not another installed one."""
    path = [str(Path(__file__).parent), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(path)}


def linear_problem() -> tuple[torch.nn.Linear, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    model = torch.nn.Linear(5, 2)
    with torch.no_grad():
        model.weight.copy_(torch.randn(2, 5, generator=generator))
        model.bias.zero_()
    return model, torch.randn(8, 5, generator=generator), torch.randn(8, 2, generator=generator)


def siamese_problem() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Both views' embeddings of 8 crops, and 8 MoCo keys: each (8, 6)."""
    generator = torch.Generator().manual_seed(1)
    return tuple(torch.randn(8, 6, generator=generator) for _ in range(3))
