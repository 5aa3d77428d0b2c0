"""Files a run writes: atomic writes, and encoder weights as safetensors (no code execution on load)
plus a JSON sidecar."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from sslbench.errors import DataError, SslbenchError


class StorageError(SslbenchError):
    """The output could not be written (read-only folder, disk full); earlier files are intact."""


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder, fsync, rename and fsync the folder: a kill, a
    full disk or a power cut leaves the old version or the new one, never half of one, and no temporary file."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp")
    except OSError as exc:
        raise StorageError(f"cannot write {path} ({exc.strerror}); pass a writable output folder.") from None
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        write(Path(tmp))
        with open(tmp, "rb") as written:  # a power cut after the rename must not leave an empty file
            os.fsync(written.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageError(f"{path}: disk full while saving; the previous version (if any) is intact. "
                               "Free space and re-run the same command to resume.") from None
        raise StorageError(f"cannot write {path} ({exc.strerror or exc}); the previous version (if any) "
                           "is intact. Fix the folder's permissions or pass another output folder.") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)  # the rename is a change of the folder: without this a power cut can undo it


def _sync_folder(folder: Path) -> None:
    """fsync a folder, so that the files renamed into it stay there after a power cut. File systems that
    cannot sync a folder (some network and FUSE ones) refuse with EINVAL: they keep it in their own time."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise StorageError(f"{folder}: a file was written but the folder could not be synced to disk "
                               f"({exc.strerror}); check the disk before trusting files written there.") from None
    finally:
        os.close(fd)


def remove_stale_temps(path: Path) -> None:
    """Delete temporary files a killed ``atomic_write`` of ``path`` left behind."""
    for stale in Path(path).parent.glob(f"{_temp_prefix(Path(path))}*.tmp"):
        stale.unlink(missing_ok=True)


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    # serialise in memory, write from Python: I/O errors arrive as OSError with an errno
    data = save({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, metadata)
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def save_encoder(state: dict[str, torch.Tensor], path: str | Path, metadata: dict) -> Path:
    """``path``.safetensors with the smp encoder's exact keys, then ``path``.json beside it: the
    sidecar is written last, so a sidecar saying ``finished`` means the weights are complete."""
    path = Path(path).with_suffix(".safetensors")
    write_safetensors(path, state)
    atomic_write(path.with_suffix(".json"), lambda tmp: tmp.write_text(json.dumps(metadata, indent=2, default=str)))
    return path


def unreadable(path: Path, exc: Exception, fix: str) -> DataError:
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return DataError(f"{path}: not a readable safetensors file ({reason}); it is truncated or tampered, {fix}.")


def load_encoder(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such weights file; check the path.")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise unreadable(path, exc, "re-create it") from None
