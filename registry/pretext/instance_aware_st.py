_base_ = "./instance_aware.py"
label = "+L_ST"
description = "Table 3 ablation: scale-wise triplet loss L_ST only"
pretext = dict(use_cr=False)
