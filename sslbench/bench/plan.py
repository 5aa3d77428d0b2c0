"""A bench's jobs as configs and keys, and where their files go.

Each (strategy, seed, fold) pretrains once; its encoder (``out/encoders``) serves every label
fraction. A job's key hashes its config, a pretraining's key is its encoder's identity, both with the
data folders' contents in place of their paths; a finished job is a row in the store under its key
and is skipped when the same command runs again, wherever its data now lies. Jobs split
their data exactly as ``sslbench run`` does (``pipeline.data.split_samples``: folds, ``--test-data``
or ``split.test_ratio`` for the test set; the label fraction cuts train and val). ``--transfer-test``
sets are scored by every job and named by content in its key, never pretrained or chosen on.
"""

from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout
from mmengine.config import Config

from sslbench.bench.suites import Job, Suite, protocol_of
from sslbench.config import component_config, resolve_run_config
from sslbench.data.base import Sample
from sslbench.engine import distributed
from sslbench.errors import ConfigError
from sslbench.pipeline.artifact import EncoderArtifact, encoder_identity
from sslbench.pipeline.data import DataSplit, load_data, load_transfer, split_samples
from sslbench.pipeline.fingerprint import (
    EXECUTION_KEYS,
    content_hash,
    data_contents,
    portable,
    pretrain_fingerprint,
    recorded_contents,
)
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
    reader: str | None = None  # --reader: --data's reader; None: detected
    transfer_test: dict[str, dict] = field(default_factory=dict)  # --transfer-test: {name: {"path", "reader"}}

    def context(self) -> dict:
        """What makes two benches comparable; the leaderboard shows one setup at a time (``setup_identity``).
        ``data_content`` records the data folders' contents: the setup is the same wherever they lie."""
        paths = {"data": self.data, "test_data": self.test_data, "unlabeled": self.unlabeled}
        # absent when not given: earlier rows stay comparable
        extra = {**({"head": self.head} if self.head else {}), **({"reader": self.reader} if self.reader else {}),
                 **({"transfer_test": self.transfer_test} if self.transfer_test else {})}
        return {"preset": self.preset, "backbone": self.backbone, **paths,
                "data_content": data_contents({**paths, **extra}), "folds": self.suite.folds,
                "overrides": sorted(o for o in self.overrides if o.partition(".")[0] not in EXECUTION_KEYS),
                **extra}


def setup_identity(context: dict) -> dict:
    """A stored row's bench setup with its data folders' contents in place of their paths."""
    bare = {k: v for k, v in context.items() if k != "data_content"}
    return portable(bare, recorded_contents(bare, context.get("data_content")))


def strategy_overrides(strategy: str, overrides: list[str]) -> list[str]:
    """``pretext.X=V`` (or ``pretext.X.Y=V``) reaches only the strategies whose pretext takes X
    (``pretext.weights`` is the ImageNet file, meaningless to the others); every other override
    reaches every job."""
    accepted = inspect.signature(PRETEXTS.get(component_config("pretext", strategy)["type"]).__init__).parameters
    return [o for o in overrides if not o.startswith("pretext.") or o.partition("=")[0].split(".")[1] in accepted]


def job_config(opts: BenchOptions, job: Job) -> Config:
    return resolve_run_config(job.strategy, preset=opts.preset, backbone=opts.backbone, head=opts.head, seed=job.seed,
                              device=opts.device, data=opts.data, test_data=opts.test_data,
                              unlabeled=opts.unlabeled, allow_synthetic=opts.allow_synthetic, reader=opts.reader,
                              transfer_test=opts.transfer_test,
                              overrides=[*strategy_overrides(job.strategy, opts.overrides),
                                         f"split.label_fraction={job.fraction}", *protocol_override(job)])


def protocol_override(job: Job) -> list[str]:
    return [] if job.protocol is None else [f"finetune.freeze_encoder={job.protocol == 'frozen'}"]


def encoder_fingerprint(cfg: Config, opts: BenchOptions, job: Job) -> dict:
    """What ``job``'s encoder is pretrained with (its fold included under cross-validation)."""
    return pretrain_fingerprint(cfg, job.fold, opts.suite.folds)


def job_key(config: dict, fold: int | None, folds: int, contents: dict[str, str]) -> str:
    """The hash of a job's config and fold, its data folders' ``contents`` in place of their paths.
    Device and engine settings are left out: where and how fast a job ran does not change what it is."""
    content = {k: v for k, v in config.items() if k not in EXECUTION_KEYS}
    content.update(fold=fold, folds=folds)
    return content_hash(portable(content, contents))


def job_keys(cfg: Config, opts: BenchOptions, job: Job) -> tuple[str, str]:
    """(job key, pretraining key). The pretraining key is the identity of the job's encoder, which
    leaves out everything only finetuning reads."""
    config = cfg.to_dict()
    return (job_key(config, job.fold, opts.suite.folds, data_contents(config)),
            encoder_identity(encoder_fingerprint(cfg, opts, job)))


