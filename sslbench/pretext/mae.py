"""MAE: He, Chen, Xie, Li, Dollár, Girshick, CVPR 2022 ("Masked Autoencoders Are Scalable Vision
Learners") — hide most patches of a crop, encode only the visible ones, and reconstruct the hidden
pixels with a light decoder.

Per crop a random 75 % of the patch tokens is dropped (their per-sample shuffle: the patches with the
smallest uniform noise are kept). The ViT's own patch embedding, position embedding, prefix tokens
(class, registers) and blocks encode the visible ones. The decoder (their ``MaskedAutoencoderViT``)
is a LayerNorm (the encoder's final norm, which this benchmark's encoder prunes), a linear map to
the decoder width, a shared learned mask token at every hidden position, fixed 2-D sine-cosine
position embeddings (0 for prefix tokens), transformer blocks, a LayerNorm and a linear map to each
patch's p²·3 pixels. Loss (their ``forward_loss`` with ``norm_pix_loss``): the mean squared error
against each target patch normalised by its own mean and variance (unbiased, + 1e-6), averaged over
the hidden patches only.

Why MAE is here beside DINO: its loss is per crop (no batch statistics, no teacher, no prototypes), so it
has no collapse to avoid at this benchmark's 4 crops a step, where DINO's teacher stays near uniform
(docs/results.md). It needs a patch grid, so CNN backbones are refused (SparK or SimMIM would adapt it).

Departures (docs/deviations.md): the crops are plain random crops with random flips, not
RandomResizedCrop (nuclei keep their size, as in the other pretexts' views); the decoder depth and width
are options (theirs: 8 blocks of 512; their Table 1 finetunes as well with 1 block, 84.8 against 84.9).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from timm.layers import build_sincos2d_pos_embed
from timm.models.vision_transformer import Block
from torch import nn

from sslbench.errors import ConfigError
from sslbench.pretext.base import Pretext, full_precision, normalize, random_crops
from sslbench.registry import PRETEXTS


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, 3, H, W) -> (B, H/p · W/p, p · p · 3), patches row-major, pixels (row, column, channel) as theirs."""
    b, c, h, w = images.shape
    grid = images.reshape(b, c, h // patch, patch, w // patch, patch)
    return grid.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // patch) * (w // patch), patch * patch * c)


@full_precision
def mae_loss(prediction: torch.Tensor, target: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """(B, N, p²·3) predicted and target patches, (B, N) 1 where hidden: mean over hidden patches of the
    per-patch mean squared error against the target normalised per patch."""
    mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
    per_patch = (prediction - (target - mean) / (var + 1e-6).sqrt()).pow(2).mean(-1)
    return (per_patch * hidden).sum() / hidden.sum()


class MAEDecoder(nn.Module):
    def __init__(self, encoder_dim: int, patch: int, grid: tuple[int, int], width: int, depth: int, heads: int):
        super().__init__()
        # fixed, so made once here rather than in every training step
        self.register_buffer("position", build_sincos2d_pos_embed(list(grid), width), persistent=False)
        self.encoder_norm = nn.LayerNorm(encoder_dim, eps=1e-6)
        self.embed = nn.Linear(encoder_dim, width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.blocks = nn.Sequential(*[Block(width, heads, mlp_ratio=4.0, qkv_bias=True) for _ in range(depth)])
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.predict = nn.Linear(width, patch * patch * 3)
        nn.init.normal_(self.mask_token, std=0.02)  # their init

    def forward(self, encoded: torch.Tensor, visible: torch.Tensor, prefix: int) -> torch.Tensor:
        """Encoded (B, prefix + kept, C) and the kept patch indices (B, kept) -> every patch's pixels (B, N, p²·3)."""
        x = self.embed(self.encoder_norm(encoded))
        b, width = x.shape[0], x.shape[-1]
        patches = self.mask_token.to(x.dtype).expand(b, self.position.shape[0], width).clone()
        patches.scatter_(1, visible[..., None].expand(-1, -1, width), x[:, prefix:])
        x = torch.cat([x[:, :prefix], patches + self.position.to(x.dtype)], dim=1)
        return self.predict(self.norm(self.blocks(x)))[:, prefix:]


@PRETEXTS.register_module()
class MAE(Pretext):
    """Masked autoencoding of patch pixels on a ViT: He et al. 2022."""

    cnn_refusal = "it masks a ViT's patch tokens, and a CNN has none"

    def __init__(self, encoder_channels: Sequence[int], crop: int = 224, mask_ratio: float = 0.75,
                 decoder_width: int = 512, decoder_depth: int = 8, decoder_heads: int = 16):
        super().__init__(encoder_channels)
        if crop < 1 or not 0 < mask_ratio < 1 or decoder_depth < 0 or decoder_width % decoder_heads:
            raise ValueError(f"mae needs crop > 0, mask_ratio in (0, 1), decoder_depth >= 0 and decoder_width a "
                             f"multiple of decoder_heads; got crop={crop}, mask_ratio={mask_ratio}, "
                             f"decoder_depth={decoder_depth}, decoder_width={decoder_width}, "
                             f"decoder_heads={decoder_heads}.")
        self.crop = self.min_image_size = crop
        self.mask_ratio = mask_ratio
        self.decoder_sizes = dict(width=decoder_width, depth=decoder_depth, heads=decoder_heads)
        self.patch = 0  # set from the encoder in init_encoder, with the decoder

    def init_encoder(self, encoder):
        self.patch = getattr(encoder, "patch_size", 0)
        if not self.patch:
            raise ConfigError(f"pretext mae cannot pretrain this backbone: {self.cnn_refusal}; use a ViT backbone.")
        if self.crop % self.patch:
            raise ConfigError(f"mae's crop ({self.crop} px) is not a multiple of the backbone's {self.patch}-px "
                              f"patches: set pretext.crop to {self.crop // self.patch * self.patch or self.patch}.")
        device = next(encoder.parameters()).device
        grid = (self.crop // self.patch,) * 2
        self.decoder = MAEDecoder(self.encoder_channels[-1], self.patch, grid, **self.decoder_sizes).to(device)

    def sample(self, images, batch_size, generator):
        crops, boxes = random_crops(images, batch_size, self.crop, generator)
        for crop, flips in zip(crops, (torch.rand(batch_size, 2, generator=generator) < 0.5).tolist()):
            axes = [axis for axis, flip in zip((1, 2), flips) if flip]
            if axes:
                crop.copy_(crop.flip(axes))
        tokens = (self.crop // self.patch) ** 2
        kept = max(1, int(tokens * (1 - self.mask_ratio)))  # their len_keep
        visible = torch.rand(batch_size, tokens, generator=generator).argsort(dim=1)[:, :kept]
        return {"image": crops, "visible": visible.to(crops.device), "boxes": boxes}

    def reconstruct(self, encoder: nn.Module, images: torch.Tensor,
                    visible: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised crops (B, 3, crop, crop) and their visible patches' indices (B, kept) -> the decoder's
        pixels for every patch (B, N, p²·3) and a (B, N) mask, 1 where hidden. The encoder never sees
        a hidden patch: the steps of timm's ``forward_intermediates``, with them dropped after the
        position embedding."""
        vit = encoder.model
        tokens = vit._pos_embed(vit.patch_embed(images))
        prefix = vit.num_prefix_tokens
        kept = tokens[:, prefix:].gather(1, visible[..., None].expand(-1, -1, tokens.shape[-1]))
        encoded = vit.blocks(vit.norm_pre(vit.patch_drop(torch.cat([tokens[:, :prefix], kept], dim=1))))
        hidden = torch.ones(visible.shape[0], tokens.shape[1] - prefix, device=images.device).scatter_(1, visible, 0.0)
        return self.decoder(encoded, visible, prefix), hidden

    def forward(self, encoder, batch):
        images = normalize(batch["image"])
        prediction, hidden = self.reconstruct(encoder, images, batch["visible"])
        return {"loss": mae_loss(prediction, patchify(images, self.patch), hidden)}
