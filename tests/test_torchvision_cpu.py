import importlib
import subprocess
import sys

import torch

from sslbench import torchvision_cpu


def test_torchvision_imports_and_its_models_run():
    import torchvision

    model = torchvision.models.resnet18(weights=None)
    assert model.eval()(torch.zeros(1, 3, 64, 64)).shape == (1, 1000)


def test_shim_is_idempotent():
    # Already applied at import (or unnecessary): a second call must declare nothing again.
    assert torchvision_cpu.ensure_torchvision_ops() is False
    assert torchvision_cpu._has_nms()


def test_plain_interpreter_imports_sslbench_then_smp():
    # A fresh process: the shim has to run from ``import sslbench`` alone, before smp/timm/mmengine.
    code = "import sslbench, segmentation_models_pytorch, timm, mmengine, torchvision; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_module_reload_keeps_schemas_declared():
    importlib.reload(torchvision_cpu)
    assert torchvision_cpu._has_nms()
