"""``sslbench bench``: run a suite's grid of jobs into a results store, then print its leaderboard."""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.table import Table

from sslbench.cli.app import app, console, json_on_stdout, print_json, warn
from sslbench.cli.options import (AllowSynthetic, Backbone, Compile, Data, Device, Head, Overrides, Plugins, Preset,
                                  ReaderName, SuiteName, TestData, Unlabeled, absolute)
from sslbench.cli.run import attach_log_file, load_plugins_for_cli
from sslbench.data.detect import FORMATS
from sslbench.errors import ConfigError
from sslbench.registry import closest_hint

if TYPE_CHECKING:
    from sslbench.bench.launch import LaunchOptions


Launcher = Literal["none", "local", "slurm"]


def _plugin_for_tasks(spec: str) -> str:
    """A plugin file by its absolute path: a launched task may start in another folder."""
    return str(Path(spec).resolve()) if spec.endswith(".py") or Path(spec).is_file() else spec


def _launch_options(launcher: str, partition: str | None, time: int | None, gpus: int | None, cpus: int | None,
                    args: list[str], parallel: int | None) -> LaunchOptions:
    from sslbench.bench.launch import LaunchOptions, check_launcher, slurm_args

    if launcher != "local" and parallel is not None:
        raise ConfigError("--local-parallel applies to --launcher local only; add --launcher local or drop it.")
    given = {"--slurm-partition": partition, "--slurm-time": time, "--slurm-gpus": gpus, "--slurm-cpus": cpus,
             "--slurm-arg": args or None}
    stray = [name for name, value in given.items() if value is not None]
    if launcher != "slurm" and stray:
        raise ConfigError(f"{stray[0]} applies to --launcher slurm only; add --launcher slurm or drop it.")
    defaults = LaunchOptions()
    launch = LaunchOptions(launcher, partition, defaults.slurm_time if time is None else time,
                           defaults.slurm_gpus if gpus is None else gpus, cpus, slurm_args(args), parallel)
    check_launcher(launch)
    return launch


TRANSFER_FORM = "NAME=PATH[,reader=READER] (e.g. tnbc=data/tnbc,reader=tnbc)"
DataReader = Annotated[ReaderName, typer.Option(help="Reader of --data (sslbench data inspect --reader), e.g. tnbc for "
                                                "its patient ids (--set split.group_by=patient). Default: detected.")]
TransferTest = Annotated[list[str], typer.Option("--transfer-test", metavar="NAME=PATH", help="Transfer suites: also "
                                                 "score every job on this labelled set of another source, "
                                                 f"{TRANSFER_FORM}; repeat it. Nothing is chosen on it.")]


def transfer_sets(specs: list[str]) -> dict[str, dict]:
    """``--transfer-test`` values as {name: {"path": absolute path, "reader": reader (only if given)}}. A
    path may hold commas: only a trailing ``,reader=NAME`` is read as the reader."""
    sets = {}
    for spec in specs:
        name, sep, rest = spec.partition("=")
        path, has_reader, reader = rest.rpartition(",reader=") if ",reader=" in rest else (rest, "", None)
        if not sep or not name or not path:
            raise ConfigError(f"--transfer-test expects {TRANSFER_FORM}, got '{spec}'.")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name):
            raise ConfigError(f"--transfer-test {name}: a set's NAME (its column) takes letters, digits, - and _, "
                              "starting with a letter.")
        if name in sets:
            raise ConfigError(f"--transfer-test {name} is given twice; give each test set its own NAME.")
        if has_reader and reader not in FORMATS:
            raise ConfigError(f"--transfer-test {name}: unknown reader '{reader}'.{closest_hint(reader, FORMATS)} "
                              f"Choose one of: {', '.join(FORMATS)}.")
        if not Path(path).is_dir():
            raise ConfigError(f"--transfer-test {name}={path}: no such folder; pass a labelled data folder.")
        sets[name] = {"path": absolute(Path(path)), **({"reader": reader} if has_reader else {})}
    return sets


SLURM = "SLURM (--launcher slurm)"
STATE_STYLES = {"done": "green", "checkpointed": "yellow", "pending": ""}


def show_plan(jobs: list[dict], suite: str, out: Path, as_json: bool) -> None:
    """``--dry-run``: the suite's jobs and their states, as a table or (``--json``) a JSON list."""
    if as_json:
        print_json(jobs)
        return
    counts = ", ".join(f"{sum(j['state'] == state for j in jobs)} {state}" for state in STATE_STYLES)
    table = Table(title=f"bench --dry-run: suite {suite} in {out}", caption=f"{len(jobs)} jobs: {counts}.",
                  caption_justify="left")
    for header in ("Key", "Strategy", "Fraction", "Protocol", "Seed", "Fold", "State"):
        table.add_column(header, justify="right" if header in ("Fraction", "Seed", "Fold") else "left")
    for job in jobs:
        fold = "—" if job["fold"] is None else str(job["fold"] + 1)
        state = job["state"]
        table.add_row(job["key"], job["strategy"], f"{job['fraction'] * 100:g} %", job["protocol"], str(job["seed"]), fold,
                      f"[{STATE_STYLES[state]}]{state}[/]" if STATE_STYLES[state] else state)
    console.print(table)


