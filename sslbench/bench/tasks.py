"""One bench job's work: its encoder (pretrained once per strategy, seed and fold, or reused), its
finetuning and its store row. ``runner.py`` calls these in-process; ``pretrain_task`` and
``finetune_task`` are what a launched task runs (``launch.py``)."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import numpy as np
import segmentation_models_pytorch as smp
import torch
from mmengine.config import Config

import sslbench
from sslbench.bench.plan import (
    BenchOptions,
    PlannedJob,
    bench_data,
    encoder_fingerprint,
    finetuning_checkpoints,
    job_config,
    job_encoder,
    job_keys,
    job_split,
    pretraining_checkpoints,
    training,
)
from sslbench.bench.store import METRIC_COLUMNS, write_result
from sslbench.engine import distributed
from sslbench.engine.accel import arithmetic
from sslbench.engine.weights import atomic_write
from sslbench.errors import ConfigError, DataError
from sslbench.eval.metrics import DEFAULT_AGGREGATION
from sslbench.pipeline.data import DataSplit
from sslbench.pipeline.phases import acceleration, finetune_phase, predict_instances, pretrain_phase, resolve_device


def _git(*args: str) -> str | None:
    try:
        result = subprocess.run(["git", *args], cwd=Path(sslbench.__file__).parent, capture_output=True, text=True,
                                timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def git_commit() -> str | None:
    """HEAD of the checkout sslbench runs from, with "+modified" where its code (sslbench/, registry/)
    differs from HEAD: a row computed by uncommitted code says so. None outside a git checkout."""
    head = _git("rev-parse", "HEAD")
    if not head:
        return None
    package = Path(sslbench.__file__).parent
    changed = _git("status", "--porcelain", "--untracked-files=no", "--", str(package), str(package.parent / "registry"))
    return head + ("+modified" if changed else "")


def versions() -> dict:
    return {"sslbench": sslbench.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "segmentation_models_pytorch": smp.__version__, "python": platform.python_version()}


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def save_prediction(out: Path, key: str, model, sample, cfg: Config, device, postprocess: dict | None) -> str:
    """The first test image's instances as scored (and, once, the image and its labels) as compressed .npz."""
    instances = predict_instances(model, sample, cfg, device, postprocess)
    image_path = out / "samples" / f"{_safe(sample.name)}.npz"
    if not image_path.is_file():
        write_npz(image_path, image=sample.image, labels=sample.labels)
    path = out / "predictions" / f"{key}.npz"
    write_npz(path, instances=instances.astype(np.int32), sample=image_path.name, name=sample.name)
    return str(path.relative_to(out))


