"""One benchmark job: pretrain an encoder with a pretext task, finetune ResUNet, score on test images."""

from __future__ import annotations

import json
import logging
import platform
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from mmengine.config import Config
from torch import nn

import sslbench
from sslbench.data.base import Sample
from sslbench.data.splits import label_fraction, train_val_split
from sslbench.engine.finetune import FinetuneSampler, segmentation_loss
from sslbench.engine.loop import LoopSettings, train
from sslbench.engine.weights import atomic_write, load_encoder, save_encoder
from sslbench.errors import ConfigError, DataError
from sslbench.eval.evaluate import evaluate
from sslbench.models import build_encoder, build_segmenter
from sslbench.registry import DATASETS, PRETEXTS, build, load_builtins

log = logging.getLogger("sslbench")


@dataclass
class DataSplit:
    train: list[Sample]  # labelled, finetuned on (after the label fraction)
    val: list[Sample]
    test: list[Sample]
    pretrain: list[Sample] = field(default_factory=list)  # every non-test image, labelled or not


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name} was asked for but no CUDA device is visible; use --device cpu.")
    return torch.device(name)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; samplers draw from the returned CPU generator."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def load_samples(data_cfg: dict, unlabeled: str | None) -> list[Sample]:
    load_builtins()
    if data_cfg["type"] == "path":
        from sslbench.data.detect import dataset_from_path
        samples = dataset_from_path(data_cfg["path"]).load()
    else:
        samples = build(DATASETS, data_cfg).load()
    if unlabeled:
        from sslbench.data.detect import dataset_from_path
        samples += [Sample(s.name, s.image, None, s.source) for s in dataset_from_path(unlabeled, "unlabeled").load()]
    return samples


def split_samples(samples: list[Sample], split: dict) -> DataSplit:
    """Seeded: hold out ``test_ratio`` of the labelled images, split the rest 80:20 train/val, then
    keep the nested ``label_fraction`` of train. Pretraining sees every non-test image."""
    labelled = {s.name: s for s in samples if s.labelled}
    if len(labelled) < 3:
        raise DataError(f"need at least 3 labelled images (train, val, test), found {len(labelled)}; "
                        "add annotated images or use the synthetic default data.")
    rest, test = train_val_split(list(labelled), split["test_ratio"], split["seed"])
    train_names, val_names = train_val_split(rest, split["val_ratio"], split["seed"])
    train_names = label_fraction(train_names, split.get("label_fraction", 1.0), split["seed"])
    test_set = set(test)
    return DataSplit(train=[labelled[n] for n in train_names], val=[labelled[n] for n in val_names],
                     test=[labelled[n] for n in test], pretrain=[s for s in samples if s.name not in test_set])


def check_sizes(images: list[Sample], minimum: int, purpose: str) -> None:
    for sample in images:
        height, width = sample.image.shape[:2]
        if min(height, width) < minimum:
            raise DataError(f"{sample.source or sample.name}: image is {height}×{width} but {purpose} needs "
                            f"at least {minimum}×{minimum}; use a smaller crop (preset) or larger images.")


def pretrain(cfg: Config, encoder: nn.Module, images: list[Sample], device: torch.device,
             generator: torch.Generator) -> tuple[nn.Module, list[dict]]:
    pretext = build(PRETEXTS, cfg.pretext, encoder_channels=encoder.out_channels).to(device)
    pretext.init_encoder(encoder)
    if not pretext.pretrains:
        return pretext, []
    check_sizes(images, pretext.min_image_size, f"pretext '{cfg.name}'")
    pool = [torch.from_numpy(s.image).permute(2, 0, 1).contiguous().to(device) for s in images]
    settings = LoopSettings(**{k: cfg.pretrain[k] for k in ("steps", "lr", "weight_decay", "warmup_steps", "log_every")})
    batch_size = cfg.pretrain["batch_size"]
    history = train(nn.ModuleDict({"encoder": encoder, "pretext": pretext}),
                    lambda: pretext(encoder, pretext.sample(pool, batch_size, generator)),
                    settings, device, f"pretrain {cfg.name}")
    return pretext, history


