"""The transfer suite: jobs scored on their own test set and on other sources' (--transfer-test), a split by
patient for data sets like TNBC, and a leaderboard with one column per test set and paired intervals."""

import statistics

import pytest
from typer.testing import CliRunner

from data_helpers import SHARED_DATA, needs_shared, write_folder_set
from store_helpers import CONTEXT, record
from sslbench.bench.leaderboard import image_pairs, select_rows, suite_leaderboard, to_markdown
from sslbench.bench.plan import BenchOptions, bench_data, job_config, job_keys
from sslbench.bench.stats import t_interval
from sslbench.bench.store import Store
from sslbench.bench.suites import Job, load_suite
from sslbench.cli import app
from sslbench.data.base import Sample
from sslbench.data.detect import dataset_from_path
from sslbench.data.splits import train_val_split
from sslbench.data.synthetic import Synthetic
from sslbench.errors import ConfigError, DataError, SslbenchError
from sslbench.pipeline.data import split_samples
from tiny import assert_bench_row, assert_scored, tiny_args

SPLIT = dict(test_ratio=0.25, val_ratio=0.2, seed=0, label_fraction=1.0, group_by="patient")
JOB = Job("scratch", 1.0, None, 0)


def patients_tiles(patients: int, seed: int = 1) -> list[Sample]:
    """Small synthetic tiles of ``patients`` patients, 1 to 4 tiles each, named as TNBC names them."""
    tiles = Synthetic(num_images=patients * 4, size=32, seed=seed).load()
    samples = []
    for patient in range(1, patients + 1):
        for tile in range(1, 1 + 1 + patient % 4):
            image = tiles[len(samples)]
            samples.append(Sample(f"{patient:02d}_{tile}", image.image, image.labels,
                                  meta={"patient": f"{patient:02d}"}))
    return samples


def patients_of(samples: list[Sample]) -> set[str]:
    return {s.meta["patient"] for s in samples}


def test_a_split_by_patient_never_puts_a_patient_in_two_parts():
    samples = patients_tiles(11)
    fixed = split_samples(samples, SPLIT, seed=0)
    assert len(patients_of(fixed.test)) == 3  # round(0.25 * 11) patients, whatever their tile counts
    redrawn = [split_samples(samples, dict(SPLIT, resample_per_seed=True), seed) for seed in range(4)]
    for split in [fixed, *redrawn]:
        parts = [patients_of(split.train), patients_of(split.val), patients_of(split.test)]
        assert not parts[0] & parts[1] and not parts[0] & parts[2] and not parts[1] & parts[2]
        assert len(parts[0]) == 6 and len(parts[1]) == 2  # the other 8 patients: round(0.2 * 8) validate
        assert sorted(s.name for s in split.train + split.val + split.test) == sorted(s.name for s in samples)
        assert patients_of(split.pretrain) == parts[0] | parts[1]  # never a tile of a test patient
        assert patients_of(split.test) == patients_of(fixed.test)  # the test patients stay
    assert len({frozenset(patients_of(split.val)) for split in redrawn}) > 1  # train/val redrawn per seed
    names = {s.name: s.meta["patient"] for s in samples}
    kept, held = train_val_split(list(names), 0.25, 3, names)
    assert {names[n] for n in kept}.isdisjoint({names[n] for n in held}) and len(kept) + len(held) == len(names)


@needs_shared("tnbc")
def test_tnbc_splits_into_3_test_patients_and_8_for_training():
    samples = dataset_from_path(SHARED_DATA / "tnbc", "tnbc").load()
    assert len(samples) == 50 and len(patients_of(samples)) == 11
    split = split_samples(samples, SPLIT, seed=0)
    assert len(patients_of(split.test)) == 3 and len(patients_of(split.train) | patients_of(split.val)) == 8
    assert not patients_of(split.test) & patients_of(split.train + split.val + split.pretrain)


def test_a_split_by_patient_needs_patients():
    no_patients = Synthetic(num_images=6, size=32, seed=1).load()
    with pytest.raises(DataError, match=r"^split.group_by=patient: image synthetic_000 records no patient .*"
                                        r"--reader tnbc"):
        split_samples(no_patients, SPLIT)
    with pytest.raises(DataError, match=r"need at least 3 patients \(one per part of the split\), found 2"):
        split_samples(patients_tiles(2), SPLIT)
    assert len(split_samples(patients_tiles(2), SPLIT, test=no_patients).val) > 0  # --test-data: 2 suffice
    with pytest.raises(DataError, match="cross-validation folds are drawn by image"):
        split_samples(patients_tiles(6), SPLIT, fold=0, folds=2)


