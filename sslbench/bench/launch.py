"""Running a suite's jobs as submitit tasks: ``--launcher slurm`` (SLURM job arrays) or ``--launcher
local`` (the same tasks as processes on this machine; what the tests run).

One task per (strategy, seed, fold) pretrains its encoder; one task per job finetunes from it and
writes its row as ``out/results/<key>.json``, which the store merges (tasks never share the
database). On SLURM the pretraining tasks are one array and each group's finetuning tasks another,
held by ``--dependency=afterok:<its pretraining task>``; bench returns once they are queued. The
local executor knows no dependencies, so bench submits a group's finetuning tasks when its
pretraining task has finished, waits for all of them and merges. Submission files, pickled tasks
and logs live in ``out/submitit``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shlex
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sslbench.bench.store import merge_results
from sslbench.bench.suites import BenchOptions, PlannedJob, finetune_task, pretrain_task
from sslbench.errors import ConfigError, SslbenchError

LAUNCHERS = ("none", "local", "slurm")
LOCAL_TIMEOUT_MIN = 60 * 24 * 365  # the local executor kills a task after 2 minutes unless told otherwise
POLL_SECONDS = 1.0


class TaskError(SslbenchError):
    """A launched task failed; finished tasks' results are in the store."""


@dataclass(frozen=True)
class LaunchOptions:
    launcher: str = "none"  # none (in this process), local or slurm
    slurm_partition: str | None = None
    slurm_time: int = 24 * 60  # minutes per task
    slurm_gpus: int = 1  # per task
    slurm_cpus: int | None = None  # per task
    slurm_args: dict[str, str] = field(default_factory=dict)  # any other sbatch option


def slurm_args(pairs: list[str]) -> dict[str, str]:
    """``--slurm-arg KEY=VALUE`` options as sbatch options (``mem=64G`` -> ``#SBATCH --mem=64G``)."""
    parsed = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--slurm-arg {pair}: expected KEY=VALUE, an sbatch option such as mem=64G.")
        parsed[key.strip().lstrip("-")] = value
    return parsed


def slurm_parameters(options: LaunchOptions, name: str, after: str | None = None) -> dict:
    """AutoExecutor parameters for one SLURM array; ``after``: the job id whose success it waits for."""
    extra = dict(options.slurm_args)
    if after is not None:  # and if that task fails, SLURM drops this array instead of keeping it pending
        extra.update({"dependency": f"afterok:{after}", "kill-on-invalid-dep": "yes"})
    parameters = {"name": name, "timeout_min": options.slurm_time, "gpus_per_node": options.slurm_gpus or None,
                  "cpus_per_task": options.slurm_cpus, "slurm_partition": options.slurm_partition,
                  "slurm_additional_parameters": extra}
    return {k: v for k, v in parameters.items() if v is not None}


def local_parameters(environ: dict[str, str]) -> dict:
    """AutoExecutor parameters for local tasks: they see the GPUs this process sees (the local
    executor would set CUDA_VISIBLE_DEVICES from gpus_per_node, hiding every GPU by default)."""
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    keep = "unset CUDA_VISIBLE_DEVICES" if visible is None else f"export CUDA_VISIBLE_DEVICES={shlex.quote(visible)}"
    return {"timeout_min": LOCAL_TIMEOUT_MIN, "local_setup": [keep]}


def run_task(task: Callable[[BenchOptions, PlannedJob], str], opts: BenchOptions, planned: PlannedJob) -> str:
    """What a submitted task runs: register the components the bench command had (plugins
    included), log to the task's log file, then do the work."""
    from sslbench.registry import load_builtins, load_entry_point_plugins, load_plugin

    load_builtins()
    load_entry_point_plugins()
    for spec in opts.plugins:
        load_plugin(spec)
    logger = logging.getLogger("sslbench")
    logger.setLevel(logging.INFO)
    logger.addHandler(logging.StreamHandler(sys.stdout))
    logger.info("%s: %s (job key %s) in %s", task.__name__, planned.job.label, planned.key, opts.out)
    return task(opts, planned)


def check_launcher(launch: LaunchOptions) -> None:
    """Fail before any work where the launcher cannot submit."""
    if launch.launcher not in LAUNCHERS:
        raise ConfigError(f"--launcher must be one of {', '.join(LAUNCHERS)}, got '{launch.launcher}'.")
    if launch.launcher == "slurm" and shutil.which("sbatch") is None:
        raise ConfigError("--launcher slurm: no sbatch on this machine; run bench on a SLURM login node, "
                          "or use --launcher local.")


def _executor(opts: BenchOptions, launch: LaunchOptions):
    import submitit

    check_launcher(launch)
    try:
        return submitit.AutoExecutor(folder=opts.out / "submitit", cluster=launch.launcher)
    except RuntimeError as exc:  # e.g. sbatch without srun
        raise ConfigError(f"--launcher {launch.launcher}: {exc}") from None


