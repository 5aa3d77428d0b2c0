"""The finetuning recipe's pieces: rescaling and elastic crops, CE + Dice loss, test-time
flips, threshold post-processing chosen on validation images, and the cpu preset."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from skimage.draw import disk
from torch import nn
from typer.testing import CliRunner

from sslbench.cli import app
from sslbench.config import resolve_run_config
from sslbench.data.base import Sample
from sslbench.data.synthetic import Synthetic
from sslbench.data.targets import instance_to_classes
from sslbench.engine.finetune import FinetuneSampler, finetune_sources, segmentation_loss
from sslbench.eval.evaluate import tune_postprocess
from sslbench.eval.postprocess import probabilities_to_instances
from sslbench.eval.predict import predict_probabilities
from sslbench.models import build_segmenter
from sslbench.pipeline.data import DataSplit
from sslbench.pipeline.phases import finetune, inference
from tiny import tiny_args


@pytest.fixture(scope="module")
def sample():
    return Synthetic(num_images=1, size=128, seed=0).load()[0]


@pytest.mark.parametrize("options", [dict(scale=(0.7, 1.4)), dict(elastic=(30.0, 5.0)),
                                     dict(scale=(0.7, 1.4), elastic=(30.0, 5.0), stain_scale=0.05, stain_shift=0.005)])
def test_rescaled_and_deformed_crops_keep_labels_on_their_pixels(options):
    # the image is bright exactly where the target says nucleus: every warp must move both alike
    labels = np.zeros((160, 160), np.int32)
    for i, (row, col) in enumerate([(30, 30), (40, 100), (110, 60), (120, 130)], start=1):
        labels[disk((row, col), 14, shape=labels.shape)] = i
    image = np.where(instance_to_classes(labels, 1)[..., None] == 1, 255, 0).astype(np.uint8).repeat(3, axis=2)
    sources = finetune_sources([Sample("disks", image, labels)], boundary_width=1)
    x, y = FinetuneSampler(96, **options)(sources, 8, torch.Generator().manual_seed(0))
    assert x.shape == (8, 3, 96, 96) and y.shape == (8, 96, 96)
    assert set(y.unique().tolist()) <= {0, 1, 2}
    bright = x[:, 0] > x[:, 0].mean()
    body = y == 1
    agreement = (bright & body).sum() / (bright | body).sum()
    assert agreement > 0.8


def test_dice_term_is_added_and_vanishes_for_a_confident_perfect_model():
    y = torch.randint(0, 3, (2, 16, 16))

    class Perfect(nn.Module):
        def forward(self, x):
            return nn.functional.one_hot(y, 3).permute(0, 3, 1, 2).float() * 50

    plain = segmentation_loss(Perfect(), torch.zeros(2, 3, 16, 16), y, torch.ones(3))
    with_dice = segmentation_loss(Perfect(), torch.zeros(2, 3, 16, 16), y, torch.ones(3), dice_weight=1.0)
    assert set(plain) == {"loss"} and set(with_dice) == {"loss", "ce", "dice"}
    assert with_dice["dice"] < 1e-3
    assert with_dice["loss"] == pytest.approx(float(with_dice["ce"] + with_dice["dice"]))


def test_flip_averaging_makes_any_model_flip_equivariant(sample):
    torch.manual_seed(0)
    model = nn.Conv2d(3, 3, 5, padding=2)  # asymmetric kernels: plain predictions are not equivariant
    image = sample.image[:64, :64]
    flipped = predict_probabilities(model, np.ascontiguousarray(image[:, ::-1]), torch.device("cpu"), 64, 0, flips=True)
    plain = predict_probabilities(model, image, torch.device("cpu"), 64, 0, flips=True)
    np.testing.assert_allclose(flipped, plain[:, :, ::-1], atol=1e-5)
    unaveraged = predict_probabilities(model, np.ascontiguousarray(image[:, ::-1]), torch.device("cpu"), 64, 0)
    assert not np.allclose(unaveraged, predict_probabilities(model, image, torch.device("cpu"), 64, 0)[:, :, ::-1],
                           atol=1e-5)


def _bridged_pair() -> np.ndarray:
    """Two nuclei joined by a bridge whose P(body) is 0.45: the body by argmax, not at threshold 0.5."""
    probs = np.zeros((3, 64, 64), np.float32)
    probs[0] = 1
    for col in (20, 44):
        inside = np.zeros((64, 64), bool)
        inside[disk((32, col), 9, shape=inside.shape)] = True
        probs[:, inside] = np.array([0.0, 0.9, 0.1])[:, None]
    probs[:, 29:36, 28:37] = np.array([0.3, 0.45, 0.25])[:, None, None]
    return probs


def test_body_threshold_splits_nuclei_the_argmax_merges():
    probs = _bridged_pair()
    assert probabilities_to_instances(probs, min_area=5).max() == 1
    assert probabilities_to_instances(probs, min_area=5, body_threshold=0.5).max() == 2


def test_post_processing_is_tuned_on_the_given_images():
    labels = np.zeros((64, 64), np.int32)
    labels[disk((32, 20), 10, shape=labels.shape)] = 1
    labels[disk((32, 44), 10, shape=labels.shape)] = 2
    probs = _bridged_pair()

    class Fixed(nn.Module):  # returns logits whose softmax is ``probs``
        def forward(self, x):
            return torch.from_numpy(np.log(probs + 1e-9))[None].expand(x.shape[0], -1, -1, -1)

    image = np.zeros((64, 64, 3), np.uint8)
    chosen, aji, grid = tune_postprocess(Fixed(), [Sample("pair", image, labels)], torch.device("cpu"),
                                         {"min_area": (5,), "body_threshold": (None, 0.5)}, tile=64, overlap=0)
    assert chosen == {"min_area": 5, "body_threshold": 0.5}
    assert aji > 0.7
    # every grid point's per-image AJI is kept, in grid order: argmax merges the bridged pair
    assert [entry["values"] for entry in grid] == [{"min_area": 5, "body_threshold": None}, chosen]
    assert grid[1]["aji"] == [aji] and grid[0]["aji"][0] < 0.7


def test_validation_probabilities_kept_for_the_post_processing_are_those_of_the_kept_weights():
    cfg = resolve_run_config("scratch", backbone="resnet18", device="cpu", overrides=[
        "finetune.steps=4", "finetune.batch_size=2", "finetune.crop=64", "finetune.eval_every=1",
        "finetune.checkpoint_every=0", "finetune.lr=0.05", "head.decoder_channels=(16, 16, 8, 8, 8)",
        "evaluation.tile=96", "evaluation.overlap=0", "evaluation.flips=True"])
    torch.manual_seed(0)
    model = build_segmenter(cfg.backbone, cfg.head)
    samples = Synthetic(num_images=4, size=96, seed=0).load()
    kept = {}
    _, validations = finetune(cfg, model, DataSplit(train=samples[:2], val=samples[2:], test=[]),
                              torch.device("cpu"), torch.Generator().manual_seed(0), best_val_probabilities=kept)
    assert len(validations) == 4 and sorted(kept) == [0, 1]
    ajis = [entry["aji"] for entry in validations]
    assert ajis.index(max(ajis)) < 3  # the kept weights are not the last: the last numbers would not match
    # predicting again with the weights finetune kept gives the very same numbers, so reusing them
    # cannot change which post-processing is chosen
    for index, sample in enumerate(samples[2:]):
        again = predict_probabilities(model, sample.image, torch.device("cpu"), 96, 0, True, inference())
        assert np.array_equal(kept[index], again)


def test_cpu_preset_names_its_backbone_and_the_others_keep_resnet101():
    assert resolve_run_config("scratch", preset="cpu", allow_synthetic=True).backbone["name"] == "resnet34"
    assert resolve_run_config("scratch", preset="cpu", backbone="resnet18",
                              allow_synthetic=True).backbone["name"] == "resnet18"
    assert resolve_run_config("scratch", preset="mini", allow_synthetic=True).backbone["name"] == "resnet101"
    cfg = resolve_run_config("scratch", preset="cpu", allow_synthetic=True,
                             overrides=["finetune.dice_weight=0", "evaluation.flips=False"])
    assert cfg.finetune["dice_weight"] == 0 and cfg.evaluation["flips"] is False


@pytest.mark.slow
def test_cpu_preset_evaluates_as_its_recipe_says():
    # the recipe the cpu preset's rows are measured with: flip averaging and a 108-point grid on val
    evaluation = resolve_run_config("scratch", preset="cpu", allow_synthetic=True).evaluation
    assert evaluation["flips"] is True
    assert [len(values) for values in evaluation["tune"].values()] == [2, 3, 6, 3]


def test_cpu_preset_run_stores_the_post_processing_chosen_on_validation(tmp_path):
    out = tmp_path / "run"
    settings = {"data.size": 320, "finetune.eval_every": 2, "evaluation.tile": 320, "evaluation.overlap": 0,
                # one candidate for every threshold but min_area (--set merges into the preset's grid)
                "evaluation.tune.min_area": (5, 10 ** 6), "evaluation.tune.min_seed_area": (4,),
                "evaluation.tune.body_threshold": (0.5,), "evaluation.tune.foreground_threshold": (None,)}
    result = CliRunner().invoke(app, ["run", "--preset", "cpu", "--allow-synthetic", "--pretext", "scratch",
                                      "--out", str(out), *tiny_args(settings)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    # a min_area no nucleus reaches scores AJI 0 on validation, so the grid must pick the other value
    assert metrics["postprocess"]["values"] == {"min_area": 5, "min_seed_area": 4, "body_threshold": 0.5,
                                                "foreground_threshold": None}
    assert metrics["postprocess"]["chosen_on"] == "validation"
    grid = metrics["postprocess"]["grid"]  # each grid point's AJI on each val image, for later analysis
    assert [entry["values"]["min_area"] for entry in grid] == [5, 10 ** 6]
    assert len(grid[0]["aji"]) == len(metrics["postprocess"]["val_names"]) and set(grid[1]["aji"]) == {0.0}
    assert metrics["validation"][-1]["step"] == 2 and "aji" in metrics["validation"][-1]
    assert set(load_file(out / "model.safetensors")) == set(build_segmenter(
        dict(type="SmpEncoder", name="resnet18"), dict(type="Unet")).state_dict())
