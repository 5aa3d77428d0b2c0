description = "EfficientNet-B0 encoder (timm through smp's tu- encoders; 3.6 M parameters)"
backbone = dict(type="SmpEncoder", name="tu-efficientnet_b0")
