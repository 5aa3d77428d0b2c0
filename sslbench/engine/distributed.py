"""Multi-process training under ``torchrun``: process group, rank-aware helpers, reductions.

Outside torchrun (no ``WORLD_SIZE`` > 1 in the environment) every helper is the single-process
identity, so the rest of sslbench calls them unconditionally.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def launched() -> bool:
    """True in a process that torchrun started as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init() -> None:
    """Join torchrun's process group (idempotent). gloo carries CPU tensors, NCCL CUDA ones, so
    ``--device cpu`` works under torchrun on a GPU machine too."""
    if not launched() or dist.is_initialized():
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("cpu:gloo,cuda:nccl")
    else:
        dist.init_process_group("gloo")


def shutdown() -> None:
    """Leave the process group (idempotent). Every process that joined must call this before it
    exits, on success and on error: a gloo/NCCL group still alive at interpreter exit makes a rank
    abort ("terminate called without an active exception", SIGABRT)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def rank() -> int:
    """This process's rank; torchrun's RANK before the process group exists."""
    return dist.get_rank() if dist.is_initialized() else int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    """Only the main process writes files, results rows and console output."""
    return rank() == 0


def local_device(device: torch.device) -> torch.device:
    """Each process drives its own GPU (``cuda`` -> ``cuda:LOCAL_RANK``)."""
    if device.type == "cuda" and dist.is_initialized():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def mean(values: torch.Tensor) -> torch.Tensor:
    """Element-wise mean over processes (the logged losses of every rank)."""
    if world_size() > 1:
        values = values.clone()
        dist.all_reduce(values)
        values /= world_size()
    return values


def all_min(values: torch.Tensor) -> torch.Tensor:
    if world_size() > 1:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.MIN)
    return values


def gather(obj) -> list:
    """Every process's ``obj`` (any picklable value), in rank order, on every process."""
    if world_size() == 1:
        return [obj]
    gathered = [None] * world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def rank_stream(generator: torch.Generator) -> torch.Generator:
    """A sampling stream of this process's own: rank 0 keeps ``generator``, the others derive a
    distinct, reproducible one from it (same crops on every rank would waste the extra GPUs)."""
    if rank() == 0:
        return generator
    probe = torch.Generator()
    probe.set_state(generator.get_state())  # leave rank 0's stream where it is
    return torch.Generator().manual_seed(int(torch.randint(2**62, (1,), generator=probe)) + rank())
