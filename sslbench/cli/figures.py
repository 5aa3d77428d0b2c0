"""``sslbench figures``: PNG figures from a bench folder."""

from __future__ import annotations

from pathlib import Path

import typer

from sslbench.cli.app import app, console, warn
from sslbench.cli.options import Plugins, StoreAsOut, StoreFolder, SuiteName, renamed
from sslbench.cli.run import load_plugins_for_cli


@app.command()
def figures(
    store: StoreFolder = None,
    suite: SuiteName = typer.Option(None, help="Only this suite's jobs; its grid drives the fraction plot "
                                         "(default table1)."),
    plugin: Plugins = [],  # noqa: B006  (typer reads the default; it is never mutated)
    out: StoreAsOut = None,
) -> None:
    """AJI vs label fraction (Table 1), GT/scratch/SSL overlays (Fig. 4), density maps (Fig. 3), written to
    figures/ in the bench folder."""
    from sslbench.bench.figures import make_figures
    from sslbench.bench.store import merge_results

    load_plugins_for_cli(plugin)  # the density maps build the encoders
    store = renamed("--store", store, "--out", out, Path("bench"))
    merge_results(store, warn)  # results of launched tasks not merged yet
    for name, result in make_figures(store, suite).items():
        console.print(f"{name}: {result}" if isinstance(result, Path) else f"{name}: skipped — {result}",
                      highlight=False, soft_wrap=True)
