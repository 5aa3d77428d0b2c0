description = "ViT-S/16 encoder (timm; 22 M parameters, decoded by the unetr head); any timm ViT name works too"
backbone = dict(type="TimmViT", name="vit_small_patch16_224")
