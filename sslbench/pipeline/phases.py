"""The phases of one run: pretrain an encoder with a pretext task, finetune ResUNet from it and score
the test images, with the device, seeding and evaluation settings they share."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

import numpy as np
import torch
from mmengine.config import Config
from torch import nn

import sslbench
from sslbench.data.base import Sample, image_tensor
from sslbench.engine import distributed
from sslbench.engine.accel import Acceleration, autocast, maybe_compile, resolve
from sslbench.engine.batches import batch_source
from sslbench.engine.checkpoint import Checkpoint
from sslbench.engine.finetune import FinetuneSampler, finetune_sources, freeze_encoder, segmentation_loss
from sslbench.engine.loop import LoopSettings, train
from sslbench.engine.resources import phase_resources, reset_peak_memory
from sslbench.errors import ConfigError
from sslbench.eval.evaluate import evaluate, tune_postprocess
from sslbench.eval.metrics import DEFAULT_AGGREGATION
from sslbench.eval.postprocess import probabilities_to_instances
from sslbench.eval.predict import Inference, predict_probabilities
from sslbench.models import build_encoder, build_segmenter
from sslbench.pipeline.artifact import EncoderArtifact, encoder_identity
from sslbench.pipeline.data import DataSplit, check_sizes
from sslbench.pipeline.fingerprint import pretrain_fingerprint, run_fingerprint
from sslbench.pipeline.run_folder import Checkpoints
from sslbench.registry import PRETEXTS, build

log = logging.getLogger("sslbench")


def resolve_device(name: str) -> torch.device:
    """The training device; under torchrun this also joins the process group, and each process
    takes its own GPU."""
    distributed.init()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name} was asked for but no CUDA device is visible; use --device cpu.")
    return distributed.local_device(torch.device(name))


def acceleration(cfg: Config, device: torch.device) -> Acceleration:
    return resolve(cfg.get("engine"), device)


def inference() -> Inference:
    """Evaluation as this process runs it: bf16 autocast on CUDA and, under torchrun, its share of the
    images (the process group must exist: call after ``resolve_device``)."""
    return Inference(autocast, distributed.rank(), distributed.world_size(), distributed.gather)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); samplers draw from the returned CPU generator.

    The seed fixes the data split, initialisation and every sampled crop, so a CPU run is repeatable
    bit for bit (same torch version and thread count). CUDA runs are repeatable up to cuDNN/atomics
    nondeterminism and bf16 rounding. A resumed run restores all these streams from its checkpoint
    and continues exactly where the interrupted one stopped.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def loop_settings(section: dict) -> LoopSettings:
    """The training loop's settings from a ``pretrain`` or ``finetune`` config section."""
    return LoopSettings(**{k: section[k] for k in ("steps", "lr", "weight_decay", "warmup_steps", "log_every")},
                        max_nonfinite_skips=section.get("max_nonfinite_skips", 0))


def pretrain(cfg: Config, encoder: nn.Module, images: list[Sample], device: torch.device,
             generator: torch.Generator, checkpoint: Checkpoint | None = None, accel: Acceleration | None = None,
             on_step: Callable[[int], None] | None = None,
             step_times: list[float] | None = None) -> tuple[nn.Module, list[dict]]:
    """Train ``encoder`` with the config's pretext task; ``accel`` (default: the config's engine
    section), ``on_step`` and ``step_times`` as in ``engine.loop.train``."""
    pretext = build(PRETEXTS, cfg.pretext, encoder_channels=encoder.out_channels).to(device)
    pretext.init_encoder(encoder)
    if not pretext.pretrains:
        return pretext, []
    check_sizes(images, pretext.min_image_size, f"pretext '{cfg.name}'")
    accel = accel or acceleration(cfg, device)
    next_batch = batch_source(pretext.sample, [image_tensor(s.image) for s in images], cfg.pretrain["batch_size"],
                              device, generator, accel.data_on_device, accel.loader_workers)
    maybe_compile(encoder, accel)
    settings = loop_settings(cfg.pretrain)
    history = train(nn.ModuleDict({"encoder": encoder, "pretext": pretext}), lambda: pretext(encoder, next_batch()),
                    settings, device, f"pretrain {cfg.name}", checkpoint=checkpoint, accel=accel, on_step=on_step,
                    after_step=lambda step: pretext.after_step(encoder, step, settings.steps), step_times=step_times)
    return pretext, history


