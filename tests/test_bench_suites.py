"""Suites: the paper's numbers, grid expansion, job keys, splits for folds and a separate test set."""

import json

import pytest
from typer.testing import CliRunner

from sslbench.bench.plan import BenchOptions, check_strategies, job_config, job_keys, strategy_overrides
from sslbench.bench.suites import Job, load_suite
from sslbench.cli import app
from sslbench.config import resolve_run_config
from sslbench.data.base import Sample
from sslbench.data.synthetic import Synthetic
from sslbench.errors import ConfigError, DataError
from sslbench.pipeline.data import load_data, split_samples

SPLIT = dict(test_ratio=0.25, val_ratio=0.2, seed=0, label_fraction=1.0)


def test_paper_values_are_stored_exactly_as_printed():
    table1 = load_suite("table1")
    assert table1.columns == ["100 %", "70 %", "50 %", "30 %", "10 %"]
    assert table1.paper["aji"] == {"scratch": [65.29, 60.33, 51.45, 44.32, 43.58],
                                   "imagenet": [65.83, 62.60, 53.54, 48.57, 48.31],
                                   "instance_aware": [70.63, 68.87, 62.34, 60.31, 55.01]}
    table2 = load_suite("table2")
    assert table2.paper["aji"]["colorme"] == [67.94] and table2.paper["aji"]["jigsaw"] == [66.68]
    assert table2.references == {"Navid Alemi": 67.79, "Yunzhi": 67.88, "Pku.hzq": 68.52, "BUPT.J.LI": 68.68,
                                 "CIA-Net": 69.07}
    assert load_suite("table3").paper["aji"]["instance_aware_cr"] == [70.09]
    table4 = load_suite("table4")
    assert table4.folds == 5 and table4.columns[-1] == "Average"
    assert table4.paper["dice"]["instance_aware"] == [86.54, 85.18, 85.84, 86.08, 88.14, 86.36]
    assert table4.paper["aji"]["scratch"] == [74.43, 72.79, 72.80, 71.03, 75.60, 73.33]


def test_grid_expands_strategies_fractions_folds_and_seeds():
    jobs = load_suite("table1").jobs(range(2))
    assert len(jobs) == 3 * 5 * 2 and len(set(jobs)) == len(jobs)
    # one (strategy, seed) group is contiguous, so its pretraining serves all its fractions in a row
    assert [j.fraction for j in jobs[:5]] == [1.0, 0.7, 0.5, 0.3, 0.1] and {j.strategy for j in jobs[:5]} == {"scratch"}
    folds = load_suite("table4", folds=3).jobs([0])
    assert sorted({j.fold for j in folds}) == [0, 1, 2] and len(folds) == 2 * 3
    assert {j.strategy for j in load_suite("table2", skip=["imagenet"]).jobs([0])} == {
        "scratch", "jigsaw", "rotnet", "colorme", "instance_aware"}


@pytest.mark.parametrize(("call", "message"), [
    (lambda: load_suite("table3", skip=["imagenet"]), "--skip imagenet: not in suite table3"),
    (lambda: load_suite("table1", folds=3), "--folds applies to cross-validation suites"),
    (lambda: load_suite("table4", folds=1), "--folds must be >= 2"),
    (lambda: load_suite("table9"), "unknown suite 'table9'"),
])
def test_bad_suite_options_are_one_line_config_errors(call, message):
    with pytest.raises(ConfigError if "unknown" not in message else KeyError, match=message):
        call()


def test_imagenet_without_weights_fails_up_front_and_pretext_overrides_reach_only_takers(tmp_path):
    with pytest.raises(ConfigError, match=r"needs --set pretext.weights=PATH .*--skip imagenet"):
        check_strategies(BenchOptions(load_suite("table1"), tmp_path))
    overrides = ["pretext.weights=/x/r101.pth", "finetune.steps=3"]
    assert strategy_overrides("imagenet", overrides) == overrides
    assert strategy_overrides("instance_aware", overrides) == ["finetune.steps=3"]
    views = ["pretext.views.blur_p=0"]  # a nested option: the two-view pretexts take it, no other
    assert strategy_overrides("byol", views) == views and strategy_overrides("rotnet", views) == []
    with pytest.raises(ConfigError, match="pretext.weights: /x/r101.pth is not a file"):
        check_strategies(BenchOptions(load_suite("table1"), tmp_path, overrides=overrides))
    (tmp_path / "r101.pth").write_bytes(b"")
    check_strategies(BenchOptions(load_suite("table1"), tmp_path, overrides=[f"pretext.weights={tmp_path}/r101.pth"]))
    with pytest.raises(ConfigError, match="--set pretext.margin_st=2: no strategy of suite table2 takes"):
        check_strategies(BenchOptions(load_suite("table2", skip=["imagenet", "instance_aware"]), tmp_path,
                                      overrides=["pretext.margin_st=2"]))


