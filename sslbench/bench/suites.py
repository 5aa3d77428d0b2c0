"""Benchmark suites: a grid of strategies × label fractions (× folds) × seeds, run as jobs.

Each (strategy, seed, fold) pretrains once; its encoder serves every label fraction. Finished jobs
are rows in the results store and are skipped when the same command runs again. Jobs run in this
process, or as submitit tasks (``pretrain_task``, ``finetune_task``; see ``launch.py``).

Jobs split their data exactly as ``sslbench run`` does (``job.split_samples``: folds, ``--test-data``
or ``split.test_ratio`` for the test set; the label fraction cuts train and val).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import platform
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import segmentation_models_pytorch as smp
import torch
from mmengine.config import Config
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

import sslbench
from sslbench.bench.job import (
    EXECUTION_KEYS,
    PRETRAINING_SPLIT_KEYS,
    DataSplit,
    check_inputs,
    finetune_phase,
    load_data,
    predict_instances,
    pretrain_phase,
    resolve_device,
    split_samples,
)
from sslbench.bench.store import METRIC_COLUMNS, Store, merge_results, write_result
from sslbench.config import load_component, pretext_config, resolve_run_config
from sslbench.data.base import Sample
from sslbench.engine import distributed
from sslbench.engine.weights import atomic_write, load_encoder
from sslbench.errors import ConfigError, DataError
from sslbench.eval.metrics import DEFAULT_AGGREGATION
from sslbench.registry import PRETEXTS

if TYPE_CHECKING:
    from sslbench.bench.launch import LaunchOptions

log = logging.getLogger("sslbench")


@dataclass(frozen=True)
class Job:
    strategy: str
    fraction: float
    fold: int | None
    seed: int

    @property
    def label(self) -> str:
        fold = "" if self.fold is None else f" fold {self.fold + 1}"
        return f"{self.strategy} {round(100 * self.fraction)} %{fold} seed {self.seed}"


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    strategies: tuple[str, ...]
    fractions: tuple[float, ...]
    metrics: tuple[str, ...]
    folds: int = 0  # 0: one fixed test set; k: k-fold cross-validation
    paper: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # metric -> strategy -> per column
    references: dict[str, float] = field(default_factory=dict)  # paper-only rows (first metric)

    @property
    def columns(self) -> list[str]:
        if self.folds:
            return [f"Fold {i + 1}" for i in range(self.folds)] + ["Average"]
        return [f"{round(100 * f)} %" for f in self.fractions]

    def jobs(self, seeds: Iterable[int]) -> list[Job]:
        """Grouped by (seed, fold, strategy) so one pretraining serves consecutive jobs."""
        folds = range(self.folds) if self.folds else [None]
        return [Job(s, f, fold, seed) for seed in seeds for fold in folds for s in self.strategies
                for f in self.fractions]


def load_suite(name: str, folds: int | None = None, skip: Iterable[str] = ()) -> Suite:
    cfg = load_component("suite", name)
    skip = list(skip)
    unknown = [s for s in skip if s not in cfg.strategies]
    if unknown:
        raise ConfigError(f"--skip {unknown[0]}: not in suite {name} ({', '.join(cfg.strategies)}).")
    if folds is not None and not cfg.get("folds"):
        raise ConfigError(f"--folds applies to cross-validation suites (table4), not {name}.")
    k = cfg.get("folds", 0) if folds is None else folds
    if cfg.get("folds") and k < 2:
        raise ConfigError(f"--folds must be >= 2, got {k}.")
    tables = cfg.get("paper", [])
    paper = {t["metric"]: {s: list(v) if isinstance(v, (list, tuple)) else [v] for s, v in t["values"].items()}
             for t in (tables if isinstance(tables, list) else [tables])}
    return Suite(name, cfg.get("description", ""), tuple(s for s in cfg.strategies if s not in skip),
                 tuple(cfg.get("fractions", [1.0])), tuple(cfg.get("metrics", ["aji"])), k, paper,
                 dict(cfg.get("references", {})))


@dataclass
class BenchOptions:
    suite: Suite
    out: Path
    preset: str = "smoke"
    backbone: str = "resnet101"
    device: str = "auto"
    seeds: int = 1
    data: str | None = None
    test_data: str | None = None
    unlabeled: str | None = None
    overrides: list[str] = field(default_factory=list)
    force: bool = False
    plugins: list[str] = field(default_factory=list)  # --plugin: what a launched task loads before its job
    allow_synthetic: bool = False  # --allow-synthetic: a real-data preset (mini, paper) on the synthetic default

    def context(self) -> dict:
        """What makes two benches comparable; the leaderboard shows one context at a time."""
        return {"preset": self.preset, "backbone": self.backbone, "data": self.data, "test_data": self.test_data,
                "unlabeled": self.unlabeled, "folds": self.suite.folds,
                "overrides": sorted(o for o in self.overrides if o.partition(".")[0] not in EXECUTION_KEYS)}


def config_hash(content: dict) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]


def strategy_overrides(strategy: str, overrides: list[str]) -> list[str]:
    """``pretext.X=V`` (or ``pretext.X.Y=V``) reaches only the strategies whose pretext takes X
    (``pretext.weights`` is the ImageNet file, meaningless to the others); every other override
    reaches every job."""
    accepted = inspect.signature(PRETEXTS.get(pretext_config(strategy)["type"]).__init__).parameters
    return [o for o in overrides if not o.startswith("pretext.") or o.partition("=")[0].split(".")[1] in accepted]


def job_config(opts: BenchOptions, job: Job) -> Config:
    return resolve_run_config(job.strategy, preset=opts.preset, backbone=opts.backbone, seed=job.seed,
                              device=opts.device, data=opts.data, test_data=opts.test_data,
                              unlabeled=opts.unlabeled, allow_synthetic=opts.allow_synthetic,
                              overrides=[*strategy_overrides(job.strategy, opts.overrides),
                                         f"split.label_fraction={job.fraction}"])


def job_keys(cfg: Config, opts: BenchOptions, job: Job) -> tuple[str, str]:
    """(job key, pretraining key). Device and engine settings are left out: where and how fast a job
    ran does not change what it is. The pretraining key leaves out everything only finetuning reads."""
    content = {k: v for k, v in cfg.to_dict().items() if k not in EXECUTION_KEYS}
    content.update(fold=job.fold, folds=opts.suite.folds)
    pretraining = {k: v for k, v in content.items() if k not in ("finetune", "evaluation")}
    pretraining["split"] = {k: content["split"][k] for k in PRETRAINING_SPLIT_KEYS}
    return config_hash(content), config_hash(pretraining)


def check_strategies(opts: BenchOptions) -> None:
    """Fail before any work for a strategy that cannot run (so no row silently goes missing)."""
    for override in opts.overrides:
        if not any(override in strategy_overrides(s, [override]) for s in opts.suite.strategies):
            raise ConfigError(f"--set {override}: no strategy of suite {opts.suite.name} takes this pretext option.")
    for strategy in opts.suite.strategies:
        cfg = job_config(opts, Job(strategy, 1.0, None, 0))
        if "weights" in cfg.pretext and not cfg.pretext["weights"]:
            raise ConfigError(f"suite {opts.suite.name} includes {strategy}, which needs "
                              f"--set pretext.weights=PATH (a local ResNet file); or pass --skip {strategy}.")
        if cfg.pretext.get("weights") and not Path(cfg.pretext["weights"]).is_file():
            raise ConfigError(f"pretext.weights: {cfg.pretext['weights']} is not a file; pass an existing "
                              f"ResNet weights file or --skip {strategy}.")


def git_commit() -> str | None:
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(sslbench.__file__).parent,
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


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
        atomic_write(image_path, lambda tmp: np.savez_compressed(open(tmp, "wb"), image=sample.image,
                                                                 labels=sample.labels))
    path = out / "predictions" / f"{key}.npz"
    atomic_write(path, lambda tmp: np.savez_compressed(open(tmp, "wb"), instances=instances.astype(np.int32),
                                                       sample=image_path.name, name=sample.name))
    return str(path.relative_to(out))


def encoder_path(out: Path, job: Job) -> Path:
    fold = "" if job.fold is None else f"-f{job.fold}"
    return out / "encoders" / f"{job.strategy}-s{job.seed}{fold}.safetensors"


def reusable_encoder(path: Path, pretrain_key: str) -> bool:
    sidecar = path.with_suffix(".json")
    try:
        return path.is_file() and json.loads(sidecar.read_text()).get("config_hash") == pretrain_key
    except (OSError, ValueError):
        return False


def pretrained_encoder(cfg: Config, split: DataSplit, device, path: Path, pretrain_key: str,
                       checkpoints: Path) -> tuple[dict, float | None]:
    """Reuse the encoder whose sidecar carries ``pretrain_key``; else pretrain (resuming a killed
    pretraining from its checkpoint) and stamp the sidecar. The old sidecar goes first, so weights
    replaced by a killed run never pass as reusable."""
    if reusable_encoder(path, pretrain_key):
        return load_encoder(path), None
    sidecar = path.with_suffix(".json")
    if distributed.is_main():
        sidecar.unlink(missing_ok=True)
    distributed.barrier()  # no process may see the old sidecar once pretraining starts
    result = pretrain_phase(cfg, split, device, path, checkpoint_dir=checkpoints / f"pretrain-{pretrain_key}")
    if distributed.is_main():
        metadata = dict(json.loads(sidecar.read_text()), config_hash=pretrain_key)
        atomic_write(sidecar, lambda tmp: tmp.write_text(json.dumps(metadata, indent=2, default=str)))
    return load_encoder(path), result["seconds"]


@dataclass(frozen=True)
class PlannedJob:
    """A job to run, and what a task needs to run it on its own (all of it pickles)."""
    job: Job
    key: str
    pretrain_key: str
    # first job of its (strategy, seed, fold) whose encoder is not made yet: its row carries the pretraining time
    claims_pretraining: bool


def plan_jobs(opts: BenchOptions, done: set[str]) -> tuple[list[PlannedJob], list[Config]]:
    """The suite's jobs not in ``done`` (all with --force), grouped by pretraining, with their configs."""
    plan, configs, pretrainings = [], [], set()
    for job in opts.suite.jobs(range(opts.seeds)):
        cfg = job_config(opts, job)
        key, pretrain_key = job_keys(cfg, opts, job)
        if opts.force or key not in done:
            first = pretrain_key not in pretrainings
            pretrainings.add(pretrain_key)
            claims = first and not reusable_encoder(encoder_path(opts.out, job), pretrain_key)
            plan.append(PlannedJob(job, key, pretrain_key, claims))
            configs.append(cfg)
    return plan, configs


