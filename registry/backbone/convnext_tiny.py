description = "ConvNeXt-Tiny encoder (timm through smp's tu- encoders; 28 M parameters)"
backbone = dict(type="SmpEncoder", name="tu-convnext_tiny")
