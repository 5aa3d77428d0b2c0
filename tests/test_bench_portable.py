"""A results store follows its data: job keys, encoder identities and bench setups name a data folder by
its content, so a store resumes wherever the data lies; ``bench --dry-run`` lists the jobs' states."""

import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from data_helpers import save_image, square, synthetic_samples, write_folder_set, write_monuseg
from sslbench.bench.leaderboard import select_rows
from sslbench.bench.plan import BenchOptions, job_config, job_keys, setup_identity
from sslbench.bench.runner import suite_plan
from sslbench.bench.store import Store
from sslbench.bench.suites import Job, load_suite
from sslbench.cli import app
from sslbench.data.fingerprint import dataset_fingerprint
from sslbench.data.synthetic import Synthetic
from sslbench.pipeline.fingerprint import EXECUTION_KEYS, content_hash
from tiny import tiny_args

ONLY_SCRATCH = ["--suite", "table3", "--skip", "instance_aware_st", "--skip", "instance_aware_cr",
                "--skip", "instance_aware"]
JOB = Job("scratch", 1.0, None, 0)


def monuseg_set(root: Path) -> Path:
    images = {s.name: s.image for s in synthetic_samples(3)}
    write_monuseg(root, images, {name: [square(2, 2, 12, 12)] for name in list(images)[:2]})
    save_image(root / "Label Maps" / f"{list(images)[2]}.tif", np.ones((48, 48), np.uint16))
    return root


def options(data: Path | None, tmp_path: Path) -> BenchOptions:
    return BenchOptions(load_suite("table3"), tmp_path / "out", data=None if data is None else str(data))


def test_a_data_set_is_named_by_its_content_not_its_place(tmp_path):
    here = monuseg_set(tmp_path / "here")
    there = Path(shutil.copytree(here, tmp_path / "there"))
    assert dataset_fingerprint(here) == dataset_fingerprint(there)
    # each folder is read once per process: the changed ones are copies not fingerprinted before
    moved_vertex = Path(shutil.copytree(here, tmp_path / "moved_vertex"))
    xml = next((moved_vertex / "Annotations").iterdir())
    corrected = xml.read_text().replace('X="12"', 'X="13"', 1)
    assert len(corrected) == len(xml.read_text())  # the file keeps its size
    xml.write_text(corrected)
    relabelled = Path(shutil.copytree(here, tmp_path / "relabelled"))
    label_map = next((relabelled / "Label Maps").iterdir())
    save_image(label_map, np.full((48, 48), 2, np.uint16))
    bigger = Path(shutil.copytree(here, tmp_path / "bigger"))
    save_image(next((bigger / "Tissue Images").iterdir()), np.zeros((64, 64, 3), np.uint8))
    assert len({dataset_fingerprint(p) for p in (here, moved_vertex, relabelled, bigger)}) == 4
    assert dataset_fingerprint(here, "unlabeled") != dataset_fingerprint(here)  # read another way


def test_job_keys_and_the_bench_setup_follow_the_data_not_its_path(tmp_path):
    here = write_folder_set(tmp_path / "here", synthetic_samples(3))
    there = Path(shutil.copytree(here, tmp_path / "there"))
    at_here, at_there = options(here, tmp_path), options(there, tmp_path)
    keys = job_keys(job_config(at_here, JOB), at_here, JOB)
    assert job_keys(job_config(at_there, JOB), at_there, JOB) == keys
    assert job_config(at_there, JOB).data["path"] == str(there)  # the path stays in the config, to read
    assert setup_identity(at_here.context()) == setup_identity(at_there.context())
    save_image(there / "labels" / next((there / "labels").iterdir()).name, np.zeros((48, 48), np.uint16))
    other = options(Path(shutil.copytree(there, tmp_path / "relabelled")), tmp_path)
    assert job_keys(job_config(other, JOB), other, JOB)[0] != keys[0]
    assert job_keys(job_config(other, JOB), other, JOB)[1] != keys[1]
    assert setup_identity(other.context()) != setup_identity(at_here.context())

    synthetic = options(None, tmp_path)  # the built-in data keeps being named by its config
    cfg = job_config(synthetic, JOB)
    content = {k: v for k, v in cfg.to_dict().items() if k not in EXECUTION_KEYS}
    assert job_keys(cfg, synthetic, JOB)[0] == content_hash({**content, "fold": None, "folds": 0})


