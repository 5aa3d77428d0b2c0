_base_ = "./_two_views.py"
description = "Chen et al. 2020 (SimCLR): NT-Xent between two augmented views of each crop, MLP projector"
label = "SimCLR"
pretext = dict(type="SimCLR", crop=768, proj_dim=128, temperature=0.5)
