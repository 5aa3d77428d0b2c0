"""One benchmark job: pretrain an encoder with a pretext task, finetune ResUNet, score on test images."""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from mmengine.config import Config
from torch import nn

import sslbench
from sslbench.data.base import Sample, image_tensor
from sslbench.data.detect import dataset_from_path
from sslbench.data.splits import k_folds, label_fraction, train_val_split
from sslbench.engine.checkpoint import Checkpoint, checkpoint_step, normalise, refuse_mismatch
from sslbench.engine import distributed
from sslbench.engine.accel import Acceleration, maybe_compile, resolve
from sslbench.engine.batches import batch_source
from sslbench.engine.finetune import FinetuneSampler, finetune_sources, segmentation_loss
from sslbench.engine.loop import LoopSettings, train
from sslbench.engine.weights import atomic_write, load_encoder, save_encoder, write_safetensors
from sslbench.errors import ConfigError, DataError
from sslbench.bench.overlay import save_overlay
from sslbench.eval.evaluate import evaluate, tune_postprocess
from sslbench.eval.metrics import DEFAULT_AGGREGATION
from sslbench.eval.postprocess import probabilities_to_instances
from sslbench.eval.predict import predict_probabilities
from sslbench.models import build_encoder, build_segmenter
from sslbench.registry import DATASETS, PRETEXTS, build

log = logging.getLogger("sslbench")


@dataclass
class DataSplit:
    train: list[Sample]  # labelled, finetuned on (after the label fraction)
    val: list[Sample]
    test: list[Sample]
    pretrain: list[Sample] = field(default_factory=list)  # every non-test image, labelled or not


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


def load_samples(data_cfg: dict, unlabeled: str | None) -> list[Sample]:
    if data_cfg["type"] == "path":
        samples = dataset_from_path(data_cfg["path"]).load()
    else:
        samples = build(DATASETS, data_cfg).load()
    if unlabeled:
        samples += [Sample(s.name, s.image, None, s.source) for s in dataset_from_path(unlabeled, "unlabeled").load()]
    return samples


def load_data(cfg: Config) -> tuple[list[Sample], list[Sample] | None]:
    """The run's images (``--data`` plus ``--unlabeled``) and, with ``--test-data``, its labelled test
    images; an image in both is refused (a test image seen in training inflates every score)."""
    samples = load_samples(cfg.data, cfg.unlabeled)
    if not cfg.get("test_data"):
        return samples, None
    test = [s for s in dataset_from_path(cfg.test_data).load() if s.labelled]
    if not test:
        raise DataError(f"--test-data {cfg.test_data}: no labelled images found; it must hold annotations.")
    refuse_overlap(samples, test, cfg.test_data)
    return samples, test


def _pixels_digest(sample: Sample) -> str:
    return hashlib.sha1(np.ascontiguousarray(sample.image).tobytes() + str(sample.image.shape).encode()).hexdigest()


def _where(sample: Sample) -> str:
    """A file path where the reader recorded one, else the image name (generated data)."""
    return sample.source if "/" in sample.source or "\\" in sample.source else sample.name


def refuse_overlap(samples: list[Sample], test: list[Sample], test_path: str) -> None:
    """No test image may also be a training, validation or pretraining image: same file stem, or
    identical pixels under another name."""
    by_name = {s.name: s for s in samples}
    by_pixels = {_pixels_digest(s): s for s in samples}
    shared = []
    for t in test:
        if t.name in by_name:
            shared.append(f"{_where(t)} (same name as {_where(by_name[t.name])})")
        elif (twin := by_pixels.get(_pixels_digest(t))) is not None:
            shared.append(f"{_where(t)} (identical pixels to {_where(twin)})")
    if shared:
        listed = ", ".join(shared[:5]) + (f" and {len(shared) - 5} more" if len(shared) > 5 else "")
        raise DataError(f"--test-data {test_path} shares {len(shared)} image(s) with the training data: {listed}; "
                        "remove them from --data/--unlabeled or from --test-data.")


