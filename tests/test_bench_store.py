"""Results store and leaderboard on hand-made job rows (no training): transactions, selection, layout."""

import csv
import io
import json
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing

import numpy as np
import pytest
from typer.testing import CliRunner

from store_helpers import CONTEXT, record

from sslbench.bench import store as store_module
from sslbench.bench.leaderboard import (image_pairs, job_runs, paired_difference, run_table, select_rows, short_names,
                                        suite_leaderboard, to_csv, to_markdown, write_board)
from sslbench.bench.organs import organ_board
from sslbench.bench.store import Store
from sslbench.bench.suites import load_suite
from sslbench.cli import app
from sslbench.errors import DataError
from sslbench.eval.metrics import DEFAULT_AGGREGATION

def test_a_suite_without_paper_numbers_shows_ours_alone(tmp_path):
    store = Store(tmp_path)
    for strategy, aji in (("scratch", 0.40), ("simclr", 0.45)):
        for fraction in (1.0, 0.1):
            store.add(record(strategy, aji * fraction, fraction=fraction))
    board = suite_leaderboard(tmp_path, load_suite("zoo"))
    assert [header for header, _ in board.columns] == ["100 %", "10 %"]
    simclr = {row.label: row.cells for row in board.rows}["SimCLR"]
    assert simclr[1].ours == pytest.approx(4.5) and simclr[1].delta == pytest.approx(0.5)
    markdown = to_markdown(board)
    assert "| SimCLR | **45.00** (+5.00) | **4.50** (+0.50) |" in markdown and "paper (Δ)" not in markdown
    # a CNN's store: MAE (ViTs only) is no empty row but a caption note; DINO (any backbone) is an empty row
    assert "| MAE |" not in markdown and "| DINO | — | — |" in markdown
    assert "not run on this backbone (the pretext cannot pretrain it): mae;" in board.caption


def test_deltas_pair_seeds_and_need_two_pairs_for_an_interval():
    # seed 2 has no scratch run yet: it is left out of the difference rather than compared unpaired
    assert paired_difference({0: 50.0, 2: 90.0}, {0: 40.0, 1: 41.0}) == (10.0, None)
    assert paired_difference({3: 50.0}, {0: 40.0}) == (None, None)
    mean, (low, high) = paired_difference({0: 50.0, 1: 56.0, 2: 52.0}, {0: 40.0, 1: 44.0, 2: 44.0})
    assert mean == pytest.approx(10.0) and (low, high) == pytest.approx((10 - 4.968, 10 + 4.968), abs=1e-3)


def test_rows_round_trip_and_force_replaces(tmp_path):
    store = Store(tmp_path)
    store.add(record("scratch", 0.5))
    store.add(record("scratch", 0.6))  # same key: --force replaces, never duplicates
    rows = store.rows()
    assert len(rows) == 1 and rows[0]["aji"] == 0.6 and rows[0]["scores"]["per_image_mean"]["aji"] == 0.6
    assert rows[0]["context"] == CONTEXT and rows[0]["fold"] is None and rows[0]["finished_at"]
    legacy = record("scratch", 0.4, key="old")
    legacy["scores"]["dataset"] = legacy["scores"].pop("summed")  # a store written before the rename
    store.add(legacy)
    assert [r["scores"]["summed"]["aji"] for r in store.rows() if r["key"] == "old"] == [0.2]


def test_a_store_from_before_the_split_names_gains_them_and_the_caption_names_the_labelled_images(tmp_path):
    with closing(sqlite3.connect(tmp_path / "results.sqlite")) as db, db:  # the schema before the split names
        db.execute(store_module._SCHEMA.replace("train_names TEXT,", "").replace("val_names TEXT,", ""))
    old = record("scratch", 0.3, seed=0, fraction=0.1)
    store = Store(tmp_path)  # opening adds the columns
    store.add(old)  # a row without names
    for strategy, seed, image in (("scratch", 1, "img-7"), ("simclr", 1, "img-7"), ("scratch", 2, "img-2")):
        store.add(dict(record(strategy, 0.4, seed=seed, fraction=0.1), train_names=[image], val_names=["img-9"]))
        store.add(dict(record(strategy, 0.5, seed=seed), train_names=[image, "img-8"], val_names=["img-9"]))
    rows = {(r["strategy"], r["seed"], r["fraction"]): r for r in Store(tmp_path).rows()}
    assert rows[("scratch", 0, 0.1)]["train_names"] is None
    assert rows[("simclr", 1, 0.1)]["train_names"] == ["img-7"] and rows[("simclr", 1, 1.0)]["val_names"] == ["img-9"]
    board = suite_leaderboard(tmp_path, load_suite("zoo"))
    assert "; labelled at 10 %: seed 1 img-7; seed 2 img-2." in board.caption


