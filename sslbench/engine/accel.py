"""The fast path: which speed-ups a run uses, resolved once from the ``engine`` config section.

Every switch defaults to "auto" = on for CUDA, off elsewhere, except bf16 autocast and channels_last,
which "auto" also turns on for a CPU that computes bf16 in hardware (AMX or AVX512-BF16): there
oneDNN's bf16 convolutions in channels_last made a cpu-preset training step 2.4x faster than fp32
(0.61 s vs 1.50 s, ResNet-34 U-Net, 4x256², 2 cores). Other CPUs emulate bf16, slower than fp32, and
channels_last alone gains nothing on them. TF32/cuDNN autotuning are CUDA features.
``torch.compile`` is opt-in (``--compile``): it costs minutes of compilation per model.
"""

from __future__ import annotations

import ctypes
import os
import platform
from dataclasses import dataclass

import torch
from torch import nn

from sslbench.config import ENGINE_SWITCHES, engine_settings
from sslbench.engine import distributed


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
    bf16 = cuda or (device.type == "cpu" and cpu_has_native_bf16())
    auto = dict(amp=bf16, channels_last=bf16, tf32=cuda, fused_optimizer=cuda)
    switches = {key: auto[key] if values[key] == "auto" else values[key] for key in ENGINE_SWITCHES}
    return Acceleration(**switches, compile=values["compile"], data_on_device=values["data_on_device"],
                        loader_workers=values["loader_workers"])


def cpu_has_native_bf16() -> bool:
    """AMX or AVX512-BF16 on this CPU (torch's own probes; False where this torch build lacks them)."""
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def arithmetic(accel: Acceleration, device: torch.device, threads: int | None = None) -> dict:
    """What fixes a run's floating-point arithmetic besides its config and seed. The same job computed
    with another of these lands elsewhere (the synthetic demo: 70.3 to 78.7 % AJI on one machine,
    docs/results.md), so results record it; two machines can still differ where all of it agrees.
    ``threads``: another process's thread count (a launched task's), else this process's. ``processes``:
    torchrun's process count, which changes the order in which gradients and scores are summed."""
    if device.type == "cuda":
        processor, kernels = torch.cuda.get_device_name(device), f"CUDA {torch.version.cuda}"
    else:
        processor, kernels = cpu_model_name(), torch.backends.cpu.get_cpu_capability()
        if os.environ.get("ONEDNN_MAX_CPU_ISA"):  # caps oneDNN's convolutions, which ATen's capability does not show
            kernels += f", oneDNN <= {os.environ['ONEDNN_MAX_CPU_ISA']}"
    return {"precision": "bf16" if accel.amp else "fp32", "channels_last": accel.channels_last,
            "kernels": kernels, "threads": threads or torch.get_num_threads(), "processor": processor,
            "processes": distributed.world_size()}


def describe_arithmetic(record: dict | None) -> str:
    """One line for a table's caption: 'bf16 channels_last, AVX512 kernels, 1 thread, AMD EPYC', with
    ', 2 processes' where torchrun ran it (records from before that field were all one process)."""
    if not record:
        return "not recorded"
    layout = " channels_last" if record["channels_last"] else ""
    threads = f"{record['threads']} thread{'s' if record['threads'] != 1 else ''}"
    processes = record.get("processes", 1)
    many = f", {processes} processes" if processes > 1 else ""
    return f"{record['precision']}{layout}, {record['kernels']} kernels, {threads}, {record['processor']}{many}"


def cpu_model_name() -> str:
    """The CPU's model name as Linux reports it, else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


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
    """bf16 autocast; by default on CUDA only (evaluation keeps fp32 on a CPU)."""
    return torch.autocast(device.type, dtype=torch.bfloat16,
                          enabled=device.type == "cuda" if enabled is None else enabled)
