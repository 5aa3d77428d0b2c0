"""CLI arguments for end-to-end runs small enough for a shared 2-core machine: resnet18 on CPU, a few
steps on small synthetic tiles. Each test adds or changes only the settings it is about."""

TINY_SETTINGS = {"data.num_images": 6, "data.size": 160, "pretrain.steps": 2, "finetune.steps": 2}


def tiny_args(settings: dict | None = None, backbone: str = "resnet18", device: str = "cpu") -> list[str]:
    """``--backbone B --device D --set KEY=VALUE ...`` for TINY_SETTINGS updated with ``settings``
    (a None value drops that setting, e.g. the synthetic data's size when a test passes --data)."""
    values = {**TINY_SETTINGS, **(settings or {})}
    return ["--backbone", backbone, "--device", device,
            *(arg for key, value in values.items() if value is not None for arg in ("--set", f"{key}={value}"))]
