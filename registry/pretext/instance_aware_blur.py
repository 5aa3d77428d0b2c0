_base_ = "./instance_aware.py"
label = "L_ST + L_CR, blur-matched views"
description = "instance_aware with anchor and positive resampled like the negative (no interpolation-blur cue)"
pretext = dict(match_blur=True)
