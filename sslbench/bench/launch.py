"""Running a suite's jobs as submitit tasks: ``--launcher slurm`` (SLURM job arrays) or ``--launcher
local`` (the same tasks as processes on this machine; what the tests run).

One task per (strategy, seed, fold) pretrains its encoder; one task per job finetunes from it and
writes its row as ``out/results/<key>.json``, which the store merges (tasks never share the
database). On SLURM the pretraining tasks are one array and each group's finetuning tasks another,
held by ``--dependency=afterok:<its pretraining task>``; bench returns once they are queued. The
local executor knows no dependencies or limits, so bench schedules the tasks itself: at most
``--local-parallel`` at a time (default: one per visible GPU, each task on its own GPU), a group's
finetuning tasks once its pretraining task has succeeded; it waits for all of them and merges.
Submission files, pickled tasks and logs live in ``out/submitit``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sslbench.bench.plan import BenchOptions, PlannedJob, bench_checkpoints
from sslbench.bench.store import merge_results
from sslbench.bench.tasks import finetune_task, pretrain_task
from sslbench.errors import ConfigError, SslbenchError

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
    local_parallel: int | None = None  # local tasks at a time; None: one per GPU of visible_gpus, or 1


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


def visible_gpus(device: str, environ: dict[str, str], count: int) -> list[str]:
    """The GPUs local tasks are spread over, as CUDA_VISIBLE_DEVICES names them: the ``count``
    (``torch.cuda.device_count()``) this process sees, for --device auto or cuda; none for cpu or
    one named GPU (cuda:1), where every task keeps the device it was given."""
    if device not in ("auto", "cuda") or count < 1:
        return []
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return [str(index) for index in range(count)]
    return [gpu.strip() for gpu in visible.split(",")][:count]  # CUDA stops at the first invalid entry


def free_gpu(gpus: list[str], busy: list[str]) -> str | None:
    """The GPU for the next local task: the first of ``gpus`` that the running tasks (``busy``: the
    GPU of each) use least, so with no more tasks than GPUs each has its own; None without GPUs."""
    return min(gpus, key=busy.count) if gpus else None


def local_parameters(environ: dict[str, str], gpu: str | None = None, threads: int | None = None) -> dict:
    """AutoExecutor parameters for a local task: it sees ``gpu`` only, or without one the GPUs this
    process sees (the local executor would set CUDA_VISIBLE_DEVICES from gpus_per_node, hiding
    every GPU by default); and ``threads`` CPU threads unless the user set OMP_NUM_THREADS."""
    visible = environ.get("CUDA_VISIBLE_DEVICES") if gpu is None else gpu
    keep = "unset CUDA_VISIBLE_DEVICES" if visible is None else f"export CUDA_VISIBLE_DEVICES={shlex.quote(visible)}"
    setup = [keep]
    if threads is not None and "OMP_NUM_THREADS" not in environ:
        setup.append(f"export OMP_NUM_THREADS={threads}")
    return {"timeout_min": LOCAL_TIMEOUT_MIN, "local_setup": setup}


def threads_per_task(parallel: int) -> int:
    """This machine's cores shared among ``parallel`` CPU tasks. Each would otherwise start a thread per
    core: N tasks would oversubscribe the cores N times, and a row's thread count, which changes its
    numbers (docs/results.md), would follow the machine's core count instead of the bench command."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // parallel)


def local_slots(device: str, launch: LaunchOptions) -> tuple[list[str], int, int | None]:
    """(the GPUs local tasks share, how many run at a time, the CPU threads each is given: None on GPUs)."""
    import torch

    gpus = visible_gpus(device, dict(os.environ), torch.cuda.device_count())
    parallel = launch.local_parallel or max(len(gpus), 1)
    return gpus, parallel, None if gpus else threads_per_task(parallel)


def local_task_threads(device: str, launch: LaunchOptions) -> int:
    """The thread count each local task computes with: OMP_NUM_THREADS where the user set it, else its
    share of the cores (this process's count on GPUs, where tasks are given none)."""
    import torch

    threads = local_slots(device, launch)[2]
    return torch.get_num_threads() if threads is None or "OMP_NUM_THREADS" in os.environ else threads


