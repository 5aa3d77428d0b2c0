"""Plugins: an installed package (entry point), an ad hoc --plugin file or module, a broken plugin."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sslbench.cli import app
from sslbench.registry import load_plugin
from tiny import assert_scored, still_initial, tiny_args

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sslbench-simclr"
SSLBENCH = Path(sys.executable).parent / "sslbench"
TINY_RUN = ["--preset", "smoke", *tiny_args({"pretrain.steps": 3, "pretrain.log_every": 1, "finetune.steps": 3,
                                             "data.size": 128, "pretext.crop": 64, "finetune.crop": 64,
                                             "evaluation.tile": 128})]

PLUGIN_SOURCE = '''
from sslbench.pretext.rotnet import RotNet
from sslbench.registry import PRETEXTS


@PRETEXTS.register_module(name="{name}")
class AdHoc(RotNet):
    """An ad hoc plugin task."""
'''


def assert_finished_run(out: Path):
    """The plugin's task pretrained for its 3 steps and moved the encoder, and the finetuned model was scored."""
    metrics = json.loads((out / "metrics.json").read_text())
    assert [h["step"] for h in metrics["history"]["pretrain"]] == [1, 2, 3]
    backbone = json.loads((out / "encoder.json").read_text())["backbone"]
    assert not any(still_initial(out / "encoder.safetensors", backbone).values())
    assert_scored(metrics["test"], metrics["images"]["test"])


def test_plugin_file_and_module_are_listed(tmp_path, monkeypatch, unregister):
    (tmp_path / "adhoc_file_task.py").write_text(PLUGIN_SOURCE.format(name="adhoc_file_task"))
    (tmp_path / "adhoc_module_task.py").write_text(PLUGIN_SOURCE.format(name="adhoc_module_task"))
    monkeypatch.syspath_prepend(str(tmp_path))
    unregister += ["adhoc_file_task", "adhoc_module_task"]
    result = CliRunner().invoke(app, ["list", "pretexts", "--plugin", str(tmp_path / "adhoc_file_task.py"),
                                      "--plugin", "adhoc_module_task"])
    assert result.exit_code == 0, result.output
    assert "adhoc_file_task" in result.output and "adhoc_module_task" in result.output


@pytest.mark.slow
def test_example_plugin_file_runs_with_the_plugin_flag(tmp_path, unregister):
    unregister += ["example_simclr", "example_timm_features"]
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--plugin", str(EXAMPLE / "sslbench_simclr.py"),
                                      "--pretext", "example_simclr", *TINY_RUN, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert_finished_run(out)


@pytest.fixture
def installed_example(tmp_path):
    """pip-install the example into this interpreter's environment (from a copy: building writes files)."""
    source = shutil.copytree(EXAMPLE, tmp_path / "sslbench-simclr")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--no-deps", "--no-build-isolation", str(source)], check=True)
    yield
    subprocess.run([*pip, "uninstall", "-y", "sslbench-simclr"], check=True)


@pytest.mark.slow
def test_installed_example_plugin_is_discovered_and_runs(tmp_path, installed_example, unregister):
    listing = subprocess.run([str(SSLBENCH), "list"], capture_output=True, text=True,
                             env={"COLUMNS": "200", "PATH": ""}, check=True)
    assert "example_simclr" in listing.stdout and "sslbench_simclr" in listing.stdout
    assert "example_timm_features" in listing.stdout  # the plugin's backbone, registered the same way
    out = tmp_path / "run"
    # the plugin's pretext pretrains the plugin's backbone; the ResUNet is built around it
    run = subprocess.run([str(SSLBENCH), "run", "--pretext", "example_simclr", *TINY_RUN,
                          "--backbone", "example_timm_features", "--out", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    unregister += ["example_simclr", "example_timm_features"]
    load_plugin(str(EXAMPLE / "sslbench_simclr.py"))  # the plugin's backbone, to build its initial weights here
    assert_finished_run(out)
    encoder = json.loads((out / "encoder.json").read_text())
    assert encoder["pretext"] == "example_simclr" and encoder["backbone"] == {"type": "example_timm_features"}


def test_a_broken_entry_point_warns_in_one_line_and_builtins_survive(tmp_path, monkeypatch):
    # an installed distribution whose sslbench.plugins entry point raises on import
    dist_info = tmp_path / "broken_sslbench_plugin-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-sslbench-plugin\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text("[sslbench.plugins]\nbroken = broken_sslbench_plugin\n")
    (tmp_path / "broken_sslbench_plugin.py").write_text("raise RuntimeError('plugin bug')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    result = CliRunner().invoke(app, ["list", "pretexts"])
    assert result.exit_code == 0, result.output
    mentions = [line for line in result.output.splitlines() if "broken" in line]
    assert len(mentions) == 1 and "warning" in mentions[0] and "plugin bug" in mentions[0]
    assert all(name in result.output for name in ("instance_aware", "jigsaw", "rotnet", "colorme", "scratch"))


BUILT_ON_BUILTINS = '''
from sslbench.registry import BACKBONES, PRETEXTS

InstanceAware = PRETEXTS.module_dict["InstanceAware"]  # looked up as the plugin is imported


@PRETEXTS.register_module(name="built_on_instance_aware")
class BuiltOnInstanceAware(InstanceAware):
    """A plugin task built on a built-in it finds by name."""

# a plugin backbone: the built-in smp encoder (a builder function) under another name
BACKBONES.register_module(name="PluginEncoder", module=BACKBONES.module_dict["SmpEncoder"])
'''


def test_a_plugin_finds_the_builtins_by_name_as_it_is_imported(tmp_path):
    plugin = tmp_path / "built_on_builtins.py"
    plugin.write_text(BUILT_ON_BUILTINS)
    # a fresh interpreter: nothing has looked a component up yet, so no built-in is imported but by the loader
    listing = subprocess.run([sys.executable, "-c", "from sslbench.cli import main; main()", "list", "pretexts",
                              "--json", "--plugin", str(plugin)], capture_output=True, text=True)
    assert listing.returncode == 0, listing.stderr
    assert "built_on_instance_aware" in {row["name"] for row in json.loads(listing.stdout)["pretexts"]}


def test_probe_and_figures_load_plugins(tmp_path, unregister):
    from sslbench.engine.weights import save_encoder
    from sslbench.models import build_encoder

    unregister += ["built_on_instance_aware", "PluginEncoder"]
    plugin = tmp_path / "built_on_builtins.py"
    plugin.write_text(BUILT_ON_BUILTINS)
    state = build_encoder({"type": "SmpEncoder", "name": "resnet18"}).state_dict()
    encoder = save_encoder(state, tmp_path / "run" / "encoder.safetensors",
                           {"pretext": "scratch", "backbone": {"type": "PluginEncoder", "name": "resnet18"}})
    probe = ["probe", str(encoder), "--crop", "64", "--crops-per-image", "2", "--json"]
    unknown = CliRunner().invoke(app, probe)
    assert unknown.exit_code != 0 and "unknown backbone 'PluginEncoder'" in str(unknown.exception)
    probed = CliRunner().invoke(app, [*probe, "--plugin", str(plugin)])
    assert probed.exit_code == 0, probed.output
    assert json.loads(probed.stdout)[str(encoder)]["pretext"] == "scratch"

    broken = tmp_path / "broken_plugin.py"
    broken.write_text("raise RuntimeError('plugin bug')\n")
    figures = CliRunner().invoke(app, ["figures", "--store", str(tmp_path), "--plugin", str(broken)])
    assert figures.exit_code != 0 and "plugin" in str(figures.exception) and "plugin bug" in str(figures.exception)
