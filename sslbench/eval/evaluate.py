"""Score a segmentation model on labelled images: predict, post-process, count, aggregate."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from rich.progress import Progress
from torch import nn

from sslbench.data.base import Sample
from sslbench.eval.metrics import AGGREGATION_MODES, aggregate, image_counts
from sslbench.eval.postprocess import probabilities_to_instances
from sslbench.eval.predict import predict_probabilities


def evaluate(model: nn.Module, samples: Sequence[Sample], device: torch.device, min_area: int = 10,
             tile: int = 512, overlap: int = 64, description: str = "evaluate") -> dict:
    """{"dataset": {...}, "per_image_mean": {...}, "per_image": [{"name", metrics...}]}."""
    counts, per_image = [], []
    with Progress(transient=True) as progress:
        for sample in progress.track(samples, description=description):
            probs = predict_probabilities(model, sample.image, device, tile=tile, overlap=overlap)
            instances = probabilities_to_instances(probs, min_area=min_area)
            image_result = image_counts(sample.labels, instances)
            counts.append(image_result)
            per_image.append({"name": sample.name, **image_result.metrics()})
    return {**{mode: aggregate(counts, mode) for mode in AGGREGATION_MODES}, "per_image": per_image}
