"""Does the post-processing chosen on a job's validation images carry to images it was not chosen on?
Estimated from the grid scores each row keeps (``scores.postprocess.grid``: every grid point's AJI on
every val image), with no prediction run again. The chosen point's own val AJI is optimistic: the
`cpu` grid tries 108 points on 6 images."""

from __future__ import annotations

import inspect
import statistics
from collections import defaultdict

import numpy as np

from sslbench.bench.leaderboard import Board, Cell, Row, strategy_label
from sslbench.bench.stats import mean_and_interval
from sslbench.bench.suites import Suite
from sslbench.eval.postprocess import probabilities_to_instances


def choose(scores: np.ndarray) -> int:
    """The grid point (a row of ``scores``: points × images) of highest mean AJI, the first of equals, as
    ``best_postprocess`` chooses."""
    return int(np.argmax(scores.mean(axis=1)))


def leave_one_image_out(scores: np.ndarray) -> float | None:
    """The mean over images of each image's AJI under the point chosen on the other images (None
    below two images)."""
    images = scores.shape[1]
    if images < 2:
        return None
    return float(np.mean([scores[choose(np.delete(scores, i, axis=1)), i] for i in range(images)]))


def default_point(grid: list[dict], min_area: int) -> int | None:
    """The grid point that is the plain evaluation (``probabilities_to_instances``' defaults with the
    preset's ``evaluation.min_area``: argmax classes), if the grid holds it."""
    defaults = {name: p.default for name, p in inspect.signature(probabilities_to_instances).parameters.items()
                if p.default is not inspect.Parameter.empty} | {"min_area": min_area}
    return next((i for i, entry in enumerate(grid) if entry["values"] == {k: defaults[k] for k in entry["values"]}),
                None)


def _jobs(rows: list[dict]) -> dict[tuple, list[dict]]:
    """The rows that kept their grid, by grid (only rows tried on the same points can share a choice)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        post = row["scores"].get("postprocess", {})
        if post.get("grid"):
            groups[tuple(repr(entry["values"]) for entry in post["grid"])].append(row)
    return groups


def _scores(row: dict) -> np.ndarray:
    return 100 * np.array([entry["aji"] for entry in row["scores"]["postprocess"]["grid"]])


def pooled_elsewhere(row: dict, others: list[dict]) -> tuple[int, float] | None:
    """One point for every job, chosen on the other jobs' val images that are not this job's (so no image
    is both chosen on and scored), and this job's val AJI under it."""
    mine = set(row["scores"]["postprocess"]["val_names"])
    columns = [[i for i, name in enumerate(other["scores"]["postprocess"]["val_names"]) if name not in mine]
               for other in others]
    pooled = [_scores(other)[:, kept] for other, kept in zip(others, columns) if other is not row and kept]
    if not pooled:
        return None
    point = choose(np.concatenate(pooled, axis=1))
    return point, float(_scores(row)[point].mean())


def _seed_interval(per_job: list[tuple[int, float]]) -> str:
    """Mean of per-job values with a t-interval over seeds (each seed's jobs averaged first: jobs of one
    seed share their val images, so they are not independent)."""
    by_seed: dict[int, list[float]] = defaultdict(list)
    for seed, value in per_job:
        by_seed[seed].append(value)
    means = [statistics.fmean(v) for v in by_seed.values()]
    return mean_and_interval(means) + (f", 95 % t over {len(means)} seeds" if len(means) > 1 else
                                       f" ({len(means)} seed: no interval)")


def postprocess_board(suite: Suite, rows: list[dict]) -> Board:
    """One row per job that kept its grid: val AJI of the point it chose (in-sample), of the choice left
    one val image out, of the plain evaluation, and of one point chosen for all on other jobs' images."""
    board_rows, notes = [], []
    missing = sum(1 for r in rows if not r["scores"].get("postprocess", {}).get("grid"))
    for jobs in _jobs(rows).values():
        jobs = sorted(jobs, key=lambda r: (suite.strategies.index(r["strategy"]), -r["fraction"], r["seed"]))
        grid = jobs[0]["scores"]["postprocess"]["grid"]
        plain = default_point(grid, jobs[0]["config"]["evaluation"]["min_area"])
        loo_vs_plain, pooled_vs_loo = [], []
        for row in jobs:
            post, scores = row["scores"]["postprocess"], _scores(row)
            loo = leave_one_image_out(scores)
            pooled = pooled_elsewhere(row, jobs)
            plain_aji = None if plain is None else float(scores[plain].mean())
            if loo is not None and plain_aji is not None:
                loo_vs_plain.append((row["seed"], loo - plain_aji))
            if loo is not None and pooled is not None:
                pooled_vs_loo.append((row["seed"], pooled[1] - loo))
            chosen = ", ".join(f"{k} {v}" for k, v in post["values"].items())
            board_rows.append(Row(strategy_label(row["strategy"]), [
                Cell(text=f"{row['fraction'] * 100:g} %"), Cell(text=str(row["seed"])),
                Cell(text=str(len(post["val_names"]))), Cell(text=f"{100 * post['val_aji_per_image_mean']:.2f}"),
                Cell(text="—" if loo is None else f"{loo:.2f}"),
                Cell(text="—" if plain_aji is None else f"{plain_aji:.2f}"),
                Cell(text="—" if pooled is None else f"{pooled[1]:.2f}"), Cell(text=chosen)]))
        overall = choose(np.concatenate([_scores(r) for r in jobs], axis=1))
        notes.append(f"{len(jobs)} jobs on a grid of {len(grid)} points; the one point best over all their val "
                     f"images: {grid[overall]['values']}")
        if loo_vs_plain:
            notes.append(f"left-one-out choice − plain evaluation: {_seed_interval(loo_vs_plain)}")
        if pooled_vs_loo:
            notes.append(f"one choice for all − left-one-out choice: {_seed_interval(pooled_vs_loo)}")
    if missing:
        notes.append(f"{missing} row(s) kept no grid (stored before rows recorded it, or without a grid): left out")
    caption = ("Val AJI % (per-image mean) of each job's post-processing, on its own validation images only, "
               "no test image: 'tuned' is the point the job chose, scored on the images it was chosen on "
               "(optimistic); 'one val image out' chooses on the other val images and scores the one left out, "
               "for each in turn; 'plain' is argmax classes with the preset's min_area; 'one for all' is one "
               "point chosen on the other jobs' val images that are not this job's. " + "; ".join(notes) + ".")
    headers = ["Labels", "Seed", "Val images", "Tuned (in-sample)", "Tuned, one val image out", "Plain",
               "One for all (other jobs' images)", "Chosen by the job"]
    return Board(f"{suite.name}: post-processing on validation images", caption, [(h, False) for h in headers],
                 board_rows)