def split_samples(samples: list[Sample], split: dict, seed: int = 0, test: list[Sample] | None = None,
                  fold: int | None = None, folds: int = 0) -> DataSplit:
    """The one split routine of ``run`` and ``bench``.

    Test set, in order of precedence: fold ``fold`` of ``k_folds`` over the labelled images; ``test``
    (``--test-data``: all of ``samples`` is then train/val/pretraining); else ``split.test_ratio`` of the
    labelled images, drawn with ``split.seed``. The rest of the labelled images is split
    ``1 - val_ratio : val_ratio`` into train/val, and the label fraction cuts BOTH to nested subsets
    (val keeps at least one image): a "10 %" row must not pick its checkpoint with the full annotated
    validation set. Train/val and the label subset are drawn with ``split.seed``, or with the run's
    ``seed`` under ``split.resample_per_seed`` (then the std over seeds covers which images happened to be
    labelled); the test set never moves. Pretraining sees every image that is not a test image.
    """
    labelled = {s.name: s for s in samples if s.labelled}
    held_out: set[str] = set()
    if fold is not None:
        try:
            held_out = set(k_folds(list(labelled), folds, split["seed"])[fold][1])
        except ValueError as exc:
            raise DataError(f"cross-validation: {exc}") from None
        test = [s for n, s in labelled.items() if n in held_out]
    elif test is None:
        if len(labelled) < 3:
            raise DataError(f"need at least 3 labelled images (train, val, test), found {len(labelled)}; "
                            "add annotated images or use the synthetic default data.")
        _, test_names = train_val_split(list(labelled), split["test_ratio"], split["seed"])
        held_out = set(test_names)
        test = [labelled[n] for n in test_names]
    label_seed = seed if split.get("resample_per_seed") else split["seed"]
    fraction = split.get("label_fraction", 1.0)
    train, val = train_val_split([n for n in labelled if n not in held_out], split["val_ratio"], label_seed)
    train, val = (label_fraction(names, fraction, label_seed) for names in (train, val))
    return DataSplit(train=[labelled[n] for n in train], val=[labelled[n] for n in val], test=test,
                     pretrain=[s for s in samples if s.name not in held_out])


def check_sizes(images: list[Sample], minimum: int, purpose: str) -> None:
    for sample in images:
        height, width = sample.image.shape[:2]
        if min(height, width) < minimum:
            raise DataError(f"{sample.source or sample.name}: image is {height}×{width} but {purpose} needs "
                            f"at least {minimum}×{minimum}; use a smaller crop (preset) or larger images.")


def loop_settings(section: dict) -> LoopSettings:
    return LoopSettings(**{k: section[k] for k in ("steps", "lr", "weight_decay", "warmup_steps", "log_every")},
                        max_nonfinite_skips=section.get("max_nonfinite_skips", 0))


def phase_checkpoint(checkpoint_dir: Path | None, phase: str, section: dict, fingerprint: dict,
                     generator: torch.Generator) -> Checkpoint | None:
    if checkpoint_dir is None:
        return None
    return Checkpoint(Path(checkpoint_dir) / f"{phase}.safetensors", section.get("checkpoint_every", 0),
                      fingerprint, generator)


def pretrain(cfg: Config, encoder: nn.Module, images: list[Sample], device: torch.device,
             generator: torch.Generator, checkpoint: Checkpoint | None = None, accel: Acceleration | None = None,
             on_step: Callable[[int], None] | None = None) -> tuple[nn.Module, list[dict]]:
    """Train ``encoder`` with the config's pretext task; ``accel`` (default: the config's engine
    section) and ``on_step`` as in ``engine.loop.train``."""
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
                    after_step=lambda step: pretext.after_step(encoder, step, settings.steps))
    return pretext, history


