description = "Gidaris et al. 2018: predict the rotation (0/90/180/270°) of a crop"
label = "RotNet"
# Each crop enters the batch in all four rotations (4 × batch_size images per step).
pretext = dict(type="RotNet", crop=768)
