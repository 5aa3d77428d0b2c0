# What every preset shares; each preset file names only what it changes (mmengine merges dicts key by key).
description = ""
# real images expected: without --data, run/bench stop unless --allow-synthetic
real_data = True
data = dict(type="Synthetic", num_images=30, size=1000, seed=0)
# test images are held out first (seeded), then the rest is split 80:20 train/val as in the paper;
# the label fraction cuts train and val alike; resample_per_seed draws train/val and labels per run seed
split = dict(test_ratio=0.3, val_ratio=0.2, seed=0, label_fraction=1.0, resample_per_seed=False)
# sizes for the pretext tasks, each taking the keys its constructor has (default: the paper's)
pretext_overrides = dict()
pretrain = dict(weight_decay=1e-4, log_every=25, checkpoint_every=100)
# recipe switches (docs/results.md has their ablation): soft Dice weight, HED stain jitter, rescaling
# range, elastic (alpha, sigma); freeze_encoder: train the decoder only (encoder frozen, BN statistics too)
finetune = dict(weight_decay=1e-4, log_every=25, boundary_width=2, class_weights=(1.0, 1.0, 2.0), eval_every=100,
                checkpoint_every=100, dice_weight=0.0, stain_scale=0.0, stain_shift=0.0, scale=None, elastic=None,
                freeze_encoder=False)
# whole images, tiled; flips: test-time flip averaging; tune: a grid of post-processing values chosen
# on the validation images (empty: the fixed min_area and argmax classes)
evaluation = dict(min_area=30, tile=1024, overlap=128, flips=False, tune=dict())
