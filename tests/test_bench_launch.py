"""``sslbench bench --launcher local|slurm``: submitit tasks, result files merged into the store.

The local launcher runs the real tasks at a tiny size; SLURM is exercised up to sbatch, which a
stand-in script on PATH answers like the real one (no cluster here)."""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from sslbench.bench.launch import (LaunchOptions, free_gpu, local_parameters, local_task_threads, slurm_args,
                                   slurm_parameters, threads_per_task, visible_gpus)
from sslbench.bench.store import RESULTS_FOLDER, Store, write_result
from sslbench.cli import app
from sslbench.errors import ConfigError
from store_helpers import record, set_arithmetic
from tiny import assert_bench_row, tiny_args

TINY = tiny_args()
SUITE = ["--suite", "table3", "--skip", "instance_aware_st", "--skip", "instance_aware_cr", *TINY]
SAME = ("key", "suite", "strategy", "fraction", "fold", "seed", "preset", "context", "config", "scores",
        "arithmetic", "test_names", "train_names", "val_names", "encoder", "prediction")


def bench(out, *extra):
    return [sys.executable, "-c", "from sslbench.cli import main; main()", "bench", *SUITE, "--out", str(out), *extra]


def task_spans(folder):
    """(submitted, finished, pretrain|finetune) per local task, by submission: when its pickle was
    written (before its process started) and its result (at its end, failed or not)."""
    spans = []
    for submitted in folder.glob("*_submitted.pkl"):
        job = submitted.name.split("_")[0]
        kind = re.search(r"^\d{4}-\d\d-\d\d [\d:,]+ INFO (pretrain|finetune)_task: ", (folder / f"{job}_0_log.out").read_text(), re.M)[1]
        spans.append((submitted.stat().st_mtime, (folder / f"{job}_0_result.pkl").stat().st_mtime, kind))
    return sorted(spans)


