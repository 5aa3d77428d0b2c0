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

from sslbench.errors import ConfigError

#: the ``engine`` section every run config gets; presets and ``--set engine.X=...`` override it
ENGINE_DEFAULTS = dict(amp="auto", channels_last="auto", tf32="auto", fused_optimizer="auto",
                       compile=False, data_on_device="auto", loader_workers=4)


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
    """The ``engine`` config section (missing keys take ENGINE_DEFAULTS) for ``device``."""
    values = {**ENGINE_DEFAULTS, **(section or {})}
    unknown = set(values) - set(ENGINE_DEFAULTS)
    if unknown:
        raise ConfigError(f"engine: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(ENGINE_DEFAULTS)}.")
    cuda = device.type == "cuda"
    switches = {}
    for key in ("amp", "channels_last", "tf32", "fused_optimizer"):
        value = values[key]
        if value not in ("auto", True, False):
            raise ConfigError(f"engine.{key} must be auto, True or False, got {value!r}.")
        switches[key] = cuda if value == "auto" else value
    if values["data_on_device"] not in ("auto", True, False):
        raise ConfigError(f"engine.data_on_device must be auto, True or False, got {values['data_on_device']!r}.")
    if not isinstance(values["loader_workers"], int) or values["loader_workers"] < 0:
        raise ConfigError(f"engine.loader_workers must be an integer >= 0, got {values['loader_workers']!r}.")
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
