"""``sslbench leaderboard``: a suite's results in the paper's table layout, ours beside the paper's."""

from __future__ import annotations

from pathlib import Path

import typer

from sslbench.cli.app import app, console, warn
from sslbench.errors import ConfigError
from sslbench.eval.metrics import DEFAULT_AGGREGATION

FORMATS = ("rich", "md", "csv")


@app.command()
def leaderboard(
    suite: str = typer.Option(..., help="table1, table2, table3 or table4."),
    out: Path = typer.Option(Path("bench"), help="The bench output folder (holding results.sqlite)."),
    format: str = typer.Option("rich", help="rich (terminal), md or csv (printed; both files are written too)."),
    aggregation: str = typer.Option("per_image_mean", help="per_image_mean (mean of the per-image values, as "
                                    "the MoNuSeg challenge ranks) or summed (C and U summed over the test images)."),
) -> None:
    """Print a suite's leaderboard and write leaderboard-<suite>.md/.csv beside the database (after
    merging the results that launched tasks left in --out)."""
    from sslbench.bench.leaderboard import suite_leaderboard, to_csv, to_markdown, to_rich, write_board
    from sslbench.bench.store import merge_results
    from sslbench.bench.suites import load_suite

    if format not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got '{format}'.")
    merge_results(out, warn)
    board = suite_leaderboard(out, load_suite(suite), aggregation)
    write_board(board, out, suite if aggregation == DEFAULT_AGGREGATION else f"{suite}-{aggregation}")
    if format == "rich":
        console.print(to_rich(board))
    else:
        console.print(to_markdown(board) if format == "md" else to_csv(board), markup=False, highlight=False,
                      soft_wrap=True)
