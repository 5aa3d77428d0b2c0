description = ("Every built-in pretext task and scratch at 10 % and 100 % labels (no paper numbers); a task that "
               "cannot pretrain the backbone (mae on a CNN, colorme on a ViT) is left out with a warning")
strategies = ["scratch", "rotnet", "jigsaw", "colorme", "instance_aware", "simclr", "moco_v2", "byol", "barlow_twins",
              "dino", "mae"]
fractions = [1.0, 0.1]
metrics = ["aji", "aji_plus", "pq", "dice", "f1"]
# Named on 2026-12-06, before any row on the official split: two strategies are called equivalent only
# if the 90 % interval of their paired difference lies within ±2 AJI points (under half the paper's
# 4-5 point gains; a change of arithmetic alone moves a job 0.7-3 points)
equivalence_margin = 2.0
