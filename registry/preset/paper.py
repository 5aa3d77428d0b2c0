_base_ = "./_base.py"
description = "The paper's sizes: 768² triplets from 1000² images, full schedules (GPU)"
pretrain = dict(steps=20000, batch_size=8, lr=1e-4, warmup_steps=500, log_every=100, checkpoint_every=1000)
finetune = dict(steps=20000, batch_size=8, crop=512, lr=1e-4, warmup_steps=500, log_every=100, eval_every=1000,
                checkpoint_every=1000)
