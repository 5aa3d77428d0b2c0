"""Benchmark suites: a grid of strategies × label fractions (× folds) × seeds, each cell a job. A transfer
suite's jobs also score other sources' test sets (bench ``--transfer-test``): its columns are test sets.

A suite is a config file under ``registry/suite/``; ``plan.py`` turns its jobs into configs and keys,
``runner.py`` runs them (in this process, or as launched tasks: ``launch.py``, ``tasks.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from sslbench.config import backbone_refusal, load_component, parse_overrides
from sslbench.errors import ConfigError


PROTOCOLS = ("finetune", "frozen")  # encoder trained with the decoder, or frozen (decoder only)


def protocol_of(config: dict) -> str:
    """A job's protocol, read from its resolved config (rows stored before the axis existed included)."""
    return "frozen" if config.get("finetune", {}).get("freeze_encoder") else "finetune"


def setup_protocol(context: dict) -> str:
    """The protocol a bench setup's own ``--set`` gives every job of a suite without a protocol axis: a
    store shared with the encoders suite also holds frozen rows of the same setup, which are not its."""
    return "frozen" if parse_overrides(context.get("overrides") or []).get("finetune.freeze_encoder") else "finetune"


@dataclass(frozen=True)
class Job:
    strategy: str
    fraction: float
    fold: int | None
    seed: int
    protocol: str | None = None  # None: as the preset and --set say (a suite without a protocol axis)

    @property
    def label(self) -> str:
        fold = "" if self.fold is None else f" fold {self.fold + 1}"
        protocol = "" if self.protocol is None else f" {self.protocol}"
        return f"{self.strategy} {round(100 * self.fraction)} %{protocol}{fold} seed {self.seed}"


IN_DOMAIN = "in-domain"  # a transfer suite's column of the training data's own test set


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
    equivalence_margin: float | None = None  # points; named before the runs, the only ground for "equivalent"
    transfer: bool = False  # every job also scores the --transfer-test sets
    test_sets: tuple[str, ...] = ()  # a transfer suite's --transfer-test names, as its stored rows have them
    # () : no protocol axis, every job as configured; else each job runs under each protocol (PROTOCOLS)
    protocols: tuple[str, ...] = ()
    resources: bool = False  # the leaderboard adds time per step and peak memory columns
    left_out: tuple[str, ...] = ()  # strategies whose pretext cannot pretrain the backbone (fitted_to_backbone)

    @property
    def column_keys(self) -> list[tuple[float, str | None]]:
        """(label fraction, protocol) of each column of a suite without folds."""
        return [(f, p) for f in self.fractions for p in (self.protocols or [None])]

    @property
    def columns(self) -> list[str]:
        if self.transfer:
            return [IN_DOMAIN, *self.test_sets]
        if self.folds:
            return [f"Fold {i + 1}" for i in range(self.folds)] + ["Average"]
        return [f"{round(100 * f)} %" + ("" if p is None else f" {p}") for f, p in self.column_keys]

    def in_column(self, row: dict, column: int) -> bool:
        """Whether a stored row belongs to column ``column`` (a suite without folds)."""
        fraction, protocol = self.column_keys[column]
        return row["fraction"] == fraction and protocol in (None, protocol_of(row["config"]))

    def jobs(self, seeds: Iterable[int]) -> list[Job]:
        """Grouped by (seed, fold, strategy) so one pretraining serves consecutive jobs (a protocol axis
        shares the encoder too)."""
        folds = range(self.folds) if self.folds else [None]
        return [Job(s, f, fold, seed, p) for seed in seeds for fold in folds for s in self.strategies
                for f in self.fractions for p in (self.protocols or [None])]


def load_suite(name: str, folds: int | None = None, skip: Iterable[str] = (),
               fractions: Iterable[float] = ()) -> Suite:
    """The suite ``name``, less the strategies in ``skip``; only ``fractions`` of its label fractions when
    given (to run a table's columns in an order of one's choosing; the leaderboard reads them all)."""
    cfg = load_component("suite", name)
    skip, fractions = list(skip), list(fractions)
    extra = [f for f in fractions if f not in cfg.get("fractions", [1.0])]
    if extra:
        raise ConfigError(f"--fraction {extra[0]:g}: not a label fraction of suite {name} "
                          f"({', '.join(f'{f:g}' for f in cfg.get('fractions', [1.0]))}).")
    unknown = [s for s in skip if s not in cfg.strategies]
    if unknown:
        raise ConfigError(f"--skip {unknown[0]}: not in suite {name} ({', '.join(cfg.strategies)}).")
    if set(cfg.strategies) <= set(skip):
        raise ConfigError(f"--skip leaves nothing of suite {name} to run; skip fewer of {', '.join(cfg.strategies)}.")
    if folds is not None and not cfg.get("folds"):
        raise ConfigError(f"--folds applies to cross-validation suites (table4), not {name}.")
    k = cfg.get("folds", 0) if folds is None else folds
    if cfg.get("folds") and k < 2:
        raise ConfigError(f"--folds must be >= 2, got {k}.")
    if cfg.get("transfer") and (cfg.get("folds") or cfg.get("protocols") or list(cfg.get("fractions", [1.0])) != [1.0]):
        raise ConfigError(f"suite {name}: a transfer suite has one label fraction (1.0), no folds and no protocols: "
                          "its columns are test sets.")
    protocols = tuple(cfg.get("protocols", ()))
    if any(p not in PROTOCOLS for p in protocols):
        raise ConfigError(f"suite {name}: protocols must be among {', '.join(PROTOCOLS)}, got {', '.join(protocols)}.")
    tables = cfg.get("paper", [])
    paper = {t["metric"]: {s: list(v) if isinstance(v, (list, tuple)) else [v] for s, v in t["values"].items()}
             for t in (tables if isinstance(tables, list) else [tables])}
    return Suite(name, cfg.get("description", ""), tuple(s for s in cfg.strategies if s not in skip),
                 tuple(f for f in cfg.get("fractions", [1.0]) if not fractions or f in fractions),
                 tuple(cfg.get("metrics", ["aji"])), k, paper,
                 dict(cfg.get("references", {})), cfg.get("equivalence_margin"), bool(cfg.get("transfer")),
                 protocols=protocols, resources=bool(cfg.get("resources", False)))


def fitted_to_backbone(suite: Suite, backbone: str, warn: Callable[[str], None]) -> Suite:
    """``suite`` less the strategies whose pretext cannot pretrain ``backbone`` (MAE on a CNN, ColorMe on a
    ViT), each named in one warning: a suite runs once per backbone family, and such a row belongs to the
    other family's run."""
    refusals = {strategy: backbone_refusal(strategy, backbone) for strategy in suite.strategies}
    if suite.strategies and all(refusals.values()):
        raise ConfigError(f"suite {suite.name}: nothing to run on backbone {backbone}: no pretext of "
                          f"{', '.join(suite.strategies)} can pretrain it ({next(iter(refusals.values()))}).")
    for strategy, refusal in refusals.items():
        if refusal:
            warn(f"suite {suite.name}: {strategy} left out: {refusal}.")
    return replace(suite, strategies=tuple(s for s in suite.strategies if not refusals[s]),
                   left_out=(*suite.left_out, *(s for s in suite.strategies if refusals[s])))
