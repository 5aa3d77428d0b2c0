"""ImageNet init: start the encoder from a local ResNet weights file (the paper's "ImageNet
Pre-trained" row). Nothing is ever downloaded.

``weights`` (``--set pretext.weights=PATH``) is a ``.pth``/``.pt`` state dict, read with
``torch.load(weights_only=True)`` (no code runs on load), or a ``.safetensors`` file. Accepted
layouts: torchvision's and timm's ResNets (the same keys: conv1, bn1, layer1-4, fc), optionally inside
a ``{"state_dict": ...}`` / ``{"model": ...}`` checkpoint and under "module.", "model.", "encoder." or
"backbone." prefixes. ``fc.*`` (the ImageNet classifier) is dropped; the rest must match the encoder
key for key and shape for shape, else the error names the file and the offending keys.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from sslbench.errors import ConfigError, DataError
from sslbench.models import transfer_encoder
from sslbench.pretext.base import Pretext
from sslbench.registry import PRETEXTS

_PREFIXES = ("module.", "model.", "encoder.", "backbone.")
_CONTAINERS = ("state_dict", "model")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``.pth``/``.pt`` (weights only) or ``.safetensors`` file."""
    if not path.is_file():
        raise ConfigError(f"pretext.weights: {path} does not exist; pass --set pretext.weights=PATH "
                          "to a local ResNet .pth or .safetensors file.")
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


def to_encoder_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip wrapper prefixes, drop the classifier and non-tensors."""
    mapped = {}
    for key, value in state.items():
        while key.startswith(_PREFIXES):
            key = key.split(".", 1)[1]
        if torch.is_tensor(value) and not key.startswith("fc."):
            mapped[key] = value
    return mapped


def load_resnet_weights(path: str | Path, encoder: nn.Module) -> None:
    path = Path(path)
    state = to_encoder_keys(read_state_dict(path))
    expected = encoder.state_dict()
    for key, value in expected.items():
        # checkpoints older than torch 0.4.1 (torchvision's original ResNet files) lack this counter
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(value)
    wrong = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
             if k in state and state[k].shape != v.shape]
    if wrong:
        raise DataError(f"{path}: tensor shapes do not match the encoder (another ResNet depth?): "
                        f"{', '.join(wrong[:3])}.")
    try:
        transfer_encoder(state, encoder)
    except ValueError as exc:
        raise DataError(f"{path}: {exc} Expected torchvision/timm ResNet keys for this backbone.") from None


@PRETEXTS.register_module()
class ImageNet(Pretext):
    """No pretext training: the encoder starts from a local ImageNet ResNet weights file."""

    pretrains = False

    def __init__(self, encoder_channels, weights: str | None = None):
        super().__init__(encoder_channels)
        self.weights = weights

    def init_encoder(self, encoder):
        if not self.weights:
            raise ConfigError("pretext 'imagenet' needs a local ResNet weights file: pass "
                              "--set pretext.weights=PATH (.pth or .safetensors, torchvision/timm keys); "
                              "sslbench never downloads weights.")
        load_resnet_weights(self.weights, encoder)
