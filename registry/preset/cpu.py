_base_ = "./_base.py"
description = "Real data on a 2-core CPU: ResNet-34, 256² crops, a whole run under 30 minutes"
# ResNet-34, not the paper's ResNet-101: a bf16 ResNet-101 step took 1.17 s against 0.6 s, so its
# 2000 steps would not fit in 30 minutes; mini and paper keep ResNet-101.
backbone = "resnet34"
# MAE's decoder: 1 block, not 8; at 256² its 8 blocks of 512 on all 256 patches take about 5× the
# multiply-adds of the ViT-S encoder on the 64 visible ones, and their Table 1a finetunes as well after
# 1 block (84.8 against 84.9)
pretext_overrides = dict(crop=256, neg_scales=(192, 128, 64, 32), decoder_depth=1)
# 200 pretraining steps (~3 minutes): the instance-aware hinge losses already read 0 at most logged
# steps from step 100 on (controls suite, seed 0: L_ST 0.0000 at 100, 150, 175; L_CR 0.0000 at 175), so
# more steps of the paper's task would add little gradient; the paper states no schedule. With blur
# matched (instance_aware_blur) the losses still read 0.3-0.9 at step 200: that variant is not
# saturated at this budget. Every pretext gets the same 200 steps of 4 images (equal updates)
pretrain = dict(steps=200, batch_size=4, lr=3e-4, warmup_steps=20)
# 2000 steps (bf16 on a CPU with native bf16: 0.6 s a step), HED stain jitter and rescaling, no Dice
# or elastic: chosen on 13-image validation splits (docs/notes/2026-11-to-12-06-cpu-13-image-protocol.md).
# Stain jitter strength chosen on the official split's validation images (24 train / 6 val, seed 0,
# 2026-12-06, docs/notes/2026-12-06-to-07-cpu-recipe-official-split.md): scale 0.1, shift 0.01
# (rgb2hed units, the pretext views' strength) gave tuned val AJI 0.537 against 0.524 for scale 0.05,
# shift 0.005 (the old strength re-expressed)
finetune = dict(steps=2000, batch_size=4, crop=256, lr=1e-3, warmup_steps=50, eval_every=500,
                stain_scale=0.1, stain_shift=0.01, scale=(0.67, 1.5))
# whole 1000² images, flip-averaged; post-processing thresholds chosen on the validation images
evaluation = dict(flips=True,
                  tune=dict(min_area=(10, 30), min_seed_area=(4, 16, 32),
                            body_threshold=(None, 0.5, 0.6, 0.7, 0.8, 0.9), foreground_threshold=(None, 0.4, 0.6)))
