description = "UNETR/CellViT-style decoder for ViT backbones, 3 classes (background / body / boundary)"
head = dict(type="UNETR", classes=3, decoder_channels=(312, 256, 128, 64))
