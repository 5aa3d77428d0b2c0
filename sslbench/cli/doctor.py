"""``sslbench doctor``: what this installation computes with and what it can see, before a long run
(and to paste into a bug report)."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

import sslbench
from sslbench.cli.app import app, console
from sslbench.cli.options import Device, Plugins

# the data folder beside the repository, as README and docs/results.md name it (../shared/data)
SHARED_DATA = Path(sslbench.__file__).resolve().parents[1].parent / "shared" / "data"
SHARED_FOLDERS = ("monuseg2018_train", "monuseg2018_test", "tnbc", "unlabeled_he")


def torch_build() -> str:
    import torch

    if torch.version.cuda:
        return f"CUDA {torch.version.cuda}"
    if getattr(torch.version, "hip", None):
        return f"ROCm {torch.version.hip}"
    return "CPU"


def diagnose(device_name: str, shared_data: Path, plugins: list[str]) -> dict:
    """Everything ``doctor`` reports, as JSON-ready values. ``arithmetic`` is the record ``sslbench run``
    with its defaults would write on ``device_name``."""
    import torch

    from sslbench.cli.run import load_plugins_for_cli
    from sslbench.config import resolve_run_config
    from sslbench.engine.accel import arithmetic, cpu_has_native_bf16
    from sslbench.pipeline.phases import acceleration, resolve_device
    from sslbench.registry import REGISTRIES, registered

    installed = load_plugins_for_cli(plugins)
    device = resolve_device(device_name)
    cuda = torch.cuda.is_available()
    return {
        "sslbench": sslbench.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_build": torch_build(),
        "cuda_available": cuda,
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
        "cpu_native_bf16": cpu_has_native_bf16(),
        "threads": torch.get_num_threads(),
        "device": str(device),
        "arithmetic": arithmetic(acceleration(resolve_run_config("instance_aware"), device), device),
        "plugins": installed,
        # components a plugin (installed or --plugin) added beside the built-ins
        "plugin_components": {kind: sorted(name for name, cls in registered(registry).items()
                                           if not cls.__module__.startswith("sslbench."))
                              for kind, registry in REGISTRIES.items()},
        "shared_data": {"path": str(shared_data),
                        "folders": {name: (shared_data / name).is_dir() for name in SHARED_FOLDERS}},
    }


def report_table(found: dict) -> Table:
    from sslbench.engine.accel import describe_arithmetic

    def yes_no(value: bool) -> str:
        return "[green]yes[/]" if value else "[yellow]no[/]"

    table = Table(title="sslbench doctor", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("sslbench", found["sslbench"])
    table.add_row("python", found["python"])
    table.add_row("torch", f"{found['torch']} ({found['torch_build']} build)")
    table.add_row("GPU (CUDA)", yes_no(found["cuda_available"]) + "".join(f"\n{escape(name)}"
                                                                          for name in found["cuda_devices"]))
    table.add_row("CPU computes bf16 natively", yes_no(found["cpu_native_bf16"]) + (
        " (bf16 autocast and channels_last on CPU)" if found["cpu_native_bf16"] else " (CPU runs keep fp32)"))
    table.add_row("torch threads", str(found["threads"]))
    table.add_row(f"arithmetic of a run on {found['device']}", escape(describe_arithmetic(found["arithmetic"])))
    added = [f"{kind}: {', '.join(names)}" for kind, names in found["plugin_components"].items() if names]
    table.add_row("installed plugins", escape(", ".join(found["plugins"]) or "none"))
    table.add_row("plugin components", escape("; ".join(added) or "none"))
    folders = found["shared_data"]["folders"].items()
    table.add_row(f"shared data ({escape(found['shared_data']['path'])})",
                  "\n".join(f"{'[green]found' if seen else '[yellow]missing'}[/] {name}" for name, seen in folders))
    return table


@app.command()
def doctor(
    device: Device = "auto",
    shared_data: Annotated[Path, typer.Option(help="Folder expected to hold the shared data sets.")] = SHARED_DATA,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
    plugin: Plugins = [],  # noqa: B006  (typer reads the default; it is never mutated)
) -> None:
    """Versions, torch build, GPU, bf16, threads, a run's arithmetic, plugins and the shared data."""
    found = diagnose(device, shared_data, plugin)
    if as_json:
        print(json.dumps(found, indent=2))
    else:
        console.print(report_table(found))