@app.command()
def bench(
    suite: Annotated[SuiteName, typer.Option(help="table1 (label fractions), table2 (strategies), table3 (ablation), "
                                                  "table4 (k-fold), controls, zoo, transfer (other sources' "
                                                  "test sets) (sslbench list suites).")],
    preset: Preset = "smoke",
    data: Data = None,
    reader: DataReader = None,
    test_data: TestData = None,
    transfer_test: TransferTest = [],  # noqa: B006
    unlabeled: Unlabeled = None,
    allow_synthetic: AllowSynthetic = False,
    seeds: Annotated[int, typer.Option(min=1, help="Seeds 0..N-1 per job; the leaderboard shows mean ± std.")] = 1,
    resample_splits: Annotated[bool, typer.Option(help="Redraw the train/val split and the labelled subset with "
                                                  "each seed (the test set stays): the std then also covers which "
                                                  "images happened to be labelled.")] = False,
    folds: Annotated[int, typer.Option(min=2, help="Folds for cross-validation suites (table4; default 5).")] = None,
    backbone: Backbone = None,
    head: Head = None,
    device: Device = "auto",
    out: Annotated[Path, typer.Option(help="Output folder: results.sqlite, encoders/, leaderboards.")] = Path("bench"),
    skip: Annotated[list[str], typer.Option(help="Leave a strategy of the suite out (e.g. imagenet without "
                                                 "weights).")] = [],  # noqa: B006  (typer reads the default)
    fraction: Annotated[list[float], typer.Option("--fraction", help="Run only these label fractions of the suite "
                                                  "(repeat it, e.g. --fraction 1.0 --fraction 0.1); default: all.")] = [],  # noqa: B006
    force: Annotated[bool, typer.Option(help="Re-run the suite's finished jobs and re-pretrain their encoders "
                                             "(other suites' work in --out stays).")] = False,
    compile_: Compile = False,
    plugin: Plugins = [],  # noqa: B006
    set_: Overrides = [],  # noqa: B006
    launcher: Annotated[Launcher, typer.Option(help="none: run the jobs in this process. slurm: submit them as SLURM "
                                               "job arrays through submitit (one task per pretraining, its "
                                               "finetunings after it) and return; `sslbench leaderboard` shows the "
                                               "results later. local: the same tasks as processes on this machine, "
                                               "--local-parallel at a time; waits for them.")] = "none",
    slurm_partition: Annotated[str, typer.Option(help="Partition for every task.", rich_help_panel=SLURM)] = None,
    slurm_time: Annotated[int, typer.Option(min=1, help="Time limit per task in minutes (default 1440).",
                                            rich_help_panel=SLURM)] = None,
    slurm_gpus: Annotated[int, typer.Option(min=0, help="GPUs per task (default 1).", rich_help_panel=SLURM)] = None,
    slurm_cpus: Annotated[int, typer.Option(min=1, help="CPUs per task (default: the cluster's).",
                                            rich_help_panel=SLURM)] = None,
    slurm_arg: Annotated[list[str], typer.Option(help="Any other sbatch option as KEY=VALUE (mem=64G, account=lab, "
                                                 "qos=high …).", rich_help_panel=SLURM)] = [],  # noqa: B006
    local_parallel: Annotated[int, typer.Option(min=1, help="Tasks running at once (--launcher local). Default: one "
                                                "per GPU visible to bench (CUDA_VISIBLE_DEVICES), each task on its "
                                                "own GPU, or 1 without GPUs or with --device cpu or cuda:N.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the suite's jobs (key, strategy, fraction, seed, "
                                          "fold) and their state: done (in the store: skipped), checkpointed (resumes "
                                          "saved work: a checkpoint or its finished encoder) or pending; train "
                                          "nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON: jobs run and skipped, the "
                                          "leaderboard and the files written (progress goes to stderr); with "
                                          "--dry-run, the jobs as a JSON list.")] = False,
) -> None:
    """Run a benchmark suite; finished jobs in --out are skipped, so re-running resumes."""
    from sslbench.bench.leaderboard import suite_leaderboard, to_rich, write_board
    from sslbench.bench.plan import BenchOptions
    from sslbench.bench.runner import run_suite, suite_plan
    from sslbench.bench.suites import fitted_to_backbone, load_suite
    from sslbench.config import preset_backbone

    load_plugins_for_cli(plugin)
    launch = _launch_options(launcher, slurm_partition, slurm_time, slurm_gpus, slurm_cpus, slurm_arg, local_parallel)
    backbone = preset_backbone(preset, backbone)
    options = BenchOptions(fitted_to_backbone(load_suite(suite, folds, skip, fraction), backbone, warn), out, preset,
                           backbone, device,
                           seeds, absolute(data), absolute(test_data), absolute(unlabeled),
                           [*set_, *(["engine.compile=True"] if compile_ else []),
                            *(["split.resample_per_seed=True"] if resample_splits else [])], force,
                           [_plugin_for_tasks(p) for p in plugin], allow_synthetic, head, reader,
                           transfer_sets(transfer_test))
    if dry_run:
        show_plan(suite_plan(options, warn), suite, out, as_json)
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {out} ({exc.strerror}); pass a writable --out.") from None
    handler = attach_log_file(out / "log.txt")
    try:
        with json_on_stdout(as_json):
            summary = run_suite(options, console, launch, warn)
    finally:
        logging.getLogger("sslbench").removeHandler(handler)
        handler.close()
    if "job_ids" in summary:
        if as_json:
            print_json(summary)
            return
        ids = summary["job_ids"]
        console.print(f"Submitted {summary['submitted']} jobs to SLURM ({summary['skipped']} already done) as SLURM "
                      f"jobs {' '.join(ids)} (squeue -j {','.join(ids)}); logs in {out / 'submitit'}. Once they "
                      f"have finished: sslbench leaderboard --suite {suite} --store {out}", highlight=False,
                      soft_wrap=True)
        return
    board = suite_leaderboard(out, options.suite)
    written = write_board(board, out, suite)
    if as_json:
        print_json({**summary, "leaderboard": dataclasses.asdict(board), "written": written})
        return
    console.print(f"{summary['ran']} jobs run, {summary['skipped']} already done (skipped).")
    console.print(to_rich(board))
    for path in written:
        console.print(f"Wrote {path}")
