"""The one training loop, shared by pretraining (every pretext task) and finetuning."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import nn

log = logging.getLogger("sslbench")


class NumericError(RuntimeError):
    """A loss went NaN/Inf; the message names the step."""


@dataclass
class LoopSettings:
    steps: int
    lr: float
    weight_decay: float = 1e-4
    warmup_steps: int = 0
    log_every: int = 10


def make_optimizer(params, settings: LoopSettings, device: torch.device) -> torch.optim.Optimizer:
    # fused AdamW on CUDA, foreach elsewhere: one kernel launch per step instead of one per tensor
    fused = device.type == "cuda"
    return torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay,
                             fused=fused, foreach=not fused)


def warmup_cosine(settings: LoopSettings) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < settings.warmup_steps:
            return (step + 1) / settings.warmup_steps
        progress = (step - settings.warmup_steps) / max(1, settings.steps - settings.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return factor


def autocast(device: torch.device):
    """bf16 autocast on CUDA; a no-op context elsewhere (CPU bf16 is slower than fp32 on most CPUs)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def train(module: nn.Module, compute_losses: Callable[[], dict[str, torch.Tensor]], settings: LoopSettings,
          device: torch.device, description: str,
          on_checkpoint: Callable[[int], None] | None = None, checkpoint_every: int = 0) -> list[dict]:
    """Optimise ``module``'s parameters on ``compute_losses()["loss"]`` for ``settings.steps`` steps.

    Losses are read back to the host only every ``log_every`` steps (no per-step device sync);
    the returned history holds those readings. ``on_checkpoint(step)`` runs every
    ``checkpoint_every`` steps and after the last one.
    """
    optimizer = make_optimizer([p for p in module.parameters() if p.requires_grad], settings, device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(settings))
    history: list[dict] = []
    module.train()
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn(), TextColumn("{task.fields[status]}"))
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task(description, total=settings.steps, status="")
        for step in range(1, settings.steps + 1):
            optimizer.zero_grad(set_to_none=True)
            with autocast(device):
                losses = compute_losses()
            losses["loss"].backward()
            optimizer.step()
            scheduler.step()
            if step % settings.log_every == 0 or step == settings.steps:
                reading = {name: float(value.detach()) for name, value in losses.items()}
                if not all(math.isfinite(v) for v in reading.values()):
                    raise NumericError(f"{description}: loss became {reading['loss']} at step {step}; "
                                       "lower the learning rate or check the input data.")
                history.append({"step": step, "lr": scheduler.get_last_lr()[0], **reading})
                log.info("%s step %d/%d %s", description, step, settings.steps,
                         " ".join(f"{k}={v:.4f}" for k, v in reading.items()))
                progress.update(task, status=f"loss {reading['loss']:.4f}")
            if on_checkpoint and ((checkpoint_every and step % checkpoint_every == 0) or step == settings.steps):
                on_checkpoint(step)
            progress.advance(task)
    return history