def job_split(opts: BenchOptions, cfg: Config, job: Job, data: tuple[list[Sample], list[Sample] | None]) -> DataSplit:
    return split_samples(data[0], cfg.split, cfg.seed, data[1], job.fold, opts.suite.folds)


def finetune_job(opts: BenchOptions, planned: PlannedJob, cfg: Config, split: DataSplit, encoder: dict,
                 pretrain_seconds: float | None, device) -> dict:
    """Finetune from ``encoder``, score the test images, save the first one's prediction; returns the
    job's store row."""
    job, key = planned.job, planned.key
    checkpoints = opts.out / "checkpoints"
    result = finetune_phase(cfg, split, encoder, device, checkpoint_dir=checkpoints / key)
    prediction = None
    if distributed.is_main():  # under torchrun the other processes only helped train and score
        prediction = save_prediction(opts.out, key, result.pop("model"), split.test[0], cfg, device,
                                     result["postprocess"].get("values"))
        shutil.rmtree(checkpoints / key, ignore_errors=True)  # finetune_phase removed the checkpoint; leftovers only
    scores = result["test"]
    return {
        "key": key, "suite": opts.suite.name, "strategy": job.strategy, "fraction": job.fraction,
        "fold": job.fold, "seed": job.seed, "preset": opts.preset, "context": opts.context(),
        "config": cfg.to_dict(), **{m: scores[DEFAULT_AGGREGATION][m] for m in METRIC_COLUMNS}, "scores": {**scores, "postprocess": result["postprocess"]},
        "test_images": len(split.test), "test_names": [s.name for s in split.test],
        "pretrain_seconds": pretrain_seconds, "finetune_seconds": result["seconds"],
        "device": str(device), "versions": versions(), "git_commit": git_commit(),
        "encoder": str(encoder_path(opts.out, job).relative_to(opts.out)), "prediction": prediction,
    }


