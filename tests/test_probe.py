"""Frozen-encoder probes: targets per crop, leave-one-image-out ridge R², the CLI on saved encoders."""

import json

import numpy as np
import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from sslbench.bench.figures import density_views
from sslbench.cli import app
from sslbench.data.synthetic import Synthetic
from sslbench.engine.weights import save_encoder
from sslbench.errors import DataError
from sslbench.eval.probe import crop_targets, nuclei_table, probe_encoder, probe_images, ridge_r2
from sslbench.models import build_encoder

BACKBONE = dict(type="SmpEncoder", name="resnet18")


def test_crop_targets_count_nuclei_by_centroid_and_average_their_log_area():
    labels = np.zeros((20, 20), np.int32)
    labels[0:2, 0:2] = 1  # centroid (0.5, 0.5), area 4
    labels[8:12, 8:12] = 2  # centroid (9.5, 9.5), area 16: inside a 10² crop at (0, 0)? no, 9.5 < 10: yes
    labels[9:20, 15:20] = 3  # centroid (14, 17): outside
    centroids, areas = nuclei_table(labels)
    np.testing.assert_allclose(centroids, [[0.5, 0.5], [9.5, 9.5], [14, 17]])
    count, log_size = crop_targets(centroids, areas, 0, 0, 10)
    assert count == 2 and log_size == pytest.approx((np.log(4) + np.log(16)) / 2)
    assert crop_targets(centroids, areas, 0, 10, 5) == (0.0, 0.0)


def test_ridge_r2_is_near_one_for_informative_features_and_not_above_zero_for_noise():
    rng = np.random.default_rng(0)
    targets = rng.normal(size=(120, 2))
    groups = np.repeat(np.arange(6), 20)
    informative = np.hstack([targets @ rng.normal(size=(2, 8)), rng.normal(size=(120, 4))])
    assert (ridge_r2(informative + 0.01 * rng.normal(size=informative.shape), targets, groups, alpha=0.1) > 0.99).all()
    assert (ridge_r2(rng.normal(size=(120, 12)), targets, groups) < 0.05).all()


def test_probe_images_are_the_same_crops_for_every_encoder():
    samples = Synthetic(num_images=3, size=96, seed=1).load()
    torch.manual_seed(0)
    first, second = build_encoder(BACKBONE), build_encoder(BACKBONE)
    (i1, f1, t1, _), *rest1 = probe_images(first, samples, crop=64, per_image=4)
    (i2, f2, t2, _), *rest2 = probe_images(second, samples, crop=64, per_image=4)
    assert i1 == i2 == 0 and [r[0] for r in rest1] == [1, 2] and f1.shape == (4, 512)
    assert np.array_equal(t1, t2) and all(np.array_equal(a[2], b[2]) for a, b in zip(rest1, rest2))
    assert not np.allclose(f1, f2)
    counts = np.concatenate([t1[:, 0], *(r[2][:, 0] for r in rest1)])
    assert counts.max() > 0 and len(set(counts)) > 3


class SharpnessEncoder(torch.nn.Module):
    """Responds to sharpness only: local Laplacian energy, whatever the nuclei."""

    def forward(self, x):
        laplacian = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]).expand(3, 1, 3, 3)
        energy = torch.nn.functional.conv2d(x, laplacian, groups=3).abs()
        return [x, energy, energy]


def test_blur_share_is_near_one_for_an_encoder_that_sees_only_sharpness():
    samples = Synthetic(num_images=3, size=128, seed=2).load()
    ticks = []
    scores = probe_encoder(SharpnessEncoder(), samples, crop=96, per_image=4, scales=[64, 32],
                           on_image=lambda: ticks.append(1))
    shares = scores["blur_share"]
    assert set(shares) == {64, 32} and all(0.8 < share < 1.2 for share in shares.values())
    assert len(ticks) == 3 and all(np.isfinite(scores[k]) for k in ("count", "log_size"))
    with pytest.raises(DataError, match="resampling scales"):
        probe_encoder(SharpnessEncoder(), samples, crop=96, per_image=4, scales=[96])


def test_density_views_pair_each_zoomed_negative_with_the_positive_at_its_blur():
    positive = Synthetic(num_images=1, size=96, seed=2).load()[0].image
    titles, views = density_views(positive, [64, 32])
    assert len(titles) == views.shape[0] == 5 and views.dtype == torch.uint8 and views.shape[-1] == 96
    native, zoomed_64, resampled_64, zoomed_32, resampled_32 = views.float().mean(dim=1)

    def similarity(view):
        return np.corrcoef(native.flatten(), view.flatten())[0, 1]

    def sharpness(view):
        return float(view.diff(dim=0).abs().mean())

    # resampled: the positive's own nuclei at the negative's blur; zoomed: other, larger content
    assert similarity(resampled_64) > 0.9 and similarity(resampled_64) > similarity(zoomed_64) + 0.3
    assert similarity(resampled_32) > similarity(zoomed_32) + 0.3
    assert sharpness(native) > sharpness(resampled_64) > sharpness(resampled_32)


def test_probe_cli_scores_saved_encoders(tmp_path):
    torch.manual_seed(0)
    path = save_encoder(build_encoder(BACKBONE).state_dict(), tmp_path / "run" / "encoder.safetensors",
                        {"pretext": "scratch", "backbone": BACKBONE})
    result = CliRunner().invoke(app, ["probe", str(path.parent), "--crop", "64", "--crops-per-image", "4", "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output)[str(path)]
    assert scores["pretext"] == "scratch" and all(np.isfinite(scores[k]) for k in ("count", "log_size"))
    assert set(scores["blur_share"]) == {"48", "32", "16", "8"}
    missing = CliRunner().invoke(app, ["probe", str(tmp_path / "nothing")])
    assert missing.exit_code != 0 and "no encoder here" in str(missing.exception)


def test_probe_table_names_encoders_by_stem_when_those_are_unique(tmp_path, monkeypatch):
    monkeypatch.setattr("sslbench.cli.probe.console", Console(width=400))  # whole paths on one line
    torch.manual_seed(0)
    state = build_encoder(BACKBONE).state_dict()
    bench = [save_encoder(state, tmp_path / "bench" / "encoders" / f"{name}.safetensors",
                          {"pretext": "scratch", "backbone": BACKBONE}) for name in ("scratch-s0", "scratch-s1")]
    result = CliRunner().invoke(app, ["probe", *map(str, bench), "--crop", "64", "--crops-per-image", "2"])
    assert result.exit_code == 0, result.output
    assert "scratch-s0" in result.output and "scratch-s1" in result.output and str(tmp_path) not in result.output
    runs = [save_encoder(state, tmp_path / run / "encoder.safetensors", {"pretext": "scratch", "backbone": BACKBONE})
            for run in ("a", "b")]
    result = CliRunner().invoke(app, ["probe", *map(str, runs), "--crop", "64", "--crops-per-image", "2"])
    assert result.exit_code == 0, result.output
    assert all(str(path) in result.output for path in runs)
