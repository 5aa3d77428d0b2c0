"""The GPU fast path: which speed-ups a run uses, resolved once from the ``engine`` config section.

Every switch defaults to "auto" = on for CUDA, off elsewhere: bf16 on most CPUs is slower than fp32,
channels_last gains nothing measurable on the 2-core CPU we test on, and TF32/cuDNN autotuning are
CUDA features. ``torch.compile`` is opt-in (``--compile``): it costs minutes of compilation per model.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import torch
from torch import nn

from sslbench.config import ENGINE_SWITCHES, engine_settings


@dataclass(frozen=True)
class Acceleration:
    amp: bool  # bf16 autocast
    channels_last: bool
    tf32: bool  # TF32 matmuls/convolutions and cuDNN autotuning for fp32 work
    fused_optimizer: bool  # fused AdamW (one kernel per step); foreach otherwise
    compile: bool | str  # False, True (inductor) or a torch.compile backend name
    data_on_device: bool | str  # True, False (CPU DataLoader workers) or "auto" (decided by data size)
    loader_workers: int = 4

    @classmethod
    def naive(cls, loader_workers: int = 4) -> Acceleration:
        """Eager fp32 with a CPU DataLoader: the baseline the fast path is measured against."""
        return cls(amp=False, channels_last=False, tf32=False, fused_optimizer=False, compile=False,
                   data_on_device=False, loader_workers=loader_workers)


def resolve(section: dict | None, device: torch.device) -> Acceleration:
    """The ``engine`` config section (checked, defaults filled in by ``config.engine_settings``) for ``device``."""
    values = engine_settings(section)
    cuda = device.type == "cuda"
    switches = {key: cuda if values[key] == "auto" else values[key] for key in ENGINE_SWITCHES}
    return Acceleration(**switches, compile=values["compile"], data_on_device=values["data_on_device"],
                        loader_workers=values["loader_workers"])


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


def keep_freed_host_memory() -> bool:
    """Let glibc keep freed memory for reuse instead of handing it back to the OS. By default each
    training step's large activation buffers are unmapped when freed and page-faulted in again, zeroed,
    by the next step: 0.33 s of system time and 12 % of the wall time of a cpu-preset step (1.59 s ->
    1.40 s measured). Linux with glibc only; False (nothing changed) elsewhere."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30))
    except (OSError, AttributeError):
        return False


def configure_backends(accel: Acceleration) -> None:
    """Process-wide flags, set from each run's acceleration (so a naive run after a fast one is naive)."""
    keep_freed_host_memory()
    torch.set_float32_matmul_precision("high" if accel.tf32 else "highest")
    torch.backends.cudnn.allow_tf32 = accel.tf32
    torch.backends.cudnn.benchmark = accel.tf32  # fixed crop sizes: autotuning pays off after a step


def maybe_compile(module: nn.Module, accel: Acceleration) -> nn.Module:
    """``torch.compile`` in place when asked: state_dict keys stay those of the eager module, so
    checkpoints and saved encoders do not depend on it."""
    if accel.compile:
        module.compile(backend=accel.compile if isinstance(accel.compile, str) else "inductor")
    return module


def autocast(device: torch.device, enabled: bool | None = None):
    """bf16 autocast; by default on CUDA only (CPU bf16 is slower than fp32 on most CPUs)."""
    return torch.autocast(device.type, dtype=torch.bfloat16,
                          enabled=device.type == "cuda" if enabled is None else enabled)