def folder_set(root, prefix: str, seed: int, size: int = 48):
    return write_folder_set(root, [Sample(f"{prefix}_{s.name}", s.image, s.labels)
                                   for s in Synthetic(num_images=2, size=size, seed=seed).load()])


def test_every_test_set_is_in_the_job_key_by_content_and_pretraining_ignores_them(tmp_path):
    other = folder_set(tmp_path / "other", "other", 5)
    moved = folder_set(tmp_path / "moved", "other", 5)  # the same content at another path
    changed = folder_set(tmp_path / "changed", "other", 6)

    def keys(transfer: dict | None):
        opts = BenchOptions(load_suite("transfer"), tmp_path / "out", backbone="resnet18",
                            transfer_test=transfer or {})
        return job_keys(job_config(opts, JOB), opts, JOB)

    plain, same, elsewhere, read_otherwise, other_content = (
        keys(None), keys({"x": {"path": str(other)}}), keys({"x": {"path": str(moved)}}),
        keys({"x": {"path": str(other), "reader": "unlabeled"}}), keys({"x": {"path": str(changed)}}))
    assert same == elsewhere
    assert len({plain[0], same[0], read_otherwise[0], other_content[0]}) == 4
    assert plain[1] == same[1] == other_content[1]  # one encoder serves them all



def one_line_error(args: list[str]) -> str:
    result = CliRunner().invoke(app, ["bench", *args, "--dry-run", "--backbone", "resnet18"])
    assert isinstance(result.exception, SslbenchError) and "\n" not in str(result.exception), result.output
    return str(result.exception)


def test_bad_transfer_inputs_are_one_line_errors_naming_the_option(tmp_path):
    other = folder_set(tmp_path / "other", "other", 5)
    suite = ["--suite", "transfer", "--out", str(tmp_path / "out")]
    assert one_line_error([*suite, "--transfer-test", f"tnbc={tmp_path}/absent"]) == (
        f"--transfer-test tnbc={tmp_path}/absent: no such folder; pass a labelled data folder.")
    assert one_line_error([*suite, "--transfer-test", f"tnbc={other},reader=tnbx"]).startswith(
        "--transfer-test tnbc: unknown reader 'tnbx'. Did you mean 'tnbc'? Choose one of: monuseg, folder")
    assert one_line_error([*suite, "--transfer-test", str(other)]).startswith(
        "--transfer-test expects NAME=PATH[,reader=READER]")
    assert one_line_error([*suite, "--transfer-test", f"a.b={other}"]).startswith("--transfer-test a.b: a set's NAME")
    assert one_line_error([*suite, "--transfer-test", f"x={other}", "--transfer-test", f"x={other}"]) == (
        "--transfer-test x is given twice; give each test set its own NAME.")
    assert one_line_error(suite).startswith("suite transfer scores other sources' test sets: pass --transfer-test")
    assert one_line_error(["--suite", "zoo", "--out", str(tmp_path / "out"), "--transfer-test", f"x={other}"]) == (
        "--transfer-test applies to transfer suites (transfer), not zoo; run --suite transfer or drop --transfer-test.")
    assert one_line_error([*suite, "--transfer-test", f"x={other}", "--reader", "tnbc"]).startswith(
        "--reader tnbc reads --data, and no --data was given")
    unknown = CliRunner().invoke(app, ["bench", *suite, "--reader", "tnbx", "--dry-run"])
    assert unknown.exit_code == 2 and "Invalid value for '--reader'" in unknown.output
    with pytest.raises(ConfigError, match=r"^--set: transfer_test.x.reader 'tnbx' is not a reader. Did you mean"):
        job_config(BenchOptions(load_suite("transfer"), tmp_path, overrides=["transfer_test.x.reader=tnbx"],
                                transfer_test={"x": {"path": str(other)}}), JOB)
    plain = folder_set(tmp_path / "plain", "plain", 7)
    with pytest.raises(DataError, match=r"^--transfer-test x=.*/plain shares 2 image\(s\) with the training data"):
        bench_data(job_config(BenchOptions(load_suite("transfer"), tmp_path, data=str(plain),
                                           transfer_test={"x": {"path": str(plain)}}), JOB))


