"""``sslbench list``: every registered component as a rich table."""

from __future__ import annotations

import inspect

import typer
from rich.table import Table

from sslbench.cli.app import app, console
from sslbench.errors import UnknownComponentError
from sslbench.registry import PRETEXTS, REGISTRIES, closest_hint, load_builtins


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


@app.command("list")
def list_components(
    kind: str = typer.Argument(None, help=f"One of: {', '.join(REGISTRIES)}. Default: all."),
    plugin: list[str] = typer.Option([], help="Extra plugin to load first: a .py file or an importable module."),
) -> None:
    """List runnable pretext tasks, and registered backbones, heads, datasets and suites."""
    from sslbench.cli.run import load_plugins_for_cli

    load_builtins()
    load_plugins_for_cli(plugin)
    if kind is not None and kind not in REGISTRIES:
        raise UnknownComponentError(f"unknown component kind '{kind}'.{closest_hint(kind, REGISTRIES)} "
                                    f"Choose one of: {', '.join(REGISTRIES)}.")
    table = Table(title="sslbench components")
    for column in ("kind", "name", "defined in", "description"):
        table.add_column(column)
    for registry_kind, registry in REGISTRIES.items():
        if kind not in (None, registry_kind):
            continue
        if registry is PRETEXTS:
            rows = _pretext_rows()
        else:
            rows = [(getattr(obj, "cli_name", name), obj.__module__, _summary(obj))
                    for name, obj in sorted(registry.module_dict.items())]
        for row in rows:
            table.add_row(registry_kind, *row)
    console.print(table)
