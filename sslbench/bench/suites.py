"""Benchmark suites: a grid of strategies × label fractions (× folds) × seeds, each cell a job. A transfer
suite's jobs also score other sources' test sets (bench ``--transfer-test``): its columns are test sets.

A suite is a config file under ``registry/suite/``; ``plan.py`` turns its jobs into configs and keys,
``runner.py`` runs them (in this process, or as launched tasks: ``launch.py``, ``tasks.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sslbench.config import load_component
from sslbench.errors import ConfigError


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

    @property
    def columns(self) -> list[str]:
        if self.transfer:
            return [IN_DOMAIN, *self.test_sets]
        if self.folds:
            return [f"Fold {i + 1}" for i in range(self.folds)] + ["Average"]
        return [f"{round(100 * f)} %" for f in self.fractions]

    def jobs(self, seeds: Iterable[int]) -> list[Job]:
        """Grouped by (seed, fold, strategy) so one pretraining serves consecutive jobs."""
        folds = range(self.folds) if self.folds else [None]
        return [Job(s, f, fold, seed) for seed in seeds for fold in folds for s in self.strategies
                for f in self.fractions]


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
    if folds is not None and not cfg.get("folds"):
        raise ConfigError(f"--folds applies to cross-validation suites (table4), not {name}.")
    k = cfg.get("folds", 0) if folds is None else folds
    if cfg.get("folds") and k < 2:
        raise ConfigError(f"--folds must be >= 2, got {k}.")
    if cfg.get("transfer") and (cfg.get("folds") or list(cfg.get("fractions", [1.0])) != [1.0]):
        raise ConfigError(f"suite {name}: a transfer suite has one label fraction (1.0) and no folds: its "
                          "columns are test sets.")
    tables = cfg.get("paper", [])
    paper = {t["metric"]: {s: list(v) if isinstance(v, (list, tuple)) else [v] for s, v in t["values"].items()}
             for t in (tables if isinstance(tables, list) else [tables])}
    return Suite(name, cfg.get("description", ""), tuple(s for s in cfg.strategies if s not in skip),
                 tuple(f for f in cfg.get("fractions", [1.0]) if not fractions or f in fractions),
                 tuple(cfg.get("metrics", ["aji"])), k, paper,
                 dict(cfg.get("references", {})), cfg.get("equivalence_margin"), bool(cfg.get("transfer")))
