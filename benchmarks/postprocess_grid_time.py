"""Seconds for the cpu preset's post-processing grid (``eval.evaluate.best_postprocess``) on MoNuSeg images.

    python benchmarks/postprocess_grid_time.py --data ../shared/data/monuseg2018_train [--images 2]

No model is needed: each image's class probabilities are made from its own labels (body, boundary,
background) plus smoothed Gaussian noise, so that the grid's thresholds and ``min_area`` matter. Prints
the seconds, the chosen point and the sum of every point's per-image AJI (equal sums before and after
a change mean the same scores).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from sslbench.config import load_component
from sslbench.data.detect import dataset_from_path
from sslbench.data.targets import instance_to_classes
from sslbench.eval.evaluate import best_postprocess


def noisy_probabilities(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    one_hot = (instance_to_classes(labels, boundary_width=2)[None] == np.arange(3)[:, None, None]).astype(np.float32)
    noisy = one_hot + ndimage.gaussian_filter(rng.normal(0, 1.0, one_hot.shape), (0, 3, 3))
    probs = ndimage.gaussian_filter(np.clip(noisy, 0.01, None), (0, 1, 1))
    return (probs / probs.sum(axis=0, keepdims=True)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a labelled data folder (e.g. MoNuSeg's training images)")
    parser.add_argument("--images", type=int, default=2)
    args = parser.parse_args()
    samples = [s for s in dataset_from_path(args.data).load() if s.labels is not None][:args.images]
    rng = np.random.default_rng(0)
    probs = [noisy_probabilities(s.labels, rng) for s in samples]
    grid = dict(load_component("preset", "cpu").evaluation["tune"])
    started = time.perf_counter()
    chosen, best, scored = best_postprocess([s.labels for s in samples], probs, grid)
    print(f"{len(samples)} images, {len(scored)} grid points: {time.perf_counter() - started:.1f} s; chosen {chosen} "
          f"(AJI {best:.6f}); sum of every point's AJI {sum(sum(e['aji']) for e in scored):.9f}")


if __name__ == "__main__":
    main()
