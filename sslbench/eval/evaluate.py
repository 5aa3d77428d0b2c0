"""Score a segmentation model on labelled images: predict, post-process, count, aggregate."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from rich.progress import Progress
from torch import nn

from sslbench.data.base import Sample
from sslbench.engine import distributed
from sslbench.eval.metrics import AGGREGATION_MODES, aggregate, image_counts
from sslbench.eval.postprocess import probabilities_to_instances
from sslbench.eval.predict import predict_probabilities


def evaluate(model: nn.Module, samples: Sequence[Sample], device: torch.device, min_area: int = 10,
             tile: int = 512, overlap: int = 64, description: str = "evaluate") -> dict:
    """{"per_image_mean": {...}, "summed": {...}, "per_image": [{"name", metrics...}]}.

    Under torchrun each process scores every n-th image; the additive per-image counts are gathered,
    so every process returns the same scores as a single process would."""
    mine = list(enumerate(samples))[distributed.rank()::distributed.world_size()]
    scored = []
    with Progress(transient=True, disable=not distributed.is_main()) as progress:
        for index, sample in progress.track(mine, description=description):
            probs = predict_probabilities(model, sample.image, device, tile=tile, overlap=overlap)
            instances = probabilities_to_instances(probs, min_area=min_area)
            scored.append((index, sample.name, image_counts(sample.labels, instances)))
    scored = sorted((item for part in distributed.gather(scored) for item in part), key=lambda item: item[0])
    counts = [image_result for _, _, image_result in scored]
    per_image = [{"name": name, **image_result.metrics()} for _, name, image_result in scored]
    return {**{mode: aggregate(counts, mode) for mode in AGGREGATION_MODES}, "per_image": per_image}