def transfer_row(strategy: str, seed: int, scores: dict[str, float], data: str, **context) -> dict:
    """A stored transfer job: in-domain AJI ``scores["in-domain"]``, each other name a transfer set's."""
    sets = {name: {"path": f"/data/{name}"} for name in scores if name != "in-domain"}
    row = record(strategy, scores["in-domain"], seed=seed, key=f"{data}-{strategy}-{seed}-{context.get('preset')}",
                 context=dict(CONTEXT, data=f"/data/{data}", transfer_test=sets, **context))
    row["scores"]["transfer"] = {name: {"per_image_mean": {"aji": aji, "dice": aji}, "summed": {"aji": aji},
                                        "per_image": [{"name": f"{name}-a", "aji": aji}, {"name": f"{name}-b",
                                                                                        "aji": aji - 0.02}]}
                                 for name, aji in scores.items() if name != "in-domain"}
    row["scores"]["per_image"] = [{"name": "own-a", "aji": scores["in-domain"]}]
    return row


def test_the_leaderboard_has_a_column_per_test_set_with_paired_intervals_per_training_set(tmp_path):
    store = Store(tmp_path)
    store.add(record("scratch", 0.9, key="zoo-row"))  # another suite's row in the same store: never read
    store.add(transfer_row("scratch", 0, {"in-domain": 0.9, "tnbc": 0.9}, "monuseg", preset="old"))  # superseded
    scratch, ssl = [0.60, 0.62, 0.58], [0.63, 0.66, 0.60]
    for seed in range(3):
        store.add(transfer_row("scratch", seed, {"in-domain": scratch[seed], "tnbc": scratch[seed] - 0.2}, "monuseg"))
        store.add(transfer_row("instance_aware", seed, {"in-domain": ssl[seed], "tnbc": ssl[seed] - 0.1}, "monuseg"))
    for seed in range(2):  # the reverse direction, in the same store
        store.add(transfer_row("scratch", seed, {"in-domain": 0.7, "monuseg": 0.4 + seed / 10}, "tnbc",
                               reader="tnbc"))
    board = suite_leaderboard(tmp_path, load_suite("transfer"))
    assert [header for header, _ in board.columns] == ["in-domain", "tnbc", "monuseg"]
    blocks: dict[str, dict] = {}  # heading -> strategy -> cells
    for row in board.rows:
        if row.heading:
            block = blocks[row.label] = {}
        else:
            block[row.label] = row.cells
    assert list(blocks) == ["AJI %, trained on monuseg", "Dice %, trained on monuseg", "AJI %, trained on tnbc",
                            "Dice %, trained on tnbc"]
    monuseg = blocks["AJI %, trained on monuseg"]
    in_domain, tnbc, monuseg_column = monuseg["SSL (Ours): L_ST + L_CR"]
    assert in_domain.ours == pytest.approx(63.0) and in_domain.std == pytest.approx(3.0)
    for cell, offset in ((in_domain, 0.0), (tnbc, 10.0)):  # each test set paired over its own seeds
        differences = [100 * (s - b) + offset for s, b in zip(ssl, scratch)]
        assert cell.delta == pytest.approx(statistics.fmean(differences))
        assert cell.delta_ci == pytest.approx(t_interval(differences))
    assert monuseg_column.ours is None and monuseg["Train-from-scratch"][1].ours == pytest.approx(40.0)
    reverse = blocks["AJI %, trained on tnbc"]["Train-from-scratch"]
    assert reverse[1].ours is None and reverse[2].ours == pytest.approx(45.0) and reverse[2].seeds == 2
    markdown = to_markdown(board)
    assert "| SSL (Ours): L_ST + L_CR | **63.00 ± 3.00** (+3.00 [" in markdown
    assert board.caption.startswith("Arithmetic: ") and "Trained on tnbc: Data: /data/tnbc (reader tnbc);" in markdown
    assert "tnbc: 2 labelled images of /data/tnbc" in board.caption and "preset old" not in board.caption
    pairs = to_markdown(image_pairs(*select_rows(load_suite("transfer"), Store(tmp_path).rows())[:2]))
    assert "| **trained on monuseg** |" in pairs
    assert "| seeds: +13.00 [+10.52, +15.48]: difference detected | images: 6/6 pairs better, +13.00" in pairs
    assert "Train-from-scratch | 90.00 " in to_markdown(suite_leaderboard(tmp_path, load_suite("zoo")))
    organs = CliRunner().invoke(app, ["leaderboard", "--suite", "transfer", "--store", str(tmp_path), "--organs"])
    assert isinstance(organs.exception, ConfigError) and str(organs.exception).startswith("--organs reads the MoNuSeg")


