_base_ = "./_base.py"
description = "One GPU, minutes per suite: real sizes, short schedules"
pretext_overrides = dict(crop=512, neg_scales=(384, 256, 128, 64))
pretrain = dict(steps=300, batch_size=8, lr=3e-4, warmup_steps=30)
finetune = dict(steps=400, batch_size=8, crop=384, lr=3e-4, warmup_steps=40)