def test_a_failed_write_leaves_no_row_and_a_missing_store_is_a_one_line_error(tmp_path):
    store = Store(tmp_path)
    broken = record("scratch", 0.5)
    del broken["finetune_seconds"]  # NOT NULL: the insert fails inside its transaction
    with pytest.raises(sqlite3.IntegrityError):
        store.add(broken)
    assert store.rows() == []
    with pytest.raises(DataError, match="no results.sqlite here; run `sslbench bench"):
        Store(tmp_path / "elsewhere", create=False)


def test_sigkill_while_writing_never_leaves_a_half_written_row(tmp_path):
    writer = ("import json, sys\nfrom pathlib import Path\nfrom sslbench.bench.store import Store\n"
              "store, row, i = Store(Path(sys.argv[1])), json.loads(sys.argv[2]), 0\n"
              "while True:\n    store.add(dict(row, key=str(i), seed=i)); i += 1\n")
    process = subprocess.Popen([sys.executable, "-c", writer, str(tmp_path), json.dumps(record("scratch", 0.5))])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not (tmp_path / "results.sqlite").exists() or not Store(tmp_path).rows()):
        time.sleep(0.05)
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait()
    with sqlite3.connect(tmp_path / "results.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = Store(tmp_path).rows()
    assert rows and all(r["finetune_seconds"] == 2.0 and r["scores"]["per_image_mean"]["aji"] == 0.5 for r in rows)
    assert sorted(r["seed"] for r in rows) == list(range(len(rows)))


def test_a_column_with_one_row_at_its_most_seeds_marks_no_best(tmp_path):
    store = Store(tmp_path)
    for seed in (0, 1):
        store.add(record("scratch", 0.40, seed=seed))
        store.add(record("instance_aware", 0.50, seed=seed))
    store.add(record("scratch", 0.30, seed=0, fraction=0.7))  # a column begun: one row, nothing to rank
    board = suite_leaderboard(tmp_path, load_suite("table1"))
    cells = {row.label: row.cells for row in board.rows}
    scratch, ssl = cells["Train-from-scratch"], cells["SSL (Ours): L_ST + L_CR"]
    assert ssl[0].best and not scratch[0].best
    assert scratch[1].ours == pytest.approx(30.0) and scratch[1].seeds == 1 and not scratch[1].best
    assert "| Train-from-scratch | 40.00 ± 0.00 \\| 65.29 | 30.00 \\| 60.33 |" in to_markdown(board)


def test_leaderboard_shows_mean_std_deltas_best_and_paper_in_the_paper_layout(tmp_path):
    store = Store(tmp_path)
    old = dict(CONTEXT, preset="old")
    store.add(record("instance_aware", 0.99, context=old))  # an earlier bench setup: not shown
    for seed, (scratch, ssl) in enumerate([(0.40, 0.50), (0.44, 0.56)]):
        store.add(record("scratch", scratch, seed=seed))
        store.add(record("instance_aware", ssl, seed=seed))
    store.add(record("jigsaw", 0.9))  # one seed so far: shown, but never bold over two-seed means
    board = suite_leaderboard(tmp_path, load_suite("table2"))
    cells = {row.label: row.cells for row in board.rows}
    scratch, ssl = cells["Train-from-scratch"][0], cells["SSL (Ours): L_ST + L_CR"][0]
    assert scratch.ours == pytest.approx(42.0) and scratch.std == pytest.approx(2.828427, abs=1e-5)
    assert ssl.ours == pytest.approx(53.0) and ssl.delta == pytest.approx(11.0) and ssl.best and not scratch.best
    assert cells["Jigsaw Puzzles"][0].ours == pytest.approx(90.0) and not cells["Jigsaw Puzzles"][0].best
    assert ssl.paper == 70.63 and ssl.paper_delta == pytest.approx(5.34) and ssl.seeds == 2
    assert cells["CIA-Net (MoNuSeg 2018 leaderboard)"][0].paper == 69.07
    assert cells["ImageNet Pre-trained"][0].ours is None  # not run: the row stays, with the paper value
    assert "preset smoke" in board.caption and "seeds 0, 1" in board.caption and "4 images held out" in board.caption
    markdown = to_markdown(board)
    table = [line for line in markdown.splitlines() if line.startswith("|")]
    assert {line.replace("\\|", "").count("|") for line in table} == {len(board.columns) + 2}
    # paired per seed: differences 10 and 12 points, 95 % t-interval 11 ± t(0.975, 1) · 1.414 / √2 = 11 ± 12.71
    assert ssl.delta_ci == pytest.approx((11 - 12.7062, 11 + 12.7062), abs=1e-3)
    assert "**53.00 ± 4.24** (+11.00 [-1.71, +23.71]) \\| 70.63 (+5.34)" in markdown
    rows = list(csv.DictReader(io.StringIO(to_csv(board))))
    assert {r["row"] for r in rows} >= {"Train-from-scratch", "CIA-Net (MoNuSeg 2018 leaderboard)"}
    assert "per_image_mean (mean of the per-image values" in board.caption  # the default, as MoNuSeg ranks
    assert "one train/val split and labelled subset for every seed" in board.caption
    summed = suite_leaderboard(tmp_path, load_suite("table2"), "summed")
    assert summed.rows[0].cells[0].ours == pytest.approx(21.0) and "summed (C and U summed" in summed.caption
    md, csv_path = write_board(board, tmp_path, "table2")
    assert md.read_text() == markdown and csv_path.name == "leaderboard-table2.csv"


def test_fold_leaderboard_averages_folds_per_seed_and_stacks_metrics(tmp_path):
    store = Store(tmp_path)
    context = dict(CONTEXT, folds=2)
    for fold, aji in enumerate([0.6, 0.8]):
        store.add(record("scratch", aji, fold=fold, context=context, dice=0.9))
    store.add(record("instance_aware", 0.7, fold=0, context=context))  # fold 2 missing: no average
    assert "not over images" not in suite_leaderboard(tmp_path, load_suite("table4")).caption  # equal folds
    store.add(dict(record("scratch", 0.8, fold=1, context=context, dice=0.9), test_images=3))
    board = suite_leaderboard(tmp_path, load_suite("table4"))
    assert "3/4 images per fold (Average: the mean over folds, as in the paper's Table 4, not over images)" \
        in board.caption
    assert [h for h, _ in board.columns] == ["Fold 1 ours | paper", "Fold 2 ours | paper", "Average ours | paper"]
    assert [row.label for row in board.rows if row.heading] == ["Dice %", "AJI %"]
    aji_scratch = board.rows[4].cells
    assert [c.ours for c in aji_scratch] == pytest.approx([60.0, 80.0, 70.0])
    assert [c.paper for c in aji_scratch] == [None, None, 73.33]  # 2 folds: only the average compares
    assert board.rows[5].cells[2].ours is None and "2-fold cross-validation" in board.caption


def test_image_pairs_word_seeds_and_images_by_their_t_intervals(tmp_path):
    store = Store(tmp_path)
    images = ["a", "b", "c", "d"]
    for seed in (0, 1):
        for strategy, offsets in (("scratch", [0, 0, 0, 0]), ("instance_aware", [0.02, 0.04, -0.01, 0.03]),
                                  ("instance_aware_control", [0.01 + seed / 100] * 4)):
            row = record(strategy, 0.5, seed=seed)
            row["scores"]["per_image"] = [{"name": n, "aji": 0.5 + seed / 10 + o} for n, o in zip(images, offsets)]
            row["scores"]["per_image_mean"]["aji"] = 0.5 + seed / 10 + sum(offsets) / 4
            store.add(row)
    suite, rows, _ = select_rows(load_suite("controls"), Store(tmp_path).rows())
    board = image_pairs(suite, rows)
    cells = {row.label: row.cells for row in board.rows}
    assert [h for h, _ in board.columns] == ["100 %", "10 %"] and "Train-from-scratch" not in cells
    paper, control = cells["SSL (Ours): L_ST + L_CR"][0].text, cells["Control: L_ST + L_CR, shuffled roles"][0].text
    # the same +2 points at both seeds: no spread, so a zero-width interval that excludes 0
    assert paper.startswith("seeds: +2.00 [+2.00, +2.00]: difference detected | images: 6/8 pairs better, +2.00 [")
    low, high = (float(x) for x in paper.split("images: ")[1].split("[")[1].rstrip("]").split(", "))
    assert low == pytest.approx(2.0 - 3.182 * np.std([2, 4, -1, 3], ddof=1) / 2, abs=0.01)  # t(0.975, df 3)
    assert high == pytest.approx(2 * 2.0 - low, abs=0.01)
    assert control.startswith("seeds: +1.50 [-4.85, +7.85]: no difference detected; power ")  # +1, +2 at seeds 0, 1
    assert "8/8 pairs better, +1.50 [+1.50, +1.50]" in control
    assert cells["SSL (Ours): L_ST + L_CR"][1].text is None  # no 10 % rows
    assert "equivalence claimed only within ±2 points (named in the suite file" in board.caption
    # the paper's task against its control: seed 0 +1 (mean offset 0.02 against 0.01), seed 1 0 (0.02 against 0.02)
    result = CliRunner().invoke(app, ["leaderboard", "--suite", "controls", "--store", str(tmp_path), "--format", "md",
                                      "--against", "instance_aware_control"])
    assert result.exit_code == 0, result.output
    against = (tmp_path / "leaderboard-controls-pairs-instance_aware_control.md").read_text()
    assert "against Control: L_ST + L_CR, shuffled roles" in against
    row = next(line for line in against.splitlines() if line.startswith("| SSL (Ours): L_ST + L_CR |"))
    assert "seeds: +0.50 [-5.85, +6.85]: no difference detected" in row and "5/8 pairs better" in row
    assert "| Train-from-scratch | seeds: -1.50 [" in against  # scratch is a row now, the control is not
    wrong = CliRunner().invoke(app, ["leaderboard", "--suite", "controls", "--store", str(tmp_path), "--against", "rotnet"])
    assert "--against rotnet: suite controls has no such strategy" in str(wrong.exception)


def test_job_runs_list_each_jobs_images_and_scores_in_suite_order(tmp_path):
    store = Store(tmp_path)
    test = ["TCGA-50-5931-01Z-00-DX1", "TCGA-NH-A8F7-01A-01-TS1"]
    labelled = ["TCGA-21-5784-01Z-00-DX1", "TCGA-21-5786-01Z-00-DX1", "TCGA-A7-A13E-01Z-00-DX1"]
    for strategy, fraction, seed in (("instance_aware", 1.0, 0), ("scratch", 0.1, 1), ("scratch", 1.0, 1)):
        row = record(strategy, 0.5, seed=seed, fraction=fraction)
        row.update(test_names=test, train_names=labelled[:1] if fraction < 1 else labelled[:2], val_names=labelled[2:])
        row["scores"]["per_image"] = [{"name": n, "aji": a} for n, a in zip(test, (0.4, 0.6))]
        if strategy == "instance_aware":
            row["pretrain_seconds"] = None
        if fraction == 1.0 and strategy == "scratch":  # a tie: finetuning keeps the first best step
            row["scores"]["validation"] = [{"step": s, "aji": a} for s, a in ((500, 0.52), (1000, 0.55), (1500, 0.55))]
        store.add(row)  # the others: rows stored before rows kept their validation curve
    suite, rows, _ = select_rows(load_suite("controls"), Store(tmp_path).rows())
    board = job_runs(suite, rows)
    cells = [[row.label] + [c.text for c in row.cells] for row in board.rows]
    assert cells == [
        ["Train-from-scratch", "100 %", "1", "2 images", "A7-A13E", "1000 of 1500 (55.0)", "50.00", "40.0 / 60.0",
         "50.00", "1 / 2"],
        ["Train-from-scratch", "10 %", "1", "21-5784", "A7-A13E", "—", "50.00", "40.0 / 60.0", "50.00", "1 / 2"],
        ["SSL (Ours): L_ST + L_CR", "100 %", "0", "2 images", "A7-A13E", "—", "50.00", "40.0 / 60.0", "50.00",
         "reused / 2"]]
    assert "test images in cell order: 50-5931, NH-A8F7" in board.caption
    assert board.caption.endswith("; every job's arithmetic: not recorded.")


ZEN4 = {"precision": "bf16", "channels_last": True, "kernels": "AVX512", "threads": 1, "processor": "AMD EPYC"}


def test_tables_say_which_arithmetic_computed_their_rows_and_warn_when_it_differs(tmp_path):
    with closing(sqlite3.connect(tmp_path / "results.sqlite")) as db, db:  # a store from before the record
        db.execute(store_module._SCHEMA.replace("    arithmetic TEXT,", "--"))
    store = Store(tmp_path)
    store.add(record("scratch", 0.5, seed=0))  # an old row: nothing recorded
    for seed in (1, 2):
        store.add(dict(record("scratch", 0.5, seed=seed), arithmetic=ZEN4))
    one = suite_leaderboard(tmp_path, load_suite("table2")).caption
    assert "; arithmetic: bf16 channels_last, AVX512 kernels, 1 thread, AMD EPYC (2 rows); not recorded (1 row)" in one
    assert "MIXED" not in one
    (tmp_path / "results").mkdir()  # a launched task on another machine computed seed 3 in fp32 on AVX2
    avx2 = dict(ZEN4, precision="fp32", channels_last=False, kernels="AVX2", threads=2)
    (tmp_path / "results" / "late.json").write_text(json.dumps(
        dict(record("scratch", 0.4, seed=3, key="late"), arithmetic=avx2, finished_at="2030-01-01T00:00:00.000Z")))
    assert Store(tmp_path).merge(tmp_path / "results") == []
    mixed = suite_leaderboard(tmp_path, load_suite("table2")).caption
    assert "MIXED ARITHMETIC: bf16 channels_last, AVX512 kernels, 1 thread, AMD EPYC (2 rows); " \
           "not recorded (1 row); fp32, AVX2 kernels, 2 threads, AMD EPYC (1 row)." in mixed
    suite, rows, _ = select_rows(load_suite("table2"), Store(tmp_path).rows())
    runs = job_runs(suite, rows)
    assert runs.columns[-1][0] == "Arithmetic" and [r.cells[-1].text for r in runs.rows] == ["A", "B", "B", "C"]
    assert "; arithmetic: A not recorded; B bf16 channels_last" in runs.caption


def test_short_names_keep_the_fewest_fields_that_tell_names_apart():
    assert short_names({"TCGA-21-5784-01Z-00-DX1", "TCGA-21-5786-01Z-00-DX1", "TCGA-NH-A8F7-01A-01-TS1"}) == {
        "TCGA-21-5784-01Z-00-DX1": "21-5784", "TCGA-21-5786-01Z-00-DX1": "21-5786",
        "TCGA-NH-A8F7-01A-01-TS1": "NH-A8F7"}
    assert short_names({"img_001.tif", "img_002.tif"}) == {"img_001.tif": "001", "img_002.tif": "002"}
    assert short_names({"a", "a_b"}) == {"a": "a", "a_b": "a_b"} and short_names({"only"}) == {"only": "only"}


@pytest.mark.parametrize("reference_only", [True, False])
def test_run_table_keeps_the_paper_apart_unless_the_data_compare(reference_only):
    from rich.console import Console

    scores = {"aji": 0.5, "aji_plus": 0.6, "pq": 0.4, "dice": 0.9, "f1": 0.7}
    row = {"label": "SSL", "test": {DEFAULT_AGGREGATION: scores}, "paper_aji": 70.63, "seconds": {"pretrain": 1, "finetune": 2}}
    console = Console(width=200, record=True)
    console.print(run_table([row], "t", "c", reference_only=reference_only))
    text = console.export_text()
    if reference_only:
        assert "paper AJI % (MoNuSeg, reference only)" in text and "ours | paper" not in text
        assert "50.00 " in text and "70.63" in text
    else:
        assert "AJI % ours | paper" in text and "50.00 | 70.63" in text


def test_organ_board_groups_test_images_by_tcga_site(tmp_path):
    store = Store(tmp_path)
    images = {"TCGA-HT-8564-01Z-00-DX1": 0.40, "TCGA-FG-A4MU-01B-01-TS1": 0.50, "TCGA-A6-6782-01A-01-BS1": 0.70,
              "synthetic_000": 0.60}
    for seed in (0, 1):
        row = record("scratch", 0.5, seed=seed)
        row["scores"]["per_image"] = [{"name": n, "aji": a + seed / 100} for n, a in images.items()]
        store.add(row)
    suite, rows, _ = select_rows(load_suite("table3"), Store(tmp_path).rows())
    board = organ_board(suite, rows)
    assert [h for h, _ in board.columns] == ["brain (2)", "colon (1)", "other (1)", "all (4)"]
    (scratch,) = board.rows
    assert [c.ours for c in scratch.cells] == pytest.approx([45.5, 70.5, 60.5, 55.5])
    assert scratch.cells[0].std == pytest.approx(np.std([45.0, 46.0], ddof=1)) and scratch.cells[0].seeds == 2
