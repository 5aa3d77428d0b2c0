import itertools

import numpy as np
import pytest
from data_helpers import SHARED_DATA, needs_shared
from scipy import ndimage
from skimage.draw import disk

from sslbench.config import load_component
from sslbench.data.synthetic import Synthetic
from sslbench.data.targets import instance_to_classes
from sslbench.eval.evaluate import best_postprocess
from sslbench.eval.metrics import aji
from sslbench.eval.postprocess import probabilities_to_instances


def _one_hot(classes: np.ndarray) -> np.ndarray:
    return (classes[None] == np.arange(3)[:, None, None]).astype(np.float32)


def test_touching_nuclei_separated_by_boundary_become_two_instances():
    labels = np.zeros((64, 64), np.int32)
    labels[disk((32, 22), 10, shape=labels.shape)] = 1
    labels[disk((32, 41), 10, shape=labels.shape)] = 2  # touches nucleus 1
    labels[disk((10, 10), 5, shape=labels.shape)] = 3
    probs = _one_hot(instance_to_classes(labels, boundary_width=1))
    instances = probabilities_to_instances(probs, min_area=5)
    assert instances.max() == 3
    assert aji(labels, instances) == pytest.approx(1.0)


def test_small_objects_and_background_are_dropped():
    classes = np.zeros((32, 32), np.uint8)
    classes[5:7, 5:7] = 1  # 4-pixel speck
    classes[15:25, 15:25] = 2
    classes[17:23, 17:23] = 1
    instances = probabilities_to_instances(_one_hot(classes), min_area=10)
    assert instances.max() == 1
    assert (instances > 0).sum() == 100  # body grown back over its boundary ring
    assert probabilities_to_instances(_one_hot(np.zeros((16, 16), np.uint8))).max() == 0


def test_soft_probabilities_follow_the_argmax_rule():
    probs = np.full((3, 16, 16), 1 / 3, np.float32)
    probs[:, 4:12, 4:12] = np.array([0.1, 0.8, 0.1])[:, None, None]
    instances = probabilities_to_instances(probs, min_area=1)
    assert set(np.unique(instances)) == {0, 1} and (instances == 1).sum() == 64


@pytest.mark.parametrize(("preset", "num_images"), [("smoke", 16), ("mini", 4)])
def test_synthetic_annotations_survive_the_three_class_round_trip(preset, num_images):
    """A perfect 3-class map of the built-in synthetic tiles (256² smoke, 1000² mini), post-processed
    with the preset's own settings, gives the nuclei back: no occluded fragments, no merges."""
    cfg = load_component("preset", preset)
    data = {k: v for k, v in cfg.data.items() if k != "type"} | {"num_images": num_images}
    scores = []
    for sample in Synthetic(**data).load():
        perfect = _one_hot(instance_to_classes(sample.labels, cfg.finetune["boundary_width"]))
        scores.append(aji(sample.labels, probabilities_to_instances(perfect, min_area=cfg.evaluation["min_area"])))
    assert np.mean(scores) >= 0.97, scores


def test_wrong_shape_is_refused():
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        probabilities_to_instances(np.zeros((2, 8, 8)))


def test_foreground_without_body_is_kept_as_its_own_instance():
    classes = np.zeros((32, 32), np.uint8)
    classes[2:12, 2:12] = 2  # all boundary, no body seed
    classes[15:25, 15:25] = 2
    classes[17:23, 17:23] = 1
    instances = probabilities_to_instances(_one_hot(classes), min_area=10)
    assert instances.max() == 2
    assert (instances > 0).sum() == 200


@needs_shared("monuseg2018_train")
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::sslbench.data.io.DataWarning")
def test_real_annotations_survive_the_three_class_round_trip():
    """The 3-class targets of MoNuSeg's annotations, post-processed, give the annotations back: the
    ceiling the pipeline puts on a perfect model (0.998 AJI over the 13 XML-annotated images)."""
    from sslbench.data.monuseg import MoNuSeg
    from sslbench.eval.metrics import aggregate, image_counts

    counts = []
    for sample in (s for s in MoNuSeg(SHARED_DATA / "monuseg2018_train").load() if s.labels is not None):
        perfect = np.eye(3, dtype=np.float32)[instance_to_classes(sample.labels, 2)].transpose(2, 0, 1)
        counts.append(image_counts(sample.labels, probabilities_to_instances(perfect, min_area=30)))
    assert len(counts) == 30 and aggregate(counts)["aji"] > 0.99


@pytest.mark.parametrize("grid", [
    dict(load_component("preset", "cpu").evaluation["tune"]),  # the grid the benches choose from
    {"body_threshold": (0.5, None, 0.5), "min_area": (30, 10, 30)},  # repeated values, min_area not first
    {"foreground_threshold": (None, 0.9), "min_seed_area": (4, 32)},  # no min_area: the function's default
])
def test_the_grid_search_scores_every_point_as_probabilities_to_instances_would(grid):
    rng = np.random.default_rng(0)
    labels = [s.labels for s in Synthetic(num_images=2, size=96, seed=0).load()]
    probs = []
    for gt in labels:  # the true classes, blurred and noised so that thresholds and min_area matter
        noisy = _one_hot(instance_to_classes(gt, boundary_width=1)) + rng.normal(0, 1.2, (3, *gt.shape))
        soft = np.exp(ndimage.gaussian_filter(noisy, (0, 1, 1)) * 2)
        probs.append((soft / soft.sum(axis=0)).astype(np.float32))
    chosen, best, scored = best_postprocess(labels, probs, grid)
    expected = [[aji(gt, probabilities_to_instances(p, **dict(zip(grid, values)))) for gt, p in zip(labels, probs)]
                for values in itertools.product(*grid.values())]
    np.testing.assert_allclose([entry["aji"] for entry in scored], expected, rtol=0, atol=1e-12)
    assert len({tuple(a) for a in expected}) > 1  # the points differ, so the order is checked too
    first_best = max(range(len(expected)), key=lambda i: np.mean(expected[i]))
    assert chosen == scored[first_best]["values"] and best == pytest.approx(np.mean(expected[first_best]))
