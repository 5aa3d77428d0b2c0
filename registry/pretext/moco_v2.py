_base_ = "./_two_views.py"
description = "Chen et al. 2020 (MoCo v2): momentum key encoder, queue of negatives, InfoNCE"
label = "MoCo v2"
# queue 4,096 rather than 65,536: at batch 8 it then spans ~512 steps, as MoCo's spans 256 (see moco_v2.py).
pretext = dict(type="MoCoV2", crop=768, dim=128, queue=4096, momentum=0.999, temperature=0.2)
