"""Pretrained init: start the encoder from a local weights file (the paper's "ImageNet Pre-trained"
row; any backbone's file: ResNet, ConvNeXt, ViT, DINOv2 …). Nothing is ever downloaded.

``weights`` (``--set pretext.weights=PATH``) is one of:

- a ``.safetensors`` file, or a ``.pth``/``.pt``/``.bin`` state dict read with
  ``torch.load(weights_only=True)`` (no code runs on load), optionally inside a ``{"state_dict": ...}`` /
  ``{"model": ...}`` checkpoint: torchvision's, timm's, or a Hugging Face hub file (``model.safetensors``,
  ``pytorch_model.bin`` of a timm model);
- a folder holding one of those two hub files (a snapshot), or a hub cache folder
  ``models--ORG--NAME`` (its ``refs/main`` snapshot, else its only one), read offline.

Keys are matched to the encoder's after dropping wrapper prefixes ("module.", "model.", "encoder.",
"backbone.") on both sides and reading "_" as "." (smp's timm encoders flatten ``stages.0`` to
``stages_0``); a ViT's file passes through timm's own checkpoint filter first (position embeddings
resampled to the encoder's grid, original DINOv2/CLIP layouts converted). A key the encoder needs and
the file lacks is an error naming it; a classifier tensor the encoder has no use for (``fc``, ``head``,
the final ``norm`` …) is logged and dropped; any other extra tensor (another depth or model) is an error.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import torch
from huggingface_hub import try_to_load_from_cache
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from sslbench.errors import ConfigError, DataError
from sslbench.models import transfer_encoder
from sslbench.pretext.base import Pretext
from sslbench.registry import PRETEXTS

log = logging.getLogger("sslbench")

_PREFIXES = ("module.", "model.", "encoder.", "backbone.")
_CONTAINERS = ("state_dict", "model")
#: a Hugging Face hub snapshot's weights files, the preferred first
_HUB_FILES = ("model.safetensors", "pytorch_model.bin")
#: parts of a classification model that an encoder does not have: dropped with a log line
_CLASSIFIER_PARTS = ("fc", "head", "head_dist", "fc_norm", "norm", "classifier", "pre_logits", "attn_pool")


def _snapshot_file(folder: Path) -> Path | None:
    """The weights file of a hub snapshot folder or of a hub cache folder ``models--ORG--NAME``."""
    if folder.name.startswith("models--"):
        repo = folder.name.removeprefix("models--").replace("--", "/")
        for name in _HUB_FILES:
            found = try_to_load_from_cache(repo, name, cache_dir=folder.parent)
            if isinstance(found, str):
                return Path(found)
        snapshots = sorted((folder / "snapshots").glob("*"))
        return _snapshot_file(snapshots[0]) if len(snapshots) == 1 else None
    return next((folder / name for name in _HUB_FILES if (folder / name).is_file()), None)


def weights_file(path: Path) -> Path:
    """``path`` itself, or the weights file inside a hub snapshot or cache folder."""
    if not path.exists():
        raise ConfigError(f"pretext.weights: {path} does not exist; pass --set pretext.weights=PATH to a local "
                          ".pth, .bin or .safetensors file or a Hugging Face hub cache folder.")
    if not path.is_dir():
        return path
    found = _snapshot_file(path)
    if found is None:
        raise ConfigError(f"pretext.weights: {path} is a folder without {' or '.join(_HUB_FILES)} (nor a hub cache "
                          "folder models--ORG--NAME with one snapshot holding them); pass the weights file itself.")
    return found


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``.pth``/``.pt``/``.bin`` (weights only) or ``.safetensors`` file or hub folder."""
    path = weights_file(path)
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as exc:
            raise DataError(f"{path}: not a readable safetensors file ({exc}).") from None
    if path.suffix not in (".pth", ".pt", ".bin"):
        raise ConfigError(f"pretext.weights: {path} must end in .pth, .pt, .bin or .safetensors.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: not a plain tensor state dict that loads with weights_only=True "
                        f"({first_line}).") from None
    for key in _CONTAINERS:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise DataError(f"{path}: holds a {type(state).__name__}, not a state dict.")
    return state


def _bare(key: str) -> str:
    while key.startswith(_PREFIXES):
        key = key.split(".", 1)[1]
    return key


def _canonical(key: str) -> str:
    return _bare(key).replace("_", ".")


def to_encoder_keys(state: dict, encoder: nn.Module, path: Path) -> dict[str, torch.Tensor]:
    """The file's tensors under the encoder's keys; ConfigError naming what the encoder needs and the
    file lacks, DataError for extra non-classifier tensors or wrong shapes."""
    state = {_bare(k): v for k, v in state.items() if torch.is_tensor(v)}
    if hasattr(encoder, "adapt_state_dict"):
        state = encoder.adapt_state_dict(state)
    expected = encoder.state_dict()
    encoder_key = {_canonical(k): k for k in expected}
    mapped, unexpected = {}, []
    for key, value in state.items():
        if (target := encoder_key.get(_canonical(key))) is None:
            unexpected.append(key)
        else:
            mapped[target] = value
    for key, value in expected.items():
        # checkpoints older than torch 0.4.1 (torchvision's original ResNet files) and timm's lack this counter
        if key.endswith("num_batches_tracked") and key not in mapped:
            mapped[key] = torch.zeros_like(value)
    if missing := [k for k in expected if k not in mapped]:
        raise ConfigError(f"pretext.weights: {path} lacks {len(missing)} of the encoder's {len(expected)} tensors "
                          f"({', '.join(missing[:4])}{' …' if len(missing) > 4 else ''}); it holds another model: "
                          "pass a checkpoint of this --backbone.")
    dropped = [k for k in unexpected if k.split(".")[0] in _CLASSIFIER_PARTS]
    if extra := [k for k in unexpected if k not in dropped]:
        raise DataError(f"{path}: unexpected tensors {', '.join(extra[:4])} beside the encoder's (another depth "
                        "or model?); pass a checkpoint of this --backbone.")
    if dropped:
        log.info("%s: %d classifier tensors the encoder has no use for are dropped (%s)", path, len(dropped),
                 ", ".join(dropped[:4]))
    wrong = [f"{k} {tuple(mapped[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
             if mapped[k].shape != v.shape]
    if wrong:
        raise DataError(f"{path}: tensor shapes do not match the encoder (another width or depth?): "
                        f"{', '.join(wrong[:3])}.")
    return mapped


def load_weights(path: str | Path, encoder: nn.Module) -> None:
    path = Path(path)
    transfer_encoder(to_encoder_keys(read_state_dict(path), encoder, path), encoder)


@PRETEXTS.register_module()
class ImageNet(Pretext):
    """No pretext training: the encoder starts from a local pretrained weights file."""

    pretrains = False

    def __init__(self, encoder_channels, weights: str | None = None):
        super().__init__(encoder_channels)
        self.weights = weights

    def init_encoder(self, encoder):
        if not self.weights:
            raise ConfigError("pretext 'imagenet' needs a local weights file: pass --set pretext.weights=PATH "
                              "(.pth, .bin or .safetensors with torchvision/timm keys, or a Hugging Face hub "
                              "cache folder); sslbench never downloads weights.")
        load_weights(self.weights, encoder)
