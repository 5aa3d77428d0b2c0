"""Overlay pictures of a segmentation: a zoomed crop where the ground-truth nuclei are densest, with
ground-truth contours, predicted instances filled in translucent colours, and a mark on every GT
nucleus that was missed, merged or split. ``sslbench run`` and ``sslbench figures`` both draw with
:func:`draw_overlay`, so their pictures read the same way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from scipy import ndimage
from skimage.segmentation import find_boundaries

from sslbench.eval.metrics import overlap_table

GT_COLOUR = (0, 255, 0)
# per-instance prediction colours (matplotlib tab10 without its green, which is the ground truth's)
PREDICTION_COLOURS = np.array([(31, 119, 180), (255, 127, 14), (214, 39, 40), (148, 103, 189), (140, 86, 75),
                               (227, 119, 194), (188, 189, 34), (23, 190, 207)], np.uint8)
ERROR_MARKERS = {"missed": "X", "merged": "D", "split": "*"}
CROP, SHOWN = 250, 500  # crop side in image px; shown side after upscaling, so every nucleus is visible


def dense_box(labels: np.ndarray, size: int = CROP) -> tuple[slice, slice]:
    """The ``size``² window (clipped to the image) holding the most ground-truth nucleus pixels."""
    height, width = labels.shape
    rows, cols = min(size, height), min(size, width)
    mass = ndimage.uniform_filter((labels > 0).astype(np.float32), (rows, cols), mode="constant")
    valid = mass[rows // 2:height - (rows - 1) // 2, cols // 2:width - (cols - 1) // 2]
    top, left = np.unravel_index(np.argmax(valid), valid.shape)
    return slice(int(top), int(top) + rows), slice(int(left), int(left) + cols)


def gt_errors(truth: np.ndarray, prediction: np.ndarray) -> dict[str, list[int]]:
    """GT nucleus ids by error. Missed: predictions cover under half of it. Merged: the prediction
    covering most of it is also the one covering most of another GT nucleus. Split: a second
    prediction covers at least a quarter of it. Each nucleus counts once, in that order."""
    table = overlap_table(truth, prediction)
    covered = np.bincount(table.rows, table.inter, minlength=table.gt_ids.size)
    order = np.lexsort((-table.inter, table.rows))  # per GT nucleus, its overlaps largest first
    rows, cols, inter = table.rows[order], table.cols[order], table.inter[order]
    first = np.r_[True, rows[1:] != rows[:-1]]
    second = ~first & np.r_[False, first[:-1]]
    main = np.full(table.gt_ids.size, -1)
    main[rows[first]] = cols[first]
    runner_up = np.zeros(table.gt_ids.size)
    runner_up[rows[second]] = inter[second]
    missed = covered < 0.5 * table.gt_area
    shared = np.bincount(main[~missed], minlength=table.pred_ids.size) > 1
    merged = ~missed & (main >= 0) & shared[np.maximum(main, 0)]
    split = ~missed & ~merged & (runner_up >= 0.25 * table.gt_area)
    return {name: table.gt_ids[mask].tolist() for name, mask in
            (("missed", missed), ("merged", merged), ("split", split))}


def _zoom(array: np.ndarray, factor: int) -> np.ndarray:
    return array.repeat(factor, axis=0).repeat(factor, axis=1)


def _thick_boundaries(labels: np.ndarray, mode: str) -> np.ndarray:
    return ndimage.binary_dilation(find_boundaries(labels, mode=mode))  # 3 px: visible at any zoom


def overlay_rgb(image: np.ndarray, truth: np.ndarray, prediction: np.ndarray | None, factor: int) -> np.ndarray:
    """The upscaled RGB picture: prediction filled (35 % opaque) and outlined per instance, GT outlined outside."""
    shown = _zoom(image, factor).astype(np.float32)
    truth = _zoom(truth, factor)
    if prediction is not None:
        prediction = _zoom(prediction, factor)
        colours = PREDICTION_COLOURS[prediction % len(PREDICTION_COLOURS)].astype(np.float32)
        inside = prediction > 0
        shown[inside] = 0.65 * shown[inside] + 0.35 * colours[inside]
        edge = _thick_boundaries(prediction, "inner") & inside
        shown[edge] = colours[edge]
    shown[_thick_boundaries(truth, "outer") & (truth == 0)] = GT_COLOUR
    return shown.round().astype(np.uint8)


def draw_overlay(ax, image: np.ndarray, truth: np.ndarray, prediction: np.ndarray | None = None,
                 box: tuple[slice, slice] | None = None, title: str = "") -> None:
    """Draw the crop ``box`` (default: :func:`dense_box`) of one image on a matplotlib axis, with
    error marks and their legend when there is a prediction."""
    box = box or dense_box(truth)
    truth = truth[box]
    factor = max(1, round(SHOWN / max(truth.shape)))
    prediction = None if prediction is None else prediction[box]
    ax.imshow(overlay_rgb(image[box], truth, prediction, factor), interpolation="nearest")
    handles = [Line2D([], [], color=np.array(GT_COLOUR) / 255, lw=2, label="ground truth")]
    if prediction is not None:
        for name, ids in gt_errors(truth, prediction).items():
            points = np.array(ndimage.center_of_mass(truth > 0, truth, ids)).reshape(-1, 2) * factor + (factor - 1) / 2
            ax.scatter(points[:, 1], points[:, 0], s=45, marker=ERROR_MARKERS[name], c="yellow",
                       edgecolors="black", linewidths=0.8)
            handles.append(Line2D([], [], ls="", marker=ERROR_MARKERS[name], color="yellow", markeredgecolor="black",
                                  label=f"{name} ({len(ids)})"))
    ax.legend(handles=handles, loc="lower right", fontsize=7, framealpha=0.85)
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def save_overlay(path: Path, image: np.ndarray, truth: np.ndarray, prediction: np.ndarray, title: str) -> Path:
    """One-panel overlay PNG (the picture ``sslbench run`` leaves in its run folder)."""
    fig = Figure(figsize=(6, 6.3), layout="constrained")
    draw_overlay(fig.add_subplot(), image, truth, prediction, title=title)
    fig.savefig(path, dpi=120)
    return path
