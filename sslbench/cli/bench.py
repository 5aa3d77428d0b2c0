"""``sslbench bench``: run a suite's grid of jobs into a results store, then print its leaderboard."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from sslbench.cli.app import app, console
from sslbench.cli.run import attach_log_file, load_plugins_for_cli
from sslbench.errors import ConfigError
from sslbench.registry import load_builtins


def _absolute(path: Path | None) -> str | None:
    return None if path is None else str(path.resolve())


@app.command()
def bench(
    suite: str = typer.Option(..., help="table1 (label fractions), table2 (strategies), table3 (ablation), "
                                        "table4 (k-fold)."),
    preset: str = typer.Option("smoke", help="Sizes and schedules: smoke (CPU), mini (one GPU), paper."),
    data: Path = typer.Option(None, help="Labelled data folder. Default: the built-in synthetic H&E data."),
    test_data: Path = typer.Option(None, help="Separate labelled test set (e.g. MoNuSeg's 14 test images); "
                                              "without it split.test_ratio of --data is held out (seeded)."),
    unlabeled: Path = typer.Option(None, help="Extra unlabelled images for pretraining only."),
    seeds: int = typer.Option(1, help="Seeds 0..N-1 per job; the leaderboard shows mean ± std."),
    folds: int = typer.Option(None, help="Folds for cross-validation suites (table4; default 5)."),
    backbone: str = typer.Option("resnet101", help="Encoder (sslbench list backbones)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:1 …"),
    out: Path = typer.Option(Path("bench"), help="Output folder: results.sqlite, encoders/, leaderboards."),
    skip: list[str] = typer.Option([], help="Leave a strategy of the suite out (e.g. imagenet without weights)."),
    force: bool = typer.Option(False, help="Re-run finished jobs and re-pretrain encoders."),
    plugin: list[str] = typer.Option([], help="Extra plugin: a .py file or an importable module."),
    set_: list[str] = typer.Option([], "--set", help="Override a config value in every job: KEY=VALUE. "
                                   "pretext.* keys reach only the strategies that take them "
                                   "(pretext.weights=resnet101.pth for imagenet)."),
) -> None:
    """Run a benchmark suite; finished jobs in --out are skipped, so re-running resumes."""
    from sslbench.bench.leaderboard import suite_leaderboard, to_rich, write_board
    from sslbench.bench.suites import BenchOptions, load_suite, run_suite

    load_builtins()
    load_plugins_for_cli(plugin)
    if seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {seeds}.")
    options = BenchOptions(load_suite(suite, folds, skip), out, preset, backbone, device, seeds, _absolute(data),
                           _absolute(test_data), _absolute(unlabeled), list(set_), force)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {out} ({exc.strerror}); pass a writable --out.") from None
    handler = attach_log_file(out / "log.txt")
    try:
        summary = run_suite(options, console)
    finally:
        logging.getLogger("sslbench").removeHandler(handler)
        handler.close()
    console.print(f"{summary['ran']} jobs run, {summary['skipped']} already done (skipped).")
    board = suite_leaderboard(out, options.suite)
    console.print(to_rich(board))
    for path in write_board(board, out, suite):
        console.print(f"Wrote {path}")
