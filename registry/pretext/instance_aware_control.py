_base_ = "./instance_aware.py"
label = "Control: L_ST + L_CR, shuffled roles"
description = "Control for instance_aware: same triplets and cost, positive/negative roles swapped at random"
pretext = dict(shuffle_roles=True)
