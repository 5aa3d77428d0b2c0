"""``sslbench status``: a bench folder's finished rows, running and paused jobs and launched tasks; and the
commands that read a bench folder take it as --store (--out still works, with a warning)."""

import json
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from sslbench.cli import app
from tiny import tiny_args


def status(out) -> dict:
    result = CliRunner().invoke(app, ["status", str(out), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def wait_for(condition, out, process=None, seconds=600) -> dict:
    """The first status of ``out`` that meets ``condition``, polled while ``process`` (if any) runs."""
    deadline = time.monotonic() + seconds
    found = None
    while time.monotonic() < deadline:
        found = status(out) if out.is_dir() else None  # bench makes the folder as it starts
        if found is not None and condition(found):
            return found
        assert process is None or process.poll() is None, process.stderr.read().decode()[-3000:]
        time.sleep(0.5)
    raise AssertionError(f"status never showed it: {found}")


@pytest.mark.slow
def test_status_shows_rows_running_and_paused_jobs_and_local_tasks(tmp_path):
    out = tmp_path / "bench"
    args = ["bench", "--suite", "table3", "--skip", "instance_aware_st", "--skip", "instance_aware_cr", "--out",
            str(out), "--launcher", "local", "--local-parallel", "1",
            *tiny_args({"pretrain.steps": 8, "pretrain.checkpoint_every": 1})]
    process = subprocess.Popen([sys.executable, "-c", "from sslbench.cli import main; main()", *args],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        running = wait_for(lambda s: any(j["state"] == "running" and j["step"] for j in s["unfinished"]), out, process)
    finally:
        process.send_signal(signal.SIGTERM)  # bench stops its local tasks
        process.wait(timeout=120)
    assert running["bench_running"]
    job = next(j for j in running["unfinished"] if j["state"] == "running")
    assert job["phase"] == "pretrain" and job["job"] == "pretraining instance_aware seed 0" and job["steps"] == 8
    assert running["finished"] == [{"suite": "table3", "strategy": "scratch", "fraction": 1.0, "protocol": "finetune",
                                    "fold": None, "seeds": [0]}]  # scratch's task row, merged by status
    tasks = {(t["task"], t["job"]): t["state"] for t in running["tasks"]}
    assert tasks == {("pretrain", "pretraining scratch seed 0"): "finished",
                     ("finetune", "scratch 100 % seed 0"): "finished",
                     ("pretrain", "pretraining instance_aware seed 0"): "running"}

    paused = wait_for(lambda s: not any(t["state"] == "running" for t in s["tasks"]), out, seconds=120)
    assert not paused["bench_running"] and paused["rows"] == 1
    assert [(j["key"], j["state"]) for j in paused["unfinished"]] == [(job["key"], "paused")]
    assert paused["unfinished"][0]["step"] >= job["step"]
    assert {t["job"]: t["state"] for t in paused["tasks"]}["pretraining instance_aware seed 0"] in ("stopped",
                                                                                                   "failed")
    table = CliRunner().invoke(app, ["status", str(out)])
    assert table.exit_code == 0, table.output
    assert "no bench is running over it" in table.output and "paused" in table.output
    assert "pretraining instance_aware seed 0" in table.output

    done = CliRunner().invoke(app, [*args[:args.index("--launcher")], "--skip", "instance_aware", "--json",
                                    *args[args.index("--local-parallel") + 2:]])  # scratch only: done already
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    assert (summary["ran"], summary["skipped"]) == (0, 1) and "Train-from-scratch" in [
        row["label"] for row in summary["leaderboard"]["rows"]] and summary["written"] == [
        str(out / "leaderboard-table3.md"), str(out / "leaderboard-table3.csv")]
    assert status(out)["unfinished"] == paused["unfinished"]  # another strategy's paused work stays

    board = CliRunner().invoke(app, ["leaderboard", "--suite", "table3", "--store", str(out), "--json"])
    assert board.exit_code == 0, board.output
    assert "Train-from-scratch" in [row["label"] for row in json.loads(board.stdout)[0]["rows"]]
    old_name = CliRunner().invoke(app, ["leaderboard", "--suite", "table3", "--out", str(out), "--json"])
    assert old_name.exit_code == 0 and json.loads(old_name.stdout) == json.loads(board.stdout)
    assert "--out is deprecated here, use --store" in old_name.stderr


@pytest.mark.parametrize("command", [["leaderboard", "--suite", "table3"], ["figures"]])
def test_commands_reading_a_bench_folder_take_store_and_out_with_a_warning(tmp_path, command):
    empty = tmp_path / "empty"
    empty.mkdir()
    new = CliRunner().invoke(app, [*command, "--store", str(empty)])
    assert f"{empty}: no results.sqlite here" in str(new.exception) and "deprecated" not in new.output
    old = CliRunner().invoke(app, [*command, "--out", str(empty)])
    assert f"{empty}: no results.sqlite here" in str(old.exception)
    assert "--out is deprecated here, use --store" in old.stderr
    both = CliRunner().invoke(app, [*command, "--out", str(empty), "--store", str(empty)])
    assert "pass --store only" in str(both.exception)
    assert "--out" not in CliRunner().invoke(app, [*command, "--help"]).output


def test_status_of_a_missing_folder_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(app, ["status", str(tmp_path / "nothing")])
    assert result.exit_code != 0 and "no such folder; pass a bench folder" in str(result.exception)
    assert status(tmp_path) == {"folder": str(tmp_path), "bench_running": False, "rows": 0, "finished": [],
                                "unfinished": [], "tasks": []}
