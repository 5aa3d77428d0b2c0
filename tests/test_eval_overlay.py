import numpy as np
from PIL import Image
from skimage.draw import disk

from sslbench.eval.overlay import GT_COLOUR, PREDICTION_COLOURS, dense_box, gt_errors, save_overlay


def _nuclei() -> tuple[np.ndarray, np.ndarray]:
    truth = np.zeros((64, 64), np.int32)
    for label, centre, radius in ((1, (10, 10), 5), (2, (10, 21), 5), (3, (40, 40), 6), (4, (50, 10), 5),
                                  (5, (30, 10), 4)):
        truth[disk(centre, radius)] = label
    prediction = np.zeros_like(truth)
    prediction[(truth == 1) | (truth == 2)] = 7  # one prediction over two touching nuclei
    prediction[truth == 3] = 3
    prediction[(truth == 3) & (np.arange(64)[None] > 40)] = 9  # nucleus 3 cut in half
    prediction[truth == 5] = 5  # nucleus 4 not found
    return truth, prediction


def test_each_gt_nucleus_error_is_named_once():
    truth, prediction = _nuclei()
    assert gt_errors(truth, prediction) == {"missed": [4], "merged": [1, 2], "split": [3]}
    assert gt_errors(truth, truth) == {"missed": [], "merged": [], "split": []}


def test_dense_box_is_the_window_with_most_nucleus_pixels():
    truth, _ = _nuclei()
    box = dense_box(truth, 24)
    mass = (truth > 0).astype(int)
    best = max(mass[r:r + 24, c:c + 24].sum() for r in range(41) for c in range(41))
    assert truth[box].shape == (24, 24) and mass[box].sum() == best
    assert dense_box(truth, 500) == (slice(0, 64), slice(0, 64))  # a small image is shown whole


def test_overlay_png_shows_gt_contours_and_coloured_predictions(tmp_path):
    truth, prediction = _nuclei()
    image = np.full((64, 64, 3), 230, np.uint8)
    path = save_overlay(tmp_path / "overlay.png", image, truth, prediction, "test")
    picture = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert 400 <= min(picture.shape[:2]) and max(picture.shape[:2]) <= 1200

    def pixels(colour) -> int:
        return int((np.abs(picture - colour).sum(axis=-1) < 30).sum())

    assert pixels(GT_COLOUR) > 1000  # ground-truth contours, thick enough to see
    for label in (3, 5, 7, 9):
        assert pixels(PREDICTION_COLOURS[label % len(PREDICTION_COLOURS)]) > 200, label
