"""``sslbench run`` as one job: pretrain -> finetune -> evaluate into a run folder."""

from __future__ import annotations

import logging
import platform
from pathlib import Path

import torch
from mmengine.config import Config
from torch import nn

import sslbench
from sslbench.data.base import Sample
from sslbench.engine import distributed
from sslbench.engine.accel import arithmetic
from sslbench.eval.overlay import save_overlay
from sslbench.pipeline.data import DataSplit, check_inputs, load_data, split_samples
from sslbench.pipeline.phases import (acceleration, finetune_phase, predict_instances, pretrain_phase,
                                     resolve_device)
from sslbench.pipeline.run_folder import RunFolder

log = logging.getLogger("sslbench")


def prepare(cfg: Config) -> tuple[torch.device, DataSplit]:
    """Device and the seeded data split (``cfg.split``, including its label fraction). Fails before
    any training if a finetuning image is smaller than the crop."""
    samples, test = load_data(cfg)
    split = split_samples(samples, cfg.split, cfg.seed, test)
    log.info("data: %d train, %d val, %d test, %d pretraining images",
             len(split.train), len(split.val), len(split.test), len(split.pretrain))
    check_inputs(cfg, split)
    return resolve_device(cfg.device), split


def write_overlay(path: Path, cfg: Config, model: nn.Module, sample: Sample, scores: dict,
                  device: torch.device, postprocess: dict | None = None) -> Path:
    """The overlay picture of one test image (its AJI in the title) for a person to look at."""
    aji = next(p["aji"] for p in scores["per_image"] if p["name"] == sample.name)
    return save_overlay(path, sample.image, sample.labels, predict_instances(model, sample, cfg, device, postprocess),
                        f"{cfg.name} on test image {sample.name}: AJI {100 * aji:.1f} %")


def run_job(cfg: Config, out_dir: Path) -> dict:
    """Pretrain -> finetune -> evaluate; writes the run folder ``out_dir`` and returns the result
    record. Re-running it on an unfinished folder resumes from the last checkpoints. Under
    ``validate_only`` the record's ``test`` is None and no overlay is drawn."""
    folder = RunFolder(Path(out_dir))
    folder.path.mkdir(parents=True, exist_ok=True)
    folder.check_same_config(cfg)
    device, split = prepare(cfg)
    folder.write_config(cfg)
    pre = pretrain_phase(cfg, split, device, folder.encoder, folder.checkpoints)
    validate_only = cfg.get("validate_only", False)
    fin = finetune_phase(cfg, split, folder.encoder.load(), device, folder.checkpoints, score_test=not validate_only)
    result = {
        "strategy": cfg.name, "preset": cfg.preset, "seed": cfg.seed, "device": str(device),
        # "auto" picks bf16 per machine, and precision and kernels move the numbers (engine.accel)
        "arithmetic": arithmetic(acceleration(cfg, device), device),
        "test": fin["test"], "validation": fin["validation"], "postprocess": fin["postprocess"],
        "images": fin["images"],
        "pretrain_images": pre["images"],
        "history": {"pretrain": pre["history"], "finetune": fin["history"]},
        "seconds": {"pretrain": pre["seconds"], "finetune": fin["seconds"]},
        # seconds per step and peak memory (engine.resources); pretraining's is None for an older encoder
        "resources": {"pretrain": pre["resources"], "finetune": fin["resources"]},
        "encoder_weights": folder.encoder.path.name,
        "versions": {"sslbench": sslbench.__version__, "torch": torch.__version__,
                     "python": platform.python_version()},
        "overlay": None if validate_only else folder.overlay.name,
    }
    if distributed.is_main() and not validate_only:  # every rank returns the same record; rank 0 writes files
        write_overlay(folder.overlay, cfg, fin["model"], split.test[0], fin["test"], device,
                      fin["postprocess"].get("values"))
    folder.write_results(result, fin["model"].state_dict())
    return result
