"""sslbench: benchmark self-supervised pretext tasks for nuclei instance segmentation."""

from sslbench import torchvision_cpu  # noqa: F401  (must run before anything imports torchvision)

__version__ = "0.1.0"