def test_job_keys_share_pretraining_across_fractions_but_not_folds_or_seeds(tmp_path):
    opts = BenchOptions(load_suite("table4", folds=2), tmp_path, backbone="resnet18")
    keys = {}
    for job in [Job("scratch", 1.0, 0, 0), Job("scratch", 0.5, 0, 0), Job("scratch", 1.0, 1, 0),
                Job("scratch", 1.0, 0, 1)]:
        keys[job] = job_keys(job_config(opts, job), opts, job)
    (full, pre), (half, pre_half), (fold1, pre_fold1), (seed1, pre_seed1) = keys.values()
    assert len({full, half, fold1, seed1}) == 4
    assert pre == pre_half and len({pre, pre_fold1, pre_seed1}) == 3
    cuda = BenchOptions(opts.suite, tmp_path, backbone="resnet18", device="cuda")
    job = Job("scratch", 1.0, 0, 0)
    assert job_keys(job_config(cuda, job), cuda, job) == keys[job]  # where it runs is not what it is
    fast = BenchOptions(opts.suite, tmp_path, backbone="resnet18", overrides=["engine.compile=True"])
    assert job_keys(job_config(fast, job), fast, job) == keys[job]  # nor how fast
    assert fast.context() == opts.context()  # so its rows share one leaderboard
    steps = BenchOptions(opts.suite, tmp_path, backbone="resnet18", overrides=["finetune.steps=7"])
    assert job_keys(job_config(steps, job), steps, job)[1] == pre  # finetune-only change: same encoder
    assert job_keys(job_config(steps, job), steps, job)[0] != full


def test_folds_test_every_labelled_image_once_and_pretraining_never_sees_the_fold():
    samples = Synthetic(num_images=10, size=32, seed=1).load()
    splits = [split_samples(samples, SPLIT, fold=fold, folds=5) for fold in range(5)]
    tested = [s.name for split in splits for s in split.test]
    assert sorted(tested) == sorted(s.name for s in samples)
    for split in splits:
        test = {s.name for s in split.test}
        assert len(test) == 2
        assert not test & {s.name for s in split.pretrain + split.train + split.val}
        assert len(split.pretrain) == 8 and len(split.train) + len(split.val) == 8
    with pytest.raises(DataError, match="k-fold needs"):
        split_samples(samples[:3], SPLIT, fold=0, folds=5)


def test_separate_test_data_leaves_all_of_data_for_train_val_and_pretraining():
    samples = Synthetic(num_images=6, size=32, seed=1).load()
    test = Synthetic(num_images=3, size=32, seed=2).load()
    split = split_samples(samples, dict(SPLIT, label_fraction=0.5), test=test)
    assert split.test == test
    assert len(split.pretrain) == 6
    assert len(split.val) == 1 and len(split.train) == 3  # ceil(0.5 * 5)
    default = split_samples(samples, SPLIT)
    assert len(default.test) == 2 and len(default.pretrain) == 4


def test_label_fraction_cuts_validation_too_and_keeps_nested_subsets():
    samples = Synthetic(num_images=25, size=32, seed=1).load()
    full = split_samples(samples, SPLIT)
    assert (len(full.test), len(full.val), len(full.train)) == (6, 4, 15)
    tenth = split_samples(samples, dict(SPLIT, label_fraction=0.1))
    assert len(tenth.train) == 2 and len(tenth.val) == 1  # ceil(0.1 * 15), at least one val image
    half = split_samples(samples, dict(SPLIT, label_fraction=0.5))
    assert len(half.val) == 2
    for small, large in ((tenth, half), (half, full)):
        for part in ("train", "val"):
            assert {s.name for s in getattr(small, part)} <= {s.name for s in getattr(large, part)}
    assert [s.name for s in tenth.test] == [s.name for s in full.test]  # labels never change the test set
    assert [s.name for s in tenth.pretrain] == [s.name for s in full.pretrain]


def test_resample_per_seed_redraws_train_val_and_labels_but_never_the_test_set():
    samples = Synthetic(num_images=25, size=32, seed=1).load()
    cfg = dict(SPLIT, label_fraction=0.3)
    fixed = [split_samples(samples, cfg, seed) for seed in range(3)]
    assert all([s.name for s in f.train] == [s.name for s in fixed[0].train] for f in fixed)
    redrawn = [split_samples(samples, dict(cfg, resample_per_seed=True), seed) for seed in range(3)]
    assert len({tuple(s.name for s in r.train) for r in redrawn}) == 3
    for r in redrawn:
        assert [s.name for s in r.test] == [s.name for s in fixed[0].test]
        assert not {s.name for s in r.train + r.val} & {s.name for s in r.test}


