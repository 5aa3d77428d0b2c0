"""Invalid config values and unknown names are one-line errors before any work starts; unknown
names suggest the closest registered one. Every key is checked: the sections against a typed schema,
pretext/backbone/head/data options against the signature of the class they name."""

import subprocess
import sys

import pytest
from mmengine.config import Config
from typer.testing import CliRunner

from sslbench.bench.plan import BenchOptions, job_config
from sslbench.bench.suites import load_suite
from sslbench.cli import app
from sslbench.config import _check_preset, available, component_config, load_component, resolve_run_config, validate
from sslbench.errors import ConfigError, SslbenchError, UnknownComponentError
from sslbench.pretext.rotnet import RotNet
from sslbench.registry import PRETEXTS
from tiny import VIT_ONLY_PRETEXTS, WEIGHT_FILE_STRATEGIES, tiny_args

# a run that gets as far as building its pretext on small synthetic tiles
FAST = ["--pretext", "instance_aware", *tiny_args({"data.size": 96, "pretext.crop": 64,
                                                   "pretext.neg_scales": "(48, 32)", "finetune.crop": 64})]


def _one_line(exc: Exception) -> str:
    assert isinstance(exc, SslbenchError) and "\n" not in str(exc), repr(exc)
    return str(exc)


# (--set override, the one-line error after "--set: ")
OUT_OF_BOUNDS = [
    ("finetune.crop=-32", "finetune.crop must be > 0, got -32."),
    ("finetune.crop=0", "finetune.crop must be > 0, got 0."),
    ("finetune.crop=100", "finetune.crop must be a multiple of 32, got 100."),
    ("split.label_fraction=0", "split.label_fraction must be > 0, got 0."),
    ("split.label_fraction=-0.5", "split.label_fraction must be > 0, got -0.5."),
    ("split.label_fraction=1.01", "split.label_fraction must be <= 1, got 1.01."),
    ("split.test_ratio=1.0", "split.test_ratio must be < 1, got 1.0."),
    ("split.val_ratio=-0.1", "split.val_ratio must be >= 0, got -0.1."),
    ("pretrain.steps=0", "pretrain.steps must be >= 1, got 0."),
    ("finetune.batch_size=0", "finetune.batch_size must be >= 1, got 0."),
    ("pretrain.lr=0", "pretrain.lr must be > 0, got 0."),
    ("pretrain.lr=inf", "pretrain.lr must be a finite number, got inf."),
    ("finetune.log_every=0", "finetune.log_every must be >= 1, got 0."),
    ("pretrain.checkpoint_every=-1", "pretrain.checkpoint_every must be >= 0, got -1."),
    ("finetune.max_nonfinite_skips=-1", "finetune.max_nonfinite_skips must be >= 0, got -1."),
    ("finetune.stain_scale=1.5", "finetune.stain_scale must be < 1, got 1.5."),
    ("finetune.stain_shift=-0.01", "finetune.stain_shift must be >= 0, got -0.01."),
    ("finetune.scale=(0.8, -1)", "finetune.scale[1] must be > 0, got -1."),
    ("finetune.class_weights=(1, 1, -2)", "finetune.class_weights[2] must be >= 0, got -2."),
    ("evaluation.overlap=512", "evaluation.overlap must be below evaluation.tile (512), got 512."),
    ("evaluation.tune.body_threshold=(None, 1.5)", "evaluation.tune.body_threshold[1] must be <= 1, got 1.5."),
    ("engine.loader_workers=-1", "engine.loader_workers must be >= 0, got -1."),
    ("seed=-1", "seed must be >= 0, got -1."),
]
WRONG_TYPE = [
    ("finetune.steps=2OO", "finetune.steps must be a valid integer, got '2OO'."),
    ("finetune.steps=200.0", "finetune.steps must be a valid integer, got 200.0."),
    ("finetune.lr=fast", "finetune.lr must be a valid number, got 'fast'."),
    ("evaluation.flips=1", "evaluation.flips must be a valid boolean, got 1."),
    ("finetune.scale=0.8", "finetune.scale must be a valid tuple, got 0.8."),
    ("finetune.class_weights=(1, 1)", "finetune.class_weights[2] is missing."),
    ("engine.amp=sometimes", "engine.amp must be 'auto', True or False, got 'sometimes'."),
    ("engine.compile=1", "engine.compile must be a valid boolean or a valid string, got 1."),
    ("evaluation.tune.min_area=10", "evaluation.tune.min_area must be a valid tuple, got 10."),
]
UNKNOWN_KEY = [(override, f"{unknown} is not a setting. Did you mean '{closest}'?") for override, unknown, closest in [
    ("finetune.stain_jitter=0.1", "finetune.stain_jitter", "finetune.stain_shift"),  # the jitter's old name
    ("finetune.crpo=64", "finetune.crpo", "finetune.crop"),
    ("finetun.steps=3", "finetun", "finetune"),
    ("evaluation.flip=True", "evaluation.flip", "evaluation.flips"),
    ("evaluation.tune.body_treshold=(0.5,)", "evaluation.tune.body_treshold", "evaluation.tune.body_threshold"),
    ("split.label_fractoin=0.5", "split.label_fractoin", "split.label_fraction"),
    ("engine.chanels_last=True", "engine.chanels_last", "engine.channels_last"),
]]
UNKNOWN_OPTION = [
    ("pretext.margn_st=2", "pretext.margn_st is not an option of pretext InstanceAware. Did you mean 'margin_st'?"),
    ("backbone.nme=resnet50", "backbone.nme is not an option of backbone SmpEncoder. Did you mean 'name'?"),
    ("head.clases=3", "head.clases is not an option of head Unet. Did you mean 'classes'?"),
    ("data.num_image=4", "data.num_image is not an option of data Synthetic. Did you mean 'num_images'?"),
    # a real option, but of another pretext: instance_aware has no weights file
    ("pretext.weights=/x/r101.pth", "pretext.weights is not an option of pretext InstanceAware."),
]


