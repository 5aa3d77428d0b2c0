description = "Every built-in pretext task and scratch at 10 % and 100 % labels (no paper numbers)"
strategies = ["scratch", "rotnet", "jigsaw", "colorme", "instance_aware", "simclr", "moco_v2", "byol", "barlow_twins"]
fractions = [1.0, 0.1]
metrics = ["aji", "aji_plus", "pq", "dice", "f1"]
