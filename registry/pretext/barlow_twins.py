_base_ = "./_two_views.py"
description = "Zbontar et al. 2021 (Barlow Twins): drive the two views' cross-correlation to the identity"
label = "Barlow Twins"
pretext = dict(type="BarlowTwins", crop=768, dim=8192, lambd=5e-3)