def finetune(cfg: Config, model: nn.Module, split: DataSplit, device: torch.device, generator: torch.Generator,
             checkpoint: Checkpoint | None = None, accel: Acceleration | None = None,
             on_step: Callable[[int], None] | None = None) -> tuple[list[dict], list[dict]]:
    """Train the segmenter; with ``eval_every`` the weights of the best per-image-mean validation
    AJI are kept."""
    ft, ev = cfg.finetune, cfg.evaluation
    accel = accel or acceleration(cfg, device)
    sampler = FinetuneSampler(ft["crop"], ft.get("scale"), ft.get("elastic"), ft.get("stain_jitter", 0.0))
    next_batch = batch_source(sampler, finetune_sources(split.train, ft["boundary_width"]),
                              ft["batch_size"], device, generator, accel.data_on_device, accel.loader_workers)
    weights = torch.tensor(ft["class_weights"], dtype=torch.float32, device=device)
    # lives in the checkpoint's extra state, so a resumed run keeps earlier scores and best weights
    record = checkpoint.extra if checkpoint is not None else {}
    record.update(validations=[], best_aji=-1.0, best_state=None)

    def validate(step: int) -> None:
        scores = evaluate(model, split.val, device, ev["min_area"], ev["tile"], ev["overlap"], "validate",
                          ev.get("flips", False))[DEFAULT_AGGREGATION]
        record["validations"].append({"step": step, **scores})
        log.info("validation step %d AJI %.4f", step, scores["aji"])
        if scores["aji"] > record["best_aji"]:
            record.update(best_aji=scores["aji"],
                          best_state={k: v.detach().clone() for k, v in model.state_dict().items()})
        model.train()

    maybe_compile(model, accel)
    dice_weight = ft.get("dice_weight", 0.0)
    history = train(model, lambda: segmentation_loss(model, *next_batch(), weights, dice_weight), loop_settings(ft),
                    device, f"finetune {cfg.name}", on_eval=validate if ft.get("eval_every") and split.val else None,
                    eval_every=ft.get("eval_every", 0), checkpoint=checkpoint, accel=accel, on_step=on_step)
    if record["best_state"] is not None:
        model.load_state_dict(record["best_state"])
    return history, record["validations"]


def prepare(cfg: Config) -> tuple[torch.device, DataSplit]:
    """Device and the seeded data split (``cfg.split``, including its label fraction). Fails before
    any training if a finetuning image is smaller than the crop."""
    samples, test = load_data(cfg)
    split = split_samples(samples, cfg.split, cfg.seed, test)
    log.info("data: %d train, %d val, %d test, %d pretraining images",
             len(split.train), len(split.val), len(split.test), len(split.pretrain))
    check_inputs(cfg, split)
    return resolve_device(cfg.device), split


def check_inputs(cfg: Config, split: DataSplit) -> None:
    """Checks that would otherwise fail only after pretraining: call before any training."""
    check_sizes(split.train, cfg.finetune["crop"], "finetuning")


#: the split settings pretraining depends on: which images are test images (train/val and labels do not matter)
PRETRAINING_SPLIT_KEYS = ("test_ratio", "seed")


def pretrain_fingerprint(cfg: Config) -> dict:
    """What the pretrained encoder depends on (not the label fraction or finetuning settings)."""
    return normalise({"pretext": cfg.pretext, "backbone": cfg.backbone, "seed": cfg.seed, "data": cfg.data,
                      "test_data": cfg.get("test_data"), "unlabeled": cfg.unlabeled, "pretrain": cfg.pretrain,
                      "split": {k: cfg.split[k] for k in PRETRAINING_SPLIT_KEYS}})


#: where and how fast a job runs, not what it computes: left out of fingerprints and job keys
EXECUTION_KEYS = ("device", "engine")


def run_fingerprint(cfg: Config) -> dict:
    """The whole config except how it is executed: a run may resume on another device or path."""
    return normalise({k: v for k, v in cfg.to_dict().items() if k not in EXECUTION_KEYS})


def finished_pretraining(weights_path: Path) -> dict | None:
    """The encoder's sidecar if it says pretraining finished (it is written after the weights)."""
    sidecar = Path(weights_path).with_suffix(".json")
    if not sidecar.is_file():
        return None
    try:
        metadata = json.loads(sidecar.read_text())
    except (ValueError, OSError) as exc:
        raise DataError(f"{sidecar}: unreadable encoder sidecar ({exc}); delete it and the encoder "
                        "weights beside it to redo pretraining.") from None
    return metadata if isinstance(metadata, dict) and metadata.get("finished") else None


