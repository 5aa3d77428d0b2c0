"""``run_suite``: every job of a suite not yet in the store, in this process or as launched tasks.

Finished jobs are rows in the results store and are skipped when the same command runs again; a
killed job leaves no row, and its training resumes from ``out/checkpoints`` on the next run.
"""

from __future__ import annotations

import contextlib
import errno
import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock, Timeout
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from sslbench.bench.launch import LaunchOptions, local_task_threads, submit
from sslbench.bench.plan import (
    BenchOptions,
    bench_checkpoints,
    bench_data,
    check_strategies,
    done_keys,
    forget_earlier_work,
    job_split,
    job_states,
    plan_jobs,
    setup_identity,
)
from sslbench.bench.store import FILENAME as STORE_FILE
from sslbench.bench.store import Store, merge_results
from sslbench.bench.tasks import finetune_job, pretrained_encoder
from sslbench.engine import distributed
from sslbench.engine.accel import arithmetic, describe_arithmetic
from sslbench.errors import ConfigError
from sslbench.pipeline.data import check_inputs
from sslbench.pipeline.phases import acceleration, resolve_device

log = logging.getLogger("sslbench")


def run_suite(opts: BenchOptions, console: Console | None = None, launch: LaunchOptions | None = None,
              warn: Callable[[str], None] = log.warning) -> dict:
    """Run every job of the suite not yet in the store; returns counts of jobs run and skipped.

    In-process by default; ``launch`` submits the jobs as submitit tasks instead. Results that
    earlier tasks left are merged first (``warn`` gets one line per unreadable file)."""
    check_options(opts)
    if distributed.launched() and launch is not None and launch.launcher != "none":
        raise ConfigError("--launcher starts its own processes; run it without torchrun.")
    with only_bench_over(opts.out, warn) if distributed.is_main() else contextlib.nullcontext():
        return _run_jobs(opts, console, launch, warn)


BENCH_LOCK = "bench.lock"  # in the bench folder: held while a bench runs over it
# flock refused by the file system itself (NFS without a lock daemon, some FUSE mounts), not by a holder
_NO_LOCKS = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP}


def check_options(opts: BenchOptions) -> None:
    """What bench refuses before any work."""
    if opts.suite.folds and opts.test_data:
        raise ConfigError(f"suite {opts.suite.name} cross-validates (its folds are the test sets); drop --test-data.")
    if opts.suite.transfer and not opts.transfer_test:
        raise ConfigError(f"suite {opts.suite.name} scores other sources' test sets: pass --transfer-test "
                          "NAME=PATH[,reader=READER] (e.g. --transfer-test tnbc=data/tnbc,reader=tnbc).")
    if opts.transfer_test and not opts.suite.transfer:
        raise ConfigError(f"--transfer-test applies to transfer suites (transfer), not {opts.suite.name}; "
                          "run --suite transfer or drop --transfer-test.")
    check_strategies(opts)


def suite_plan(opts: BenchOptions, warn: Callable[[str], None] = log.warning) -> list[dict]:
    """``bench --dry-run``: the suite's jobs and their states (``plan.job_states``) after bench's checks;
    nothing is trained, and a store is made only to merge the rows launched tasks left."""
    check_options(opts)
    merge_results(opts.out, warn)
    rows = Store(opts.out).rows() if (opts.out / STORE_FILE).is_file() else []
    return job_states(opts, done_keys(rows))


