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
from sslbench.eval.probe import default_scales, density_activation, resampled, zoomed
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


def density_views(positive: np.ndarray, scales: list[int]) -> tuple[list[str], torch.Tensor]:
    """The positive crop, then per side s its zoomed view (the centre s² resized up, as the pretext
    makes negatives) and its resampled view (down to s² and back up: the same nuclei, the zoomed
    view's blur), as one uint8 batch with a title per view."""
    size = positive.shape[0]
    x = image_tensor(positive)[None].float()
    titles, views = ["positive"], [x]
    for side in scales:
        titles += [f"zoomed {side}² → {size}²\n(a negative)", f"resampled via {side}²\n(same nuclei, its blur)"]
        views += [zoomed(x, side), resampled(x, side)]
    return titles, torch.cat(views).round().clamp(0, 255).to(torch.uint8)


def density_maps(encoder, views: torch.Tensor) -> list[np.ndarray]:
    """Each view's density map: the channel mean of the encoder's last-but-one feature map, upsampled to
    the view. The paper shows its last deconvolution (decoder) layer; only the encoder is pretrained (the
    decoder starts fresh at finetuning), so the encoder's features are what the pretext task shaped."""
    features = density_activation(encoder.eval(), views)[:, None]
    return list(F.interpolate(features, size=tuple(views.shape[-2:]), mode="bilinear", align_corners=False)[:, 0].numpy())


def density_figure(out: Path, rows: list[dict], path: Path) -> Path:
    """Fig. 3 for every strategy's encoder (lowest seed; scratch's is its random init), on one crop of a
    test image: the positive, its zoomed negatives and beside each the positive resampled to that
    negative's blur. A map that darkens as much on the resampled view as on the zoomed one responds to
    blur, not to fewer or larger nuclei."""
    picked = [row for strategy in dict.fromkeys(r["strategy"] for r in rows) if (row := _pick(rows, strategy))]
    if not picked:
        raise DataError("the density maps need a finished job that saved its prediction.")
    image = np.load(out / "samples" / str(np.load(out / picked[0]["prediction"])["sample"]))["image"]
    # the instance-aware pretext's crop and negative sides where a job has them, the probe's otherwise
    sized = next((r["config"]["pretext"] for r in picked if "neg_scales" in r["config"]["pretext"]), None)
    size = min(sized["crop"] if sized else picked[0]["config"]["finetune"]["crop"], *image.shape[:2]) // 32 * 32
    scales = [s for s in (sized["neg_scales"] if sized else default_scales(size)) if s < size]
    top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
    titles, views = density_views(image[top:top + size, left:left + size], scales)
    fig = Figure(figsize=(1.9 * len(titles) + 1.2, 2.2 * (len(picked) + 1)), layout="constrained")
    axes = fig.subplots(len(picked) + 1, len(titles), squeeze=False)
    for ax, title, view in zip(axes[0], titles, views):
        ax.imshow(view.permute(1, 2, 0).numpy())
        ax.set_title(title, fontsize=8)
    for ax_row, row in zip(axes[1:], picked):
        encoder, _ = EncoderArtifact(out / row["encoder"]).module()
        maps = density_maps(encoder, views)
        low, high = min(float(m.min()) for m in maps), max(float(m.max()) for m in maps)
        for ax, density in zip(ax_row, maps):
            shown = ax.imshow(density, cmap="jet", vmin=low, vmax=high)
        ax_row[0].set_ylabel(f"{strategy_label(row['strategy'])}\n(seed {row['seed']})", fontsize=8)
        fig.colorbar(shown, ax=ax_row.tolist(), shrink=0.8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Density maps (Fig. 3): channel mean of each encoder's last-but-one feature map, "
                 "one colour scale per encoder")
    fig.savefig(path, dpi=100)
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
