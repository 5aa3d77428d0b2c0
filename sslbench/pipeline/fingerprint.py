"""What a result depends on, as JSON: a phase resumes, an encoder is reused and a bench job is skipped
only when its fingerprint (or the hash of it) is the same."""

from __future__ import annotations

import hashlib
import json

from mmengine.config import Config

from sslbench.engine.checkpoint import normalise

#: where and how fast a job runs, not what it computes: left out of fingerprints and job keys
EXECUTION_KEYS = ("device", "engine")
#: the split settings pretraining depends on: which images are test images (train/val and labels do not matter)
PRETRAINING_SPLIT_KEYS = ("test_ratio", "seed")


def content_hash(content: dict) -> str:
    """16 hex digits of the SHA-256 of ``content`` as sorted JSON: bench's job keys, the encoders' identity."""
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]


def pretrain_fingerprint(cfg: Config, fold: int | None = None, folds: int = 0) -> dict:
    """What the pretrained encoder depends on (not the label fraction or finetuning settings). Under
    cross-validation (bench's ``folds``) the fold decides the test images, so it is part of it."""
    split = {k: cfg.split[k] for k in PRETRAINING_SPLIT_KEYS}
    if folds:
        split.update(fold=fold, folds=folds)
    return normalise({"pretext": cfg.pretext, "backbone": cfg.backbone, "seed": cfg.seed, "data": cfg.data,
                      "test_data": cfg.get("test_data"), "unlabeled": cfg.unlabeled, "pretrain": cfg.pretrain,
                      "split": split})


def run_fingerprint(cfg: Config) -> dict:
    """The whole config except how it is executed: a run may resume on another device or path."""
    return normalise({k: v for k, v in cfg.to_dict().items() if k not in EXECUTION_KEYS})