def only_bench_over(out: Path, warn: Callable[[str], None]):
    """Held while bench runs: a second bench over the same --out would run the same unfinished jobs
    side by side, writing the same checkpoints. Where the file system has no locks, bench runs
    unguarded and says so."""
    out.mkdir(parents=True, exist_ok=True)
    lock = FileLock(out / BENCH_LOCK)
    try:
        return lock.acquire(timeout=0)
    except Timeout:
        raise ConfigError(f"{out}: another `sslbench bench` is running over this folder; let it finish (or stop "
                          "it) and run this command again, or give another --out.") from None
    except (NotImplementedError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno not in _NO_LOCKS:
            raise
        warn(f"{out}: this file system has no file locks, so bench runs UNLOCKED: start no second bench over "
             "this folder until this one ends (or give --out a local disk).")
        return contextlib.nullcontext()


def _run_jobs(opts: BenchOptions, console: Console | None, launch: LaunchOptions | None,
              warn: Callable[[str], None]) -> dict:
    if distributed.is_main():
        Store(opts.out)
        merge_results(opts.out, warn)
    if distributed.launched():
        resolve_device(opts.device)  # joins the process group: every process must plan the same jobs
        distributed.barrier()
    store = Store(opts.out)
    plan, configs = plan_jobs(opts, done_keys(store.rows()))
    if opts.force:
        forget_earlier_work(opts.out, plan)  # the main process deletes; the others wait for it
        distributed.barrier()
    skipped = len(opts.suite.jobs(range(opts.seeds))) - len(plan)
    if not plan:
        return {"ran": 0, "skipped": skipped}
    data = bench_data(configs[0])
    splits = [job_split(opts, cfg, p.job, data) for p, cfg in zip(plan, configs)]
    for cfg, split in zip(configs, splits):
        check_inputs(cfg, split)  # fail now, not after hours of pretraining
    launched = launch is not None and launch.launcher != "none"
    if not launched or launch.launcher == "local":  # SLURM's nodes are not this machine
        device = resolve_device(opts.device)
        threads = local_task_threads(opts.device, launch) if launched else None
        if distributed.is_main():
            warn_other_arithmetic(opts, store.rows(), arithmetic(acceleration(configs[0], device), device, threads),
                                  warn)
    if launched:
        return {"skipped": skipped, **submit(opts, plan, launch, console, warn)}
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("jobs"),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    encoders: dict[str, tuple[dict, float | None]] = {}
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(f"{opts.suite.name} ({skipped} already done)", total=len(plan))
        for planned, cfg, split in zip(plan, configs, splits):
            progress.update(task, description=f"{opts.suite.name}: {planned.job.label}")
            if planned.pretrain_key not in encoders:  # one pretraining per (strategy, seed, fold)
                encoders = {planned.pretrain_key: pretrained_encoder(opts, planned, cfg, split, device)}
            state, pretrain_seconds = encoders[planned.pretrain_key]
            row = finetune_job(opts, planned, cfg, split, state, pretrain_seconds, device)
            if distributed.is_main():
                store.add(row)
            encoders[planned.pretrain_key] = (state, None)  # later jobs reuse it: their pretraining cost is nil
            progress.advance(task)
        progress.update(task, description=f"{opts.suite.name}: finished")
    bench_checkpoints(opts.out).remove_if_empty()  # each job removed its own subfolder
    return {"ran": len(plan), "skipped": skipped}


def warn_other_arithmetic(opts: BenchOptions, rows: list[dict], here: dict, warn: Callable[[str], None]) -> None:
    """One line when this suite's finished rows (same bench setup) were computed with another arithmetic
    than this process's: resuming on another machine would otherwise mix them in one table unnoticed."""
    setup = setup_identity(opts.context())
    others = Counter(describe_arithmetic(r["arithmetic"]) for r in rows
                     if r["strategy"] in opts.suite.strategies and setup_identity(r["context"]) == setup
                     and r["arithmetic"] and r["arithmetic"] != here)
    if others:
        listed = "; ".join(f"{count} with {kind}" for kind, count in others.items())
        warn(f"{opts.out}: finished rows of this suite were computed otherwise ({listed}); this process computes "
             f"{describe_arithmetic(here)}. The table will mix them, and the same job lands AJI points apart under "
             "another arithmetic (docs/reliability.md#seeding): rerun them here with --force, or compare rows "
             "computed alike.")