def pretrain_phase(cfg: Config, split: DataSplit, device: torch.device, weights_path: Path,
                   checkpoint_dir: Path | None = None) -> dict:
    """Pretrain (or just initialise) the encoder and save it; independent of the label fraction.

    With ``checkpoint_dir`` (one per job) training state is checkpointed there and resumed from on
    a re-run, and an encoder whose sidecar says it finished with this config is reused as is.
    """
    fingerprint = pretrain_fingerprint(cfg)
    images = len(split.pretrain)
    done = finished_pretraining(weights_path) if checkpoint_dir is not None else None
    if done is not None:
        refuse_mismatch(done.get("fingerprint", {}), fingerprint, Path(weights_path).with_suffix(".safetensors"),
                        "re-run with the options it was made with, or delete it to pretrain again")
        log.info("pretraining already finished: reusing %s", Path(weights_path).with_suffix(".safetensors"))
        return {"weights": str(Path(weights_path).with_suffix(".safetensors")), "history": done["history"],
                "seconds": done["seconds"], "images": images}
    generator = distributed.rank_stream(seed_everything(cfg.seed))
    started = time.perf_counter()
    checkpoint = phase_checkpoint(checkpoint_dir, "pretrain", cfg.pretrain, fingerprint, generator)
    encoder = build_encoder(cfg.backbone).to(device)
    pretext, history = pretrain(cfg, encoder, split.pretrain, device, generator, checkpoint)
    seconds = time.perf_counter() - started + (checkpoint.resumed_seconds if checkpoint else 0.0)
    path = Path(weights_path).with_suffix(".safetensors")
    if distributed.is_main():
        save_encoder(encoder.state_dict(), path, {
            "pretext": cfg.name, "pretext_config": cfg.pretext, "backbone": cfg.backbone,
            "steps": cfg.pretrain["steps"] if pretext.pretrains else 0, "seed": cfg.seed,
            "sslbench_version": sslbench.__version__, "finished": True, "fingerprint": fingerprint,
            "history": history, "seconds": seconds})
        if checkpoint is not None:  # the encoder file supersedes it
            checkpoint.path.unlink(missing_ok=True)
    distributed.barrier()  # every process reads the encoder file next
    return {"weights": str(path), "history": history, "seconds": seconds, "images": images}


def finetune_phase(cfg: Config, split: DataSplit, encoder_state: dict, device: torch.device,
                   checkpoint_dir: Path | None = None) -> dict:
    """Finetune ResUNet from ``encoder_state`` with a fresh decoder and score the test images.

    With ``checkpoint_dir`` (one per job) training state is checkpointed there and resumed from
    on a re-run; the checkpoint is removed once the test scores exist.
    """
    generator = distributed.rank_stream(seed_everything(cfg.seed))
    started = time.perf_counter()
    checkpoint = phase_checkpoint(checkpoint_dir, "finetune", cfg.finetune, run_fingerprint(cfg), generator)
    model = build_segmenter(cfg.backbone, cfg.head, encoder_state).to(device)
    history, validations = finetune(cfg, model, split, device, generator, checkpoint)
    seconds = time.perf_counter() - started + (checkpoint.resumed_seconds if checkpoint else 0.0)
    ev = cfg.evaluation
    postprocess = {}
    if ev.get("tune") and split.val:
        chosen, val_aji = tune_postprocess(model, split.val, device, ev["tune"], ev["tile"], ev["overlap"],
                                           ev.get("flips", False))
        postprocess = {"chosen_on": "validation", "val_aji_per_image_mean": val_aji, "values": chosen}
        log.info("post-processing chosen on validation: %s (per-image-mean AJI %.4f)", chosen, val_aji)
    scores = evaluate(model, split.test, device, ev["min_area"], ev["tile"], ev["overlap"], "test",
                      ev.get("flips", False), postprocess.get("values"))
    if checkpoint is not None and distributed.is_main():
        checkpoint.path.unlink(missing_ok=True)
    return {"model": model, "test": scores, "validation": validations, "postprocess": postprocess,
            "history": history, "seconds": seconds,
            "images": {k: [s.name for s in getattr(split, k)] for k in ("train", "val", "test")}}


def predict_instances(model: nn.Module, sample: Sample, cfg: Config, device: torch.device,
                      postprocess: dict | None = None) -> np.ndarray:
    """One image's predicted instance map exactly as it was scored: the config's evaluation settings
    and the post-processing chosen on validation (``finetune_phase``'s ``postprocess["values"]``)."""
    ev = cfg.evaluation
    probs = predict_probabilities(model, sample.image, device, tile=ev["tile"], overlap=ev["overlap"],
                                  flips=ev.get("flips", False))
    return probabilities_to_instances(probs, **{"min_area": ev["min_area"], **(postprocess or {})})


