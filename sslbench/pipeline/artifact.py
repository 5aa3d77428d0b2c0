"""A pretrained encoder on disk, and the one test of whether it can be reused.

An artifact is ``NAME.safetensors`` (the smp encoder's weights: torchvision ResNet keys without
``fc.*``) and its sidecar ``NAME.json`` beside it: what made it, written after the weights and saying
``finished``. Its identity is the hash of its pretraining fingerprint (``pretrain_fingerprint``), the
data folders' contents in place of their paths (recorded in the sidecar as ``data_content``):
``sslbench run`` and ``bench`` alike reuse an artifact exactly when its sidecar says finished with the
identity they need.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from sslbench.engine import distributed
from sslbench.engine.checkpoint import normalise, refuse_mismatch
from sslbench.engine.weights import load_encoder, save_encoder
from sslbench.errors import DataError
from sslbench.models import build_encoder
from sslbench.pipeline.fingerprint import content_hash, data_contents, portable, recorded_contents


def encoder_identity(fingerprint: dict, contents: dict[str, str] | None = None) -> str:
    """An encoder's identity: the hash of its pretraining fingerprint with the data folders' ``contents``
    (default: theirs on disk now) in place of their paths, so an encoder follows its data when it moves."""
    contents = data_contents(fingerprint) if contents is None else contents
    return content_hash(normalise(portable(fingerprint, contents)))


@dataclass(frozen=True)
class EncoderArtifact:
    path: Path  # the weights (.safetensors); the sidecar is beside it

    @property
    def sidecar(self) -> Path:
        return self.path.with_suffix(".json")

    def finished(self) -> dict | None:
        """The sidecar if it says pretraining finished and the weights are there, else None."""
        if not self.sidecar.is_file() or not self.path.is_file():
            return None
        try:
            metadata = json.loads(self.sidecar.read_text())
        except (ValueError, OSError) as exc:
            raise DataError(f"{self.sidecar}: unreadable encoder sidecar ({exc}); delete it and the encoder "
                            "weights beside it to redo pretraining.") from None
        return metadata if isinstance(metadata, dict) and metadata.get("finished") else None

    def reusable(self, identity: str) -> dict | None:
        """The sidecar if this encoder finished pretraining with ``identity`` (``encoder_identity``), else None."""
        done = self.finished()
        if done is None:
            return None
        fingerprint = done.get("fingerprint", {})
        contents = recorded_contents(fingerprint, done.get("data_content"))
        return done if encoder_identity(fingerprint, contents) == identity else None

    def refuse_other(self, fingerprint: dict, fix: str) -> None:
        """A one-line ConfigError naming the settings that differ if this encoder finished with another
        pretraining fingerprint than ``fingerprint``."""
        done = self.finished()
        if done is not None and self.reusable(encoder_identity(fingerprint)) is None:
            refuse_mismatch(done.get("fingerprint", {}), fingerprint, self.path, fix)

    def discard(self) -> None:
        """The sidecar goes (the main process deletes it): until a new one is saved, these weights
        never pass as finished, even if a killed pretraining replaced them half."""
        if distributed.is_main():
            self.sidecar.unlink(missing_ok=True)

    def save(self, state: dict[str, torch.Tensor], fingerprint: dict, metadata: dict) -> None:
        """The weights, then the sidecar saying finished with ``fingerprint`` (and ``metadata``)."""
        save_encoder(state, self.path, {**metadata, "finished": True, "fingerprint": fingerprint,
                                        "data_content": data_contents(fingerprint)})

    def load(self) -> dict[str, torch.Tensor]:
        return load_encoder(self.path)

    def module(self) -> tuple[nn.Module, dict]:
        """The encoder ready to run, built for the backbone its sidecar names, and the sidecar."""
        try:
            metadata = json.loads(self.sidecar.read_text())
            backbone = metadata["backbone"]
        except (OSError, ValueError, KeyError, TypeError):
            raise DataError(f"{self.path}: no readable sidecar {self.sidecar.name} naming its backbone; pass an "
                            "encoder written by sslbench run or bench (encoder.safetensors + encoder.json).") from None
        encoder = build_encoder(backbone)
        encoder.load_state_dict(self.load())
        return encoder, metadata
