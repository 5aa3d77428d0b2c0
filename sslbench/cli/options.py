"""Options several commands share, declared once (typer ``Annotated`` aliases). Choices that come from
config files (presets, suites) are checked by click before any work; pretexts and backbones are
checked after plugins load, since a plugin may add one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from sslbench.cli.app import warn
from sslbench.config import available
from sslbench.data.detect import FORMATS
from sslbench.errors import ConfigError
from sslbench.eval.metrics import AGGREGATION_MODES

PresetName = Literal[tuple(available("preset"))]
SuiteName = Literal[tuple(available("suite"))]
AggregationMode = Literal[AGGREGATION_MODES]
ReaderName = Literal[FORMATS]

Preset = Annotated[PresetName, typer.Option(help="Sizes and schedules: smoke (CPU, synthetic demo), cpu (real data, "
                                                 "2-core CPU), mini (one GPU), paper.")]
Data = Annotated[Path, typer.Option(help="Labelled data folder (MoNuSeg, image+label folder). Default: the built-in "
                                         "synthetic H&E data.")]
TestData = Annotated[Path, typer.Option(help="Separate labelled test set (e.g. MoNuSeg's 14 test images); without it "
                                             "split.test_ratio of --data is held out (seeded).")]
Unlabeled = Annotated[Path, typer.Option(help="Extra unlabelled images for pretraining only.")]
AllowSynthetic = Annotated[bool, typer.Option(help="Run a real-data preset (cpu, mini, paper) on the synthetic default "
                                                   "data anyway (a pipeline check, not a reproduction).")]
Backbone = Annotated[str, typer.Option(help="Encoder (sslbench list backbones, or any smp encoder, timm's as "
                                            "tu-NAME). Default: the preset's (cpu: resnet34), else resnet101.")]
Head = Annotated[str, typer.Option(help="Segmentation head (sslbench list heads). Default: unetr for a ViT backbone, "
                                        "else unet (the paper's ResUNet).")]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1 …")]
Compile = Annotated[bool, typer.Option("--compile", help="torch.compile the encoder and ResUNet (minutes of "
                                                         "compilation; pays off on long GPU runs).")]
Plugins = Annotated[list[str], typer.Option("--plugin", help="Extra plugin: a .py file or an importable module.")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")]
StoreFolder = Annotated[Path, typer.Option("--store", help="The bench folder to read (holding results.sqlite). "
                                                            "Default: bench.")]
#: --out on a command that reads a bench folder: --out names an output everywhere else
StoreAsOut = Annotated[Path, typer.Option("--out", hidden=True, help="Deprecated: use --store.")]
Overrides = Annotated[list[str], typer.Option("--set", help="Override a config value: KEY=VALUE, e.g. "
                                              "finetune.steps=200 or pretext.weights=resnet101.pth. In bench, "
                                              "pretext.* keys reach only the strategies that take them.")]


def absolute(path: Path | None) -> str | None:
    """A data folder as the config records it: absolute, so a run or task that starts in another folder
    (a resumed run, a launched task) reads the same one."""
    return None if path is None else str(path.resolve())


def renamed(new: str, value, old: str, old_value, default=None):
    """The value of option ``new``, once called ``old``: the old name still works, with a one-line warning."""
    if old_value is None:
        return default if value is None else value
    if value is not None:
        raise ConfigError(f"{old} is the old name of {new}; pass {new} only.")
    warn(f"{old} is deprecated here, use {new}; {old} will stop working in a later version.")
    return old_value
