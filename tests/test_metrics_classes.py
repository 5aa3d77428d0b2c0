"""Ignored (ambiguous) pixels in scoring, and PanNuke-style mPQ / bPQ averaged per tissue."""

import math

import numpy as np
import pytest

from sslbench.errors import DataError
from sslbench.eval.metrics import TISSUE_PQ_AVERAGING, class_pq, image_counts, tissue_pq


def test_ignored_pixels_are_neither_false_positive_nor_false_negative():
    gt = np.zeros((12, 12), np.int32)
    gt[1:4, 1:4] = 1
    gt[8:11, 8:11] = 2  # missed, but inside the ambiguous area
    pred = np.zeros_like(gt)
    pred[1:4, 1:4] = 5
    pred[8:11, 1:4] = 6  # predicted inside the ambiguous area
    ignore = np.zeros(gt.shape, bool)
    ignore[7:, :] = True
    scored = image_counts(gt, pred).metrics()
    assert scored["pq"] == pytest.approx(0.5) and scored["aji"] == pytest.approx(9 / 27)
    assert image_counts(gt, pred, ignore=ignore).metrics() == image_counts(gt[:7], pred[:7]).metrics()
    assert image_counts(gt, pred, ignore=ignore).metrics()["pq"] == 1.0
    with pytest.raises(DataError, match=r"ignore mask shape \(3, 3\) differs"):
        image_counts(gt, pred, ignore=ignore[:3, :3])


def square(labels, classes, top, left, size, instance, class_id):
    labels[top:top + size, left:left + size] = instance
    classes[top:top + size, left:left + size] = class_id


def test_class_pq_and_tissue_averaging_on_a_hand_computed_example():
    # Image 1 (tissue A): two nuclei found exactly; the second (class 2) is predicted as class 1.
    gt, gt_cls = np.zeros((16, 16), np.int32), np.zeros((16, 16), np.int32)
    square(gt, gt_cls, 1, 1, 4, 1, 1)
    square(gt, gt_cls, 8, 8, 4, 2, 2)
    pred, pred_cls = gt.copy(), np.where(gt > 0, 1, 0)
    bpq, per_class = class_pq(gt, gt_cls, pred, pred_cls, num_classes=3)
    # class 1: TP 1, FP 1 -> DQ 1/(1 + 1/2) = 2/3, SQ 1; class 2: FN 1 -> 0; class 3 absent -> NaN
    assert bpq == 1.0 and per_class[:2] == [pytest.approx(2 / 3), 0.0] and math.isnan(per_class[2])
    image_1 = ("A", bpq, per_class)  # mPQ (2/3 + 0) / 2 = 1/3
    image_2 = ("A", *class_pq(gt, gt_cls, gt, gt_cls, num_classes=3))  # perfect: bPQ 1, mPQ 1
    # Image 3 (tissue B): one 4×4 nucleus, predicted on 12 of its 16 pixels: IoU 0.75 -> PQ 0.75.
    gt_b, cls_b = np.zeros((8, 8), np.int32), np.zeros((8, 8), np.int32)
    square(gt_b, cls_b, 2, 2, 4, 1, 1)
    pred_b = gt_b.copy()
    pred_b[2, 2:6] = 0
    image_3 = ("B", *class_pq(gt_b, cls_b, pred_b, cls_b, num_classes=3))
    result = tissue_pq([image_1, image_2, image_3])
    assert result["per_tissue"]["A"] == {"mpq": pytest.approx(2 / 3), "bpq": 1.0, "images": 2}
    assert result["per_tissue"]["B"] == {"mpq": pytest.approx(0.75), "bpq": pytest.approx(0.75), "images": 1}
    # over tissues, not images: per image it would be bPQ (1 + 1 + 0.75) / 3
    assert result["bpq"] == pytest.approx(0.875) and result["mpq"] == pytest.approx((2 / 3 + 0.75) / 2)
    assert result["averaging"] == TISSUE_PQ_AVERAGING and "over tissues" in result["averaging"]


def test_an_image_without_classes_has_no_mpq_but_keeps_its_bpq():
    empty = np.zeros((6, 6), np.int32)
    bpq, per_class = class_pq(empty, empty, empty, empty, num_classes=2)
    assert bpq == 1.0 and all(math.isnan(v) for v in per_class)
    result = tissue_pq([("C", bpq, per_class)])
    assert math.isnan(result["mpq"]) and result["bpq"] == 1.0
    with pytest.raises(DataError, match="no images to score"):
        tissue_pq([])
