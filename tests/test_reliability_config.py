"""Invalid config values and unknown names are one-line errors before any work starts; unknown
names suggest the closest registered one."""

import pytest
from typer.testing import CliRunner

from sslbench.cli import app
from sslbench.config import component_config, load_component, resolve_run_config
from sslbench.errors import ConfigError, SslbenchError, UnknownComponentError
from test_reliability_resume import FAST



def _one_line(exc: Exception) -> str:
    assert isinstance(exc, SslbenchError) and "\n" not in str(exc), repr(exc)
    return str(exc)


@pytest.mark.parametrize(("override", "message"), [
    ("finetune.crop=-32", "finetune.crop must be a positive multiple of 32"),
    ("finetune.crop=0", "finetune.crop must be a positive multiple of 32"),
    ("finetune.crop=100", "finetune.crop must be a positive multiple of 32"),
    ("split.label_fraction=0", "split.label_fraction must be in (0, 1]"),
    ("split.label_fraction=-0.5", "split.label_fraction must be in (0, 1]"),
    ("split.label_fraction=1.01", "split.label_fraction must be in (0, 1]"),
    ("split.test_ratio=1.0", "split.test_ratio must be in [0, 1)"),
    ("split.val_ratio=-0.1", "split.val_ratio must be in [0, 1)"),
    ("pretrain.steps=0", "pretrain.steps must be >= 1"),
    ("finetune.batch_size=0", "finetune.batch_size must be >= 1"),
    ("pretrain.lr=0", "pretrain.lr must be > 0"),
    ("finetune.log_every=0", "finetune.log_every must be >= 1"),
    ("pretrain.checkpoint_every=-1", "pretrain.checkpoint_every must be >= 0"),
    ("finetune.max_nonfinite_skips=-1", "finetune.max_nonfinite_skips must be >= 0"),
])
def test_invalid_values_are_refused_when_the_config_is_resolved(override, message):
    with pytest.raises(ConfigError) as info:
        resolve_run_config("instance_aware", backbone="resnet18", overrides=[override])
    assert message in _one_line(info.value)


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
