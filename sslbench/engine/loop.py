"""The one training loop, shared by pretraining (every pretext task) and finetuning."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import nn

from torch.nn.parallel import DistributedDataParallel

from sslbench.engine import distributed
from sslbench.engine.accel import Acceleration, autocast, configure_backends, resolve
from sslbench.engine.checkpoint import (Checkpoint, load_checkpoint, normalise, refuse_mismatch,
                                        restore_rng_states, rng_states, save_checkpoint)
from sslbench.engine.weights import remove_stale_temps
from sslbench.errors import SslbenchError

log = logging.getLogger("sslbench")
LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"  # every sink of these lines: log.txt, launched tasks


class NumericError(SslbenchError, RuntimeError):
    """A loss went NaN/Inf; the message names the step and the last good checkpoint."""


@dataclass
class LoopSettings:
    steps: int
    lr: float
    weight_decay: float = 1e-4
    warmup_steps: int = 0
    log_every: int = 10
    #: skip up to this many steps whose loss is NaN/Inf (costs one device sync per step) instead of stopping
    max_nonfinite_skips: int = 0


def make_optimizer(params, settings: LoopSettings, accel: Acceleration) -> torch.optim.Optimizer:
    # fused (CUDA) or foreach AdamW: one kernel launch per step instead of one per tensor
    return torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay,
                             fused=accel.fused_optimizer, foreach=not accel.fused_optimizer)


def warmup_cosine(settings: LoopSettings) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < settings.warmup_steps:
            return (step + 1) / settings.warmup_steps
        progress = (step - settings.warmup_steps) / max(1, settings.steps - settings.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return factor


class _Step(nn.Module):
    """The step's forward as a module, so DistributedDataParallel can wrap it: the closure runs the
    encoder and heads of ``module``, whose parameters DDP synchronises."""

    def __init__(self, module: nn.Module, compute_losses: Callable[[], dict[str, torch.Tensor]]):
        super().__init__()
        self.module = module
        self.compute_losses = compute_losses

    def forward(self) -> dict[str, torch.Tensor]:
        return self.compute_losses()


def _distributed(step: _Step, device: torch.device) -> nn.Module:
    if distributed.world_size() == 1:
        return step
    # DDP also broadcasts rank 0's weights now, so every process starts from the same model
    return DistributedDataParallel(step, device_ids=[device.index] if device.type == "cuda" else None)


def _resume(checkpoint: Checkpoint, module: nn.Module, optimizer, scheduler, description: str) -> dict:
    remove_stale_temps(checkpoint.path)
    state = load_checkpoint(checkpoint.path)
    refuse_mismatch(state["fingerprint"], checkpoint.fingerprint, checkpoint.path,
                    "re-run with the options it was started with, or delete it to restart this phase")
    module.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    restore_rng_states(state["rng"], checkpoint.generator)
    if distributed.rank() > 0:  # the file holds rank 0's stream; the others derive their own again
        checkpoint.generator.set_state(distributed.rank_stream(checkpoint.generator).get_state())
    checkpoint.extra.clear()
    checkpoint.extra.update(state["extra"])
    checkpoint.resumed_step, checkpoint.resumed_seconds = state["step"], state["seconds"]
    log.info("%s: resuming from step %d (%s)", description, state["step"], checkpoint.path)
    return state


def train(module: nn.Module, compute_losses: Callable[[], dict[str, torch.Tensor]], settings: LoopSettings,
          device: torch.device, description: str, on_eval: Callable[[int], None] | None = None,
          eval_every: int = 0, checkpoint: Checkpoint | None = None,
          accel: Acceleration | None = None, on_step: Callable[[int], None] | None = None,
          after_step: Callable[[int], None] | None = None, step_times: list[float] | None = None) -> list[dict]:
    """Optimise ``module``'s parameters on ``compute_losses()["loss"]`` for ``settings.steps`` steps.

    Losses are read back to the host only every ``log_every`` steps (no per-step device sync);
    the returned history holds those readings. ``on_eval(step)`` runs every ``eval_every`` steps
    and after the last one. With ``checkpoint``, the full training state (module, optimizer,
    scheduler, step, every RNG stream, history, ``checkpoint.extra``) is saved every
    ``checkpoint.every`` steps, and an existing checkpoint file is resumed from, which continues
    the exact same random streams as an uninterrupted run. A NaN/Inf loss raises ``NumericError``
    before anything non-finite is saved, unless ``settings.max_nonfinite_skips`` allows skipping it.

    ``accel`` (default: resolved for ``device``) picks the fast path: bf16 autocast, channels_last,
    TF32, fused optimizer. Under torchrun the step runs through DistributedDataParallel: gradients
    are averaged over processes, logged losses too, and only rank 0 writes checkpoints.
    ``on_step(step)`` runs after every step (the throughput benchmark times with it);
    ``after_step(step)`` only after a step whose optimizer update was taken (a momentum encoder follows
    the online one there, so a skipped step moves neither). ``step_times`` gets, at each logged reading,
    the mean seconds per step since the last one, evaluation and checkpoint saving left out (kept out of
    the history, which a resumed run reproduces exactly).
    """
    accel = accel or resolve(None, device)
    configure_backends(accel)
    if accel.channels_last:
        module.to(memory_format=torch.channels_last)
    step_module = _distributed(_Step(module, compute_losses), device)
    optimizer = make_optimizer([p for p in module.parameters() if p.requires_grad], settings, accel)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(settings))
    history: list[dict] = []
    start, skipped, saved_at = 1, 0, None
    if checkpoint is not None and checkpoint.path.exists():
        state = _resume(checkpoint, module, optimizer, scheduler, description)
        history, skipped, saved_at = state["history"], state["skipped"], state["step"]
        start = state["step"] + 1
    started = time.perf_counter()
    # first step whose loss was non-finite, kept on the device so that checking it costs no sync
    first_bad = torch.zeros((), dtype=torch.long, device=device)

    def fail(step: int, value) -> NumericError:
        last = (f"last good checkpoint: {checkpoint.path} (step {saved_at})" if saved_at is not None
                else "no checkpoint saved yet")
        skips = (f" ({skipped - 1} earlier bad steps skipped, the most max_nonfinite_skips allows)"
                 if settings.max_nonfinite_skips else "")
        return NumericError(f"{description}: loss became {value} at step {step}{skips}; {last}. Lower the "
                            "learning rate or check the input data, or allow a few bad steps with max_nonfinite_skips.")

    module.train()
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn(), TextColumn("{task.fields[status]}"))
    # seconds spent in optimizer steps since the last logged reading (evaluation and saving left out);
    # the reading's host copy waits for the device, so on a GPU the sum covers the queued work too
    step_seconds, timed_steps = 0.0, 0
    with Progress(*columns, transient=False, disable=not distributed.is_main()) as progress:
        task = progress.add_task(description, total=settings.steps, completed=start - 1, status="")
        for step in range(start, settings.steps + 1):
            step_started = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            with autocast(device, accel.amp):
                losses = step_module()
            loss = losses["loss"].detach()
            # every process must agree to skip, or DDP's gradient exchange would wait forever
            skip = settings.max_nonfinite_skips > 0 and not bool(distributed.all_min(torch.isfinite(loss).int()))
            if skip:
                skipped += 1
                if skipped > settings.max_nonfinite_skips:
                    raise fail(step, float(loss)) from None
                log.warning("%s: loss %s at step %d skipped (%d of at most %d)", description, float(loss),
                            step, skipped, settings.max_nonfinite_skips)
            else:
                losses["loss"].backward()
                optimizer.step()
                if after_step:
                    after_step(step)
                first_bad = torch.where((first_bad == 0) & ~torch.isfinite(loss), step, first_bad)
            scheduler.step()  # a skipped step still advances the schedule: step counts stay aligned
            save = checkpoint is not None and checkpoint.every > 0 and step % checkpoint.every == 0
            if save or step % settings.log_every == 0 or step == settings.steps:
                if bad := _first_bad_anywhere(first_bad, settings.steps):
                    raise fail(bad, float(loss) if bad == step else "non-finite")
            timed_steps += 1
            if not skip and (step % settings.log_every == 0 or step == settings.steps):
                means = distributed.mean(torch.stack([value.detach().float() for value in losses.values()]))
                reading = dict(zip(losses, means.tolist()))
                step_seconds += time.perf_counter() - step_started
                history.append({"step": step, "lr": scheduler.get_last_lr()[0], **reading})
                if step_times is not None:
                    step_times.append(step_seconds / timed_steps)
                step_seconds, timed_steps = 0.0, 0
                log.info("%s step %d/%d %s", description, step, settings.steps,
                         " ".join(f"{k}={v:.4f}" for k, v in reading.items()))
                progress.update(task, status=f"loss {reading['loss']:.4f}")
            else:
                step_seconds += time.perf_counter() - step_started
            if on_eval and ((eval_every and step % eval_every == 0) or step == settings.steps):
                on_eval(step)
            if save and distributed.is_main():
                save_checkpoint(checkpoint.path, {
                    "step": step, "model": module.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "rng": rng_states(checkpoint.generator),
                    "history": history, "skipped": skipped, "extra": checkpoint.extra,
                    "seconds": checkpoint.resumed_seconds + time.perf_counter() - started,
                    "fingerprint": normalise(checkpoint.fingerprint)})
            if save:
                saved_at = step
            if on_step:
                on_step(step)
            progress.advance(task)
    return history


def _first_bad_anywhere(first_bad: torch.Tensor, steps: int) -> int:
    """The earliest step at which any process saw a non-finite loss; 0 if none did."""
    never = steps + 1
    earliest = int(distributed.all_min(torch.where(first_bad == 0, never, first_bad)))
    return 0 if earliest == never else earliest