def _groups(plan: list[PlannedJob]) -> list[list[PlannedJob]]:
    """The plan's jobs by pretraining, in plan order."""
    groups: dict[str, list[PlannedJob]] = {}
    for planned in plan:
        groups.setdefault(planned.pretrain_key, []).append(planned)
    return list(groups.values())


def _submit_array(executor, task, opts: BenchOptions, jobs: list[PlannedJob]) -> list:
    try:
        with executor.batch():
            return [executor.submit(run_task, task, opts, planned) for planned in jobs]
    except (OSError, RuntimeError) as exc:  # sbatch refused (partition, time limit, account ...)
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1].strip()
        hint = "check the --slurm-* options" if executor.cluster == "slurm" else "see the files there"
        raise ConfigError(f"submitting tasks to {executor.cluster} failed ({reason}); {hint}. "
                          f"Submission files: {opts.out / 'submitit'}.") from None


def submit(opts: BenchOptions, plan: list[PlannedJob], launch: LaunchOptions, console: Console | None,
           warn: Callable[[str], None]) -> dict:
    """Submit ``plan``; on SLURM return at once with the job ids, locally wait, merge and report
    the first failed task (after merging the others' results)."""
    opts = dataclasses.replace(opts, out=opts.out.resolve())  # tasks may start in another folder
    executor = _executor(opts, launch)
    groups = _groups(plan)
    name = f"sslbench-{opts.suite.name}"
    if launch.launcher == "slurm":
        executor.update_parameters(**slurm_parameters(launch, f"{name}-pretrain"))
        pretrainings = _submit_array(executor, pretrain_task, opts, [group[0] for group in groups])
        finetunings = []
        for pretraining, group in zip(pretrainings, groups):
            executor.update_parameters(**slurm_parameters(launch, f"{name}-finetune", after=pretraining.job_id))
            finetunings += _submit_array(executor, finetune_task, opts, group)
        arrays = dict.fromkeys(job.job_id.partition("_")[0] for job in pretrainings + finetunings)
        return {"ran": 0, "submitted": len(plan), "job_ids": list(arrays)}
    executor.update_parameters(**local_parameters(dict(os.environ)))
    submitted = _submit_array(executor, pretrain_task, opts, [group[0] for group in groups])
    try:
        failures = _wait_locally(executor, opts, groups, submitted, console)
    except BaseException:  # Ctrl-C: stop the tasks too (local tasks outlive this process otherwise)
        for job in submitted:
            job.cancel(check=False)
        raise
    merge_results(opts.out, warn)
    if failures:
        (label, key, job), count = failures[0], len(failures)
        raise TaskError(f"{count} of {len(plan) + len(groups)} tasks failed; first: {label} (job key {key}): "
                        f"{_reason(job)}. Log: {job.paths.stderr}. Finished jobs are in the store; fix the "
                        "cause and re-run the same command to run the rest.")
    shutil.rmtree(opts.out / "checkpoints", ignore_errors=True)
    return {"ran": len(plan)}


def _wait_locally(executor, opts: BenchOptions, groups: list[list[PlannedJob]], submitted: list,
                  console: Console | None) -> list[tuple[str, str, object]]:
    """Wait for the pretraining tasks in ``submitted``, submitting each group's finetuning tasks as
    its pretraining finishes (appended to ``submitted``); returns the failed tasks."""
    import submitit

    failures, finetunings = [], []
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("tasks"),
               TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task(f"{opts.suite.name}: local tasks",
                                total=len(groups) + sum(len(group) for group in groups))
        pretrainings = list(submitted)
        for job in submitit.helpers.as_completed(pretrainings, poll_frequency=POLL_SECONDS):
            group = groups[pretrainings.index(job)]
            progress.advance(bar)
            if job.exception() is not None:
                failures.append((_pretraining_label(group[0]), group[0].pretrain_key, job))
                progress.advance(bar, len(group))
                continue
            jobs = _submit_array(executor, finetune_task, opts, group)
            submitted += jobs
            finetunings += zip(group, jobs)
        for job in submitit.helpers.as_completed([job for _, job in finetunings], poll_frequency=POLL_SECONDS):
            planned = next(p for p, j in finetunings if j is job)
            progress.advance(bar)
            if job.exception() is not None:
                failures.append((planned.job.label, planned.key, job))
    return failures


def _pretraining_label(planned: PlannedJob) -> str:
    fold = "" if planned.job.fold is None else f" fold {planned.job.fold + 1}"
    return f"pretraining {planned.job.strategy}{fold} seed {planned.job.seed}"


def _reason(job) -> str:
    """The last line of a failed task's traceback (its exception), or that it stopped without one."""
    from submitit.core.utils import FailedJobError

    error = job.exception()
    if not isinstance(error, FailedJobError):
        return f"it stopped without a result (state {job.state})"
    trace = str(error).split("-" * 22 + "\n")  # submitit frames the traceback with these lines
    lines = [line.strip() for line in (trace[1] if len(trace) > 2 else str(error)).splitlines() if line.strip()]
    return lines[-1] if lines else "no error message"
