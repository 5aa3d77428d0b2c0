"""What a bench folder holds and what runs over it (``sslbench status``): its finished rows, its unfinished
jobs (a checkpoints subfolder: running while the process training it holds its lock, else paused) and the
tasks ``--launcher local|slurm`` submitted (submitit's folder), read without touching any of them."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from sslbench.bench.launch import pretraining_label
from sslbench.bench.plan import PRETRAINING_FOLDER, TRAINING_LOCK, bench_checkpoints, done_keys
from sslbench.bench.runner import BENCH_LOCK
from sslbench.bench.store import FILENAME as STORE_FILE
from sslbench.bench.store import Store, merge_results
from sslbench.bench.suites import protocol_of
from sslbench.engine.checkpoint import checkpoint_header
from sslbench.errors import DataError, SslbenchError

SUBMITIT_FOLDER = "submitit"  # launch.py's executor folder


def held(lock_file: Path) -> bool:
    """Whether a process holds the lock ``lock_file`` (filelock's flock). Asked by taking a shared lock
    for an instant: filelock can only ask by taking the lock itself, which would create a missing file."""
    import fcntl

    try:
        fd = os.open(lock_file, os.O_RDONLY)
    except OSError:  # no file: nothing ever locked it, or its folder is gone
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:  # a file system without locks: whatever runs there runs unmarked
        return False
    finally:
        os.close(fd)  # releases the shared lock
    return False


def finished_counts(rows: list[dict]) -> list[dict]:
    """The store's rows by (suite, strategy, label fraction, protocol, fold), with their seeds."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for row in rows:
        groups[(row["suite"], row["strategy"], row["fraction"], protocol_of(row["config"]), row["fold"])].append(row["seed"])
    return [{"suite": suite, "strategy": strategy, "fraction": fraction, "protocol": protocol, "fold": fold,
             "seeds": sorted(seeds)}
            for (suite, strategy, fraction, protocol, fold), seeds in sorted(groups.items(), key=lambda g: str(g[0]))]


def _described(phase: str, fingerprint: dict) -> str:
    """The job a checkpoint trains, from the config it records: a finetuning's whole run config, a
    pretraining's encoder fingerprint (its pretext class, seed and fold)."""
    seed, split = fingerprint.get("seed"), fingerprint.get("split", {})
    if phase == "finetune":
        return f"{fingerprint.get('name')} {100 * split.get('label_fraction', 1):g} % seed {seed}"
    fold = split.get("fold")
    return f"pretraining {fingerprint.get('pretext', {}).get('type')}{'' if fold is None else f' fold {fold + 1}'} " \
           f"seed {seed}"


def unfinished_jobs(out: Path, finished: set[str], labels: dict[str, str]) -> list[dict]:
    """Each phase that a killed, stopped or running job left in the bench's checkpoints folder: its key, the
    job, the step it last saved (None: none yet) of how many, and whether it is running or paused.
    ``labels``: job labels by key, where a submitted task names them."""
    folder = bench_checkpoints(out).folder
    jobs = []
    for sub in sorted(folder.iterdir()) if folder.is_dir() else ():
        phase, key = ("pretrain", sub.name[len(PRETRAINING_FOLDER):]) if sub.name.startswith(PRETRAINING_FOLDER) \
            else ("finetune", sub.name)
        running = held(sub / TRAINING_LOCK)
        checkpoint = sub / f"{phase}.safetensors"
        if key in finished or not (running or checkpoint.is_file()):
            continue  # a finished job's or an empty leftover: nothing to resume
        job = {"phase": phase, "key": key, "job": labels.get(key), "step": None, "steps": None, "saved_at": None,
               "state": "running" if running else "paused"}
        if checkpoint.is_file():
            try:
                header = checkpoint_header(checkpoint)
            except SslbenchError as exc:  # a damaged file: the job restarts that phase
                job["problem"] = str(exc)
            else:
                job.update(step=header["step"], steps=header["fingerprint"].get(phase, {}).get("steps"),
                           job=job["job"] or _described(phase, header["fingerprint"]))
            job["saved_at"] = datetime.fromtimestamp(checkpoint.stat().st_mtime, timezone.utc).isoformat(
                timespec="seconds")
        jobs.append(job)
    return jobs


def _process_alive(pid: int) -> bool:
    """Whether local task ``pid`` (its submitit shell) still runs; where /proc tells, a recycled pid of
    another program is not taken for it."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.parent.parent.is_dir():
        try:
            return b"submitit" in cmdline.read_bytes()
        except OSError:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _task_state(folder: Path, job_id: str) -> str:
    """finished or failed (its result file), else for a SLURM task what sacct says, for a local task
    running, or stopped (it ended without a result: killed)."""
    from submitit import SlurmJob
    from submitit.core.utils import JobPaths, pickle_load

    paths = JobPaths(folder, job_id)
    if paths.result_pickle.is_file():
        try:
            return "finished" if pickle_load(paths.result_pickle)[0] == "success" else "failed"
        except Exception:  # noqa: BLE001  (a truncated pickle: the task died writing it)
            return "unknown"
    if paths.submission_file.exists():  # only SLURM tasks have an sbatch file
        try:
            return SlurmJob(folder, job_id).state.lower()
        except Exception:  # noqa: BLE001  (no sacct here, or it failed: say so rather than guess)
            return "unknown"
    return "running" if job_id.isdigit() and _process_alive(int(job_id)) else "stopped"


def launched_tasks(out: Path, warn: Callable[[str], None]) -> list[dict]:
    """The tasks in the bench's submitit folder: id, kind, the job (and key) each runs, and its state."""
    from submitit.core.utils import DelayedSubmission

    folder = out / SUBMITIT_FOLDER
    tasks = []
    for submitted in sorted(folder.glob("*_submitted.pkl")) if folder.is_dir() else ():
        job_id = submitted.name.removesuffix("_submitted.pkl")
        try:
            task, _, planned = DelayedSubmission.load(submitted).args
        except Exception as exc:  # noqa: BLE001  (another sslbench version's or a damaged pickle)
            warn(f"{submitted}: unreadable task ({type(exc).__name__}); left out.")
            continue
        pretraining = task.__name__ == "pretrain_task"
        tasks.append({"id": job_id, "task": "pretrain" if pretraining else "finetune",
                      "job": pretraining_label(planned) if pretraining else planned.job.label,
                      "key": planned.pretrain_key if pretraining else planned.key,
                      "state": _task_state(folder, job_id)})
    return tasks


def bench_status(out: Path, warn: Callable[[str], None]) -> dict:
    """Everything ``sslbench status`` reports on bench folder ``out``, as JSON-ready values."""
    if not out.is_dir():
        raise DataError(f"{out}: no such folder; pass a bench folder (the --out of sslbench bench).")
    merge_results(out, warn)  # what launched tasks finished
    rows = Store(out).rows() if (out / STORE_FILE).is_file() else []
    tasks = launched_tasks(out, warn)
    labels = {task["key"]: task["job"] for task in tasks}
    return {"folder": str(out), "bench_running": held(out / BENCH_LOCK), "rows": len(rows),
            "finished": finished_counts(rows), "unfinished": unfinished_jobs(out, done_keys(rows), labels),
            "tasks": tasks}
