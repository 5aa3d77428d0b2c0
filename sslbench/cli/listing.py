"""``sslbench list``: every registered component as a rich table."""

from __future__ import annotations

import inspect

import typer
from rich.table import Table

from sslbench.cli.app import app, console
from sslbench.errors import UnknownComponentError
from sslbench.registry import PRETEXTS, REGISTRIES, closest_hint, registered


def _summary(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.splitlines()[0] if doc else ""


def _pretext_rows() -> list[tuple[str, str, str]]:
    """Runnable ``--pretext`` names (config files and plugin classes), not bare class names."""
    from sslbench.config import pretext_config, pretext_names

    rows = []
    for name, description in sorted(pretext_names().items()):
        cls = PRETEXTS.get(pretext_config(name)["type"])
        rows.append((name, cls.__module__, description))
    return rows


# Kinds chosen by config name on the command line (--backbone resnet101, --preset smoke, --suite table1).
_CONFIG_KINDS = {"backbones": "backbone", "heads": "head", "presets": "preset", "suites": "suite"}
_KINDS = ("pretexts", "backbones", "heads", "datasets", "presets", "suites")


def _config_rows(kind: str) -> list[tuple[str, str, str]]:
    from sslbench.config import available, load_component

    return [(name, f"registry/{kind}/{name}.py", load_component(kind, name).get("description", ""))
            for name in available(kind)]


@app.command("list")
def list_components(
    kind: str = typer.Argument(None, help=f"One of: {', '.join(_KINDS)}. Default: all."),
    plugin: list[str] = typer.Option([], help="Extra plugin to load first: a .py file or an importable module."),
) -> None:
    """List runnable pretext tasks, backbones, heads, datasets, presets and suites."""
    from sslbench.cli.run import load_plugins_for_cli

    load_plugins_for_cli(plugin)
    if kind is not None and kind not in _KINDS:
        raise UnknownComponentError(f"unknown component kind '{kind}'.{closest_hint(kind, _KINDS)} "
                                    f"Choose one of: {', '.join(_KINDS)}.")
    table = Table(title="sslbench components")
    for column in ("kind", "name", "defined in", "description"):
        table.add_column(column)
    for listed in _KINDS:
        if kind not in (None, listed):
            continue
        if listed == "pretexts":
            rows = _pretext_rows()
        elif listed in _CONFIG_KINDS:
            rows = _config_rows(_CONFIG_KINDS[listed])
        else:
            rows = [(name, obj.__module__, _summary(obj)) for name, obj in sorted(registered(REGISTRIES[listed]).items())]
        for row in rows:
            table.add_row(listed, *row)
    console.print(table)
