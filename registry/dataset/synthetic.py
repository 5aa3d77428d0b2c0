description = "Built-in synthetic H&E tiles with exact instance masks (deterministic)"
data = dict(type="Synthetic", num_images=16, size=256, seed=0)
