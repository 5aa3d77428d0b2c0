_base_ = "./instance_aware.py"
label = "+L_CR"
description = "Table 3 ablation: count ranking loss L_CR only"
pretext = dict(use_st=False)
