"""A straightforward per-nucleus reference for ``sslbench.eval.metrics``, shared by the tests and
the speed benchmark: full-image boolean masks per nucleus, as HoVer-Net's ``stats_utils`` does,
with our documented semantics (exact IoU, AJI ties → lowest prediction id, empty maps → 1.0), and
detection F1 as HoVer-Net's ``pair_coordinates`` (Hungarian on centroid distance, pairs beyond the
radius dropped).
Also a generator of realistic GT/prediction label-map pairs."""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import linear_sum_assignment


def _ratio(num, den):
    return float(num / den) if den else 1.0


def reference_metrics(gt: np.ndarray, pred: np.ndarray, iou_threshold: float = 0.5,
                      centroid_radius: float = 12.0) -> dict[str, float]:
    gt_ids = [i for i in np.unique(gt) if i != 0]
    pred_ids = [j for j in np.unique(pred) if j != 0]
    gt_masks = [gt == i for i in gt_ids]
    pred_masks = [pred == j for j in pred_ids]
    inter = np.zeros((len(gt_ids), len(pred_ids)), np.int64)
    union = np.zeros_like(inter)
    for a, g in enumerate(gt_masks):
        for j in np.unique(pred[g]):
            if j == 0:
                continue
            b = pred_ids.index(j)
            inter[a, b] = np.count_nonzero(g & pred_masks[b])
            union[a, b] = np.count_nonzero(g | pred_masks[b])
    iou = np.divide(inter, union, out=np.zeros(inter.shape), where=union > 0)
    gt_area = [int(g.sum()) for g in gt_masks]
    pred_area = [int(p.sum()) for p in pred_masks]

    def aji_from(pairs):
        c = sum(int(inter[a, b]) for a, b in pairs)
        u = sum(int(union[a, b]) for a, b in pairs)
        u += sum(gt_area[a] for a in range(len(gt_ids)) if a not in {a for a, _ in pairs})
        u += sum(pred_area[b] for b in range(len(pred_ids)) if b not in {b for _, b in pairs})
        return _ratio(c, u)

    # np.argmax returns the first maximum, i.e. the lowest prediction id.
    many_to_one = [(a, int(np.argmax(iou[a]))) for a in range(len(gt_ids)) if iou[a].max(initial=0) > 0]
    rows, cols = linear_sum_assignment(iou, maximize=True)
    hungarian = [(a, b) for a, b in zip(rows, cols) if iou[a, b] > 0]
    if iou_threshold >= 0.5:
        matched = [(a, b) for a in range(len(gt_ids)) for b in range(len(pred_ids)) if iou[a, b] > iou_threshold]
    else:
        matched = [(a, b) for a, b in hungarian if iou[a, b] > iou_threshold]
    tp, fp, fn = len(matched), len(pred_ids) - len(matched), len(gt_ids) - len(matched)
    dq = _ratio(tp, tp + 0.5 * (fp + fn))
    sq = math.fsum(iou[a, b] for a, b in matched) / tp if tp else float(not gt.any() and not pred.any())
    fg_g, fg_p = gt > 0, pred > 0
    gt_centroids = np.array([np.argwhere(g).mean(axis=0) for g in gt_masks]).reshape(-1, 2)
    pred_centroids = np.array([np.argwhere(p).mean(axis=0) for p in pred_masks]).reshape(-1, 2)
    distance = np.sqrt(((gt_centroids[:, None] - pred_centroids[None]) ** 2).sum(axis=-1))
    rows, cols = linear_sum_assignment(distance)
    det_tp = int((distance[rows, cols] <= centroid_radius).sum())
    f1 = _ratio(2 * det_tp, len(gt_ids) + len(pred_ids))
    return {"aji": aji_from(many_to_one), "aji_plus": aji_from(hungarian), "pq": dq * sq, "dq": dq, "sq": sq,
            "dice": _ratio(2 * int((fg_g & fg_p).sum()), int(fg_g.sum() + fg_p.sum())), "f1": f1}


def random_label_pair(rng: np.random.Generator, size: int = 1000, n_nuclei: int = 600,
                      dtype=np.int32) -> tuple[np.ndarray, np.ndarray]:
    """GT of overlapping elliptic nuclei with non-contiguous ids, and a plausible imperfect prediction:
    shifted and resized copies, some nuclei missed, some split in two, plus false positives."""
    yy, xx = np.mgrid[:size, :size]
    max_id = min(np.iinfo(dtype).max, 10 * n_nuclei + 10)

    def draw(out, cy, cx, ry, rx, label, half=None):
        y0, y1 = max(int(cy - ry), 0), min(int(cy + ry) + 1, size)
        x0, x1 = max(int(cx - rx), 0), min(int(cx + rx) + 1, size)
        inside = ((yy[y0:y1, x0:x1] - cy) / ry) ** 2 + ((xx[y0:y1, x0:x1] - cx) / rx) ** 2 <= 1
        if half is not None:
            inside &= (xx[y0:y1, x0:x1] < cx) == half
        out[y0:y1, x0:x1][inside] = label

    gt = np.zeros((size, size), dtype)
    pred = np.zeros((size, size), dtype)
    gt_ids = rng.choice(np.arange(1, max_id + 1), n_nuclei, replace=False)
    pred_ids = iter(rng.permutation(np.arange(1, max_id + 1)))
    radius = max(2.0, size / np.sqrt(n_nuclei) / 3)
    for label in gt_ids:
        cy, cx = rng.uniform(0, size, 2)
        ry, rx = radius * rng.uniform(0.6, 1.4, 2)
        draw(gt, cy, cx, ry, rx, label)
        fate = rng.uniform()
        if fate < 0.1:
            continue  # missed nucleus
        dy, dx = rng.normal(0, radius / 4, 2)
        sy, sx = rng.uniform(0.7, 1.3, 2)
        if fate < 0.2:  # split into two halves
            draw(pred, cy + dy, cx + dx, ry * sy, rx * sx, next(pred_ids), half=True)
            draw(pred, cy + dy, cx + dx, ry * sy, rx * sx, next(pred_ids), half=False)
        else:
            draw(pred, cy + dy, cx + dx, ry * sy, rx * sx, next(pred_ids))
    for _ in range(n_nuclei // 10):  # false positives
        cy, cx = rng.uniform(0, size, 2)
        draw(pred, cy, cx, radius * rng.uniform(0.5, 1), radius * rng.uniform(0.5, 1), next(pred_ids))
    return gt, pred