def write_overlay(path: Path, cfg: Config, model: nn.Module, sample: Sample, scores: dict,
                  device: torch.device, postprocess: dict | None = None) -> Path:
    """The overlay picture of one test image (its AJI in the title) for a person to look at."""
    aji = next(p["aji"] for p in scores["per_image"] if p["name"] == sample.name)
    return save_overlay(path, sample.image, sample.labels, predict_instances(model, sample, cfg, device, postprocess),
                        f"{cfg.name} on test image {sample.name}: AJI {100 * aji:.1f} %")


def check_same_config(cfg: Config, out_dir: Path) -> None:
    """Refuse to continue an unfinished run in ``out_dir`` with a different config (a folder with
    nothing to resume takes the new config: a run that failed early may be fixed and re-run)."""
    saved = out_dir / "config.json"
    if saved.is_file() and resume_point(out_dir) is not None:
        try:
            fingerprint = json.loads(saved.read_text())
        except (ValueError, OSError) as exc:
            raise DataError(f"{saved}: unreadable ({exc}); pass another --out or remove the folder.") from None
        refuse_mismatch(fingerprint, run_fingerprint(cfg), f"the unfinished run in {out_dir}",
                        "re-run with the same options to resume it, or pass another --out")


def resume_point(out_dir: Path) -> str | None:
    """Where a re-run in ``out_dir`` continues ("pretraining from step 10"); None for a fresh folder."""
    for phase, label in (("finetune", "finetuning"), ("pretrain", "pretraining")):
        path = out_dir / "checkpoints" / f"{phase}.safetensors"
        if path.is_file():
            return f"{label} from step {checkpoint_step(path)}"
    if finished_pretraining(out_dir / "encoder") is not None:
        return "finetuning from step 0 (pretraining finished)"
    return None


def run_job(cfg: Config, out_dir: Path) -> dict:
    """Pretrain -> finetune -> evaluate; writes the run folder and returns the result record.
    Re-running it on an unfinished folder resumes from the last checkpoints."""
    out_dir.mkdir(parents=True, exist_ok=True)
    check_same_config(cfg, out_dir)
    device, split = prepare(cfg)
    if distributed.is_main():
        atomic_write(out_dir / "config.py", lambda tmp: tmp.write_text(cfg.pretty_text))
        atomic_write(out_dir / "config.json", lambda tmp: tmp.write_text(json.dumps(run_fingerprint(cfg), indent=2)))
    checkpoints = out_dir / "checkpoints"
    pre = pretrain_phase(cfg, split, device, out_dir / "encoder", checkpoint_dir=checkpoints)
    fin = finetune_phase(cfg, split, load_encoder(pre["weights"]), device, checkpoint_dir=checkpoints)
    result = {
        "strategy": cfg.name, "preset": cfg.preset, "seed": cfg.seed, "device": str(device),
        "processes": distributed.world_size(),
        "test": fin["test"], "validation": fin["validation"], "postprocess": fin["postprocess"],
        "images": fin["images"],
        "pretrain_images": pre["images"],
        "history": {"pretrain": pre["history"], "finetune": fin["history"]},
        "seconds": {"pretrain": pre["seconds"], "finetune": fin["seconds"]},
        "encoder_weights": Path(pre["weights"]).name,
        "versions": {"sslbench": sslbench.__version__, "torch": torch.__version__,
                     "python": platform.python_version()},
        "overlay": "overlay.png",
    }
    if distributed.is_main():  # every rank returns the same record; rank 0 alone writes the files
        write_overlay(out_dir / result["overlay"], cfg, fin["model"], split.test[0], fin["test"], device,
                      fin["postprocess"].get("values"))
        # the finetuned ResUNet, so a run can be scored again (other images, post-processing) without retraining
        write_safetensors(out_dir / "model.safetensors", fin["model"].state_dict())
        atomic_write(out_dir / "metrics.json", lambda tmp: tmp.write_text(json.dumps(result, indent=2)))
        shutil.rmtree(checkpoints, ignore_errors=True)  # only leftovers of killed writes remain there
    return result
