"""``sslbench list``: every registered component as a rich table."""

from __future__ import annotations

import inspect

import typer
from rich.table import Table

from sslbench.cli.app import app, console
from sslbench.errors import UnknownComponentError
from sslbench.registry import REGISTRIES, closest_hint, load_builtins


def _summary(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.splitlines()[0] if doc else ""


@app.command("list")
def list_components(kind: str = typer.Argument(None, help=f"One of: {', '.join(REGISTRIES)}. Default: all.")) -> None:
    """List registered pretext tasks, backbones, heads, datasets and suites."""
    from sslbench.cli.run import load_plugins_for_cli

    load_builtins()
    load_plugins_for_cli([])
    if kind is not None and kind not in REGISTRIES:
        raise UnknownComponentError(f"unknown component kind '{kind}'.{closest_hint(kind, REGISTRIES)} "
                                    f"Choose one of: {', '.join(REGISTRIES)}.")
    table = Table(title="sslbench components")
    for column in ("kind", "name", "defined in", "description"):
        table.add_column(column)
    for registry_kind, registry in REGISTRIES.items():
        if kind not in (None, registry_kind):
            continue
        for name, obj in sorted(registry.module_dict.items()):
            table.add_row(registry_kind, getattr(obj, "cli_name", name), obj.__module__, _summary(obj))
    console.print(table)
