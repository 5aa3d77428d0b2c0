"""A finetuned segmenter on disk, ready to predict: the ``model.safetensors`` of an ``sslbench run`` with
the config it was trained and scored with, and the post-processing values the run chose on its
validation images."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from mmengine.config import Config
from torch import nn

from sslbench.engine.weights import load_encoder
from sslbench.errors import DataError
from sslbench.models import build_segmenter
from sslbench.pipeline.run_folder import RunFolder

#: what predicting needs of a run's config
CONFIG_KEYS = ("backbone", "head", "evaluation")


def _read_json(path: Path) -> dict:
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable ({exc}); restore the file sslbench run wrote.") from None
    if not isinstance(content, dict):
        raise DataError(f"{path}: holds no JSON object; restore the file sslbench run wrote.")
    return content


@dataclass(frozen=True)
class TrainedSegmenter:
    weights: Path
    cfg: Config  # the run's config (config.json): backbone, head and evaluation settings
    postprocess: dict  # ``probabilities_to_instances`` values the run chose on validation ({}: none chosen)

    @classmethod
    def locate(cls, path: Path) -> TrainedSegmenter:
        """From a run folder, or its ``model.safetensors`` with a JSON sidecar (``model.json``) or the
        run's config.json beside it; metrics.json beside it, when there, gives the post-processing."""
        if not path.exists():
            raise DataError(f"{path}: no such file or folder; pass a run folder of sslbench run or its "
                            "model.safetensors.")
        folder = RunFolder(path if path.is_dir() else path.parent)
        weights = folder.model if path.is_dir() else path
        if not weights.is_file():
            raise DataError(f"{path}: no model.safetensors here; pass the folder of a finished sslbench run "
                            "(the model is written when the run finishes).")
        config = next((p for p in (weights.with_suffix(".json"), folder.config_json) if p.is_file()), None)
        if config is None:
            raise DataError(f"{weights}: no config beside it ({weights.with_suffix('.json').name} or config.json); "
                            "pass the run folder, or put the run's config.json beside the weights.")
        cfg = _read_json(config)
        missing = [key for key in CONFIG_KEYS if key not in cfg]
        if missing:
            raise DataError(f"{config}: not a run config (no {', '.join(missing)}); pass the config.json that "
                            "sslbench run wrote beside the model.")
        scores = _read_json(folder.metrics) if folder.metrics.is_file() else {}
        return cls(weights, Config(cfg), dict(scores.get("postprocess", {}).get("values") or {}))

    def postprocess_record(self) -> dict:
        """The post-processing predictions use, all values, and where they come from."""
        return {"values": {"min_area": self.cfg.evaluation["min_area"], **self.postprocess},
                "chosen_on": "validation images" if self.postprocess else "config defaults"}

    def module(self, device: torch.device) -> nn.Module:
        """The segmenter with its trained weights, on ``device``, in eval mode."""
        model = build_segmenter(self.cfg.backbone, self.cfg.head)
        try:
            model.load_state_dict(load_encoder(self.weights))
        except RuntimeError:
            raise DataError(f"{self.weights}: its weights do not fit the backbone and head of its config; keep "
                            "the model with the config of the run that trained it.") from None
        return model.to(device).eval()
