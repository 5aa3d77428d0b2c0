description = "Encoder initialised from a local pretrained weights file (--set pretext.weights=PATH)"
label = "Weights file"
# A torchvision/timm/Hugging Face state dict of --backbone (.pth, .bin, .safetensors or a hub cache
# folder; sslbench.pretext.imagenet): a foundation model's, one's own, or ImageNet's; never downloaded.
pretext = dict(type="ImageNet", weights=None)