@pytest.mark.parametrize(("override", "message"), OUT_OF_BOUNDS + WRONG_TYPE + UNKNOWN_KEY + UNKNOWN_OPTION)
def test_bad_overrides_are_refused_in_one_line_naming_the_key(override, message):
    with pytest.raises(ConfigError) as info:
        resolve_run_config("instance_aware", overrides=[override])
    assert _one_line(info.value) == f"--set: {message}"


def test_a_key_inside_a_plain_value_is_refused():
    with pytest.raises(ConfigError) as info:
        resolve_run_config("scratch", overrides=["finetune.scale.low=0.5"])
    assert _one_line(info.value) == ("--set finetune.scale.low: finetune.scale is a value, not a section with keys; "
                                     "set it whole (--set finetune.scale=VALUE).")


@pytest.mark.parametrize(("pretext", "override", "key", "expected"), [
    ("scratch", "finetune.steps=200", "finetune.steps", 200),
    ("scratch", "finetune.lr=1", "finetune.lr", 1.0),  # an int for a float is stored as a float
    ("scratch", "finetune.lr=3e-4", "finetune.lr", 3e-4),
    ("scratch", "evaluation.flips=true", "evaluation.flips", True),
    ("scratch", "finetune.scale=(0.8, 1.25)", "finetune.scale", (0.8, 1.25)),
    ("scratch", "finetune.scale=0.8,1.25", "finetune.scale", (0.8, 1.25)),  # a list from --set: a tuple
    ("scratch", "finetune.elastic=[30, 6]", "finetune.elastic", (30.0, 6.0)),
    ("scratch", "finetune.class_weights=(1, 1, 3)", "finetune.class_weights", (1.0, 1.0, 3.0)),
    ("scratch", "finetune.scale=None", "finetune.scale", None),
    ("scratch", "evaluation.tune=None", "evaluation.tune", None),
    ("scratch", "evaluation.tune.body_threshold=(None, 0.5)", "evaluation.tune.body_threshold", (None, 0.5)),
    ("scratch", "engine.amp=auto", "engine.amp", "auto"),
    ("scratch", "engine.compile=inductor", "engine.compile", "inductor"),
    ("scratch", "split.resample_per_seed=True", "split.resample_per_seed", True),
    ("scratch", "seed=3", "seed", 3),
    ("instance_aware", "pretext.neg_scales=(48, 32)", "pretext.neg_scales", (48, 32)),
    ("instance_aware", "pretext.normalize_embedding=False", "pretext.normalize_embedding", False),
    ("imagenet", "pretext.weights=/models/my r101.pth", "pretext.weights", "/models/my r101.pth"),
    ("simclr", "pretext.views.blur_p=0", "pretext.views.blur_p", 0),
])
def test_valid_overrides_land_in_the_config_with_their_type(pretext, override, key, expected):
    value = resolve_run_config(pretext, overrides=[override])
    for part in key.split("."):
        value = value[part]
    assert value == expected and type(value) is type(expected)
    if isinstance(expected, tuple):
        assert [type(v) for v in value] == [type(v) for v in expected]


def test_a_data_folder_takes_the_readers_rescale_option(tmp_path):
    cfg = resolve_run_config("scratch", data=str(tmp_path), overrides=["data.rescale=2"])
    assert cfg.data == {"type": "path", "path": str(tmp_path), "rescale": 2}
    with pytest.raises(ConfigError, match="data.rescal is not an option of data path. Did you mean 'rescale'"):
        resolve_run_config("scratch", data=str(tmp_path), overrides=["data.rescal=2"])


def test_a_plugin_pretext_is_checked_against_its_signature(monkeypatch):
    class AdHoc(RotNet):
        """A plugin task: RotNet's options (crop)."""

    monkeypatch.setitem(PRETEXTS.module_dict, "adhoc_checked_task", AdHoc)  # what its decorator does
    cfg = resolve_run_config("adhoc_checked_task", overrides=["pretext.crop=64"])
    assert cfg.pretext == {"type": "adhoc_checked_task", "crop": 64}
    with pytest.raises(ConfigError) as info:
        resolve_run_config("adhoc_checked_task", overrides=["pretext.crp=64"])
    assert _one_line(info.value) == ("--set: pretext.crp is not an option of pretext adhoc_checked_task. "
                                     "Did you mean 'crop'?")