@pytest.fixture
def one_thread(monkeypatch):
    """Every process computes on one thread: oneDNN's multi-threaded reductions (convolution weight
    gradients) may sum in another order from run to run, which moved a tiny job's AJI in the 5th decimal
    between two processes once (CI, 2026-12-07); at one thread the order is fixed."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_local_launcher_matches_in_process_reports_a_failed_task_and_resumes(tmp_path, one_thread):
    runner = CliRunner()
    in_process = runner.invoke(app, bench(tmp_path / "in-process")[3:])
    assert in_process.exit_code == 0, in_process.output
    expected = {row["key"]: row for row in Store(tmp_path / "in-process").rows()}
    scratch = next(key for key, row in expected.items() if row["strategy"] == "scratch")

    out = tmp_path / "local"
    (out / "predictions" / f"{scratch}.npz").mkdir(parents=True)  # scratch's finetuning task cannot save
    failed = subprocess.run(bench(out, "--launcher", "local", "--local-parallel", "1"), capture_output=True,
                            text=True, timeout=900)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr, failed.stderr
    error = failed.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: 1 of 4 tasks failed; first: scratch 100 % seed 0 (job key {scratch}): "
                            "sslbench.engine.weights.StorageError: cannot write"), error
    log = error.split("Log: ")[1].split(". Finished")[0]
    assert log.startswith(str(out / "submitit")) and "StorageError" in open(log).read()
    assert [r["strategy"] for r in Store(out).rows()] == ["instance_aware"]  # the finished task is merged

    (out / "predictions" / f"{scratch}.npz").rmdir()
    computed_here = Store(out).rows()[0]["arithmetic"]
    set_arithmetic(out, {**computed_here, "precision": "fp32", "kernels": "AVX2", "processor": "Other CPU"})
    resumed = runner.invoke(app, bench(out, "--launcher", "local")[3:])
    assert resumed.exit_code == 0, resumed.output
    assert "finished rows of this suite were computed otherwise (1 with fp32" in " ".join(resumed.output.split())
    set_arithmetic(out, computed_here)
    assert "1 jobs run, 1 already done (skipped)" in resumed.output
    assert f"Running 2 local tasks, 1 at a time; each task's log: {out.resolve() / 'submitit'}/" in resumed.output
    rows = {row["key"]: row for row in Store(out).rows()}
    assert rows.keys() == expected.keys()
    for key, row in rows.items():
        assert {c: row[c] for c in SAME} == {c: expected[key][c] for c in SAME}
        assert_bench_row(out, row)
        assert row["device"] == "cpu" and row["finetune_seconds"] > 0 and row["arithmetic"]["threads"] == 1
    # each row carries its pretraining time, scratch's too, though the failed submission made its encoder
    assert all(row["pretrain_seconds"] > 0 for row in rows.values())
    assert not (out / "checkpoints").exists()
    assert sorted(p.stem for p in (out / RESULTS_FOLDER).glob("*.json")) == sorted(expected)

    again = runner.invoke(app, bench(out, "--launcher", "local")[3:])
    assert again.exit_code == 0 and "0 jobs run, 2 already done (skipped)" in again.output
    tasks = len(list((out / "submitit").glob("*_submitted.pkl")))
    assert tasks == 4 + 2  # the first submission's four tasks and the resumed one's two; none now
    # one task at a time (--local-parallel 1, then the default without a GPU): each is submitted after
    # the one before has finished, a group's finetuning right after its pretraining
    spans = task_spans(out / "submitit")
    assert [kind for _, _, kind in spans] == ["pretrain", "finetune"] * 3
    assert all(start < end < next_start for (start, end, _), (next_start, _, _) in zip(spans, spans[1:])), spans

    (out / "results.sqlite").unlink()  # results written by tasks but never merged
    board = runner.invoke(app, ["leaderboard", "--suite", "table3", "--out", str(out), "--format", "csv"])
    assert board.exit_code == 0, board.output
    assert {row["key"] for row in Store(out).rows()} == expected.keys()


@pytest.mark.slow
def test_one_bench_per_out_folder_and_sigterm_stops_its_local_tasks(tmp_path):
    out = tmp_path / "out"
    command = [*bench(out, "--launcher", "local", "--local-parallel", "1"), "--skip", "scratch", "--set",
               "pretrain.steps=100000"]
    # started the way a script starts a background job, with Ctrl-C ignored: its tasks must still stop
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not any("pretrain instance_aware step" in log.read_text()
                                                      for log in (out / "submitit").glob("*_0_log.out")):
            time.sleep(0.2)
        assert processes_using(out), "the pretraining task never started"
        second = subprocess.run(bench(out, "--launcher", "local"), capture_output=True, text=True, timeout=300)
        assert second.returncode == 2 and second.stderr.strip().splitlines() == [
            f"error: {out}: another `sslbench bench` is running over this folder; let it finish (or stop it) and "
            "run this command again, or give another --out."]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 130, process.stderr.read()
        deadline = time.monotonic() + 30  # the controller gives its task 1 s after SIGINT, then SIGKILL
        while time.monotonic() < deadline and processes_using(out):
            time.sleep(0.2)
        assert not processes_using(out)  # nothing left to race a re-run over the same --out
    finally:  # whatever failed above, never leave a 100000-step task running on the test machine
        process.kill()
        for pid in processes_using(out):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def processes_using(folder) -> list[int]:
    """Live processes (not zombies) with ``folder`` in their command line: a local task and its controller."""
    alive = []
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if str(folder) in (proc / "cmdline").read_bytes().decode(errors="replace") and \
                    (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                alive.append(int(proc.name))
    return alive


def test_merge_is_idempotent_keeps_the_newer_result_and_flags_unreadable_files(tmp_path):
    store = Store(tmp_path)
    folder = tmp_path / RESULTS_FOLDER
    write_result(tmp_path, record("scratch", 0.5, key="a"))
    write_result(tmp_path, record("instance_aware", 0.6, key="b"))
    assert store.merge(folder) == [] and store.merge(folder) == []
    assert sorted((r["key"], r["aji"]) for r in store.rows()) == [("a", 0.5), ("b", 0.6)]
    assert store.rows()[0]["scores"]["per_image_mean"]["aji"] in (0.5, 0.6) and store.rows()[0]["context"]["folds"] == 0

    store.add(record("scratch", 0.7, key="a"))  # --force in-process: newer than the file, which stays
    assert store.merge(folder) == [] and {r["key"]: r["aji"] for r in store.rows()}["a"] == 0.7
    write_result(tmp_path, record("scratch", 0.8, key="a"))  # a later task: newer than the row
    store.merge(folder)
    assert {r["key"]: r["aji"] for r in store.rows()}["a"] == 0.8

    (folder / "c.json").write_text('{"key": "c", "aji"')  # cut short
    (folder / "d.json").write_text(json.dumps(dict(record("scratch", 0.1, key="d"), finetune_seconds=None,
                                                   finished_at="2030-01-01T00:00:00.000Z")))
    (folder / "e.json").write_text(json.dumps(dict(record("scratch", 0.1, key="x"), finished_at="x")))
    (folder / "f.json").write_bytes(b"\xff\xfe")
    problems = store.merge(folder)
    assert [p.split(":")[0] for p in problems] == [str(folder / f"{name}.json") for name in "cdef"]
    assert "missing finetune_seconds" in problems[1] and "not the file name's 'e'" in problems[2]
    assert all("\n" not in p and "re-runs its job" in p for p in problems)
    assert sorted(r["key"] for r in store.rows()) == ["a", "b"]


def test_leaderboard_merges_left_results_and_warns_about_a_corrupt_file(tmp_path):
    context = {"preset": "smoke", "backbone": "resnet18", "data": None, "test_data": None, "unlabeled": None,
               "overrides": [], "folds": 0}
    for strategy, aji in (("scratch", 0.5), ("instance_aware", 0.6)):
        write_result(tmp_path, dict(record(strategy, aji, context=context), suite="table3"))
    corrupt = tmp_path / RESULTS_FOLDER / "0123456789abcdef.json"
    corrupt.write_text("{")
    result = CliRunner().invoke(app, ["leaderboard", "--suite", "table3", "--out", str(tmp_path), "--format", "md"])
    assert result.exit_code == 0, result.output
    assert f"warning: {corrupt}: unreadable results file (" in result.output
    assert "| Train-from-scratch | 50.00 \\| 65.29 |" in result.output
    assert "| SSL (Ours): L_ST + L_CR | **60.00** (+10.00) \\| 70.63" in result.output
    assert len(Store(tmp_path).rows()) == 2


def test_slurm_parameters_put_finetuning_after_its_pretraining():
    options = LaunchOptions("slurm", "gpu", 90, 2, 8, slurm_args(["mem=64G", "--account=lab"]))
    assert slurm_parameters(options, "pretrain") == {
        "name": "pretrain", "timeout_min": 90, "gpus_per_node": 2, "cpus_per_task": 8, "slurm_partition": "gpu",
        "slurm_additional_parameters": {"mem": "64G", "account": "lab"}}
    after = slurm_parameters(options, "finetune", after="4242_3")
    assert after["slurm_additional_parameters"] == {"mem": "64G", "account": "lab", "dependency": "afterok:4242_3",
                                                    "kill-on-invalid-dep": "yes"}
    plain = slurm_parameters(LaunchOptions("slurm", slurm_gpus=0), "x")
    assert plain == {"name": "x", "timeout_min": 1440, "slurm_additional_parameters": {}}
    with pytest.raises(ConfigError, match="--slurm-arg mem: expected KEY=VALUE"):
        slurm_args(["mem"])


def test_each_local_task_sees_one_gpu_handed_back_when_it_finishes():
    assert visible_gpus("auto", {}, 2) == ["0", "1"]
    assert visible_gpus("cuda", {"CUDA_VISIBLE_DEVICES": "3, 1"}, 2) == ["3", "1"]
    assert visible_gpus("auto", {"CUDA_VISIBLE_DEVICES": "GPU-8f2e,bad,2"}, 1) == ["GPU-8f2e"]  # CUDA's count
    assert visible_gpus("auto", {}, 0) == visible_gpus("cpu", {}, 2) == visible_gpus("cuda:1", {}, 2) == []

    def setup(busy, gpus=("3", "1")):  # busy: the GPU of each running task
        return local_parameters({"CUDA_VISIBLE_DEVICES": "3,1"}, free_gpu(list(gpus), busy))["local_setup"]

    assert setup([]) == ["export CUDA_VISIBLE_DEVICES=3"]
    assert setup(["3"]) == ["export CUDA_VISIBLE_DEVICES=1"]
    assert setup(["1"]) == ["export CUDA_VISIBLE_DEVICES=3"]  # 3's task finished and gave it back
    assert setup(["3", "1", "3"]) == ["export CUDA_VISIBLE_DEVICES=1"]  # more tasks than GPUs: the least used
    # no GPUs to hand out: every task sees what bench sees
    assert setup([], gpus=()) == ["export CUDA_VISIBLE_DEVICES=3,1"]
    assert local_parameters({}, free_gpu([], []))["local_setup"] == ["unset CUDA_VISIBLE_DEVICES"]


def test_parallel_cpu_tasks_share_the_cores_unless_the_user_set_the_threads(monkeypatch):
    cores = len(os.sched_getaffinity(0))
    assert threads_per_task(1) == cores and threads_per_task(cores) == 1 == threads_per_task(cores + 5)
    assert local_parameters({}, None, threads=1)["local_setup"] == ["unset CUDA_VISIBLE_DEVICES",
                                                                     "export OMP_NUM_THREADS=1"]
    assert local_parameters({"OMP_NUM_THREADS": "3"}, None, threads=1)["local_setup"] == ["unset CUDA_VISIBLE_DEVICES"]
    # what a row of such a task records (its arithmetic's thread count), known before the task starts
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert local_task_threads("cpu", LaunchOptions("local", local_parallel=cores)) == 1
    assert local_task_threads("cpu", LaunchOptions("local")) == cores
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert local_task_threads("cpu", LaunchOptions("local", local_parallel=cores)) == torch.get_num_threads()


SBATCH = """#!/bin/sh
# answers like sbatch and keeps each submission script
n=$((100 + $(ls "$0.d" | wc -l)))
cp "$1" "$0.d/$n.sh"
echo "Submitted batch job $n"
"""


def test_slurm_launcher_submits_one_pretraining_array_then_dependent_finetuning_arrays(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    (bin_dir / "sbatch.d").mkdir(parents=True)
    (bin_dir / "sbatch").write_text(SBATCH)
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")  # submitit looks for it; never run here
    for tool in ("sbatch", "srun"):
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "out"
    args = ["bench", "--suite", "table1", "--skip", "imagenet", *TINY, "--out", str(out), "--launcher", "slurm",
            "--slurm-partition", "gpu", "--slurm-time", "30", "--slurm-cpus", "4", "--slurm-arg", "mem=16G"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Submitted 10 jobs to SLURM (0 already done) as SLURM jobs 100 101 102 (squeue -j 100,101,102);" \
        in result.output
    assert f"sslbench leaderboard --suite table1 --store {out}" in result.output
    scripts = {int(p.stem): p.read_text() for p in (bin_dir / "sbatch.d").glob("*.sh")}
    assert sorted(scripts) == [100, 101, 102]
    for script in scripts.values():
        for line in ("--partition=gpu", "--time=30", "--gpus-per-node=1", "--cpus-per-task=4", "--mem=16G"):
            assert f"#SBATCH {line}\n" in script
    assert "#SBATCH --array=0-1%2\n" in scripts[100] and "--job-name=sslbench-table1-pretrain" in scripts[100]
    assert "--dependency" not in scripts[100]
    for n, pretraining in ((101, "100_0"), (102, "100_1")):
        assert f"#SBATCH --dependency=afterok:{pretraining}\n" in scripts[n] and "#SBATCH --array=0-4%5\n" in scripts[n]
        assert "#SBATCH --kill-on-invalid-dep=yes\n" in scripts[n]
        assert "--job-name=sslbench-table1-finetune" in scripts[n]
    assert not (out / "results.sqlite").is_file() or Store(out).rows() == []
    status = CliRunner().invoke(app, ["status", str(out), "--json"])  # no sacct here: SLURM states unknown
    assert status.exit_code == 0, status.output
    tasks = json.loads(status.stdout)["tasks"]
    assert sorted(t["id"] for t in tasks if t["task"] == "pretrain") == ["100_0", "100_1"]
    assert len(tasks) == 12 and {t["state"] for t in tasks} == {"unknown"}


def test_launcher_options_are_checked_before_any_work(tmp_path, monkeypatch):
    def error(*extra):
        result = CliRunner().invoke(app, ["bench", *SUITE, "--out", str(tmp_path), *extra])
        assert isinstance(result.exception, ConfigError), result.output
        return str(result.exception)

    assert error("--slurm-partition", "gpu") == ("--slurm-partition applies to --launcher slurm only; add "
                                                 "--launcher slurm or drop it.")
    assert error("--local-parallel", "2") == ("--local-parallel applies to --launcher local only; add --launcher "
                                              "local or drop it.")
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert error("--launcher", "slurm").startswith("--launcher slurm: no sbatch on this machine")