def finetune(cfg: Config, model: nn.Module, split: DataSplit, device: torch.device, generator: torch.Generator,
             checkpoint: Checkpoint | None = None, accel: Acceleration | None = None,
             on_step: Callable[[int], None] | None = None,
             step_times: list[float] | None = None,
             best_val_probabilities: dict[int, np.ndarray] | None = None) -> tuple[list[dict], list[dict]]:
    """Train the segmenter (with ``freeze_encoder`` its decoder only); with ``eval_every`` the weights of
    the best per-image-mean validation AJI are kept. ``step_times`` as in ``engine.loop.train``;
    ``best_val_probabilities`` is filled with the validation images' probabilities at the kept weights
    as this process predicted them ({val index: probabilities}; empty when those weights came from
    before a resume), so that choosing the post-processing need not predict them again."""
    ft, ev = cfg.finetune, cfg.evaluation
    accel = accel or acceleration(cfg, device)
    sampler = FinetuneSampler(ft["crop"], ft.get("scale"), ft.get("elastic"), ft.get("stain_scale", 0.0),
                              ft.get("stain_shift", 0.0))
    next_batch = batch_source(sampler, finetune_sources(split.train, ft["boundary_width"]),
                              ft["batch_size"], device, generator, accel.data_on_device, accel.loader_workers)
    weights = torch.tensor(ft["class_weights"], dtype=torch.float32, device=device)
    # lives in the checkpoint's extra state, so a resumed run keeps earlier scores and best weights
    record = checkpoint.extra if checkpoint is not None else {}
    record.update(validations=[], best_aji=-1.0, best_state=None)

    def validate(step: int) -> None:
        probabilities: dict[int, np.ndarray] = {}
        scores = evaluate(model, split.val, device, ev["min_area"], ev["tile"], ev["overlap"], "validate",
                          ev.get("flips", False), inference=inference(),
                          probabilities=probabilities)[DEFAULT_AGGREGATION]
        record["validations"].append({"step": step, **scores})
        log.info("validation step %d AJI %.4f", step, scores["aji"])
        if scores["aji"] > record["best_aji"]:
            record.update(best_aji=scores["aji"],
                          best_state={k: v.detach().clone() for k, v in model.state_dict().items()})
            if best_val_probabilities is not None:  # kept in memory only: the checkpoint stays small
                best_val_probabilities.clear()
                best_val_probabilities.update(probabilities)
        model.train()

    if ft.get("freeze_encoder", False):
        freeze_encoder(model)
    maybe_compile(model, accel)
    dice_weight = ft.get("dice_weight", 0.0)
    history = train(model, lambda: segmentation_loss(model, *next_batch(), weights, dice_weight), loop_settings(ft),
                    device, f"finetune {cfg.name}", on_eval=validate if ft.get("eval_every") and split.val else None,
                    eval_every=ft.get("eval_every", 0), checkpoint=checkpoint, accel=accel, on_step=on_step,
                    step_times=step_times)
    if record["best_state"] is not None:
        model.load_state_dict(record["best_state"])
    return history, record["validations"]


def pretrain_phase(cfg: Config, split: DataSplit, device: torch.device, encoder: EncoderArtifact,
                   checkpoints: Checkpoints, fingerprint: dict | None = None) -> dict:
    """Pretrain (or just initialise) the encoder and save it as ``encoder``; independent of the label
    fraction.

    ``fingerprint`` (default ``pretrain_fingerprint(cfg)``) is what the encoder is made with: an
    ``encoder`` that finished with its identity is reused as is, with its sidecar's history and seconds.
    Else its old sidecar goes first, training state is checkpointed in ``checkpoints`` and resumed from
    on a re-run, and the checkpoint goes once the encoder is saved.
    """
    fingerprint = pretrain_fingerprint(cfg) if fingerprint is None else fingerprint
    images = len(split.pretrain)
    done = encoder.reusable(encoder_identity(fingerprint))
    if done is not None:
        log.info("pretraining already finished: reusing %s", encoder.path)
        return {"history": done["history"], "seconds": done["seconds"], "images": images,
                "resources": done.get("resources")}
    encoder.discard()
    distributed.barrier()  # no process may see the old sidecar once pretraining starts
    generator = distributed.rank_stream(seed_everything(cfg.seed))
    started = time.perf_counter()
    checkpoint = checkpoints.checkpoint("pretrain", cfg.pretrain, fingerprint, generator)
    model = build_encoder(cfg.backbone).to(device)
    reset_peak_memory(device)
    step_times: list[float] = []
    pretext, history = pretrain(cfg, model, split.pretrain, device, generator, checkpoint, step_times=step_times)
    seconds = time.perf_counter() - started + checkpoint.resumed_seconds
    resources = phase_resources(step_times, device)
    if distributed.is_main():
        encoder.save(model.state_dict(), fingerprint, {
            "pretext": cfg.name, "pretext_config": cfg.pretext, "backbone": cfg.backbone,
            "steps": cfg.pretrain["steps"] if pretext.pretrains else 0, "seed": cfg.seed,
            "sslbench_version": sslbench.__version__, "history": history, "seconds": seconds,
            "resources": resources})
    checkpoints.finish("pretrain")  # the encoder file supersedes it
    distributed.barrier()  # every process reads the encoder file next
    return {"history": history, "seconds": seconds, "images": images, "resources": resources}


