"""A tiny training (a small BatchNorm + dropout net in the one training loop) and a tiny `run`'s
arguments, shared by the resume and file-reliability tests."""

import random

import numpy as np
import torch
from torch import nn

from sslbench.engine.checkpoint import Checkpoint
from sslbench.engine.loop import LoopSettings, train
from tiny import tiny_args

FAST = ["--pretext", "instance_aware", *tiny_args({
    "data.size": 96, "pretext.crop": 64, "pretext.neg_scales": "(48, 32)", "finetune.crop": 64,
    "finetune.batch_size": 2, "pretrain.steps": 4, "finetune.steps": 4, "pretrain.log_every": 1,
    "finetune.log_every": 1, "pretrain.checkpoint_every": 2, "finetune.checkpoint_every": 2})]


class Interrupted(Exception):
    """Stands in for a kill between two steps."""


def tiny_training(checkpoint_path, stop_at_call=None, seed=0):
    """Train a small BatchNorm + dropout net whose loss draws on torch, the sampler generator, NumPy
    and Python random, so any stream not restored on resume changes the history."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    generator = torch.Generator().manual_seed(seed)
    module = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 1))
    data = torch.randn(64, 4, generator=torch.Generator().manual_seed(123))
    calls = 0

    def compute_losses():
        nonlocal calls
        calls += 1
        if calls == stop_at_call:
            raise Interrupted
        batch = data[torch.randint(0, 64, (8,), generator=generator)]
        scale = 1 + 0.1 * np.random.rand() + 0.1 * random.random()
        return {"loss": module(batch).pow(2).mean() * scale}

    checkpoint = Checkpoint(checkpoint_path, every=3, fingerprint={"lr": 0.05}, generator=generator)
    history = train(module, compute_losses, LoopSettings(steps=10, lr=0.05, warmup_steps=2, log_every=1),
                    torch.device("cpu"), "tiny", checkpoint=checkpoint)
    return history, module.state_dict(), checkpoint
