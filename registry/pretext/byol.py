_base_ = "./_two_views.py"
description = "Grill et al. 2020 (BYOL): predict a momentum target's projection of the other view, no negatives"
label = "BYOL"
# momentum: τ_base, raised to 1 over training on a cosine schedule.
pretext = dict(type="BYOL", crop=768, hidden_dim=4096, dim=256, momentum=0.996)
