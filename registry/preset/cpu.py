_base_ = "./_base.py"
description = "Real data on a 2-core CPU: ResNet-34, 256² crops, a whole run under 30 minutes"
# ResNet-34, not the paper's ResNet-101: a bf16 ResNet-101 step took 1.17 s against 0.6 s, so its
# 2000 steps would not fit in 30 minutes; mini and paper keep ResNet-101.
backbone = "resnet34"
pretext_overrides = dict(crop=256, neg_scales=(192, 128, 64, 32))
# 200 pretraining steps (~3 minutes): the instance-aware hinge losses already read 0 at most logged
# steps from step 100 on (controls suite, seed 0: L_ST 0.0000 at 100, 150, 175; L_CR 0.0000 at 175), so
# more steps of the paper's task would add little gradient; the paper states no schedule. With blur
# matched (instance_aware_blur) the losses still read 0.3-0.9 at step 200: that variant is not
# saturated at this budget. Every pretext gets the same 200 steps of 4 images (equal updates)
pretrain = dict(steps=200, batch_size=4, lr=3e-4, warmup_steps=20)
# 2000 steps (bf16 on a CPU with native bf16: 0.6 s a step): validation AJI 0.587 against 0.559 at
# 900; HED stain jitter and rescaling raised the val-tuned AJI at 2000 steps (0.617 vs 0.602), not at
# 900; Dice and elastic stay off (docs/results.md, ablation). Stain jitter in rgb2hed units: scale 0.05
# as before; shift 0.005, the old natural-log shift of 0.05 (0.0036 in these units) rounded
finetune = dict(steps=2000, batch_size=4, crop=256, lr=1e-3, warmup_steps=50, eval_every=500,
                stain_scale=0.05, stain_shift=0.005, scale=(0.67, 1.5))
# whole 1000² images, flip-averaged; post-processing thresholds chosen on the validation images
evaluation = dict(flips=True,
                  tune=dict(min_area=(10, 30), min_seed_area=(4, 16, 32),
                            body_threshold=(None, 0.5, 0.6, 0.7, 0.8, 0.9), foreground_threshold=(None, 0.4, 0.6)))