@pytest.mark.parametrize("preset", available("preset"))
@pytest.mark.parametrize("pretext", available("pretext"))
def test_every_preset_resolves_with_every_pretext(preset, pretext):
    backbone = "vit_small_patch16_224" if pretext in VIT_ONLY_PRETEXTS else None  # None: the preset's CNN
    cfg = resolve_run_config(pretext, preset=preset, backbone=backbone, allow_synthetic=True)
    assert cfg.pretext["type"] == component_config("pretext", pretext)["type"]
    assert cfg.preset == preset and isinstance(cfg.finetune["lr"], float)


@pytest.mark.parametrize("suite", available("suite"))
def test_every_suite_job_resolves(suite, tmp_path):
    options = dict(preset="cpu", allow_synthetic=True, overrides=["pretext.weights=/x/r101.pth", "finetune.steps=10"])
    opts = BenchOptions(load_suite(suite), tmp_path, **options)
    on_vit = BenchOptions(load_suite(suite), tmp_path, backbone="vit_small_patch16_224", **options)
    for job in opts.suite.jobs(range(1)):
        cfg = job_config(on_vit if job.strategy in VIT_ONLY_PRETEXTS else opts, job)
        assert cfg.split["label_fraction"] == job.fraction and cfg.finetune["steps"] == 10
        assert ("weights" in cfg.pretext) == (job.strategy in WEIGHT_FILE_STRATEGIES)


def test_preset_files_are_checked_naming_the_file(tmp_path):
    preset = tmp_path / "typo.py"
    preset.write_text("finetun = dict(steps=3)\n")
    with pytest.raises(ConfigError) as info:
        _check_preset(Config.fromfile(preset), "preset typo")
    assert _one_line(info.value) == "preset typo: finetun is not a preset setting. Did you mean 'finetune'?"
    preset.write_text("pretext_overrides = dict(crp=64)\n")
    with pytest.raises(ConfigError) as info:
        _check_preset(Config.fromfile(preset), "preset typo")
    assert _one_line(info.value) == ("preset typo: pretext_overrides.crp is an option of no registered pretext. "
                                     "Did you mean 'crop'?")
    cfg = resolve_run_config("scratch")
    cfg.finetune["stain_jiter"] = 0.1  # as a preset's finetune section would bring it
    with pytest.raises(ConfigError) as info:
        validate(cfg, "preset typo")
    assert _one_line(info.value).startswith("preset typo: finetune.stain_jiter is not a setting. Did you mean")


def test_a_bad_override_on_the_command_line_is_one_line_and_no_run_folder(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--out", str(out), *FAST, "--set", "finetune.stain_jiter=0.1"])
    assert _one_line(result.exception).startswith("--set: finetune.stain_jiter is not a setting. Did you mean")
    assert not out.exists()


@pytest.mark.slow
def test_a_bad_override_through_the_entry_point_is_one_line_with_status_2(tmp_path):
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-c", "from sslbench.cli import main; main()", "run", "--out", str(out),
                           "--set", "finetune.steps=2OO"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["error: --set: finetune.steps must be a valid integer, got '2OO'."]
    assert not out.exists()


@pytest.mark.parametrize(("override", "message"), [
    ("pretext.margin_st=-1", "margins must be >= 0"),
    ("pretext.margin_cr=-0.5", "margins must be >= 0"),
    ("pretext.crop=-64", "needs crop > 0"),
    ("pretext.neg_scales=(96, 32)", "every negative scale in (0, crop]"),
])
def test_invalid_pretext_arguments_are_refused_before_training(tmp_path, override, message):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--out", str(out), *FAST, "--set", override])
    assert message in _one_line(result.exception)
    assert not (out / "encoder.safetensors").exists() and not (out / "checkpoints").exists()


@pytest.mark.parametrize(("kind", "name", "closest"), [
    ("backbone", "resnet110", "resnet101"),
    ("preset", "smok", "smoke"),
    ("suite", "tabel2", "table2"),
    ("head", "unnet", "unet"),
])
def test_unknown_component_names_suggest_the_closest(kind, name, closest):
    with pytest.raises(UnknownComponentError) as info:
        load_component(kind, name)
    assert f"unknown {kind} '{name}'. Did you mean '{closest}'?" in _one_line(info.value)


def test_unknown_pretext_suggests_the_closest():
    with pytest.raises(UnknownComponentError) as info:
        component_config("pretext", "rotnett")
    assert "unknown pretext 'rotnett'. Did you mean 'rotnet'?" in _one_line(info.value)


def test_unknown_names_on_the_command_line_fail_before_any_work(tmp_path):
    out = tmp_path / "run"
    for args, closest in ((["--pretext", "jigsw"], "jigsaw"), (["--backbone", "resnet5"], "resnet50")):
        result = CliRunner().invoke(app, ["run", "--out", str(out), *args])
        assert f"Did you mean '{closest}'?" in _one_line(result.exception)
    assert not out.exists()
