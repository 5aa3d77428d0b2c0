description = "The paper's sizes: 768² triplets from 1000² images, full schedules (GPU)"
# real images expected: without --data, run/bench stop unless --allow-synthetic
real_data = True
data = dict(type="Synthetic", num_images=30, size=1000, seed=0)
split = dict(test_ratio=0.3, val_ratio=0.2, seed=0, label_fraction=1.0, resample_per_seed=False)
pretext_overrides = dict()
pretrain = dict(steps=20000, batch_size=8, lr=1e-4, weight_decay=1e-4, warmup_steps=500, log_every=100,
                checkpoint_every=1000)
finetune = dict(steps=20000, batch_size=8, crop=512, lr=1e-4, weight_decay=1e-4, warmup_steps=500,
                log_every=100, boundary_width=2, class_weights=(1.0, 1.0, 2.0), eval_every=1000,
                checkpoint_every=1000)
evaluation = dict(min_area=30, tile=1024, overlap=128)
