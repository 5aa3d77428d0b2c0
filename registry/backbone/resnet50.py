description = "ResNet-50 encoder (segmentation-models-pytorch / torchvision layout)"
backbone = dict(type="SmpEncoder", name="resnet50")
