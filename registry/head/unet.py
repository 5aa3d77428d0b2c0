description = "U-Net decoder, 3 classes (background / body / boundary): ResUNet with a ResNet encoder"
head = dict(type="Unet", classes=3, decoder_channels=(256, 128, 64, 32, 16))