def legacy_row(opts: BenchOptions, job: Job) -> dict:
    """A row as bench wrote it before keys followed the data: keyed by the config with its data path."""
    config = job_config(opts, job).to_dict()
    content = {k: v for k, v in config.items() if k not in EXECUTION_KEYS}
    context = {k: v for k, v in opts.context().items() if k != "data_content"}
    return {"key": content_hash({**content, "fold": job.fold, "folds": 0}), "suite": "table3",
            "strategy": job.strategy, "fraction": job.fraction, "fold": job.fold, "seed": job.seed,
            "preset": opts.preset, "context": context, "config": config, "aji": 0.5,
            "scores": {"per_image_mean": {"aji": 0.5}}, "test_images": 1, "test_names": ["a"],
            "finetune_seconds": 1.0, "device": "cpu", "versions": {}, "encoder": "encoders/e.safetensors"}


def test_rows_keyed_by_their_data_path_are_done_where_that_path_is(tmp_path):
    here = write_folder_set(tmp_path / "here", synthetic_samples(3))
    opts = options(here, tmp_path)
    opts.suite = load_suite("table3", skip=["instance_aware_st", "instance_aware_cr", "instance_aware"])
    opts.seeds = 2
    Store(opts.out).add(legacy_row(opts, JOB))
    assert [job["state"] for job in suite_plan(opts)] == ["done", "pending"]
    moved = here.rename(tmp_path / "moved")  # the old row recorded no content, and its path is gone
    opts.data = str(moved)
    assert [job["state"] for job in suite_plan(opts)] == ["pending", "pending"]
    _, rows, context = select_rows(opts.suite, Store(opts.out).rows())  # it is still read
    assert [row["seed"] for row in rows] == [0] and context["data"] == str(here)


def bench(data: Path, out: Path, *extra: str):
    args = ["bench", *ONLY_SCRATCH, "--data", str(data), "--out", str(out),
            *tiny_args({"data.num_images": None, "data.size": None}), *extra]
    return CliRunner().invoke(app, args)


def dry_run(data: Path, out: Path, *extra: str) -> dict[str, dict]:
    listed = bench(data, out, "--dry-run", "--json", *extra)
    assert listed.exit_code == 0, listed.output
    return {job["seed"]: job for job in json.loads(listed.stdout)}


@pytest.mark.slow
def test_a_store_resumes_and_extends_with_its_data_moved(tmp_path):
    data = write_folder_set(tmp_path / "machine_a" / "data", Synthetic(num_images=6, size=160, seed=4).load())
    out = tmp_path / "bench"
    planned = dry_run(data, out, "--seeds", "2")
    assert [job["state"] for job in planned.values()] == ["pending", "pending"] and not out.exists()
    first = bench(data, out, "--seeds", "2")
    assert first.exit_code == 0 and "2 jobs run, 0 already done" in first.output, first.output
    assert {row["key"] for row in Store(out).rows()} == {job["key"] for job in planned.values()}

    written_at = str(data.resolve())
    (tmp_path / "machine_b").mkdir()
    moved = Path(shutil.move(data, tmp_path / "machine_b" / "elsewhere"))
    assert {s: job["state"] for s, job in dry_run(moved, out, "--seeds", "2").items()} == {0: "done", 1: "done"}
    again = bench(moved, out, "--seeds", "2")
    assert again.exit_code == 0 and "0 jobs run, 2 already done (skipped)" in again.output, again.output
    extended = bench(moved, out, "--seeds", "3")
    assert extended.exit_code == 0 and "1 jobs run, 2 already done (skipped)" in extended.output, extended.output
    rows = Store(out).rows()
    assert [row["context"]["data"] for row in rows] == [written_at] * 2 + [str(moved.resolve())]  # as read
    board = CliRunner().invoke(app, ["leaderboard", "--suite", "table3", "--out", str(out), "--format", "md"])
    assert board.exit_code == 0 and "seeds 0, 1, 2" in board.output, board.output

    with closing(sqlite3.connect(out / "results.sqlite")) as db, db:  # seed 0's row lost; its encoder is there
        db.execute("DELETE FROM jobs WHERE seed = 0")
    states = {s: job["state"] for s, job in dry_run(moved, out, "--seeds", "3").items()}
    assert states == {0: "checkpointed", 1: "done", 2: "done"}
    table = bench(moved, out, "--seeds", "4", "--dry-run")
    assert table.exit_code == 0 and "4 jobs: 2 done, 1 checkpointed, 1 pending." in table.output, table.output
    assert len(Store(out).rows()) == 2  # nothing ran
