"""A bench's jobs as configs and keys, and where their files go.

Each (strategy, seed, fold) pretrains once; its encoder (``out/encoders``) serves every label
fraction. A job's key hashes its config, a pretraining's key is its encoder's identity; a finished
job is a row in the store under its key and is skipped when the same command runs again. Jobs split
their data exactly as ``sslbench run`` does (``pipeline.data.split_samples``: folds, ``--test-data``
or ``split.test_ratio`` for the test set; the label fraction cuts train and val).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path

from mmengine.config import Config

from sslbench.bench.suites import Job, Suite
from sslbench.config import component_config, resolve_run_config
from sslbench.data.base import Sample
from sslbench.errors import ConfigError
from sslbench.pipeline.artifact import EncoderArtifact, encoder_identity
from sslbench.pipeline.data import DataSplit, split_samples
from sslbench.pipeline.fingerprint import EXECUTION_KEYS, content_hash, pretrain_fingerprint
from sslbench.pipeline.run_folder import Checkpoints
from sslbench.registry import PRETEXTS


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
    head: str | None = None  # --head; None: the backbone's default (resolve_run_config)

    def context(self) -> dict:
        """What makes two benches comparable; the leaderboard shows one context at a time."""
        return {"preset": self.preset, "backbone": self.backbone, "data": self.data, "test_data": self.test_data,
                "unlabeled": self.unlabeled, "folds": self.suite.folds,
                "overrides": sorted(o for o in self.overrides if o.partition(".")[0] not in EXECUTION_KEYS),
                **({"head": self.head} if self.head else {})}  # absent when default: earlier rows stay comparable


def strategy_overrides(strategy: str, overrides: list[str]) -> list[str]:
    """``pretext.X=V`` (or ``pretext.X.Y=V``) reaches only the strategies whose pretext takes X
    (``pretext.weights`` is the ImageNet file, meaningless to the others); every other override
    reaches every job."""
    accepted = inspect.signature(PRETEXTS.get(component_config("pretext", strategy)["type"]).__init__).parameters
    return [o for o in overrides if not o.startswith("pretext.") or o.partition("=")[0].split(".")[1] in accepted]


def job_config(opts: BenchOptions, job: Job) -> Config:
    return resolve_run_config(job.strategy, preset=opts.preset, backbone=opts.backbone, head=opts.head, seed=job.seed,
                              device=opts.device, data=opts.data, test_data=opts.test_data,
                              unlabeled=opts.unlabeled, allow_synthetic=opts.allow_synthetic,
                              overrides=[*strategy_overrides(job.strategy, opts.overrides),
                                         f"split.label_fraction={job.fraction}"])


def encoder_fingerprint(cfg: Config, opts: BenchOptions, job: Job) -> dict:
    """What ``job``'s encoder is pretrained with (its fold included under cross-validation)."""
    return pretrain_fingerprint(cfg, job.fold, opts.suite.folds)


def job_keys(cfg: Config, opts: BenchOptions, job: Job) -> tuple[str, str]:
    """(job key, pretraining key). Device and engine settings are left out: where and how fast a job
    ran does not change what it is. The pretraining key is the identity of the job's encoder, which
    leaves out everything only finetuning reads."""
    content = {k: v for k, v in cfg.to_dict().items() if k not in EXECUTION_KEYS}
    content.update(fold=job.fold, folds=opts.suite.folds)
    return content_hash(content), encoder_identity(encoder_fingerprint(cfg, opts, job))


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


def job_encoder(out: Path, job: Job) -> EncoderArtifact:
    """The encoder of ``job``'s (strategy, seed, fold), shared by its label fractions."""
    fold = "" if job.fold is None else f"-f{job.fold}"
    return EncoderArtifact(out / "encoders" / f"{job.strategy}-s{job.seed}{fold}.safetensors")


def bench_checkpoints(out: Path) -> Checkpoints:
    """The bench's training checkpoints: one folder per pretraining and per job, each gone once its
    phase has finished (benches sharing an output folder each remove only their own)."""
    return Checkpoints(out / "checkpoints")


def pretraining_checkpoints(out: Path, planned: PlannedJob) -> Checkpoints:
    return bench_checkpoints(out).subfolder(f"pretrain-{planned.pretrain_key}")


def finetuning_checkpoints(out: Path, planned: PlannedJob) -> Checkpoints:
    return bench_checkpoints(out).subfolder(planned.key)


def forget_earlier_work(out: Path, plan: list[PlannedJob]) -> None:
    """--force: the planned jobs' encoders and checkpoints go, so they run from the start; other jobs'
    in the same folder (another suite's paused work, a --skip'ped strategy's encoder) stay."""
    for planned in plan:
        job_encoder(out, planned.job).discard()
        pretraining_checkpoints(out, planned).remove()
        finetuning_checkpoints(out, planned).remove()


@dataclass(frozen=True)
class PlannedJob:
    """A job to run, and what a task needs to run it on its own (all of it pickles)."""
    job: Job
    key: str
    pretrain_key: str
    # first job of its (strategy, seed, fold) to run whose pretraining no stored row records (the encoder is
    # to be made, or a bench was stopped after making it): its row carries the pretraining time
    claims_pretraining: bool


def plan_jobs(opts: BenchOptions, done: set[str]) -> tuple[list[PlannedJob], list[Config]]:
    """The suite's jobs not in ``done`` (all with --force), grouped by pretraining, with their configs."""
    jobs = []
    for job in opts.suite.jobs(range(opts.seeds)):
        cfg = job_config(opts, job)
        jobs.append((job, cfg, *job_keys(cfg, opts, job)))
    recorded = {pretrain_key for _, _, key, pretrain_key in jobs if key in done}  # a stored row has its time
    plan, configs, pretrainings = [], [], set()
    for job, cfg, key, pretrain_key in jobs:
        if opts.force or key not in done:
            first = pretrain_key not in pretrainings
            pretrainings.add(pretrain_key)
            claims = first and (opts.force or pretrain_key not in recorded
                                or not job_encoder(opts.out, job).reusable(pretrain_key))
            plan.append(PlannedJob(job, key, pretrain_key, claims))
            configs.append(cfg)
    return plan, configs


def job_split(opts: BenchOptions, cfg: Config, job: Job, data: tuple[list[Sample], list[Sample] | None]) -> DataSplit:
    return split_samples(data[0], cfg.split, cfg.seed, data[1], job.fold, opts.suite.folds)
