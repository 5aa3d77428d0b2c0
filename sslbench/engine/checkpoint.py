"""Training checkpoints: one safetensors file per phase holding every tensor (model, optimizer, RNG
states, the caller's extra tensors) with everything else as JSON in the file's metadata.

Why not ``torch.save``: even with ``weights_only=True`` its loader is an unpickler whose allow-list
varies across torch versions and rejects NumPy RNG states; safetensors never runs code, checks its
header against the file size (a truncated file fails at once) and keeps one file per checkpoint, so
one atomic rename commits the whole state.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open

from sslbench.engine.weights import unreadable, write_safetensors
from sslbench.errors import ConfigError, DataError

FORMAT = "sslbench-checkpoint-1"
_TENSOR, _TUPLE, _ITEMS, _ARRAY = "__tensor__", "__tuple__", "__items__", "__ndarray__"


@dataclass
class Checkpoint:
    """Where and how often ``train`` saves, and what it must match to resume.

    ``extra`` is the caller's own state (e.g. validation scores, best weights): saved with each
    checkpoint and restored in place on resume. ``train`` sets ``resumed_step`` and
    ``resumed_seconds`` (training time before the resume).
    """

    path: Path
    every: int
    fingerprint: dict  # the config that produced the state, JSON-normalised
    generator: torch.Generator  # the samplers' stream
    extra: dict = field(default_factory=dict)
    resumed_step: int = 0
    resumed_seconds: float = 0.0


def normalise(value) -> object:
    """JSON round trip: tuples become lists, so configs from files and from memory compare equal."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _flatten(value, prefix: str = "") -> Iterator[tuple[str, object]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, value


def differing_keys(saved: dict, current: dict) -> list[str]:
    """Dotted keys whose values differ, as 'key: saved -> current'."""
    old, new = dict(_flatten(saved)), dict(_flatten(current))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k)]


def refuse_mismatch(saved: dict, current: dict, what: Path, fix: str) -> None:
    diff = differing_keys(saved, normalise(current))
    if diff:
        shown = "; ".join(diff[:3]) + (f"; and {len(diff) - 3} more" if len(diff) > 3 else "")
        raise ConfigError(f"{what} was made with a different config ({shown}); {fix}.")


def rng_states(generator: torch.Generator) -> dict:
    return {"torch": torch.get_rng_state(), "generator": generator.get_state(),
            "numpy": np.random.get_state(legacy=False), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def restore_rng_states(states: dict, generator: torch.Generator) -> None:
    torch.set_rng_state(states["torch"])
    generator.set_state(states["generator"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if states["cuda"] and torch.cuda.is_available():  # a CPU checkpoint resumed on a GPU starts CUDA fresh
        torch.cuda.set_rng_state_all(states["cuda"][:torch.cuda.device_count()])


def _join(key: str, part) -> str:
    return f"{key}/{part}" if key else str(part)


def _encode(value, tensors: dict[str, torch.Tensor], key: str):
    if isinstance(value, torch.Tensor):
        tensors[key] = value.detach().to("cpu")
        return {_TENSOR: key}
    if isinstance(value, np.ndarray):
        return {_ARRAY: value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: _encode(v, tensors, _join(key, k)) for k, v in value.items()}
        return {_ITEMS: [[k, _encode(v, tensors, _join(key, k))] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        items = [_encode(v, tensors, _join(key, i)) for i, v in enumerate(value)]
        return {_TUPLE: items} if isinstance(value, tuple) else items
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot checkpoint a {type(value).__name__} at '{key}'")


def _decode(value, tensors: dict[str, torch.Tensor]):
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if _TENSOR in value:
        return tensors[value[_TENSOR]]
    if _TUPLE in value:
        return tuple(_decode(v, tensors) for v in value[_TUPLE])
    if _ITEMS in value:
        return {k: _decode(v, tensors) for k, v in value[_ITEMS]}
    if _ARRAY in value:
        return np.asarray(value[_ARRAY], dtype=value["dtype"])
    return {k: _decode(v, tensors) for k, v in value.items()}


def save_checkpoint(path: Path, state: dict) -> None:
    """Atomically write ``state`` (nested dicts/lists/tuples of tensors, arrays and JSON scalars)."""
    tensors: dict[str, torch.Tensor] = {}
    structure = _encode(state, tensors, "")
    storages = set()
    for key, tensor in tensors.items():
        storage = tensor.untyped_storage().data_ptr()
        if storage in storages:
            tensors[key] = tensor.clone()  # safetensors refuses tensors that share storage
        storages.add(storage)
    write_safetensors(path, tensors, {"format": FORMAT, "state": json.dumps(structure)})


def _read(path: Path, tensors: bool) -> tuple[dict, dict[str, torch.Tensor]]:
    fix = "delete it to restart this phase from step 0"
    try:
        with safe_open(str(path), "pt") as f:
            metadata = f.metadata() or {}
            loaded = {k: f.get_tensor(k) for k in f.keys()} if tensors else {}
        if metadata.get("format") != FORMAT:
            raise ValueError(f"no '{FORMAT}' marker")
        return json.loads(metadata["state"]), loaded
    except (SafetensorError, OSError, ValueError, KeyError) as exc:
        raise unreadable(path, exc, fix) from None


def load_checkpoint(path: Path) -> dict:
    structure, tensors = _read(path, tensors=True)
    try:
        return _decode(structure, tensors)
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: checkpoint structure is inconsistent ({exc!r}); it is tampered, delete it "
                        "to restart this phase from step 0.") from None


def checkpoint_header(path: Path) -> dict:
    """A checkpoint's step and the fingerprint of the config it trains, read from its header only."""
    structure, _ = _read(path, tensors=False)
    return {"step": int(structure["step"]), "fingerprint": structure.get("fingerprint", {})}


def checkpoint_step(path: Path) -> int:
    """The step a checkpoint was saved at, read from its header only."""
    return checkpoint_header(path)["step"]