def _test_data_config(tmp_path, test_samples):
    from data_helpers import write_folder_set

    folder = write_folder_set(tmp_path / "test", test_samples)
    return resolve_run_config("scratch", data=None, test_data=str(folder))


def test_test_data_sharing_an_image_with_the_training_data_is_refused(tmp_path):
    training = Synthetic(num_images=4, size=32, seed=0)  # the smoke preset's data, resized in the config below
    cfg = _test_data_config(tmp_path / "same-name", Synthetic(num_images=2, size=32, seed=5).load())
    cfg.data = dict(type="Synthetic", num_images=4, size=32, seed=0)
    with pytest.raises(DataError, match=r"shares 2 image\(s\).*synthetic_000.png \(same name as synthetic_000\)"):
        load_data(cfg)
    renamed = [Sample(f"copy_{s.name}", s.image, s.labels) for s in training.load()[2:]]
    cfg = _test_data_config(tmp_path / "same-pixels", renamed)
    cfg.data = dict(type="Synthetic", num_images=4, size=32, seed=0)
    with pytest.raises(DataError, match="copy_synthetic_002.* \\(identical pixels to synthetic_002"):
        load_data(cfg)
    unrelated = [Sample(f"other_{s.name}", s.image, s.labels) for s in Synthetic(2, 32, seed=5).load()]
    cfg = _test_data_config(tmp_path / "unrelated", unrelated)
    cfg.data = dict(type="Synthetic", num_images=4, size=32, seed=0)
    samples, test = load_data(cfg)
    assert len(samples) == 4 and [s.name for s in test] == ["other_synthetic_000", "other_synthetic_001"]


@pytest.mark.parametrize("preset", ["cpu", "mini", "paper"])
def test_real_data_presets_refuse_the_synthetic_default_unless_asked(preset):
    with pytest.raises(ConfigError, match=f"preset {preset} is sized for real images: pass --data"):
        resolve_run_config("scratch", preset=preset)
    assert resolve_run_config("scratch", preset=preset, allow_synthetic=True).data["type"] == "Synthetic"
    assert resolve_run_config("scratch", preset=preset, data="/some/folder").data["type"] == "path"


def test_a_suite_can_be_cut_to_some_label_fractions():
    suite = load_suite("table1", fractions=[0.1, 1.0])
    assert suite.fractions == (1.0, 0.1) and suite.columns == ["100 %", "10 %"]  # the suite's order
    assert {job.fraction for job in suite.jobs(range(2))} == {1.0, 0.1}
    with pytest.raises(ConfigError, match=r"--fraction 0.2: not a label fraction of suite table1 \(1, 0.7, 0.5"):
        load_suite("table1", fractions=[0.2])


def test_a_suite_leaves_out_the_strategies_that_cannot_pretrain_its_backbone_and_says_which(tmp_path):
    def dry_run(backbone):
        result = CliRunner().invoke(app, ["bench", "--suite", "zoo", "--preset", "smoke", "--backbone", backbone,
                                          "--out", str(tmp_path / backbone), "--dry-run", "--json"])
        assert result.exit_code == 0, result.output
        return {job["strategy"] for job in json.loads(result.stdout)}, result.stderr

    cnn, cnn_warnings = dry_run("resnet18")
    vit, vit_warnings = dry_run("vit_small_patch16_224")
    assert cnn ^ vit == {"mae", "colorme"} and "mae" in vit and "colorme" in cnn
    assert "suite zoo: mae left out: pretext mae cannot pretrain backbone resnet18 (a CNN)" in cnn_warnings
    assert "suite zoo: colorme left out: pretext colorme cannot pretrain backbone vit_small_patch16_224 (a ViT)" in (
        vit_warnings.replace("\n", " "))


def test_a_suite_with_nothing_left_to_run_is_a_one_line_error(tmp_path):
    everything_but_mae = [arg for s in load_suite("zoo").strategies if s != "mae" for arg in ("--skip", s)]
    for skip, backbone, says in [(everything_but_mae, "resnet18", "suite zoo: nothing to run on backbone resnet18"),
                                 ([*everything_but_mae, "--skip", "mae"], "vit_small_patch16_224",
                                  "--skip leaves nothing of suite zoo to run")]:
        result = CliRunner().invoke(app, ["bench", "--suite", "zoo", "--preset", "smoke", "--backbone", backbone,
                                          *skip, "--out", str(tmp_path / "out"), "--dry-run"])
        assert isinstance(result.exception, ConfigError) and str(result.exception).startswith(says)
        assert not (tmp_path / "out").exists()
