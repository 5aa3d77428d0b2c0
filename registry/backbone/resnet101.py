description = "ResNet-101 encoder (segmentation-models-pytorch / torchvision layout)"
backbone = dict(type="SmpEncoder", name="resnet101")
