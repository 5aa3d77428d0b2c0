"""Figures from a bench output folder (PNG): Table 1 as a plot, Fig.-4 overlays, Fig.-3 density maps.

Matplotlib's object API (``Figure``, Agg canvas) is used without pyplot: no display, no global state.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from sslbench.bench.leaderboard import seed_values, select_rows, strategy_label
from sslbench.bench.store import Store
from sslbench.bench.suites import load_suite
from sslbench.data.base import image_tensor
from sslbench.errors import DataError
from sslbench.eval.metrics import DEFAULT_AGGREGATION
from sslbench.eval.overlay import dense_box, draw_overlay
from sslbench.eval.probe import density_activation, zoomed
from sslbench.pipeline.artifact import EncoderArtifact

SSL = "instance_aware"


def fraction_figure(out: Path, suite_name: str, path: Path, aggregation: str = DEFAULT_AGGREGATION) -> Path:
    """AJI vs label fraction per strategy: mean over seeds with a ± std band; the paper's as dashes."""
    suite, rows, _ = select_rows(load_suite(suite_name), Store(out, create=False).rows())
    if len({r["fraction"] for r in rows}) < 2:
        raise DataError(f"fewer than two label fractions of {suite_name} finished; the plot needs `--suite table1`.")
    x = [100 * f for f in suite.fractions]
    fig = Figure(figsize=(6, 4.2), layout="constrained")
    ax = fig.add_subplot()
    for i, strategy in enumerate(suite.strategies):
        colour = f"C{i}"
        per_column = seed_values(suite, rows, strategy, "aji", aggregation)
        points = [(xi, np.mean(list(v.values())), np.std(list(v.values()), ddof=1) if len(v) > 1 else 0.0)
                  for xi, v in zip(x, per_column) if v]
        if points:
            px, mean, std = map(np.array, zip(*points))
            ax.plot(px, mean, "o-", color=colour, label=f"{strategy_label(strategy)} (ours)")
            ax.fill_between(px, mean - std, mean + std, color=colour, alpha=0.2)
        paper = suite.paper.get("aji", {}).get(strategy)
        if paper:
            ax.plot(x, paper, "s--", color=colour, alpha=0.6, label=f"{strategy_label(strategy)} (paper)")
    ax.set(xlabel="labelled training images (%)", ylabel=f"AJI (%, {aggregation})",
           title=f"{suite_name}: AJI vs amount of labels")
    ax.invert_xaxis()
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=120)
    return path


def _pick(rows: list[dict], strategy: str, name: str | None = None) -> dict | None:
    """The job of ``strategy`` with the most labels, lowest seed and fold, that saved a prediction."""
    mine = [r for r in rows if r["strategy"] == strategy and r.get("prediction")
            and (name is None or r["test_names"][0] == name)]
    return min(mine, key=lambda r: (-r["fraction"], r["seed"], r["fold"] or 0), default=None)


def overlay_figure(out: Path, rows: list[dict], path: Path) -> Path:
    """Fig. 4: one test image, zoomed where its nuclei are densest: GT alone, then the scratch and SSL
    predictions with GT contours and their missed / merged / split nuclei marked."""
    scratch = _pick(rows, "scratch")
    ssl = scratch and _pick(rows, SSL, scratch["test_names"][0])
    if scratch is None or ssl is None:
        raise DataError("the overlay needs finished scratch and instance_aware jobs on the same test image.")
    predictions = [np.load(out / row["prediction"]) for row in (scratch, ssl)]
    name = str(predictions[0]["name"])
    sample = np.load(out / "samples" / str(predictions[0]["sample"]))
    image, truth = sample["image"], sample["labels"]
    box = dense_box(truth)
    fig = Figure(figsize=(13, 4.9), layout="constrained")
    axes = fig.subplots(1, 3)
    draw_overlay(axes[0], image, truth, box=box, title="ground truth")
    for ax, row, prediction in zip(axes[1:], (scratch, ssl), predictions):
        aji = next(p["aji"] for p in row["scores"]["per_image"] if p["name"] == name)
        draw_overlay(ax, image, truth, prediction["instances"], box,
                     f"{strategy_label(row['strategy'])}: AJI {100 * aji:.1f} % (whole image)")
    fig.suptitle(f"Test image {name}, rows {box[0].start}–{box[0].stop}, columns {box[1].start}–{box[1].stop} "
                 f"({scratch['fraction']:.0%} labels, seed {scratch['seed']})")
    fig.savefig(path, dpi=120)
    return path


