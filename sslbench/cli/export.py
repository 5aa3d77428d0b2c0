"""``sslbench export``: copy a run's pretrained encoder where the user wants it.

The encoder's keys are smp's ``ResNetEncoder`` keys, which are torchvision's (and timm's) ResNet keys
without ``fc.*``: conv1, bn1, layer1.0.conv1 … layer4.2.bn3, layerN.0.downsample.{0,1}. So both
formats load into ``torchvision.models.resnet101()`` / ``timm.create_model("resnet101")`` with
``load_state_dict(state, strict=False)``, leaving only the classifier (fc.weight, fc.bias) missing.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import typer

from sslbench.cli.app import app, console, print_json
from sslbench.cli.options import Json
from sslbench.engine.weights import atomic_write, load_encoder, save_encoder
from sslbench.errors import ConfigError, DataError

FORMATS = {"safetensors": ".safetensors", "torchvision": ".pth"}
_SUFFIX_FORMAT = {".safetensors": "safetensors", ".pth": "torchvision", ".pt": "torchvision"}


def export_target(out: Path, fmt: str | None) -> tuple[Path, str]:
    """Where to write and in which format: a folder gets encoder.<ext>; a file's suffix implies the format."""
    if fmt is not None and fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got '{fmt}'.")
    if out.is_dir() or not out.suffix:
        fmt = fmt or "safetensors"
        return out / f"encoder{FORMATS[fmt]}", fmt
    implied = _SUFFIX_FORMAT.get(out.suffix)
    if implied is None or fmt not in (None, implied):
        raise ConfigError(f"--out {out}: end the file name in .safetensors (--format safetensors) or "
                          ".pth/.pt (--format torchvision), or pass a folder.")
    return out, implied


def export_encoder(source: Path, out: Path, fmt: str | None = None) -> Path:
    """Write the encoder of run folder (or encoder .safetensors file) ``source`` to ``out``."""
    from sslbench.pipeline.run_folder import RunFolder

    weights = RunFolder(source).encoder.path if source.is_dir() else source
    if not weights.is_file():
        raise DataError(f"{source}: no encoder.safetensors here; pass a finished run folder of sslbench run.")
    state = load_encoder(weights)
    sidecar = weights.with_suffix(".json")
    metadata = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
    metadata.update(exported_from=str(weights), key_layout="torchvision/timm ResNet without fc.*")
    target, fmt = export_target(out, fmt)
    if fmt == "safetensors":
        return save_encoder(state, target, dict(metadata, format="safetensors"))
    atomic_write(target, lambda tmp: torch.save(state, tmp))
    metadata["format"] = "torchvision state dict (torch.save)"
    atomic_write(target.with_suffix(".json"), lambda tmp: tmp.write_text(json.dumps(metadata, indent=2, default=str)))
    return target


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="A run folder (holding encoder.safetensors) or the .safetensors file."),
    out: Path = typer.Option(..., help="Output file (.safetensors, .pth) or folder."),
    format_: str = typer.Option(None, "--format", help="safetensors or torchvision (a .pth state dict). "
                                "Default: from the --out suffix, else safetensors."),
    as_json: Json = False,
) -> None:
    """Export a pretrained encoder: ResNet keys that load into smp, torchvision and timm models."""
    target = export_encoder(run_dir, out, format_)
    if as_json:
        print_json({"encoder": target, "metadata": target.with_suffix(".json"),
                    "format": _SUFFIX_FORMAT[target.suffix]})
        return
    console.print(f"Wrote {target} and {target.with_suffix('.json').name}: loads into "
                  "torchvision/timm ResNets with load_state_dict(..., strict=False) (only fc.* missing).")
