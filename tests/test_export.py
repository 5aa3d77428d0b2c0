"""``sslbench export``: a run's encoder, written where asked, loads into smp, torchvision and timm."""

from __future__ import annotations

import json

import pytest
import timm
import torch
import torchvision
from typer.testing import CliRunner

from sslbench.cli import app
from sslbench.engine.weights import load_encoder, save_encoder
from sslbench.errors import ConfigError, DataError
from sslbench.models import build_encoder, build_segmenter

BACKBONE = dict(type="SmpEncoder", name="resnet18")
FC = {"fc.weight", "fc.bias"}


@pytest.fixture
def run_dir(tmp_path):
    """A run folder as ``sslbench run`` leaves it: encoder.safetensors + encoder.json."""
    torch.manual_seed(0)
    state = build_encoder(BACKBONE).state_dict()
    save_encoder(state, tmp_path / "run" / "encoder", {"pretext": "rotnet", "steps": 30, "sslbench_version": "0.1.0"})
    return tmp_path / "run", state


def export(*args):
    return CliRunner().invoke(app, ["export", *map(str, args)])


def assert_loads_into(model: torch.nn.Module, state: dict):
    result = model.load_state_dict(state, strict=False)
    assert set(result.missing_keys) == FC and not result.unexpected_keys
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())


def test_safetensors_export_loads_into_torchvision_and_the_finetune_model(run_dir, tmp_path):
    source, state = run_dir
    out = tmp_path / "exported" / "r18.safetensors"
    result = export(source, "--out", out)
    assert result.exit_code == 0, result.output
    exported = load_encoder(out)
    assert_loads_into(torchvision.models.resnet18(), exported)
    build_segmenter(BACKBONE, dict(type="Unet"), exported)  # strict: every key matches
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["pretext"] == "rotnet" and sidecar["steps"] == 30 and sidecar["format"] == "safetensors"
    assert sidecar["exported_from"].endswith("encoder.safetensors")


def test_torchvision_export_to_a_folder_loads_into_timm(run_dir, tmp_path):
    source, state = run_dir
    folder = tmp_path / "out"
    folder.mkdir()
    result = export(source, "--out", folder, "--format", "torchvision")
    assert result.exit_code == 0, result.output
    exported = torch.load(folder / "encoder.pth", weights_only=True)
    assert exported.keys() == state.keys()
    assert_loads_into(timm.create_model("resnet18", pretrained=False), exported)
    assert json.loads((folder / "encoder.json").read_text())["pretext"] == "rotnet"


def test_format_follows_the_suffix_and_conflicts_are_refused(run_dir, tmp_path):
    source, _ = run_dir
    assert export(source, "--out", tmp_path / "r18.pth").exit_code == 0
    assert isinstance(torch.load(tmp_path / "r18.pth", weights_only=True), dict)
    result = export(source, "--out", tmp_path / "r18.pth", "--format", "safetensors")
    assert isinstance(result.exception, ConfigError) and "--format" in str(result.exception)


def test_json_names_the_written_files(run_dir, tmp_path):
    source, state = run_dir
    result = export(source, "--out", tmp_path / "r18.pth", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"encoder": str(tmp_path / "r18.pth"), "metadata": str(tmp_path / "r18.json"),
                                         "format": "torchvision"}
    assert torch.load(tmp_path / "r18.pth", weights_only=True).keys() == state.keys()


def test_a_folder_without_an_encoder_is_a_clear_error(tmp_path):
    result = export(tmp_path, "--out", tmp_path / "x.safetensors")
    assert isinstance(result.exception, DataError) and "encoder.safetensors" in str(result.exception)