def _task_inputs(opts: BenchOptions, planned: PlannedJob) -> tuple[Config, DataSplit]:
    cfg = job_config(opts, planned.job)
    if job_keys(cfg, opts, planned.job)[0] != planned.key:  # a task runs elsewhere, maybe much later
        raise ConfigError(f"job {planned.job.label}: this task resolves another config than the bench command "
                          "that submitted it (another sslbench version or plugin set here?); install the same "
                          "sslbench where tasks run and re-run bench.")
    return cfg, job_split(opts, cfg, planned.job, load_data(cfg))


def pretrain_task(opts: BenchOptions, planned: PlannedJob) -> str:
    """A launched task: pretrain the encoder of ``planned``'s (strategy, seed, fold), or keep the one
    already made with its config. Returns the encoder's path."""
    cfg, split = _task_inputs(opts, planned)
    path = encoder_path(opts.out, planned.job)
    checkpoints = opts.out / "checkpoints"
    pretrained_encoder(cfg, split, resolve_device(opts.device), path, planned.pretrain_key, checkpoints)
    shutil.rmtree(checkpoints / f"pretrain-{planned.pretrain_key}", ignore_errors=True)
    return str(path)


def finetune_task(opts: BenchOptions, planned: PlannedJob) -> str:
    """A launched task: one job from the encoder its pretraining task made; its row goes to
    ``out/results/<key>.json`` (atomically) for the store to merge. Returns that file's path."""
    cfg, split = _task_inputs(opts, planned)
    path = encoder_path(opts.out, planned.job)
    if not reusable_encoder(path, planned.pretrain_key):
        raise DataError(f"{path}: missing or pretrained with another config: its pretraining task did not "
                        f"finish (see its log in {opts.out / 'submitit'}); re-run the same bench command.")
    seconds = json.loads(path.with_suffix(".json").read_text()).get("seconds") if planned.claims_pretraining else None
    row = finetune_job(opts, planned, cfg, split, load_encoder(path), seconds, resolve_device(opts.device))
    return str(write_result(opts.out, row))


