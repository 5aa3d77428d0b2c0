"""Encoder weights on disk: safetensors (no code execution on load) plus a JSON sidecar."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from sslbench.errors import DataError


def atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder and rename: a kill leaves old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_encoder(state: dict[str, torch.Tensor], path: str | Path, metadata: dict) -> Path:
    """``path``.safetensors with the smp encoder's exact keys, and ``path``.json beside it."""
    path = Path(path).with_suffix(".safetensors")
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp)))
    atomic_write(path.with_suffix(".json"), lambda tmp: tmp.write_text(json.dumps(metadata, indent=2, default=str)))
    return path


def load_encoder(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such weights file; check the path.")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable safetensors file ({exc}); it is truncated or tampered, "
                        "re-create it.") from None