def stored_key(row: dict) -> str:
    """A stored row's job key as ``job_key`` makes it now. Rows written before keys followed the data's
    content are keyed by its path: theirs is recomputed where their data folders are here."""
    contents = recorded_contents(row["config"], row["context"].get("data_content"))
    return job_key(row["config"], row["fold"], row["context"]["folds"], contents)


def done_keys(rows: list[dict]) -> set[str]:
    """The keys of the finished jobs in ``rows`` (store rows), under which they are found again."""
    return {row["key"] for row in rows} | {stored_key(row) for row in rows}


def check_strategies(opts: BenchOptions) -> None:
    """Fail before any work for a strategy that cannot run (so no row silently goes missing)."""
    if opts.suite.protocols and any(o.startswith("finetune.freeze_encoder=") for o in opts.overrides):
        raise ConfigError(f"--set finetune.freeze_encoder: suite {opts.suite.name} runs each job under each of its "
                          f"protocols ({', '.join(opts.suite.protocols)}); drop the --set.")
    if any(o.startswith("validate_only=") for o in opts.overrides):
        raise ConfigError("--set validate_only: a bench row is its test scores; to choose a recipe on validation "
                          "images only, use `sslbench run --validate-only`.")
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


PRETRAINING_FOLDER = "pretrain-"  # + the pretraining key; a job's finetuning folder is its job key
TRAINING_LOCK = "training.lock"  # in a checkpoints subfolder: held while a process trains that phase


def pretraining_checkpoints(out: Path, planned: PlannedJob) -> Checkpoints:
    return bench_checkpoints(out).subfolder(f"{PRETRAINING_FOLDER}{planned.pretrain_key}")


def finetuning_checkpoints(out: Path, planned: PlannedJob) -> Checkpoints:
    return bench_checkpoints(out).subfolder(planned.key)


@contextlib.contextmanager
def training(checkpoints: Checkpoints):
    """Held while this process trains into ``checkpoints``: ``sslbench status`` tells a running job from a
    paused one by its lock. Only a torchrun's main process takes it; where the file system has no locks or
    another process holds it (a job submitted twice), training goes on unmarked rather than not at all."""
    lock = FileLock(checkpoints.folder / TRAINING_LOCK) if distributed.is_main() else None
    try:
        if lock is not None:
            checkpoints.folder.mkdir(parents=True, exist_ok=True)
            lock.acquire(timeout=5)  # `sslbench status` holds it for an instant to see whether it is free
    except (Timeout, OSError, NotImplementedError):
        lock = None
    try:
        yield
    finally:
        if lock is not None:
            lock.release()


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


def suite_jobs(opts: BenchOptions) -> list[tuple[Job, Config, str, str]]:
    """Every job of the suite with its config, job key and pretraining key."""
    jobs = []
    for job in opts.suite.jobs(range(opts.seeds)):
        cfg = job_config(opts, job)
        jobs.append((job, cfg, *job_keys(cfg, opts, job)))
    return jobs


def plan_jobs(opts: BenchOptions, done: set[str]) -> tuple[list[PlannedJob], list[Config]]:
    """The suite's jobs not in ``done`` (all with --force), grouped by pretraining, with their configs."""
    jobs = suite_jobs(opts)
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


def job_states(opts: BenchOptions, done: set[str]) -> list[dict]:
    """Every job of the suite and what a bench would do with it (``bench --dry-run``): ``done`` (a row
    in the store: skipped), ``checkpointed`` (it resumes saved work: its finetuning checkpoint, or its
    encoder's pretraining checkpoint or finished encoder) or ``pending`` (from the start; every job
    with --force)."""
    return [{"key": key, "strategy": job.strategy, "fraction": job.fraction, "protocol": protocol_of(cfg),
             "seed": job.seed, "fold": job.fold,
             "state": "pending" if opts.force else _state(opts.out, PlannedJob(job, key, pretrain_key, False), done)}
            for job, cfg, key, pretrain_key in suite_jobs(opts)]


def _state(out: Path, planned: PlannedJob, done: set[str]) -> str:
    if planned.key in done:
        return "done"
    saved = (finetuning_checkpoints(out, planned).path("finetune"),
             pretraining_checkpoints(out, planned).path("pretrain"))
    if any(path.is_file() for path in saved) or job_encoder(out, planned.job).reusable(planned.pretrain_key):
        return "checkpointed"
    return "pending"


BenchData = tuple[list[Sample], list[Sample] | None, dict[str, list[Sample]]]


def bench_data(cfg: Config) -> BenchData:
    """A bench's images, its --test-data images and its --transfer-test sets, read once for every job."""
    samples, test = load_data(cfg)
    return samples, test, load_transfer(cfg, samples)


def job_split(opts: BenchOptions, cfg: Config, job: Job, data: BenchData) -> DataSplit:
    return split_samples(data[0], cfg.split, cfg.seed, data[1], job.fold, opts.suite.folds, data[2])
