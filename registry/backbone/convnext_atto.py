description = "ConvNeXt-Atto encoder (timm through smp's tu- encoders; 3.4 M parameters, for CPU runs)"
backbone = dict(type="SmpEncoder", name="tu-convnext_atto")