def write_npz(path: Path, **arrays) -> None:
    """Compressed .npz, atomically. numpy is given an open file: given the temporary's name, it would
    append .npz to it and write another file."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as file:  # closed (and flushed) before atomic_write fsyncs it
            np.savez_compressed(file, **arrays)

    atomic_write(path, write)


def pretrained_encoder(opts: BenchOptions, planned: PlannedJob, cfg: Config, split: DataSplit,
                       device) -> tuple[dict, float | None]:
    """The weights of ``planned``'s encoder, reused if it finished with this pretraining's identity,
    else pretrained (resuming a killed pretraining from its checkpoint), and the seconds pretraining
    took where ``planned`` claims them (else None: another row records them)."""
    encoder = job_encoder(opts.out, planned.job)
    checkpoints = pretraining_checkpoints(opts.out, planned)
    with training(checkpoints):
        result = pretrain_phase(cfg, split, device, encoder, checkpoints, encoder_fingerprint(cfg, opts, planned.job))
    checkpoints.remove()
    return encoder.load(), result["seconds"] if planned.claims_pretraining else None


def finetune_job(opts: BenchOptions, planned: PlannedJob, cfg: Config, split: DataSplit, encoder: dict,
                 pretrain_seconds: float | None, device) -> dict:
    """Finetune from ``encoder``, score the test images, save the first one's prediction; returns the
    job's store row."""
    job, key = planned.job, planned.key
    commit = git_commit()  # the code this process loaded, not what HEAD is when the job ends
    checkpoints = finetuning_checkpoints(opts.out, planned)
    with training(checkpoints):
        result = finetune_phase(cfg, split, encoder, device, checkpoints)
    prediction = None
    if distributed.is_main():  # under torchrun the other processes only helped train and score
        prediction = save_prediction(opts.out, key, result.pop("model"), split.test[0], cfg, device,
                                     result["postprocess"].get("values"))
    checkpoints.remove()  # finetune_phase removed the checkpoint; leftovers only
    scores, encoder_file = result["test"], job_encoder(opts.out, job)
    return {
        "key": key, "suite": opts.suite.name, "strategy": job.strategy, "fraction": job.fraction,
        "fold": job.fold, "seed": job.seed, "preset": opts.preset, "context": opts.context(),
        "config": cfg.to_dict(), **{m: scores[DEFAULT_AGGREGATION][m] for m in METRIC_COLUMNS},
        # a transfer set's scores as the test set's ({"per_image_mean", "summed", "per_image"}), by its name;
        # validation: the val images' per-image means at each evaluated step, which chose the checkpoint
        "scores": {**scores, "postprocess": result["postprocess"], "validation": result["validation"],
                   **({"transfer": result["transfer"]} if result["transfer"] else {})},
        "test_images": len(split.test), "test_names": [s.name for s in split.test],
        "train_names": [s.name for s in split.train], "val_names": [s.name for s in split.val],
        "pretrain_seconds": pretrain_seconds, "finetune_seconds": result["seconds"],
        "device": str(device), "arithmetic": arithmetic(acceleration(cfg, device), device),
        # pretraining's from the encoder's sidecar: the same whichever job made the encoder
        "resources": {"pretrain": (encoder_file.finished() or {}).get("resources"),
                      "finetune": result["resources"]},
        "versions": versions(), "git_commit": commit,
        "encoder": str(encoder_file.path.relative_to(opts.out)), "prediction": prediction,
    }


def _task_inputs(opts: BenchOptions, planned: PlannedJob) -> tuple[Config, DataSplit]:
    cfg = job_config(opts, planned.job)
    if job_keys(cfg, opts, planned.job)[0] != planned.key:  # a task runs elsewhere, maybe much later
        raise ConfigError(f"job {planned.job.label}: this task resolves another config than the bench command "
                          "that submitted it (another sslbench version or plugin set here?); install the same "
                          "sslbench where tasks run and re-run bench.")
    return cfg, job_split(opts, cfg, planned.job, bench_data(cfg))


def pretrain_task(opts: BenchOptions, planned: PlannedJob) -> str:
    """A launched task: pretrain the encoder of ``planned``'s (strategy, seed, fold), or keep the one
    already made with its config. Returns the encoder's path."""
    cfg, split = _task_inputs(opts, planned)
    pretrained_encoder(opts, planned, cfg, split, resolve_device(opts.device))
    return str(job_encoder(opts.out, planned.job).path)


def finetune_task(opts: BenchOptions, planned: PlannedJob) -> str:
    """A launched task: one job from the encoder its pretraining task made; its row goes to
    ``out/results/<key>.json`` (atomically) for the store to merge. Returns that file's path."""
    cfg, split = _task_inputs(opts, planned)
    encoder = job_encoder(opts.out, planned.job)
    done = encoder.reusable(planned.pretrain_key)
    if done is None:
        raise DataError(f"{encoder.path}: missing or pretrained with another config: its pretraining task did not "
                        f"finish (see its log in {opts.out / 'submitit'}); re-run the same bench command.")
    seconds = done.get("seconds") if planned.claims_pretraining else None
    row = finetune_job(opts, planned, cfg, split, encoder.load(), seconds, resolve_device(opts.device))
    return str(write_result(opts.out, row))