def run_task(task: Callable[[BenchOptions, PlannedJob], str], opts: BenchOptions, planned: PlannedJob) -> str:
    """What a submitted task runs: register the components the bench command had (plugins
    included), log to the task's log file, then do the work."""
    from sslbench.engine.loop import LOG_FORMAT
    from sslbench.registry import load_plugins

    load_plugins(opts.plugins)

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))  # timestamps: step times are read from these logs
    logger = logging.getLogger("sslbench")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    logger.info("%s: %s (job key %s) in %s", task.__name__, planned.job.label, planned.key, opts.out)
    return task(opts, planned)


def check_launcher(launch: LaunchOptions) -> None:
    """Fail before any work where the launcher cannot submit."""
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
    gpus, parallel, threads = local_slots(opts.device, launch)
    if console is not None:  # the tasks' step logs go there, not to log.txt
        console.print(f"Running {len(plan) + len(groups)} local tasks, {parallel} at a time; each task's log: "
                      f"{opts.out / 'submitit'}/<task id>_0_log.out", highlight=False, soft_wrap=True)
    failures = _wait_locally(executor, opts, groups, parallel, gpus, threads, console)
    merge_results(opts.out, warn)
    if failures:
        (label, key, job), count = failures[0], len(failures)
        raise TaskError(f"{count} of {len(plan) + len(groups)} tasks failed; first: {label} (job key {key}): "
                        f"{_reason(job)}. Log: {job.paths.stderr}. Finished jobs are in the store; fix the "
                        "cause and re-run the same command to run the rest.")
    bench_checkpoints(opts.out).remove_if_empty()  # each task removed its own subfolder
    return {"ran": len(plan)}


def _wait_locally(executor, opts: BenchOptions, groups: list[list[PlannedJob]], parallel: int, gpus: list[str],
                  threads: int | None, console: Console | None) -> list[tuple[str, str, object]]:
    """Run each group's pretraining task, then (if it succeeded) its finetuning tasks, at most
    ``parallel`` tasks at a time, each on the GPU of ``gpus`` that the running tasks use least; wait
    for all of them and return the failed ones. A finished pretraining's finetuning tasks go before
    the pretraining tasks still waiting, so rows come in group by group."""
    failures, running = [], {}  # running: submitit job -> (task, planned, its GPU)
    ready = [(pretrain_task, group[0]) for group in groups]
    group_of = {group[0].pretrain_key: group for group in groups}
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("tasks"),
               TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task(f"{opts.suite.name}: local tasks",
                                total=len(groups) + sum(len(group) for group in groups))
        try:
            while ready or running:
                while ready and len(running) < parallel:
                    task, planned = ready.pop(0)
                    gpu = free_gpu(gpus, [gpu for _, _, gpu in running.values()])
                    executor.update_parameters(**local_parameters(dict(os.environ), gpu, threads))
                    running[_submit_array(executor, task, opts, [planned])[0]] = (task, planned, gpu)
                finished = [job for job in running if job.done()]
                if not finished:
                    time.sleep(POLL_SECONDS)
                for job in finished:
                    task, planned, _ = running.pop(job)
                    progress.advance(bar)
                    group = group_of[planned.pretrain_key]
                    if task is finetune_task:
                        if job.exception() is not None:
                            failures.append((planned.job.label, planned.key, job))
                    elif job.exception() is None:
                        ready[:0] = [(finetune_task, p) for p in group]
                    else:  # its finetuning tasks never run
                        failures.append((pretraining_label(planned), planned.pretrain_key, job))
                        progress.advance(bar, len(group))
        except BaseException:  # Ctrl-C or SIGTERM: stop the tasks too (local tasks outlive this process otherwise)
            for job in running:
                stop_local_task(job)
            raise
    return failures


def stop_local_task(job) -> None:
    """SIGINT to the task's submitit controller, which then stops the task. submitit's own cancel
    signals only the shell that runs our setup lines (the job id is its pid), and that shell just
    waits for the controller; a Ctrl-C in a terminal reaches them all, a SIGTERM to bench does not."""
    shell = job.job_id
    children = Path(f"/proc/{shell}/task/{shell}/children")  # Linux; elsewhere only the shell is signalled
    for pid in children.read_text().split() if children.exists() else ():
        with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
            os.kill(int(pid), signal.SIGINT)
    job.cancel(check=False)


def pretraining_label(planned: PlannedJob) -> str:
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
