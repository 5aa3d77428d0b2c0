description = "He et al. 2022 (MAE): reconstruct the pixels of the 75 % of patches a ViT did not see"
label = "MAE"
# ViTs only (a CNN backbone is refused). The paper's mask ratio, decoder (8 blocks of 512, 16 heads) and
# normalised-pixel loss; the cpu preset shrinks the decoder (registry/preset/cpu.py).
pretext = dict(type="MAE", crop=224, mask_ratio=0.75, decoder_width=512, decoder_depth=8, decoder_heads=16)