@torch.no_grad()
def density_maps(encoder, positive: np.ndarray, scales: list[int]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The positive crop and one negative per scale (its centre sub-crop resized to the crop size, as the
    pretext samples them) with the channel-mean of the encoder's last-but-one feature map, upsampled.
    The paper shows its last deconvolution (decoder) layer; only the encoder is pretrained (the decoder
    starts fresh at finetuning), so the encoder's features are what the pretext task shaped."""
    size = positive.shape[0]
    x = image_tensor(positive)[None].float()
    batch = torch.cat([x, *(zoomed(x, scale) for scale in scales)]).round().clamp(0, 255).to(torch.uint8)
    features = density_activation(encoder.eval(), batch)[:, None]
    maps = F.interpolate(features, size=(size, size), mode="bilinear", align_corners=False)[:, 0]
    return [c.permute(1, 2, 0).numpy() for c in batch], list(maps.numpy())


def density_figure(out: Path, rows: list[dict], path: Path) -> Path:
    """Fig. 3: what the instance-aware encoder responds to, positive vs its zoomed-in negatives."""
    row = _pick(rows, SSL)
    if row is None:
        raise DataError("the density maps need a finished instance_aware job.")
    cfg = row["config"]
    encoder, _ = EncoderArtifact(out / row["encoder"]).module()
    image = np.load(out / "samples" / str(np.load(out / row["prediction"])["sample"]))["image"]
    size = min(cfg["pretext"]["crop"], *image.shape[:2]) // 32 * 32
    top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
    scales = [s for s in cfg["pretext"]["neg_scales"] if s < size]
    crops, maps = density_maps(encoder, image[top:top + size, left:left + size], scales)
    vmax = max(float(m.max()) for m in maps)
    vmin = min(float(m.min()) for m in maps)
    fig = Figure(figsize=(2.6 * len(crops), 5.4), layout="constrained")
    axes = fig.subplots(2, len(crops), squeeze=False)
    for i, (crop, density) in enumerate(zip(crops, maps)):
        axes[0, i].imshow(crop)
        axes[0, i].set_title("positive" if i == 0 else f"negative {scales[i - 1]}² → {size}²", fontsize=9)
        shown = axes[1, i].imshow(density, cmap="jet", vmin=vmin, vmax=vmax)
        for ax in axes[:, i]:
            ax.axis("off")
    fig.colorbar(shown, ax=axes[1, :].tolist(), shrink=0.8, label="mean activation")
    fig.suptitle(f"Density maps, {strategy_label(SSL)} encoder (seed {row['seed']}; one colour scale)")
    fig.savefig(path, dpi=110)
    return path


def make_figures(out: Path, suite_name: str | None = None) -> dict[str, Path | str]:
    """Every figure the store allows: name -> written path, or the reason it was skipped."""
    rows = Store(out, create=False).rows()
    if suite_name:
        _, rows, _ = select_rows(load_suite(suite_name), rows)
    folder = out / "figures"
    folder.mkdir(exist_ok=True)
    makers = {"aji_vs_fraction": lambda p: fraction_figure(out, suite_name or "table1", p),
              "overlay": lambda p: overlay_figure(out, rows, p),
              "density": lambda p: density_figure(out, rows, p)}
    results: dict[str, Path | str] = {}
    for name, make in makers.items():
        try:
            results[name] = make(folder / f"{name}.png")
        except DataError as exc:
            results[name] = str(exc)
    return results
