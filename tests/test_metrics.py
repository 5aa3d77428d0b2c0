"""Instance metrics: hand-computed cases, conventions, reference agreement, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from reference_metrics import random_label_pair, reference_metrics
from typer.testing import CliRunner

from sslbench.cli.app import app
from sslbench.errors import ConfigError, DataError
from sslbench.eval.metrics import (METRIC_KEYS, aggregate, aji, aji_plus, all_metrics, detection_f1, dice,
                                   image_counts, overlap_table, panoptic_quality)


def row(*values, dtype=np.int32):
    return np.array([values], dtype)


# Two GT nuclei (4 px: 2 + 2) under one predicted blob of 5 px: IoU 2/5 each.
MERGE_GT, MERGE_PRED = row(1, 1, 0, 2, 2), row(5, 5, 5, 5, 5)
# One GT nucleus of 4 px, a 3-px prediction inside it (IoU 3/4) and a 1-px false positive.
FP_GT, FP_PRED = row(1, 1, 1, 1, 0, 0), row(2, 2, 2, 0, 0, 3)


def test_aji_many_to_one_reuses_the_prediction():
    # Both GT take the blob: C = 2 + 2, U = 5 + 5.
    assert aji(MERGE_GT, MERGE_PRED) == pytest.approx(4 / 10)
    # AJI+ pairs the blob once: C = 2, U = 5 + the unpaired GT's 2 px.
    assert aji_plus(MERGE_GT, MERGE_PRED) == pytest.approx(2 / 7)
    assert panoptic_quality(MERGE_GT, MERGE_PRED) == (0.0, 0.0, 0.0)  # IoU 0.4 is no match
    assert dice(MERGE_GT, MERGE_PRED) == pytest.approx(2 * 4 / (4 + 5))


def test_aji_is_not_symmetric_under_merges():
    # Swapped, the blob is the GT: it takes one half (IoU tie → lowest id), the other half is unused.
    assert aji(MERGE_PRED, MERGE_GT) == pytest.approx(2 / (5 + 2))


def test_unused_prediction_adds_its_area_to_the_union():
    assert aji(FP_GT, FP_PRED) == pytest.approx(3 / (4 + 1))
    assert aji_plus(FP_GT, FP_PRED) == pytest.approx(3 / (4 + 1))
    pq, dq, sq = panoptic_quality(FP_GT, FP_PRED)
    assert (dq, sq, pq) == pytest.approx((1 / 1.5, 0.75, 0.5))
    assert detection_f1(FP_GT, FP_PRED) == pytest.approx(2 * 1 / (2 * 1 + 1 + 0))
    assert dice(FP_GT, FP_PRED) == pytest.approx(2 * 3 / (4 + 4))


def test_overlapping_but_not_chosen_prediction_is_penalised():
    # GT of 6 px; prediction 7 covers 4 (IoU 4/6), prediction 3 covers 2 (IoU 2/6) and stays unused.
    assert aji(row(1, 1, 1, 1, 1, 1), row(7, 7, 7, 7, 3, 3)) == pytest.approx(4 / (6 + 2))


def square(centre_col, side, shape=(40, 60)):
    """One nucleus: a side² square centred on row 20 and column ``centre_col``."""
    labels = np.zeros(shape, np.int32)
    top, left = 20 - side // 2, centre_col - side // 2
    labels[top:top + side, left:left + side] = 1
    return labels


@pytest.mark.parametrize("shift, detected", [(11, True), (12, True), (13, False)])
def test_detection_f1_pairs_centroids_within_12_px(shift, detected):
    # Two 5² squares, centroids `shift` px apart and no pixel in common: DQ is 0 either way.
    gt, pred = square(20, 5), square(20 + shift, 5)
    assert detection_f1(gt, pred) == (1.0 if detected else 0.0)  # else 1 FP + 1 FN
    assert all_metrics(gt, pred)["dq"] == 0.0
    assert detection_f1(gt, pred, centroid_radius=shift - 0.5) == 0.0  # the radius is a parameter


def test_dq_and_f1_differ_when_a_nucleus_is_found_but_badly_delineated():
    # Concentric 3² GT and 7² prediction: IoU 9/49 < 0.5, same centroid.
    metrics = all_metrics(square(20, 3), square(20, 7))
    assert (metrics["dq"], metrics["f1"]) == (0.0, 1.0)
    # The merge: the blob's centroid (column 2) lies 1.5 px from both GT centroids; one pair, one FN.
    assert detection_f1(MERGE_GT, MERGE_PRED) == pytest.approx(2 * 1 / (2 * 1 + 0 + 1))


def test_detection_pairing_is_hungarian_not_greedy():
    # GT at columns 0 and 10, predictions at 6 and 17. Greedy nearest-first takes (10, 6) at 4 px and
    # is left with (0, 17) at 17 px; the assignment minimising the summed distance pairs (0, 6) and
    # (10, 17), both within 12 px.
    gt, pred = np.zeros((1, 18), np.int32), np.zeros((1, 18), np.int32)
    gt[0, [0, 10]] = 1, 2
    pred[0, [6, 17]] = 1, 2
    assert detection_f1(gt, pred) == 1.0


@pytest.mark.parametrize("small, large, expected", [(2, 5, 1 / (3 + 5)), (5, 2, 2 / (6 + 1))])
def test_aji_iou_tie_goes_to_the_lowest_prediction_id(small, large, expected):
    # GT of 3 px: prediction `small` (1 px, IoU 1/3) and `large` (5 px, 2 inside, IoU 2/6) tie exactly.
    # HoVer-Net's union + 1e-6 would always pick the larger overlap; we pick the lowest id.
    assert aji(row(1, 1, 1, 0, 0, 0), row(small, large, large, large, large, large)) == pytest.approx(expected)


def test_pq_counts_only_pairs_above_the_threshold():
    gt, pred = row(1, 1, 1, 1, 0, 2, 2, 2, 2), row(0, 3, 3, 3, 0, 0, 0, 4, 4)  # IoU 3/4 and 2/4
    pq, dq, sq = panoptic_quality(gt, pred)
    assert (pq, dq, sq) == pytest.approx((0.75 * 0.5, 0.5, 0.75))  # 1 TP, 1 FP, 1 FN
    pq, dq, sq = panoptic_quality(gt, pred, iou_threshold=0.4)  # both match below 0.5 (Hungarian path)
    assert (pq, dq, sq) == pytest.approx((0.625, 1.0, 0.625))


def test_identical_maps_score_one():
    gt, _ = random_label_pair(np.random.default_rng(1), 64, 12)
    assert all_metrics(gt, gt) == {k: 1.0 for k in METRIC_KEYS}


@pytest.mark.parametrize("gt_empty, pred_empty, expected", [(True, True, 1.0), (True, False, 0.0), (False, True, 0.0)])
def test_empty_maps_have_defined_values(gt_empty, pred_empty, expected):
    gt, pred = random_label_pair(np.random.default_rng(2), 32, 5)
    gt, pred = gt * (not gt_empty), pred * (not pred_empty)
    assert all_metrics(gt, pred) == {k: expected for k in METRIC_KEYS}
    assert (aji(gt, pred), aji_plus(gt, pred), dice(gt, pred)) == (expected,) * 3


def test_aggregate_summed_sums_counts_and_per_image_mean_averages():
    counts = [image_counts(FP_GT, FP_PRED), image_counts(MERGE_GT, MERGE_PRED)]  # AJI 3/5 and 4/10
    assert aggregate(counts, "summed")["aji"] == pytest.approx((3 + 4) / (5 + 10))
    assert aggregate(counts, "per_image_mean")["aji"] == pytest.approx((3 / 5 + 4 / 10) / 2)
    # 1 TP (IoU .75), FP 1 + 1, FN 0 + 2.
    assert aggregate(counts, "summed")["dq"] == pytest.approx(1 / (1 + 0.5 * 4))
    assert aggregate(counts, "summed")["sq"] == pytest.approx(0.75)
    # Detection: FP case 1 TP + 1 FP, merge case 1 TP + 1 FN.
    assert aggregate(counts, "summed")["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))


def test_aggregate_with_an_empty_image_stays_finite():
    empty = np.zeros((4, 6), np.uint8)
    counts = [image_counts(FP_GT, FP_PRED), image_counts(empty, empty)]
    assert aggregate(counts, "summed") == image_counts(FP_GT, FP_PRED).metrics()  # adds nothing to C, U
    mean = aggregate(counts, "per_image_mean")
    assert mean["aji"] == pytest.approx((0.6 + 1.0) / 2)
    assert all(np.isfinite(v) for v in mean.values())


def test_aggregate_rejects_bad_input():
    with pytest.raises(ConfigError, match="choose one of"):
        aggregate([image_counts(FP_GT, FP_PRED)], "median")
    with pytest.raises(DataError, match="no images"):
        aggregate([])
    with pytest.raises(ConfigError, match="iou_threshold"):
        aggregate([image_counts(FP_GT, FP_PRED), image_counts(FP_GT, FP_PRED, iou_threshold=0.7)])
    with pytest.raises(ConfigError, match="centroid_radius"):
        aggregate([image_counts(FP_GT, FP_PRED), image_counts(FP_GT, FP_PRED, centroid_radius=6)])


@pytest.mark.parametrize("gt, pred, message", [
    (np.zeros((4, 4), int), np.zeros((4, 5), int), "differs from pred shape"),
    (np.zeros((2, 4, 4), int), np.zeros((2, 4, 4), int), "must be 2-D"),
    (np.zeros((4, 4), float), np.zeros((4, 4), int), "dtype float64"),
    (np.zeros((4, 4), bool), np.zeros((4, 4), int), "dtype bool"),
    (np.zeros((4, 4), int), -np.ones((4, 4), int), "negative ids"),
])
def test_invalid_maps_raise_one_line_value_error(gt, pred, message):
    with pytest.raises(ValueError, match=message) as info:
        all_metrics(gt, pred)
    assert "\n" not in str(info.value)


def test_iou_threshold_must_be_a_fraction():
    with pytest.raises(ConfigError, match=r"\[0, 1\)"):
        all_metrics(FP_GT, FP_PRED, iou_threshold=1.5)


@pytest.mark.parametrize("radius", [-1.0, float("inf"), float("nan")])
def test_centroid_radius_must_be_a_finite_distance(radius):
    with pytest.raises(ConfigError, match="centroid_radius"):
        all_metrics(FP_GT, FP_PRED, centroid_radius=radius)


def test_overlap_table_counts_every_pair():
    ov = overlap_table(row(4, 4, 9, 9, 0), row(0, 7, 7, 3, 3))
    assert ov.gt_ids.tolist() == [4, 9] and ov.pred_ids.tolist() == [3, 7]
    assert (ov.gt_area.tolist(), ov.pred_area.tolist()) == ([2, 2], [2, 2])
    # (gt 4, pred 7): 1 px; (gt 9, pred 3): 1 px; (gt 9, pred 7): 1 px
    assert list(zip(ov.rows.tolist(), ov.cols.tolist(), ov.inter.tolist())) == [(0, 1, 1), (1, 0, 1), (1, 1, 1)]
    assert ov.union.tolist() == [3, 3, 3]


@pytest.mark.parametrize("seed", range(40))
def test_agrees_exactly_with_the_reference_on_random_maps(seed):
    rng = np.random.default_rng(seed)
    dtype = (np.uint8, np.uint16, np.uint32, np.int32, np.int64)[seed % 5]
    gt, pred = random_label_pair(rng, int(rng.integers(16, 96)), int(rng.integers(1, 25)), dtype=dtype)
    for threshold in (0.5, 0.75, 0.3, 0.0):
        assert all_metrics(gt, pred, threshold) == reference_metrics(gt, pred, threshold)
    assert all_metrics(gt, pred, centroid_radius=3) == reference_metrics(gt, pred, centroid_radius=3)


def test_agrees_with_the_reference_when_id_pairs_are_too_many_for_a_dense_histogram():
    rng = np.random.default_rng(3)
    gt = rng.permutation(36 * 36).reshape(36, 36) + 1  # 1296 one-pixel nuclei: 1296² pairs > 2**20
    pred = np.roll(rng.permutation(36 * 36).reshape(36, 36) + 1, 1, axis=1) * (rng.uniform(size=(36, 36)) > 0.1)
    assert all_metrics(gt, pred) == reference_metrics(gt, pred)


@pytest.mark.parametrize("seed", range(5))
def test_relabelling_ids_changes_nothing(seed):
    rng = np.random.default_rng(100 + seed)
    gt, pred = random_label_pair(rng, 80, 20)
    expected = all_metrics(gt, pred)

    def relabel(labels, dtype, high):
        ids = np.unique(labels)
        new = np.concatenate([[0], rng.choice(high - 1, ids.size - 1, replace=False) + 1])
        return new[np.searchsorted(ids, labels)].astype(dtype)

    for dtype, high in ((np.uint8, 255), (np.uint16, 65535), (np.uint32, 2**32 - 1), (np.int64, 2**40)):
        assert all_metrics(relabel(gt, dtype, high), relabel(pred, dtype, high)) == expected


@pytest.mark.parametrize("seed", range(5))
def test_matching_metrics_are_symmetric(seed):
    gt, pred = random_label_pair(np.random.default_rng(200 + seed), 80, 20)
    forward, backward = all_metrics(gt, pred), all_metrics(pred, gt)
    for key in ("aji_plus", "pq", "dq", "sq", "dice", "f1"):
        assert forward[key] == pytest.approx(backward[key], abs=1e-12)


# --- CLI ---------------------------------------------------------------------------------------

def _save(path, labels):
    if path.suffix == ".npy":
        np.save(path, labels)
    else:
        Image.fromarray(labels.astype(np.uint16)).save(path)


def _invoke(*args):
    return CliRunner().invoke(app, ["metrics", *map(str, args)])


def test_cli_scores_a_file_pair_as_json(tmp_path):
    gt, pred = random_label_pair(np.random.default_rng(4), 64, 10)
    _save(tmp_path / "gt.png", gt)
    _save(tmp_path / "pred.npy", pred)
    result = _invoke(tmp_path / "gt.png", tmp_path / "pred.npy", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == pytest.approx(all_metrics(gt, pred))


def test_cli_scores_folders_matched_by_stem(tmp_path):
    (tmp_path / "gt").mkdir(), (tmp_path / "pred").mkdir()
    pairs = {name: random_label_pair(np.random.default_rng(i), 48, 8) for i, name in enumerate(("a", "b", "c"))}
    for name, (gt, pred) in pairs.items():
        _save(tmp_path / "gt" / f"{name}.png", gt)
        _save(tmp_path / "pred" / f"{name}.npy", pred)
    result = _invoke(tmp_path / "gt", tmp_path / "pred", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    counts = [image_counts(*pairs[name]) for name in ("a", "b", "c")]
    assert {k: out[k] for k in METRIC_KEYS} == pytest.approx(aggregate(counts, "per_image_mean"))  # the default
    assert [p["name"] for p in out["per_image"]] == ["a", "b", "c"]
    assert out["per_image"][1] == pytest.approx({"name": "b", **counts[1].metrics()})
    summed = json.loads(_invoke(tmp_path / "gt", tmp_path / "pred", "--json", "--aggregation", "summed").output)
    assert summed["aji"] == pytest.approx(aggregate(counts, "summed")["aji"]) != pytest.approx(out["aji"])
    assert summed["aggregation"] == "summed"
    table = _invoke(tmp_path / "gt", tmp_path / "pred")
    assert table.exit_code == 0 and f"{aggregate(counts)['aji']:.4f}" in table.output

    old_name = _invoke(tmp_path / "gt", tmp_path / "pred", "--json", "--mode", "summed")  # deprecated, still works
    assert old_name.exit_code == 0 and json.loads(old_name.stdout) == summed
    assert "--mode is deprecated here, use --aggregation" in old_name.stderr
    both = _invoke(tmp_path / "gt", tmp_path / "pred", "--mode", "summed", "--aggregation", "summed")
    assert both.exit_code != 0 and "pass --aggregation only" in str(both.exception)
    assert "--mode" not in CliRunner().invoke(app, ["metrics", "--help"]).output  # hidden: one name in the help


def test_cli_names_unmatched_stems(tmp_path):
    (tmp_path / "gt").mkdir(), (tmp_path / "pred").mkdir()
    labels = np.ones((8, 8), np.int32)
    _save(tmp_path / "gt" / "a.png", labels)
    _save(tmp_path / "gt" / "b.png", labels)
    _save(tmp_path / "pred" / "a.npy", labels)
    _save(tmp_path / "pred" / "z.npy", labels)
    result = _invoke(tmp_path / "gt", tmp_path / "pred", "--json")
    assert isinstance(result.exception, DataError)
    assert "GT without prediction: b; prediction without GT: z" in str(result.exception)


def test_cli_reports_shape_mismatch_with_file_names(tmp_path):
    _save(tmp_path / "gt.npy", np.ones((8, 8), np.int32))
    _save(tmp_path / "pred.npy", np.ones((8, 9), np.int32))
    result = _invoke(tmp_path / "gt.npy", tmp_path / "pred.npy")
    assert isinstance(result.exception, DataError)
    assert "gt.npy vs" in str(result.exception) and "differs from pred shape" in str(result.exception)


def test_cli_refuses_a_file_against_a_folder(tmp_path):
    _save(tmp_path / "gt.npy", np.ones((8, 8), np.int32))
    result = _invoke(tmp_path / "gt.npy", tmp_path)
    assert isinstance(result.exception, ConfigError)
