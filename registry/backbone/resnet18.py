description = "ResNet-18 encoder (segmentation-models-pytorch / torchvision layout)"
backbone = dict(type="SmpEncoder", name="resnet18")
