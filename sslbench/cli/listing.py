"""``sslbench list``: every registered component as a rich table."""

from __future__ import annotations

import inspect
from typing import Annotated

import typer
from rich.table import Table

from sslbench.cli.app import app, console, print_json
from sslbench.cli.options import Plugins
from sslbench.errors import UnknownComponentError
from sslbench.registry import REGISTRIES, closest_hint, registered


def _summary(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.splitlines()[0] if doc else ""


def _named_rows(kind: str) -> list[tuple[str, str, str]]:
    """Names usable as ``--pretext``/``--backbone`` (config files and plugin classes), not bare class names."""
    from sslbench.config import component_config, component_names, config_root

    rows = []
    for name, description in sorted(component_names(kind).items()):
        if (config_root() / kind / f"{name}.py").is_file():
            where = f"registry/{kind}/{name}.py"
        else:
            where = REGISTRIES[f"{kind}s"].get(component_config(kind, name)["type"]).__module__
        rows.append((name, where, description))
    return rows


# Kinds chosen by name on the command line: --pretext/--backbone/--head also take plugin classes
_NAMED_KINDS = {"pretexts": "pretext", "backbones": "backbone", "heads": "head"}
_CONFIG_KINDS = {"presets": "preset", "suites": "suite"}
_KINDS = ("pretexts", "backbones", "heads", "datasets", "presets", "suites")


def _config_rows(kind: str) -> list[tuple[str, str, str]]:
    from sslbench.config import available, load_component

    return [(name, f"registry/{kind}/{name}.py", load_component(kind, name).get("description", ""))
            for name in available(kind)]


@app.command("list")
def list_components(
    kind: str = typer.Argument(None, help=f"One of: {', '.join(_KINDS)}. Default: all."),
    plugin: Plugins = [],  # noqa: B006  (typer reads the default; it is never mutated)
    as_json: Annotated[bool, typer.Option("--json", help="Print {kind: [{name, defined_in, description}]} "
                                                         "instead of a table.")] = False,
) -> None:
    """List runnable pretext tasks, backbones, heads, datasets, presets and suites."""
    from sslbench.cli.run import load_plugins_for_cli

    load_plugins_for_cli(plugin)
    if kind is not None and kind not in _KINDS:
        raise UnknownComponentError(f"unknown component kind '{kind}'.{closest_hint(kind, _KINDS)} "
                                    f"Choose one of: {', '.join(_KINDS)}.")
    components = {listed: _rows(listed) for listed in _KINDS if kind in (None, listed)}
    if as_json:
        print_json({name: [dict(zip(("name", "defined_in", "description"), row)) for row in rows]
                    for name, rows in components.items()})
        return
    table = Table(title="sslbench components")
    for column in ("kind", "name", "defined in", "description"):
        table.add_column(column)
    for name, rows in components.items():
        for row in rows:
            table.add_row(name, *row)
    console.print(table)


def _rows(kind: str) -> list[tuple[str, str, str]]:
    """(name, where it is defined, description) of every component of ``kind``."""
    if kind in _NAMED_KINDS:
        return _named_rows(_NAMED_KINDS[kind])
    if kind in _CONFIG_KINDS:
        return _config_rows(_CONFIG_KINDS[kind])
    return [(name, obj.__module__, _summary(obj)) for name, obj in sorted(registered(REGISTRIES[kind]).items())]