def run_suite(opts: BenchOptions, console: Console | None = None, launch: LaunchOptions | None = None,
              warn: Callable[[str], None] = log.warning) -> dict:
    """Run every job of the suite not yet in the store; returns counts of jobs run and skipped.

    In-process by default; ``launch`` (a :class:`sslbench.bench.launch.LaunchOptions`) submits the
    jobs as submitit tasks instead. Results that earlier tasks left are merged first (``warn`` gets
    one line per unreadable file). A killed job leaves no row; its training resumes from
    ``out/checkpoints`` on the next run."""
    if opts.suite.folds and opts.test_data:
        raise ConfigError(f"suite {opts.suite.name} cross-validates (its folds are the test sets); drop --test-data.")
    check_strategies(opts)
    if distributed.launched() and launch is not None and launch.launcher != "none":
        raise ConfigError("--launcher starts its own processes; run it without torchrun.")
    checkpoints = opts.out / "checkpoints"
    if distributed.is_main():
        Store(opts.out)
        merge_results(opts.out, warn)
        if opts.force:
            shutil.rmtree(checkpoints, ignore_errors=True)
            for encoder in (opts.out / "encoders").glob("*.json"):
                encoder.unlink()
    if distributed.launched():
        resolve_device(opts.device)  # joins the process group: every process must plan the same jobs
        distributed.barrier()
    store = Store(opts.out)
    plan, configs = plan_jobs(opts, store.done_keys())
    skipped = len(opts.suite.jobs(range(opts.seeds))) - len(plan)
    if not plan:
        return {"ran": 0, "skipped": skipped}
    data = load_data(configs[0])
    splits = [job_split(opts, cfg, p.job, data) for p, cfg in zip(plan, configs)]
    for cfg, split in zip(configs, splits):
        check_inputs(cfg, split)  # fail now, not after hours of pretraining
    if launch is not None and launch.launcher != "none":
        from sslbench.bench.launch import submit
        return {"skipped": skipped, **submit(opts, plan, launch, console, warn)}
    device = resolve_device(opts.device)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("jobs"),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    encoders: dict[str, tuple[dict, float | None]] = {}
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(f"{opts.suite.name} ({skipped} already done)", total=len(plan))
        for planned, cfg, split in zip(plan, configs, splits):
            progress.update(task, description=f"{opts.suite.name}: {planned.job.label}")
            if planned.pretrain_key not in encoders:  # one pretraining per (strategy, seed, fold)
                encoders = {planned.pretrain_key: pretrained_encoder(
                    cfg, split, device, encoder_path(opts.out, planned.job), planned.pretrain_key, checkpoints)}
            state, pretrain_seconds = encoders[planned.pretrain_key]
            row = finetune_job(opts, planned, cfg, split, state, pretrain_seconds, device)
            if distributed.is_main():
                store.add(row)
            encoders[planned.pretrain_key] = (state, None)  # later jobs reuse it: their pretraining cost is nil
            progress.advance(task)
        progress.update(task, description=f"{opts.suite.name}: finished")
    if distributed.is_main():
        shutil.rmtree(checkpoints, ignore_errors=True)
    return {"ran": len(plan), "skipped": skipped}
