"""How far a post-processing choice made on a job's val images carries to images it was not chosen on,
estimated from the grid scores the rows keep."""

import numpy as np
import pytest
from typer.testing import CliRunner

from store_helpers import record
from sslbench.bench.postprocessing import default_point, leave_one_image_out, pooled_elsewhere
from sslbench.bench.stats import t_interval
from sslbench.bench.store import Store
from sslbench.cli import app

# point 0 wins in-sample on one lucky image; point 1 is steady
OVERFIT = np.array([[90.0, 10.0, 10.0], [30.0, 30.0, 30.0]])
POINTS = [{"min_area": 30, "min_seed_area": 4, "body_threshold": None, "foreground_threshold": None},
          {"min_area": 30, "min_seed_area": 4, "body_threshold": 0.5, "foreground_threshold": None}]


def grid_row(strategy: str, seed: int, val_names: list[str], scores: np.ndarray) -> dict:
    row = record(strategy, 0.6, seed=seed, key=f"{strategy}-{seed}", context={
        "preset": "cpu", "backbone": "resnet34", "data": None, "test_data": None, "unlabeled": None,
        "overrides": [], "folds": 0})
    row["suite"] = "table3"
    row["config"]["evaluation"] = {"min_area": 30}
    grid = [{"values": values, "aji": list(aji / 100)} for values, aji in zip(POINTS, scores)]
    best = int(np.argmax(scores.mean(axis=1)))
    row["scores"]["postprocess"] = {"chosen_on": "validation", "values": POINTS[best], "val_names": val_names,
                                    "val_aji_per_image_mean": float(scores[best].mean() / 100), "grid": grid}
    return row


def test_leaving_one_image_out_exposes_a_choice_that_fits_one_image():
    # left out in turn: image 0 -> point 1 chosen (30), images 1 and 2 -> point 0 chosen (10 each)
    assert leave_one_image_out(OVERFIT) == pytest.approx(50 / 3)
    assert OVERFIT.mean(axis=1).max() == pytest.approx(110 / 3)  # in-sample, what the job reports
    assert leave_one_image_out(OVERFIT[:, :1]) is None


def test_the_plain_evaluation_is_found_in_the_grid_by_its_min_area():
    assert default_point([{"values": v} for v in POINTS], min_area=30) == 0
    assert default_point([{"values": v} for v in POINTS], min_area=10) is None


def test_one_choice_for_all_never_chooses_on_an_image_it_scores():
    mine = grid_row("scratch", 0, ["a", "b", "c"], OVERFIT)
    # another seed: its "a" favours point 0 strongly, but "a" is also mine, so only "x" may choose
    other = grid_row("scratch", 1, ["a", "x"], np.array([[100.0, 0.0], [0.0, 50.0]]))
    point, aji = pooled_elsewhere(mine, [mine, other])
    assert point == 1 and aji == pytest.approx(30.0)
    assert pooled_elsewhere(mine, [mine]) is None


def test_leaderboard_postprocess_reports_each_job_and_the_paired_intervals(tmp_path):
    store = Store(tmp_path)
    before = grid_row("scratch", 3, ["z"], OVERFIT)
    del before["scores"]["postprocess"]["grid"]  # a row stored before rows kept their grid
    store.add(before)
    for seed in range(3):
        names = [f"s{seed}-{i}" for i in range(3)]
        store.add(grid_row("scratch", seed, names, OVERFIT + seed))
        # steady on both points, point 1 better by 20 + 3 * seed
        store.add(grid_row("instance_aware", seed, names, np.array([[20.0] * 3, [40.0 + 3 * seed] * 3])))
    result = CliRunner().invoke(app, ["leaderboard", "--suite", "table3", "--store", str(tmp_path), "--format", "md",
                                      "--postprocess"])
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "leaderboard-table3-postprocess.md").read_text().splitlines()
    scratch0 = next(line for line in lines if line.startswith("| Train-from-scratch | 100 % | 0 |"))
    # in-sample 36.67, one image out 16.67, plain (point 0) 36.67; one for all: point 1, chosen on seeds 1
    # and 2 of both strategies (seed 0's instance_aware row shares the images), scores 30 here
    assert "| 3 | 36.67 | 16.67 | 36.67 | 30.00 |" in scratch0
    text = " ".join(result.output.split())
    # per seed, the mean of scratch's −20 and instance_aware's +(20 + 3 * seed)
    low, high = t_interval([0.0, 1.5, 3.0])
    assert f"left-one-out choice − plain evaluation: +1.50 [{low:+.2f}, {high:+.2f}], 95 % t over 3 seeds" in text
    assert "1 row(s) kept no grid" in text
