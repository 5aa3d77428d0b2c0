"""Backbones (encoders) and segmentation heads, and moving weights between them."""

from __future__ import annotations

from torch import nn

from sslbench.errors import ConfigError
from sslbench.models import backbones, heads  # noqa: F401  (register)
from sslbench.registry import BACKBONES, HEADS, build

#: backbone types whose features are one token grid: the unetr head decodes them, the Unet cannot
_TOKEN_BACKBONES = ("TimmViT",)


def is_token_backbone(backbone_cfg: dict) -> bool:
    """A ViT: its features are one token grid at the patch stride, not a pyramid."""
    return backbone_cfg.get("type") in _TOKEN_BACKBONES


def default_head(backbone_cfg: dict) -> str:
    """The head a backbone gets unless one is named: unetr for a ViT, else the paper's unet."""
    return "unetr" if is_token_backbone(backbone_cfg) else "unet"


def check_head_fits(backbone_cfg: dict, head_cfg: dict) -> None:
    """Refuse, before any work, a built-in head that cannot decode the backbone's features."""
    vit = is_token_backbone(backbone_cfg)
    name = backbone_cfg.get("name", backbone_cfg.get("type"))
    if head_cfg.get("type") == "Unet" and vit:
        raise ConfigError(f"head unet cannot decode backbone {name} (a ViT: one stride, no feature pyramid); "
                          "use --head unetr or leave --head out.")
    if head_cfg.get("type") == "UNETR" and not vit:
        raise ConfigError(f"head unetr decodes a ViT's token maps, not backbone {name}; use --head unet or "
                          "leave --head out.")


def build_encoder(backbone_cfg: dict) -> nn.Module:
    return build(BACKBONES, backbone_cfg)


def build_segmenter(backbone_cfg: dict, head_cfg: dict, encoder_state: dict | None = None) -> nn.Module:
    """The backbone's encoder (``encoder_state``, pretrained weights, must match it key for key) with
    a fresh head built around it."""
    encoder = build_encoder(backbone_cfg)
    if encoder_state is not None:
        transfer_encoder(encoder_state, encoder)
    return build(HEADS, head_cfg, encoder=encoder)


def transfer_encoder(encoder_state: dict, encoder: nn.Module) -> None:
    """Load pretrained weights; any missing or unexpected key is an error, never silently skipped."""
    expected, given = set(encoder.state_dict()), set(encoder_state)
    if expected != given:
        raise ValueError(f"pretrained encoder does not match the finetune encoder: missing "
                         f"{sorted(expected - given)[:5]}, unexpected {sorted(given - expected)[:5]}.")
    # nn.Module's own method: smp's override silently drops ``fc.*`` keys and the result.
    nn.Module.load_state_dict(encoder, encoder_state, strict=True)
