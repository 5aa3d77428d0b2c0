"""What a training phase costs beyond its wall time: seconds per optimizer step and peak memory, the
two cost columns of lightly's benchmark tables (time per step tells a frozen encoder from a trained
one where the wall time is mostly evaluation)."""

from __future__ import annotations

import resource
import statistics
from pathlib import Path

import torch

_PROC = Path("/proc/self")


def reset_peak_memory(device: torch.device) -> None:
    """Start a phase's peak from the memory in use now. On Linux, writing 5 to clear_refs resets the
    process's peak resident set (VmHWM); elsewhere the CPU peak is the process's since it started."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        (_PROC / "clear_refs").write_text("5")
    except OSError:
        pass


def peak_memory_bytes(device: torch.device) -> int:
    """Peak since ``reset_peak_memory``: memory allocated by tensors on a GPU; the resident set of the
    whole process on a CPU (tensors, the data held in memory and the Python runtime alike)."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    try:
        status = (_PROC / "status").read_text()
        return next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def phase_resources(step_times: list[float], device: torch.device) -> dict:
    """{"step_seconds": the median of ``train``'s ``step_times`` readings (evaluation and checkpoint
    saving left out; the median sheds readings slowed by other work on the machine), "peak_memory_bytes"}.
    step_seconds is None when no reading was timed."""
    return {"step_seconds": statistics.median(step_times) if step_times else None,
            "peak_memory_bytes": peak_memory_bytes(device)}
