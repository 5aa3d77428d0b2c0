"""``sslbench status DIR``: a bench folder's finished rows, its running and paused jobs, its launched tasks."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sslbench.cli.app import app, console, print_json, warn
from sslbench.cli.options import Json

STYLES = {"running": "green", "paused": "yellow", "finished": "green", "failed": "red", "stopped": "yellow"}


def _styled(state: str) -> str:
    return f"[{STYLES[state]}]{state}[/]" if state in STYLES else state


def _finished_table(found: dict) -> Table:
    table = Table(title=f"finished rows: {found['rows']}", caption_justify="left",
                  caption="Suite: the suite that first ran the job (suites share identical jobs).")
    for header in ("Suite", "Strategy", "Fraction", "Protocol", "Fold", "Seeds", "Rows"):
        table.add_column(header, justify="right" if header in ("Fraction", "Fold", "Rows") else "left")
    for group in found["finished"]:
        fold = "—" if group["fold"] is None else str(group["fold"] + 1)
        table.add_row(group["suite"], group["strategy"], f"{group['fraction'] * 100:g} %", group["protocol"], fold,
                      ", ".join(map(str, group["seeds"])), str(len(group["seeds"])))
    return table


def _unfinished_table(found: dict) -> Table:
    table = Table(title="unfinished jobs", caption_justify="left",
                  caption="running: a process trains it now; paused: re-running its bench resumes it from the step "
                          "saved.")
    for header in ("Job", "Phase", "Key", "Step", "Saved (UTC)", "State"):
        table.add_column(header, justify="right" if header == "Step" else "left", overflow="fold")
    for job in found["unfinished"]:
        step = "none saved yet" if job["step"] is None else f"{job['step']}/{job['steps'] or '?'}"
        table.add_row(job["job"] or "?", job["phase"], job["key"], step, job["saved_at"] or "—",
                      _styled(job["state"]))
    return table


def _tasks_table(found: dict) -> Table:
    counts = Counter(task["state"] for task in found["tasks"])
    table = Table(title="launched tasks (--launcher local|slurm)", caption_justify="left",
                  caption=", ".join(f"{count} {state}" for state, count in counts.items()) + ".")
    for header in ("Task id", "Task", "Job", "State"):
        table.add_column(header)
    for task in found["tasks"]:
        table.add_row(task["id"], task["task"], task["job"], _styled(task["state"]))
    return table


@app.command()
def status(
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="The bench folder (the --out of sslbench "
                                                               "bench).")] = Path("bench"),
    as_json: Json = False,
) -> None:
    """A bench folder's finished rows (per suite, strategy, label fraction and fold, with their seeds), its
    running and paused jobs with the step each last saved, and the state of the tasks bench launched."""
    from sslbench.bench.status import bench_status

    found = bench_status(folder, warn)
    if as_json:
        print_json(found)
        return
    running = "a bench is running over it" if found["bench_running"] else "no bench is running over it"
    console.print(f"Bench folder {folder}: {running}.", highlight=False, soft_wrap=True)
    console.print(_finished_table(found))
    if found["unfinished"]:
        console.print(_unfinished_table(found))
    else:
        console.print("No unfinished jobs: nothing running, nothing to resume.")
    if found["tasks"]:
        console.print(_tasks_table(found))
