description = "Encoder initialised from a local ImageNet ResNet file (--set pretext.weights=PATH)"
label = "ImageNet Pre-trained"
# A torchvision/timm ResNet state dict (.pth or .safetensors) matching --backbone; never downloaded.
pretext = dict(type="ImageNet", weights=None)
