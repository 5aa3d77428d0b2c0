"""A suite's scores per organ of the test images (MoNuSeg's 14 come from 7 organs): where a strategy
gains or loses, which a mean over all images hides."""

from __future__ import annotations

import statistics
from collections import Counter

from sslbench.bench.leaderboard import METRIC_NAMES, Board, Cell, Row, strategy_label
from sslbench.bench.suites import Suite
from sslbench.data.tcga import organ_of


def organ_board(suite: Suite, rows: list[dict], metric: str = "aji") -> Board:
    """Rows: (strategy, label fraction); columns: organs, then all images. A cell is the mean over seeds
    of the per-seed mean over that organ's test images, ± the sample std over seeds; images of no known
    TCGA site are grouped as 'other'."""
    organ = {p["name"]: organ_of(p["name"]) or "other" for r in rows for p in r["scores"]["per_image"]}
    counts = Counter(organ.values())
    organs = sorted(counts)
    board_rows = []
    for strategy in suite.strategies:
        for column, header in enumerate(suite.columns):
            mine = [r for r in rows if r["strategy"] == strategy and suite.in_column(r, column)]
            if not mine:
                continue
            cells = []
            for wanted in [*organs, None]:
                per_seed = [statistics.fmean(100 * p[metric] for p in r["scores"]["per_image"]
                                             if wanted is None or organ[p["name"]] == wanted)
                            for r in mine]
                cells.append(Cell(ours=statistics.fmean(per_seed), seeds=len(per_seed),
                                  std=statistics.stdev(per_seed) if len(per_seed) > 1 else None))
            label = strategy_label(strategy) + ("" if len(suite.columns) == 1 else f", {header}")
            board_rows.append(Row(label, cells))
    headers = [(f"{o} ({counts[o]})", False) for o in organs] + [(f"all ({len(organ)})", False)]
    caption = (f"{METRIC_NAMES[metric]} % per organ of the test images (images per organ in brackets; organ from "
               "the TCGA tissue source site in the image name): mean over seeds of each seed's mean over the "
               "organ's images ± sample std over seeds. One or two images per organ: a cell describes those "
               "images, not the organ.")
    return Board(f"{suite.name}: per organ", caption, headers, board_rows)
