description = "One GPU, minutes per suite: real sizes, short schedules"
# real images expected: without --data, run/bench stop unless --allow-synthetic
real_data = True
data = dict(type="Synthetic", num_images=30, size=1000, seed=0)
split = dict(test_ratio=0.3, val_ratio=0.2, seed=0, label_fraction=1.0, resample_per_seed=False)
pretext_overrides = dict(crop=512, neg_scales=(384, 256, 128, 64))
pretrain = dict(steps=300, batch_size=8, lr=3e-4, weight_decay=1e-4, warmup_steps=30, log_every=25,
                checkpoint_every=100)
finetune = dict(steps=400, batch_size=8, crop=384, lr=3e-4, weight_decay=1e-4, warmup_steps=40,
                log_every=25, boundary_width=2, class_weights=(1.0, 1.0, 2.0), eval_every=100,
                checkpoint_every=100)
evaluation = dict(min_area=30, tile=1024, overlap=128)
