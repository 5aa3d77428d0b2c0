description = "ResNet-34 encoder (segmentation-models-pytorch / torchvision layout)"
backbone = dict(type="SmpEncoder", name="resnet34")