@pytest.mark.slow
def test_bench_transfer_scores_both_directions_into_one_store_and_chooses_nothing_on_them(tmp_path):
    test_data = folder_set(tmp_path / "test", "test", 9, size=160)
    other = folder_set(tmp_path / "other", "other", 11, size=128)
    tiles = Synthetic(num_images=10, size=160, seed=12).load()
    tnbc = write_folder_set(tmp_path / "tnbc", [Sample(f"{i // 2 + 1:02d}_{i % 2 + 1}", s.image, s.labels)
                                               for i, s in enumerate(tiles)])  # 5 patients, 2 tiles each
    out = tmp_path / "bench"
    tune = ["--set", "evaluation.tune.min_area=(4, 30)"]  # a post-processing choice for the jobs to make
    suite = ["bench", "--suite", "transfer", "--skip", "simclr", "--skip", "dino", "--out", str(out), *tune]
    forward = [*suite, "--test-data", str(test_data), "--transfer-test", f"other={other},reader=folder", "--seeds", "2",
               *tiny_args()]
    result = CliRunner().invoke(app, forward)
    assert result.exit_code == 0, result.output
    reverse = [*suite, "--data", str(tnbc), "--reader", "tnbc", "--set", "split.group_by=patient", "--set",
               "split.test_ratio=0.25", "--transfer-test", f"synthetic={test_data}", "--resample-splits",
               *tiny_args({"data.num_images": None, "data.size": None})]
    result = CliRunner().invoke(app, reverse)
    assert result.exit_code == 0, result.output
    rows = Store(out).rows()
    assert len(rows) == 4 + 2
    for row in rows:
        assert_bench_row(out, row)
        name = next(iter(row["context"]["transfer_test"]))
        expected = sorted(s.name for s in dataset_from_path(row["context"]["transfer_test"][name]["path"]).load())
        assert_scored(row["scores"]["transfer"][name], expected)
        assert row["scores"]["postprocess"]["chosen_on"] == "validation"
    for row in rows[4:]:  # trained on tnbc: whole patients held out, the rest split by patient
        parts = [{n.split("_")[0] for n in row[key]} for key in ("train_names", "val_names", "test_names")]
        assert len(parts[2]) == 1 and not parts[0] & parts[1] and not (parts[0] | parts[1]) & parts[2]

    # the same job without a transfer set trains and chooses exactly alike: nothing is chosen on that set
    alone = ["bench", "--suite", "table3", "--skip", "instance_aware_st", "--skip", "instance_aware_cr", "--skip",
             "instance_aware", "--out", str(out), "--test-data", str(test_data), *tune, *tiny_args()]
    assert CliRunner().invoke(app, alone).exit_code == 0
    plain = next(r for r in Store(out).rows() if r["suite"] == "table3")
    transferred = next(r for r in rows if r["strategy"] == "scratch" and r["seed"] == 0)
    assert plain["key"] != transferred["key"]
    assert plain["scores"]["postprocess"] == transferred["scores"]["postprocess"]
    assert plain["scores"]["per_image"] == transferred["scores"]["per_image"]

    board = CliRunner().invoke(app, ["leaderboard", "--suite", "transfer", "--store", str(out), "--format", "md",
                                     "--pairs", "--runs"])
    assert board.exit_code == 0, board.output
    assert "| Training strategy | in-domain | other | synthetic |" in board.output
    assert "| **AJI %, trained on synthetic H&E** |" in board.output
    assert "| **AJI %, trained on tnbc** |" in board.output
    assert " [" in board.output.split("| SSL (Ours): L_ST + L_CR |")[1].split("\n")[0]  # two seeds: an interval
    assert "AJI % on other | AJI % on synthetic |" in board.output
    again = CliRunner().invoke(app, reverse)
    assert again.exit_code == 0 and "0 jobs run, 2 already done (skipped)" in again.output
