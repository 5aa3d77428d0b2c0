"""Instance-segmentation metrics for nuclei: AJI, AJI+, PQ/DQ/SQ, pixel Dice, detection F1.

Every metric is computed from one sparse GT×prediction overlap table (:func:`overlap_table`,
which also holds every instance's area and centroid), built in a single pass over the pixels with
``np.bincount`` on combined ids, so scoring a 1000×1000 map with hundreds of nuclei costs tens of
milliseconds and can run on every validation step.

Inputs are 2-D non-negative integer instance label maps of equal shape (0 = background).
Ids need not be contiguous; any unsigned or signed integer dtype is accepted.

Semantics
---------
* **AJI** (Kumar et al. 2017; official MoNuSeg 2018 MATLAB code, HoVer-Net ``get_fast_aji``):
  each GT nucleus takes the prediction with the highest IoU among those it overlaps (ties →
  lowest prediction id); a prediction may be taken by several GT nuclei. C += |G∩S|,
  U += |G∪S|; a GT nucleus overlapping no prediction adds |G| to U; every prediction never
  taken adds its area to U. AJI = C / U.
* **AJI+** (HoVer-Net ``get_fast_aji_plus``): as AJI, but GT and predictions are paired one to
  one by the Hungarian assignment that maximises the summed IoU; pairs with IoU 0 are dropped.
* **PQ** (HoVer-Net ``get_fast_pq``): GT/prediction pairs with IoU > ``iou_threshold`` are
  true positives (unique for thresholds ≥ 0.5; below 0.5 the Hungarian assignment on IoU is
  taken first, then thresholded). DQ = TP / (TP + FP/2 + FN/2), SQ = mean IoU of the TPs,
  PQ = DQ·SQ.
* **Dice**: pixel-level foreground Dice 2|G∩P| / (|G| + |P|) of the binarised maps (as CPM).
* **Detection F1** (HoVer-Net ``compute_stats.py``, ``pair_coordinates``): GT and predicted nuclei
  are paired by their centroids (mean pixel position), with the Hungarian assignment minimising
  the summed centroid distance over all pairs; assigned pairs farther apart than
  ``centroid_radius`` (default 12 px, HoVer-Net's value; a pair at exactly the radius counts) are
  dropped. F1 = 2TP / (2TP + FP + FN). Unlike DQ it needs no pixel overlap: a nucleus found but
  badly delineated (IoU ≤ 0.5) is still detected.

Deliberate differences from HoVer-Net
-------------------------------------
* IoU is exact (``inter / union``); HoVer-Net divides by ``union + 1e-6``, which silently breaks
  exact IoU ties in favour of the larger overlap. Here an AJI tie goes to the lowest prediction
  id, as MATLAB's ``max`` does in the official code.
* No ``remap_label`` is needed: ids are compacted internally, so non-contiguous ids and any
  integer dtype give the same values as their contiguous relabelling.
* Empty maps return defined values instead of NaN / division by zero (below). For detection F1,
  HoVer-Net's ``compute_stats.py`` stands a dummy centroid at (0, 0) in for an empty map (a phantom
  FP or FN, or a TP if a nucleus lies near that corner); here an empty side has no centroids.

Edge cases (no NaN ever reaches an average)
-------------------------------------------
* Both maps empty: every metric is 1.0 — nothing to find and nothing wrongly predicted is a
  perfect answer, and a model should not be penalised on an empty tile.
* Empty GT with predictions, or predictions empty with GT: every metric is 0.0 (AJI's C is 0
  while U is the non-empty area; TP is 0).
* SQ with no true positive is 0.0 unless both maps are empty.

Ignored pixels
--------------
An ``ignore`` mask (ambiguous areas: NuInsSeg's vague areas, MoNuSAC's Ambiguous regions) is cut out
of both maps before counting: those pixels are neither nucleus nor background, so a prediction there
is no false positive and a missed nucleus there no false negative; a nucleus crossing the mask is
scored on its remaining pixels.

Classes (:func:`class_pq`, :func:`tissue_pq`)
----------------------------------------------
PanNuke-style scoring as CellViT reports it: per image, bPQ is the PQ of the class-agnostic maps and
mPQ the mean PQ over the classes present in the ground truth (a class absent from it is skipped, not
scored 1 or 0); both are averaged over the images of each tissue, then over tissues.

Aggregation over a data set (:func:`aggregate`)
------------------------------------------------
``"per_image_mean"`` (the default) averages the per-image values: the MoNuSeg 2018 challenge ranks
by the mean of the per-image AJI over its test images (Kumar et al., IEEE TMI 2020) and Xie et al.
report that average. ``"summed"`` sums the counts of all images first (C and U for AJI/AJI+,
TP/FP/FN/IoU for PQ, foreground overlap for Dice, detection TP/FP/FN for F1) and then divides:
large, crowded images weigh more, so the two can differ by whole AJI points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import cached_property, partial

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from sslbench.errors import ConfigError, DataError

METRIC_KEYS = ("aji", "aji_plus", "pq", "dq", "sq", "dice", "f1")
AGGREGATION_MODES = ("per_image_mean", "summed")
DEFAULT_AGGREGATION = "per_image_mean"
#: the ImageCounts fields that are settings, not counts: equal across images, never summed
_SETTINGS = ("iou_threshold", "centroid_radius")


@dataclass(frozen=True)
class Overlap:
    """Sparse GT×prediction contingency table of one image.

    ``gt_ids``/``pred_ids`` are the sorted non-zero ids present; ``rows``/``cols`` index them
    and ``inter`` holds the pixel count of every overlapping pair (only pairs with
    ``inter > 0`` are stored), sorted by (row, col). ``gt_centroid``/``pred_centroid`` are
    (n, 2) mean pixel positions (row, column) in id order.
    """

    gt_ids: np.ndarray
    pred_ids: np.ndarray
    gt_area: np.ndarray
    pred_area: np.ndarray
    gt_centroid: np.ndarray
    pred_centroid: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    inter: np.ndarray

    @cached_property
    def union(self) -> np.ndarray:
        return self.gt_area[self.rows] + self.pred_area[self.cols] - self.inter

    @cached_property
    def iou(self) -> np.ndarray:
        return self.inter / self.union


@dataclass(frozen=True)
class ImageCounts:
    """The additive counts behind every metric of one image (or, summed, of a data set)."""

    aji_c: int
    aji_u: int
    aji_plus_c: int
    aji_plus_u: int
    tp: int
    fp: int
    fn: int
    iou_sum: float
    fg_inter: int
    fg_total: int
    det_tp: int
    det_fp: int
    det_fn: int
    iou_threshold: float = 0.5
    centroid_radius: float = 12.0

    def metrics(self) -> dict[str, float]:
        """Fractions in [0, 1] keyed by :data:`METRIC_KEYS`; see the module doc for empty maps."""
        dq = _ratio(self.tp, self.tp + 0.5 * (self.fp + self.fn))
        empty = self.fg_total == 0
        sq = self.iou_sum / self.tp if self.tp else float(empty)
        return {"aji": _ratio(self.aji_c, self.aji_u), "aji_plus": _ratio(self.aji_plus_c, self.aji_plus_u),
                "pq": dq * sq, "dq": dq, "sq": sq, "dice": _ratio(2 * self.fg_inter, self.fg_total),
                "f1": _ratio(2 * self.det_tp, 2 * self.det_tp + self.det_fp + self.det_fn)}


def _ratio(num: float, den: float) -> float:
    # den is 0 only when both maps are empty: a perfect answer by our convention.
    return float(num / den) if den else 1.0


def _check(gt: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gt, pred = np.asarray(gt), np.asarray(pred)
    for name, arr in (("gt", gt), ("pred", pred)):
        if arr.ndim != 2:
            raise DataError(f"{name} label map must be 2-D (H×W), got shape {arr.shape}; pass one image at a time.")
        if arr.dtype.kind not in "ui":
            raise DataError(f"{name} label map has dtype {arr.dtype}; pass integer instance ids "
                            "(label binary masks first, e.g. scipy.ndimage.label).")
        if arr.dtype.kind == "i" and arr.size and arr.min() < 0:
            raise DataError(f"{name} label map has negative ids; use 0 for background and positive ids.")
    if gt.shape != pred.shape:
        raise DataError(f"gt shape {gt.shape} differs from pred shape {pred.shape}; compare maps of the same image.")
    return gt, pred


def _instances(labels: np.ndarray):
    """Sorted non-zero ids of a 2-D label map, their areas and centroids (row, column), and a map
    from id values to positions."""
    flat = labels.ravel()
    top = int(flat.max()) if flat.size else 0
    if top <= max(4 * flat.size, 1 << 16):  # a lookup table no bigger than a few images
        counts = np.bincount(flat.astype(np.intp, copy=False), minlength=1)
        ids = np.flatnonzero(counts[1:]) + 1
        lut = np.zeros(top + 1, np.intp)
        lut[ids] = np.arange(ids.size)
        areas, position = counts[ids], lut.__getitem__
    else:  # huge sparse ids
        ids, counts = np.unique(flat, return_counts=True)
        keep = ids != 0
        ids, areas = ids[keep], counts[keep]
        position = partial(np.searchsorted, ids)
    # Weighted bincounts over the foreground pixels: about 13 ms for a 1000² map with 600 nuclei,
    # where scipy.ndimage.center_of_mass took about 90 ms for the same centroids.
    foreground = np.flatnonzero(flat)
    pos = position(flat[foreground])
    rows, cols = np.divmod(foreground, max(labels.shape[1], 1))
    sums = np.stack([np.bincount(pos, weights=rows, minlength=ids.size),
                     np.bincount(pos, weights=cols, minlength=ids.size)], axis=1)
    return ids, areas, sums / areas[:, None], position


def overlap_table(gt: np.ndarray, pred: np.ndarray) -> Overlap:
    """The sparse GT×prediction intersection table, built in one pass over the pixels."""
    gt, pred = _check(gt, pred)
    gt_ids, gt_area, gt_centroid, gt_pos = _instances(gt)
    pred_ids, pred_area, pred_centroid, pred_pos = _instances(pred)
    gt, pred = gt.ravel(), pred.ravel()
    n_gt, n_pred = gt_ids.size, pred_ids.size
    both = (gt > 0) & (pred > 0)
    code = gt_pos(gt[both]) * n_pred + pred_pos(pred[both])
    if n_gt * n_pred <= max(2 * code.size, 1 << 20):
        counts = np.bincount(code, minlength=n_gt * n_pred)
        code = np.flatnonzero(counts)
        inter = counts[code]
    else:  # too many id pairs for a dense histogram
        code, inter = np.unique(code, return_counts=True)
    rows, cols = np.divmod(code, max(n_pred, 1))
    return Overlap(gt_ids, pred_ids, gt_area.astype(np.int64), pred_area.astype(np.int64),
                   gt_centroid, pred_centroid, rows, cols, inter.astype(np.int64))


def _hungarian(ov: Overlap) -> np.ndarray:
    """Entry indices of the one-to-one pairing maximising summed IoU (IoU > 0 pairs only)."""
    if ov.inter.size == 0:
        return np.zeros(0, np.intp)
    # Only ids that overlap something can be paired; the rest would only add zero columns.
    r_ids, r = np.unique(ov.rows, return_inverse=True)
    c_ids, c = np.unique(ov.cols, return_inverse=True)
    iou = np.zeros((r_ids.size, c_ids.size))
    entry = np.full(iou.shape, -1, np.intp)
    iou[r, c] = ov.iou
    entry[r, c] = np.arange(ov.inter.size)
    pr, pc = linear_sum_assignment(iou, maximize=True)
    picked = entry[pr, pc]
    return picked[picked >= 0]


def _aji_cu(ov: Overlap, picked: np.ndarray) -> tuple[int, int]:
    """AJI's C and U given the picked entries (at most one per GT nucleus)."""
    used = np.zeros(ov.pred_ids.size, bool)
    used[ov.cols[picked]] = True
    paired_gt = np.zeros(ov.gt_ids.size, bool)
    paired_gt[ov.rows[picked]] = True
    c = int(ov.inter[picked].sum())
    u = int(ov.union[picked].sum() + ov.gt_area[~paired_gt].sum() + ov.pred_area[~used].sum())
    return c, u


