"""Score a segmentation model on labelled images: predict, post-process, count, aggregate."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

import torch
from rich.progress import Progress
from torch import nn

from sslbench.data.base import Sample
from sslbench.eval.metrics import AGGREGATION_MODES, aggregate, image_counts
from sslbench.eval.postprocess import MIN_AREA, probabilities_to_instances, seeded_watershed, without_small
from sslbench.eval.predict import Inference, predict_probabilities


def evaluate(model: nn.Module, samples: Sequence[Sample], device: torch.device, min_area: int = MIN_AREA,
             tile: int = 512, overlap: int = 64, description: str = "evaluate", flips: bool = False,
             postprocess: dict | None = None, inference: Inference = Inference(),
             probabilities: dict[int, np.ndarray] | None = None) -> dict:
    """{"per_image_mean": {...}, "summed": {...}, "per_image": [{"name", metrics...}]}; a sample's
    ``ignore`` pixels (ambiguous areas) are left out of its scores.

    ``flips``: test-time flip averaging (``predict_probabilities``); ``postprocess``: further keyword
    arguments of ``probabilities_to_instances`` (thresholds, e.g. from ``tune_postprocess``);
    ``probabilities``: a dict this process fills with {sample index: its predicted probabilities}.

    With an ``inference`` of several processes (torchrun) each process scores every n-th image; the
    additive per-image counts are gathered, so every process returns the same scores as a single
    process would."""
    mine = list(enumerate(samples))[inference.rank::inference.world_size]
    scored = []
    with Progress(transient=True, disable=inference.rank != 0) as progress:
        for index, sample in progress.track(mine, description=description):
            probs = predict_probabilities(model, sample.image, device, tile, overlap, flips, inference)
            if probabilities is not None:
                probabilities[index] = probs
            instances = probabilities_to_instances(probs, **{"min_area": min_area, **(postprocess or {})})
            scored.append((index, sample.name, image_counts(sample.labels, instances, ignore=sample.ignore)))
    scored = sorted((item for part in inference.gather(scored) for item in part), key=lambda item: item[0])
    counts = [image_result for _, _, image_result in scored]
    per_image = [{"name": name, **image_result.metrics()} for _, name, image_result in scored]
    return {**{mode: aggregate(counts, mode) for mode in AGGREGATION_MODES}, "per_image": per_image}


def tune_postprocess(model: nn.Module, samples: Sequence[Sample], device: torch.device, grid: dict[str, Sequence],
                     tile: int = 512, overlap: int = 64, flips: bool = False,
                     inference: Inference = Inference(),
                     known: dict[int, np.ndarray] | None = None) -> tuple[dict, float, list[dict]]:
    """``best_postprocess`` on ``samples``, their probabilities predicted once (by every process: no
    sharding), except those ``known`` ({sample index: probabilities} from the same weights and settings)."""
    known = known or {}
    probs = [known[i] if i in known else predict_probabilities(model, s.image, device, tile, overlap, flips, inference)
             for i, s in enumerate(samples)]
    return best_postprocess([s.labels for s in samples], probs, grid)


def best_postprocess(labels: Sequence[np.ndarray], probs: Sequence[np.ndarray],
                     grid: dict[str, Sequence]) -> tuple[dict, float, list[dict]]:
    """The combination of ``probabilities_to_instances`` arguments in ``grid`` ({name: candidate
    values}) with the highest per-image-mean AJI, that AJI, and every combination's per-image AJI
    ([{"values", "aji": [one per image]}], in grid order), kept so that how well the choice carries
    to unseen images can be estimated later (leave one image out) without predicting again; ties go
    to the first in grid order."""
    combos = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    by_watershed: dict[tuple, list[int]] = {}  # min_area does not change the watershed: one per other setting
    for index, params in enumerate(combos):
        by_watershed.setdefault(tuple((k, v) for k, v in params.items() if k != "min_area"), []).append(index)
    per_image: list[list[float]] = [[] for _ in combos]
    for setting, indices in by_watershed.items():
        for gt, p in zip(labels, probs):
            instances = seeded_watershed(p, **dict(setting))
            for index in indices:
                kept = without_small(instances, combos[index].get("min_area", MIN_AREA))
                per_image[index].append(image_counts(gt, kept).metrics()["aji"])
    scored = [{"values": params, "aji": aji} for params, aji in zip(combos, per_image)]
    best = max(scored, key=lambda entry: float(np.mean(entry["aji"])))  # max keeps the first of equals
    return best["values"], float(np.mean(best["aji"])), scored
