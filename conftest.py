"""Root conftest: the torchvision CPU shim must run before any test module imports torchvision."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import sslbench.torchvision_cpu  # noqa: E402,F401
