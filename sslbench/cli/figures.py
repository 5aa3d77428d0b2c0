"""``sslbench figures``: PNG figures from a bench output folder."""

from __future__ import annotations

from pathlib import Path

import typer

from sslbench.cli.app import app, console, warn
from sslbench.cli.options import SuiteName


@app.command()
def figures(
    out: Path = typer.Option(Path("bench"), help="The bench output folder (holding results.sqlite)."),
    suite: SuiteName = typer.Option(None, help="Only this suite's jobs; its grid drives the fraction plot "
                                         "(default table1)."),
) -> None:
    """AJI vs label fraction (Table 1), GT/scratch/SSL overlays (Fig. 4), density maps (Fig. 3)."""
    from sslbench.bench.figures import make_figures
    from sslbench.bench.store import merge_results

    merge_results(out, warn)  # results of launched tasks not merged yet
    for name, result in make_figures(out, suite).items():
        console.print(f"{name}: {result}" if isinstance(result, Path) else f"{name}: skipped — {result}",
                      highlight=False, soft_wrap=True)
