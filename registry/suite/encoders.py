description = ("Encoders: scratch, the best pretext, DINO, MAE and a weights file, each finetuned and frozen; "
               "run once per backbone family (--backbone resnet34, --backbone vit_small_patch16_224; mae is left "
               "out of the ResNet run)")
# instance_aware stands for "the best pretext" until the official-split tables name another (docs/results.md);
# dino is the ViT-native method that also runs on ResNets; mae, the one that learns at 4 crops a step
# (no batch statistics, no teacher: DINO's targets stay near uniform at the cpu preset, docs/results.md),
# needs a patch grid, so the ResNet run leaves it out (bench warns);
# weights: a local weights file (--set pretext.weights=PATH), else --skip weights
strategies = ["scratch", "instance_aware", "dino", "mae", "weights"]
fractions = [1.0]
protocols = ["finetune", "frozen"]
metrics = ["aji", "pq", "dice"]
resources = True
# Named on 2026-12-07, before any row of this suite: two strategies are called equivalent only if the 90 %
# interval of their paired difference lies within ±2 AJI points (as the other suites)
equivalence_margin = 2.0
