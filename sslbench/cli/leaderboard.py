"""``sslbench leaderboard``: a suite's results in the paper's table layout, ours beside the paper's."""

from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path
from typing import Annotated, Literal

import typer

from sslbench.cli.app import app, console, print_json, warn
from sslbench.cli.options import AggregationMode, Json, StoreAsOut, StoreFolder, SuiteName, renamed
from sslbench.errors import ConfigError
from sslbench.eval.metrics import DEFAULT_AGGREGATION


@app.command()
def leaderboard(
    suite: Annotated[SuiteName, typer.Option(help="The suite (sslbench list suites).")],
    store: StoreFolder = None,
    format: Annotated[Literal["rich", "md", "csv"], typer.Option(help="rich (terminal), md or csv (printed; both "
                                                                     "files are written too).")] = "rich",
    aggregation: AggregationMode = typer.Option(DEFAULT_AGGREGATION, help="per_image_mean (mean of the per-image values, as "
                                    "the MoNuSeg challenge ranks) or summed (C and U summed over the test images)."),
    pairs: bool = typer.Option(False, "--pairs", help="Also print each strategy against scratch (or --against): the paired "
                                                      "difference over seeds (t-interval, verdict, power, seeds to "
                                                      "resolve it) and over test images "
                                                      "(leaderboard-<suite>-pairs.md/.csv)."),
    against: str | None = typer.Option(None, help="The strategy the pairs compare every other one with (e.g. a "
                                                 "control; implies --pairs): leaderboard-<suite>-pairs-<strategy>.md/.csv."),
    organs: bool = typer.Option(False, "--organs", help="Also print each strategy's score per organ of the test "
                                                        "images (leaderboard-<suite>-organs.md/.csv)."),
    runs: bool = typer.Option(False, "--runs", help="Also print one row per job: images it trained and validated on, "
                                                    "its score per test image, its time (leaderboard-<suite>-runs.md/.csv)."),
    postprocess: bool = typer.Option(False, "--postprocess", help="Also print, per job, how its post-processing "
                                                                  "choice carries to val images it was not chosen "
                                                                  "on (leaderboard-<suite>-postprocess.md/.csv)."),
    as_json: Json = False,
    out: StoreAsOut = None,
) -> None:
    """Print a suite's leaderboard and write leaderboard-<suite>.md/.csv beside the database (after
    merging the results that launched tasks left in --store)."""
    from sslbench.bench.leaderboard import (image_pairs, job_runs, select_rows, suite_leaderboard, to_csv, to_markdown,
                                            to_rich, write_board)
    from sslbench.bench.organs import organ_board
    from sslbench.bench.postprocessing import postprocess_board
    from sslbench.bench.store import Store, merge_results
    from sslbench.bench.suites import load_suite

    if as_json and format != "rich":
        raise ConfigError(f"--json and --format {format} both choose the output; pass one.")
    chosen = load_suite(suite)
    if organs and chosen.transfer:  # its rows mix training sets and test sets of other organs
        raise ConfigError(f"--organs reads the MoNuSeg organs of one test set; suite {suite} scores several, per "
                          "training set: drop --organs (--runs lists each job's score on every set).")
    if against is not None and against not in chosen.strategies:
        raise ConfigError(f"--against {against}: suite {suite} has no such strategy; pass one of "
                          f"{', '.join(chosen.strategies)}.")
    pairs, baseline = pairs or against is not None, against or "scratch"
    out = renamed("--store", store, "--out", out, Path("bench"))
    merge_results(out, warn)
    board = suite_leaderboard(out, chosen, aggregation)
    write_board(board, out, suite if aggregation == DEFAULT_AGGREGATION else f"{suite}-{aggregation}")
    boards = [board]
    pairs_name = "pairs" if baseline == "scratch" else f"pairs-{baseline}"
    wanted = {pairs_name: (partial(image_pairs, against=baseline), pairs), "organs": (organ_board, organs),
              "runs": (job_runs, runs), "postprocess": (postprocess_board, postprocess)}
    extras = {name: build for name, (build, asked) in wanted.items() if asked}
    if extras:
        suite_folds, rows, _ = select_rows(chosen, Store(out, create=False).rows())
    for name, build in extras.items():
        boards.append(build(suite_folds, rows))
        write_board(boards[-1], out, f"{suite}-{name}")
    if as_json:
        print_json([dataclasses.asdict(shown) for shown in boards])
        return
    for shown in boards:
        if format == "rich":
            console.print(to_rich(shown))
        else:
            console.print(to_markdown(shown) if format == "md" else to_csv(shown), markup=False, highlight=False,
                          soft_wrap=True)