def finetune_phase(cfg: Config, split: DataSplit, encoder_state: dict, device: torch.device,
                   checkpoints: Checkpoints, score_test: bool = True) -> dict:
    """Finetune ResUNet from ``encoder_state`` with a fresh decoder and score the test images, and each
    transfer set (``split.transfer``) as they are: with the post-processing chosen on the validation
    images, nothing chosen on a test set. ``score_test`` False (``run --validate-only``) stops after the
    validation images: ``test`` is None and no transfer set is scored.

    Training state is checkpointed in ``checkpoints`` and resumed from on a re-run; the checkpoint
    goes once the test scores exist.
    """
    generator = distributed.rank_stream(seed_everything(cfg.seed))
    started = time.perf_counter()
    checkpoint = checkpoints.checkpoint("finetune", cfg.finetune, run_fingerprint(cfg), generator)
    model = build_segmenter(cfg.backbone, cfg.head, encoder_state).to(device)
    reset_peak_memory(device)
    step_times: list[float] = []
    val_probabilities: dict[int, np.ndarray] = {}
    history, validations = finetune(cfg, model, split, device, generator, checkpoint, step_times=step_times,
                                    best_val_probabilities=val_probabilities)
    seconds = time.perf_counter() - started + checkpoint.resumed_seconds
    resources = phase_resources(step_times, device)  # training's (its validations included), not testing's
    ev = cfg.evaluation
    postprocess = {}
    if ev.get("tune") and split.val:
        chosen, val_aji, grid = tune_postprocess(model, split.val, device, ev["tune"], ev["tile"], ev["overlap"],
                                                 ev.get("flips", False), inference(), known=val_probabilities)
        postprocess = {"chosen_on": "validation", "val_aji_per_image_mean": val_aji, "values": chosen,
                       "val_names": [s.name for s in split.val], "grid": grid}
        log.info("post-processing chosen on validation: %s (per-image-mean AJI %.4f)", chosen, val_aji)

    def score(samples: list[Sample], description: str) -> dict:
        return evaluate(model, samples, device, ev["min_area"], ev["tile"], ev["overlap"], description,
                        ev.get("flips", False), postprocess.get("values"), inference())

    scores = score(split.test, "test") if score_test else None
    transfer = {name: score(samples, f"test {name}") for name, samples in split.transfer.items() if score_test}
    checkpoints.finish("finetune")
    return {"model": model, "test": scores, "transfer": transfer, "validation": validations,
            "postprocess": postprocess, "history": history, "seconds": seconds, "resources": resources,
            "images": {k: [s.name for s in getattr(split, k)] for k in ("train", "val", "test")}}


def predict_instances(model: nn.Module, sample: Sample, cfg: Config, device: torch.device,
                      postprocess: dict | None = None) -> np.ndarray:
    """One image's predicted instance map exactly as it was scored: the config's evaluation settings
    and the post-processing chosen on validation (``finetune_phase``'s ``postprocess["values"]``)."""
    return instances_as_scored(predict_as_scored(model, sample.image, cfg, device), cfg, postprocess)


def predict_as_scored(model: nn.Module, image: np.ndarray, cfg: Config, device: torch.device,
                      on_tile: Callable[[int, int], None] | None = None) -> np.ndarray:
    """One image's class probabilities as a run scores it: its config's tiles, overlap and flips."""
    ev = cfg.evaluation
    return predict_probabilities(model, image, device, ev["tile"], ev["overlap"], ev.get("flips", False),
                                 inference(), on_tile)


def instances_as_scored(probs: np.ndarray, cfg: Config, postprocess: dict | None = None) -> np.ndarray:
    """Instances from ``predict_as_scored``'s probabilities: the config's ``min_area`` unless
    ``postprocess`` (values chosen on validation) says otherwise."""
    return probabilities_to_instances(probs, **{"min_area": cfg.evaluation["min_area"], **(postprocess or {})})