def finetune(cfg: Config, model: nn.Module, split: DataSplit, device: torch.device,
             generator: torch.Generator) -> tuple[list[dict], list[dict]]:
    """Train the segmenter; with ``eval_every`` the best validation AJI's weights are kept."""
    ft, ev = cfg.finetune, cfg.evaluation
    check_sizes(split.train, ft["crop"], "finetuning")
    sampler = FinetuneSampler(split.train, ft["crop"], ft["boundary_width"], device)
    weights = torch.tensor(ft["class_weights"], dtype=torch.float32, device=device)
    settings = LoopSettings(**{k: ft[k] for k in ("steps", "lr", "weight_decay", "warmup_steps", "log_every")})
    validations: list[dict] = []
    best = {"aji": -1.0, "state": None}

    def validate(step: int) -> None:
        scores = evaluate(model, split.val, device, ev["min_area"], ev["tile"], ev["overlap"], "validate")["dataset"]
        validations.append({"step": step, **scores})
        log.info("validation step %d AJI %.4f", step, scores["aji"])
        if scores["aji"] > best["aji"]:
            best.update(aji=scores["aji"], state={k: v.detach().clone() for k, v in model.state_dict().items()})
        model.train()

    def compute_losses():
        return segmentation_loss(model, *sampler(ft["batch_size"], generator), weights)

    history = train(model, compute_losses, settings, device, f"finetune {cfg.name}",
                    on_checkpoint=validate if ft.get("eval_every") and split.val else None,
                    checkpoint_every=ft.get("eval_every", 0))
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    return history, validations


def prepare(cfg: Config) -> tuple[torch.device, DataSplit]:
    """Device and the seeded data split (``cfg.split``, including its label fraction)."""
    load_builtins()
    split = split_samples(load_samples(cfg.data, cfg.unlabeled), cfg.split)
    log.info("data: %d train, %d val, %d test, %d pretraining images",
             len(split.train), len(split.val), len(split.test), len(split.pretrain))
    return resolve_device(cfg.device), split


def pretrain_phase(cfg: Config, split: DataSplit, device: torch.device, weights_path: Path) -> dict:
    """Pretrain (or just initialise) the encoder and save it; independent of the label fraction."""
    generator = seed_everything(cfg.seed)
    started = time.perf_counter()
    encoder = build_encoder(cfg.backbone).to(device)
    pretext, history = pretrain(cfg, encoder, split.pretrain, device, generator)
    path = save_encoder(encoder.state_dict(), weights_path, {
        "pretext": cfg.name, "pretext_config": cfg.pretext, "backbone": cfg.backbone,
        "steps": cfg.pretrain["steps"] if pretext.pretrains else 0, "seed": cfg.seed,
        "sslbench_version": sslbench.__version__})
    return {"weights": str(path), "history": history, "seconds": time.perf_counter() - started,
            "images": len(split.pretrain)}


def finetune_phase(cfg: Config, split: DataSplit, encoder_state: dict, device: torch.device) -> dict:
    """Finetune ResUNet from ``encoder_state`` with a fresh decoder and score the test images."""
    generator = seed_everything(cfg.seed)
    started = time.perf_counter()
    model = build_segmenter(cfg.backbone, cfg.head, encoder_state).to(device)
    history, validations = finetune(cfg, model, split, device, generator)
    seconds = time.perf_counter() - started
    ev = cfg.evaluation
    scores = evaluate(model, split.test, device, ev["min_area"], ev["tile"], ev["overlap"], "test")
    return {"test": scores, "validation": validations, "history": history, "seconds": seconds,
            "images": {k: [s.name for s in getattr(split, k)] for k in ("train", "val", "test")}}


def run_job(cfg: Config, out_dir: Path) -> dict:
    """Pretrain -> finetune -> evaluate; writes the run folder and returns the result record."""
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / "config.py", lambda tmp: tmp.write_text(cfg.pretty_text))
    device, split = prepare(cfg)
    pre = pretrain_phase(cfg, split, device, out_dir / "encoder")
    fin = finetune_phase(cfg, split, load_encoder(pre["weights"]), device)
    result = {
        "strategy": cfg.name, "preset": cfg.preset, "seed": cfg.seed, "device": str(device),
        "test": fin["test"], "validation": fin["validation"], "images": fin["images"],
        "pretrain_images": pre["images"],
        "history": {"pretrain": pre["history"], "finetune": fin["history"]},
        "seconds": {"pretrain": pre["seconds"], "finetune": fin["seconds"]},
        "encoder_weights": Path(pre["weights"]).name,
        "versions": {"sslbench": sslbench.__version__, "torch": torch.__version__,
                     "python": platform.python_version()},
    }
    atomic_write(out_dir / "metrics.json", lambda tmp: tmp.write_text(json.dumps(result, indent=2)))
    return result
