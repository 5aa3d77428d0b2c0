"""CLI arguments for end-to-end runs small enough for a shared 2-core machine: resnet18 on CPU, a few
steps on small synthetic tiles. Each test adds or changes only the settings it is about. And the checks
that such a run did its job: its pretraining moved the encoder, its scores belong to its test images."""

from pathlib import Path

import pytest
import torch

from sslbench.bench.store import METRIC_COLUMNS
from sslbench.engine.weights import load_encoder
from sslbench.models import build_encoder

# the weights-file strategy's two names (``imagenet``, the paper's, is ``weights`` on the same base)
WEIGHT_FILE_STRATEGIES = ("imagenet", "weights")
# pretexts that pretrain ViTs only (they refuse a CNN before any work, tests/test_mae.py)
VIT_ONLY_PRETEXTS = ("mae",)

TINY_SETTINGS = {"data.num_images": 6, "data.size": 160, "pretrain.steps": 2, "finetune.steps": 2}


def tiny_args(settings: dict | None = None, backbone: str = "resnet18", device: str = "cpu") -> list[str]:
    """``--backbone B --device D --set KEY=VALUE ...`` for TINY_SETTINGS updated with ``settings``
    (a None value drops that setting, e.g. the synthetic data's size when a test passes --data)."""
    values = {**TINY_SETTINGS, **(settings or {})}
    return ["--backbone", backbone, "--device", device,
            *(arg for key, value in values.items() if value is not None for arg in ("--set", f"{key}={value}"))]


def still_initial(encoder_file: Path, backbone: dict, seed: int = 0) -> dict[str, bool]:
    """For each trainable weight of the saved encoder: whether it still equals the one a run of ``seed``
    builds before it pretrains (it seeds torch, then builds the encoder). BatchNorm statistics are left
    out: a forward pass moves them even when no optimizer step is taken."""
    saved = load_encoder(encoder_file)
    torch.manual_seed(seed)
    return {name: torch.equal(saved[name], weight) for name, weight in build_encoder(backbone).named_parameters()}


def assert_scored(scores: dict, test_names: list[str]) -> None:
    """``evaluate``'s scores cover exactly the test images, in order, their mean is the reported one, and
    the predictions overlap the nuclei somewhere: background only scores AJI 0 on every image. (Not on
    each image: a few tiny steps leave AJIs near 0.01, and another arithmetic may put one at 0.)"""
    per_image = scores["per_image"]
    assert [p["name"] for p in per_image] == test_names
    assert scores["per_image_mean"]["aji"] == pytest.approx(sum(p["aji"] for p in per_image) / len(per_image))
    assert any(p["aji"] > 0 for p in per_image), per_image


def assert_bench_row(out: Path, row: dict) -> None:
    """A bench row's metric columns are its scores' per-image means, scored on its test images; its
    encoder (in the bench folder ``out``) is the seed's initialisation for scratch, and for a pretrained
    strategy moved everywhere."""
    assert {m: row[m] for m in METRIC_COLUMNS} == {m: row["scores"]["per_image_mean"][m] for m in METRIC_COLUMNS}
    assert_scored(row["scores"], row["test_names"])
    initial = still_initial(out / row["encoder"], row["config"]["backbone"], row["seed"]).values()
    assert all(initial) if row["strategy"] == "scratch" else not any(initial)
