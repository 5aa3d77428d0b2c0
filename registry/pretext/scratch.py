description = "No pretraining: train the ResUNet from random weights (baseline row)"
label = "Train-from-scratch"
pretext = dict(type="Scratch")
