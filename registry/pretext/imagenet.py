description = "Encoder initialised from a local pretrained weights file (--set pretext.weights=PATH)"
label = "ImageNet Pre-trained"
# A torchvision/timm/Hugging Face state dict of --backbone (.pth, .bin, .safetensors or a hub cache
# folder; sslbench.pretext.imagenet); never downloaded.
pretext = dict(type="ImageNet", weights=None)