def _best_per_gt(ov: Overlap) -> np.ndarray:
    """For every GT that overlaps something, the entry with the highest IoU, ties → lowest pred id."""
    order = np.lexsort((ov.cols, -ov.iou, ov.rows))
    first = np.ones(order.size, bool)
    first[1:] = ov.rows[order[1:]] != ov.rows[order[:-1]]
    return order[first]


def _detected_pairs(ov: Overlap, radius: float) -> int:
    """Centroid pairs within ``radius`` among the Hungarian assignment on centroid distance (HoVer-Net)."""
    if not (ov.gt_ids.size and ov.pred_ids.size):
        return 0
    distance = cdist(ov.gt_centroid, ov.pred_centroid)
    rows, cols = linear_sum_assignment(distance)
    return int(np.count_nonzero(distance[rows, cols] <= radius))


def without_ignored(gt: np.ndarray, pred: np.ndarray, ignore: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Both maps with the ``ignore`` pixels set to background (see the module doc)."""
    if ignore is None:
        return gt, pred
    gt, pred = _check(gt, pred)
    if np.shape(ignore) != gt.shape:
        raise DataError(f"ignore mask shape {np.shape(ignore)} differs from the label map's {gt.shape}; "
                        "pass the mask of the same image.")
    ignore = np.asarray(ignore, bool)
    return np.where(ignore, 0, gt), np.where(ignore, 0, pred)


def image_counts(gt: np.ndarray, pred: np.ndarray, iou_threshold: float = 0.5,
                 centroid_radius: float = 12.0, ignore: np.ndarray | None = None) -> ImageCounts:
    """The additive counts of one image, ``ignore`` pixels left out; keep these per image to
    :func:`aggregate` a data set."""
    gt, pred = without_ignored(gt, pred, ignore)
    if not 0.0 <= iou_threshold < 1.0:
        raise ConfigError(f"iou_threshold must be in [0, 1), got {iou_threshold}.")
    if not 0.0 <= centroid_radius < math.inf:
        raise ConfigError(f"centroid_radius must be a finite distance >= 0 in pixels, got {centroid_radius}.")
    ov = overlap_table(gt, pred)
    aji_c, aji_u = _aji_cu(ov, _best_per_gt(ov))
    hungarian = _hungarian(ov)
    plus_c, plus_u = _aji_cu(ov, hungarian)
    iou = ov.iou
    # IoU > 0.5 pairs are unique on both sides; below, HoVer-Net thresholds the Hungarian pairs.
    tp_entries = np.flatnonzero(iou > iou_threshold) if iou_threshold >= 0.5 else \
        hungarian[iou[hungarian] > iou_threshold]
    tp = int(tp_entries.size)
    n_gt, n_pred = int(ov.gt_ids.size), int(ov.pred_ids.size)
    det_tp = _detected_pairs(ov, centroid_radius)
    return ImageCounts(aji_c=aji_c, aji_u=aji_u, aji_plus_c=plus_c, aji_plus_u=plus_u, tp=tp,
                       fp=n_pred - tp, fn=n_gt - tp, iou_sum=math.fsum(iou[tp_entries]),
                       fg_inter=int(ov.inter.sum()), fg_total=int(ov.gt_area.sum() + ov.pred_area.sum()),
                       det_tp=det_tp, det_fp=n_pred - det_tp, det_fn=n_gt - det_tp,
                       iou_threshold=iou_threshold, centroid_radius=centroid_radius)


def all_metrics(gt: np.ndarray, pred: np.ndarray, iou_threshold: float = 0.5,
                centroid_radius: float = 12.0) -> dict[str, float]:
    """Every metric of one image from one overlap table: keys :data:`METRIC_KEYS`."""
    return image_counts(gt, pred, iou_threshold, centroid_radius).metrics()


def aji(gt: np.ndarray, pred: np.ndarray) -> float:
    """Aggregated Jaccard Index (official MoNuSeg definition; see the module doc)."""
    ov = overlap_table(gt, pred)
    return _ratio(*_aji_cu(ov, _best_per_gt(ov)))


def aji_plus(gt: np.ndarray, pred: np.ndarray) -> float:
    """AJI+ with one-to-one Hungarian pairing on IoU (HoVer-Net)."""
    ov = overlap_table(gt, pred)
    return _ratio(*_aji_cu(ov, _hungarian(ov)))


def panoptic_quality(gt: np.ndarray, pred: np.ndarray, iou_threshold: float = 0.5) -> tuple[float, float, float]:
    """(PQ, DQ, SQ) with pairs matched at IoU > ``iou_threshold`` (HoVer-Net ``get_fast_pq``)."""
    m = all_metrics(gt, pred, iou_threshold)
    return m["pq"], m["dq"], m["sq"]


def dice(gt: np.ndarray, pred: np.ndarray) -> float:
    """Pixel-level foreground Dice of the binarised maps."""
    gt, pred = _check(gt, pred)
    g, p = gt > 0, pred > 0
    return _ratio(2 * int(np.count_nonzero(g & p)), int(np.count_nonzero(g)) + int(np.count_nonzero(p)))


def detection_f1(gt: np.ndarray, pred: np.ndarray, centroid_radius: float = 12.0) -> float:
    """Detection F1: Hungarian pairing on centroid distance, pairs within ``centroid_radius`` px (HoVer-Net)."""
    return all_metrics(gt, pred, centroid_radius=centroid_radius)["f1"]


def aggregate(per_image: Sequence[ImageCounts], mode: str = DEFAULT_AGGREGATION) -> dict[str, float]:
    """Metrics of a data set: ``"per_image_mean"`` averages values, ``"summed"`` sums the counts."""
    if mode not in AGGREGATION_MODES:
        raise ConfigError(f"unknown aggregation mode '{mode}'; choose one of: {', '.join(AGGREGATION_MODES)}.")
    if not per_image:
        raise DataError("no images to aggregate; pass at least one ImageCounts.")
    settings = {name: getattr(per_image[0], name) for name in _SETTINGS}
    for name, value in settings.items():
        if any(getattr(c, name) != value for c in per_image):
            raise ConfigError(f"images were counted at different {name} values; count them all at one.")
    if mode == "per_image_mean":
        values = [c.metrics() for c in per_image]
        return {k: float(np.mean([v[k] for v in values])) for k in METRIC_KEYS}
    summed = {f.name: sum(getattr(c, f.name) for c in per_image)
              for f in fields(ImageCounts) if f.name not in _SETTINGS}
    return ImageCounts(**summed, **settings).metrics()


#: how :func:`tissue_pq` averages, for the output
TISSUE_PQ_AVERAGING = ("per image (mPQ: mean over the classes present in the ground truth), then mean over "
                       "the images of each tissue, then mean over tissues (CellViT's PanNuke averaging)")


def class_pq(gt: np.ndarray, gt_classes: np.ndarray, pred: np.ndarray, pred_classes: np.ndarray,
             num_classes: int, iou_threshold: float = 0.5,
             ignore: np.ndarray | None = None) -> tuple[float, list[float]]:
    """(bPQ, [PQ of class 1 .. num_classes]) of one image; a class absent from the ground truth is NaN.
    Class maps give a class per pixel (0 = background); class c's instances are the ids under it."""
    gt, pred = without_ignored(gt, pred, ignore)
    for name, classes, labels in (("gt", gt_classes, gt), ("pred", pred_classes, pred)):
        if np.shape(classes) != labels.shape:
            raise DataError(f"{name} class map shape {np.shape(classes)} differs from its label map's "
                            f"{labels.shape}; pass the class map of the same image.")
    per_class = []
    for c in range(1, num_classes + 1):
        gt_c = np.where(gt_classes == c, gt, 0)
        per_class.append(panoptic_quality(gt_c, np.where(pred_classes == c, pred, 0), iou_threshold)[0]
                         if gt_c.any() else math.nan)
    return panoptic_quality(gt, pred, iou_threshold)[0], per_class


def tissue_pq(per_image: Sequence[tuple[str, float, Sequence[float]]]) -> dict:
    """mPQ and bPQ of a data set from (tissue, bPQ, per-class PQ) per image (:func:`class_pq`),
    averaged as :data:`TISSUE_PQ_AVERAGING` says: {"mpq", "bpq", "averaging", "per_tissue": {tissue:
    {"mpq", "bpq", "images"}}}. An image with no class in its ground truth has no mPQ; a tissue with
    no mPQ at all is left out of the mPQ mean."""
    if not per_image:
        raise DataError("no images to score; pass at least one (tissue, bPQ, class PQs) triple.")
    by_tissue: dict[str, list[tuple[float, float]]] = {}
    for tissue, bpq, class_values in per_image:
        present = [v for v in class_values if not math.isnan(v)]
        by_tissue.setdefault(tissue, []).append((bpq, float(np.mean(present)) if present else math.nan))
    per_tissue = {}
    for tissue, values in sorted(by_tissue.items()):
        mpqs = [m for _, m in values if not math.isnan(m)]
        per_tissue[tissue] = {"mpq": float(np.mean(mpqs)) if mpqs else math.nan,
                              "bpq": float(np.mean([b for b, _ in values])), "images": len(values)}
    tissue_mpqs = [t["mpq"] for t in per_tissue.values() if not math.isnan(t["mpq"])]
    return {"mpq": float(np.mean(tissue_mpqs)) if tissue_mpqs else math.nan,
            "bpq": float(np.mean([t["bpq"] for t in per_tissue.values()])),
            "averaging": TISSUE_PQ_AVERAGING, "per_tissue": per_tissue}
