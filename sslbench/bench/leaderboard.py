"""Leaderboard tables shaped like the paper's, our numbers beside the paper's own.

One :class:`Board` (rows of :class:`Cell`) is built for ``sslbench run`` and for suites alike and
rendered as a rich table, Markdown or CSV.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from sslbench.bench.stats import describe, mean_and_interval, t_interval
from sslbench.bench.plan import setup_identity
from sslbench.bench.store import Store
from sslbench.bench.suites import Suite, fitted_to_backbone, protocol_of, setup_protocol
from sslbench.config import available, load_component
from sslbench.engine.accel import describe_arithmetic
from sslbench.engine.weights import atomic_write
from sslbench.errors import ConfigError, DataError, UnknownComponentError
from sslbench.eval.metrics import DEFAULT_AGGREGATION

METRIC_NAMES = {"aji": "AJI", "aji_plus": "AJI+", "pq": "PQ", "dq": "DQ", "sq": "SQ", "dice": "Dice", "f1": "F1"}
AGGREGATION_TEXT = {"per_image_mean": "mean of the per-image values, as the MoNuSeg challenge ranks",
                    "summed": "C and U summed over the test images, then divided"}


@dataclass
class Cell:
    ours: float | None = None  # %, mean over seeds
    std: float | None = None  # %, sample std over seeds (None with one seed)
    paper: float | None = None
    delta: float | None = None  # ours − scratch's ours, same column: the mean of the per-seed differences
    delta_ci: tuple[float, float] | None = None  # 95 % t-interval of that mean (two or more paired seeds)
    paper_delta: float | None = None
    seeds: int = 0
    best: bool = False
    text: str | None = None  # a plain cell (timings)


@dataclass
class Row:
    label: str
    cells: list[Cell] = field(default_factory=list)
    heading: bool = False  # a metric's title row (Table 4 stacks Dice and AJI)


@dataclass
class Board:
    title: str
    caption: str
    columns: list[tuple[str, bool]]  # (header, shows the paper's value)
    rows: list[Row]
    row_header: str = "Training strategy"


def _number(value: float | None, std: float | None = None, delta: float | None = None) -> str:
    if value is None:
        return "—"
    text = f"{value:.2f}" + ("" if std is None else f" ± {std:.2f}")
    return text + ("" if delta is None else f" ({delta:+.2f})")


def cell_text(cell: Cell, with_paper: bool, bold: tuple[str, str] = ("", ""), sep: str = "|") -> str:
    if cell.text is not None:
        return cell.text
    ours = _number(cell.ours, cell.std)
    if cell.best:
        ours = f"{bold[0]}{ours}{bold[1]}"
    if cell.delta is not None:
        interval = "" if cell.delta_ci is None else f" [{cell.delta_ci[0]:+.2f}, {cell.delta_ci[1]:+.2f}]"
        ours += f" ({cell.delta:+.2f}{interval})"
    return f"{ours} {sep} {_number(cell.paper, delta=cell.paper_delta)}" if with_paper else ours


def to_rich(board: Board) -> Table:
    table = Table(title=board.title, caption=board.caption, caption_justify="left")
    table.add_column(board.row_header, overflow="fold")  # never cut a strategy name to "…"
    for header, _ in board.columns:
        table.add_column(header, justify="right", overflow="fold")  # nor an image name
    for row in board.rows:
        if row.heading:
            table.add_section()
            table.add_row(f"[bold]{escape(row.label)}[/]")
            continue
        table.add_row(escape(row.label), *(cell_text(c, p, ("[bold green]", "[/]"))
                                           for c, (_, p) in zip(row.cells, board.columns)))
    return table


def to_markdown(board: Board) -> str:
    headers = [board.row_header] + [h.replace("|", "\\|") for h, _ in board.columns]
    lines = [f"### {board.title}", "", "| " + " | ".join(headers) + " |", "|---|" + "---:|" * len(board.columns)]
    for row in board.rows:
        cells = ([""] * len(board.columns) if row.heading else
                 [cell_text(c, p, ("**", "**"), "\\|") for c, (_, p) in zip(row.cells, board.columns)])
        label = f"**{row.label}**" if row.heading else row.label
        lines.append("| " + " | ".join([label, *cells]) + " |")
    return "\n".join([*lines, "", board.caption, ""])


def to_csv(board: Board) -> str:
    """Long form, one line per cell, numbers unformatted (for plotting and diffing)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["section", "row", "column", "ours_mean", "ours_std", "seeds", "paper",
                     "delta_vs_scratch", "delta_ci95_low", "delta_ci95_high", "paper_delta_vs_scratch", "best",
                     "text"])
    section = ""
    for row in board.rows:
        if row.heading:
            section = row.label
        for cell, (header, _) in zip(row.cells, board.columns):
            low, high = cell.delta_ci or (None, None)
            writer.writerow([section, row.label, header, cell.ours, cell.std, cell.seeds, cell.paper, cell.delta,
                             low, high, cell.paper_delta, int(cell.best), cell.text or ""])
    return buffer.getvalue()


def strategy_label(name: str) -> str:
    """The paper's row name (the pretext config's ``label``); plugins without a config keep their name."""
    return load_component("pretext", name).get("label", name) if name in available("pretext") else name


def _pct(value: float | None) -> Cell:
    return Cell() if value is None else Cell(ours=100 * value, seeds=1)


def run_table(rows: list[dict], title: str, caption: str, reference_only: bool = False) -> Table:
    """rows: {"label", "test": {DEFAULT_AGGREGATION: {...}}, "paper_aji": % or None, "seconds": {...}}.
    ``reference_only`` (data other than the paper's): the paper's AJI gets its own labelled column
    instead of sitting beside ours as if the two compared."""
    aji_header = "AJI %" if reference_only else "AJI % ours | paper"
    columns = [(aji_header, not reference_only)] + [(f"{name} %", False) for name in ("AJI+", "PQ", "Dice", "F1")]
    columns.append(("pretrain / finetune s", False))
    if reference_only:
        columns.append(("paper AJI % (MoNuSeg, reference only)", False))
    board_rows = []
    for row in rows:
        scores = row["test"][DEFAULT_AGGREGATION]
        cells = [Cell(ours=100 * scores["aji"], seeds=1, paper=None if reference_only else row.get("paper_aji"))]
        cells += [_pct(scores[k]) for k in ("aji_plus", "pq", "dice", "f1")]
        cells.append(Cell(text=f"{row['seconds']['pretrain']:.0f} / {row['seconds']['finetune']:.0f}"))
        if reference_only:
            cells.append(Cell(text=_number(row.get("paper_aji"))))
        board_rows.append(Row(row["label"], cells))
    return to_rich(Board(title, caption, columns, board_rows))


def _summary(values: list[float]) -> Cell:
    if not values:
        return Cell()
    return Cell(ours=statistics.fmean(values), std=statistics.stdev(values) if len(values) > 1 else None,
                seeds=len(values))


def column_scores(suite: Suite, row: dict) -> list[dict | None]:
    """A transfer suite's row, per column: the scores of its in-domain test set, then of each transfer set
    (None where its bench had no such set); each {"per_image_mean", "summed", "per_image"}."""
    transfer = row["scores"].get("transfer", {})
    return [row["scores"], *(transfer.get(name) for name in suite.test_sets)]


def seed_values(suite, rows: list[dict], strategy: str, metric: str, aggregation: str) -> list[dict[int, float]]:
    """Per table column, {seed: value %}. Fold suites end with the average over folds (seeds with every fold).
    A transfer suite's ``rows`` must be of one training set (``training_sets``): seeds key the values."""
    mine = [r for r in rows if r["strategy"] == strategy]

    def values(match) -> dict[int, float]:
        return {r["seed"]: 100 * r["scores"][aggregation][metric] for r in mine if match(r)}

    if suite.transfer:
        return [{r["seed"]: 100 * scores[aggregation][metric] for r in mine
                 if (scores := column_scores(suite, r)[i]) is not None} for i in range(len(suite.columns))]
    if not suite.folds:
        return [values(lambda r, i=i: suite.in_column(r, i)) for i in range(len(suite.columns))]
    per_fold = [values(lambda r, k=k: r["fold"] == k) for k in range(suite.folds)]
    complete = set.intersection(*(set(v) for v in per_fold))
    return per_fold + [{seed: statistics.fmean(v[seed] for v in per_fold) for seed in complete}]


def _paper(suite, metric: str, strategy: str, column: int) -> float | None:
    values = suite.paper.get(metric, {}).get(strategy, [])
    if len(values) == len(suite.columns):
        return values[column]
    if suite.folds and values and column == len(suite.columns) - 1:
        return values[-1]  # another fold count than the paper's: only the average compares
    return None


def paired_difference(mine: dict[int, float], base: dict[int, float]) -> tuple[float | None, tuple | None]:
    """Mean of the per-seed differences over the seeds both have (the same seed: the same split, labels
    and test images), and its 95 % Student-t interval when two or more seeds pair up."""
    differences = seed_differences(mine, base)
    if not differences:
        return None, None
    return statistics.fmean(differences), t_interval(differences)


def seed_differences(mine: dict[int, float], base: dict[int, float]) -> list[float]:
    return [mine[seed] - base[seed] for seed in sorted(mine.keys() & base.keys())]


def _metric_cells(suite, rows: list[dict], metric: str, aggregation: str) -> dict[str, list[Cell]]:
    """strategy -> one cell per suite column, with paired deltas vs scratch and the best mean (of those with
    the most seeds) marked."""
    per_seed = {s: seed_values(suite, rows, s, metric, aggregation) for s in suite.strategies}
    cells = {s: [_summary(list(v.values())) for v in columns] for s, columns in per_seed.items()}
    for strategy, row in cells.items():
        for i, cell in enumerate(row):
            cell.paper = _paper(suite, metric, strategy, i)
    if "scratch" in cells:
        for strategy, row in cells.items():
            if strategy == "scratch":
                continue
            for cell, base, mine, base_seeds in zip(row, cells["scratch"], per_seed[strategy], per_seed["scratch"]):
                cell.delta, cell.delta_ci = paired_difference(mine, base_seeds)
                if cell.paper is not None and base.paper is not None:
                    cell.paper_delta = cell.paper - base.paper
    for i in range(len(suite.columns)):
        # a one-seed mean is not ranked against three-seed means: a lucky draw would win the bold;
        # and a cell with no rival at its seed count is not "best" of anything
        column = [row[i] for row in cells.values() if row[i].ours is not None]
        most = max((c.seeds for c in column), default=0)
        rivals = [c for c in column if c.seeds == most]
        best = max(c.ours for c in rivals) if len(rivals) > 1 else None
        for cell in column:
            cell.best = cell.seeds == most and cell.ours == best
    return cells


def _cost(rows: list[dict], phase: str) -> str | None:
    """Median seconds per step and largest peak memory of ``phase`` over ``rows``; None if none recorded them."""
    found = [r["resources"][phase] for r in rows if (r.get("resources") or {}).get(phase)]
    steps = [f["step_seconds"] for f in found if f["step_seconds"] is not None]
    if not steps:
        return None
    return f"{statistics.median(steps):.3g} s · {max(f['peak_memory_bytes'] for f in found) / 2 ** 30:.2f} GiB"


def cost_cells(suite: Suite, rows: list[dict], strategy: str) -> list[Cell]:
    """Per column of a suite without folds, the strategy's finetuning cost, its pretraining's in brackets."""
    cells = []
    for column in range(len(suite.columns)):
        mine = [r for r in rows if r["strategy"] == strategy and suite.in_column(r, column)]
        finetune, pretrain = _cost(mine, "finetune"), _cost(mine, "pretrain")
        cells.append(Cell(text="—" if finetune is None else finetune + ("" if pretrain is None else
                                                                         f" (pretraining {pretrain})")))
    return cells


COST_TITLE = "Seconds per step (median) · peak memory"
COST_TEXT = (f"{COST_TITLE}: the median over logged readings of seconds per optimizer step (evaluation and saving "
             "left out) and the largest peak over the jobs (a CPU: the process's resident memory; a GPU: memory "
             "allocated by tensors); pretraining's in brackets.")


def suite_board(suite, rows: list[dict], aggregation: str, caption: str) -> Board:
    """The paper's layout: strategies × label fractions (or folds) per metric; a one-column suite
    (Tables 2, 3) puts its metrics side by side instead, and lists the paper-only reference rows."""
    title = f"{suite.name}: {suite.description}"
    if suite.transfer:  # a block per training set and metric; columns: in-domain, then the transfer sets
        board_rows = []
        for label, part in training_sets(rows):
            for metric in suite.metrics:
                cells = _metric_cells(suite, part, metric, aggregation)
                board_rows.append(Row(f"{METRIC_NAMES[metric]} %, trained on {label}", heading=True))
                board_rows += [Row(strategy_label(s), cells[s]) for s in suite.strategies]
        return Board(title, caption, [(c, False) for c in suite.columns], board_rows)
    by_metric = {m: _metric_cells(suite, rows, m, aggregation) for m in suite.metrics}
    if len(suite.columns) == 1:
        columns = [(f"{METRIC_NAMES[m]} % ours | paper" if m in suite.paper else f"{METRIC_NAMES[m]} %",
                    m in suite.paper) for m in suite.metrics]
        board_rows = [Row(strategy_label(s), [by_metric[m][s][0] for m in suite.metrics]
                          + (cost_cells(suite, rows, s) if suite.resources else [])) for s in suite.strategies]
        columns += [(COST_TITLE, False)] if suite.resources else []
        first = suite.metrics[0]
        board_rows += [Row(f"{team} (MoNuSeg 2018 leaderboard)",
                           [Cell(paper=value) if m == first else Cell() for m in suite.metrics]
                           + ([Cell()] if suite.resources else []))
                       for team, value in suite.references.items()]
        return Board(title, caption, columns, board_rows)
    columns = [(f"{c} ours | paper", True) if suite.paper else (c, False) for c in suite.columns]
    board_rows = []
    for metric in suite.metrics:
        if len(suite.metrics) > 1:
            board_rows.append(Row(f"{METRIC_NAMES[metric]} %", heading=True))
        board_rows += [Row(strategy_label(s), by_metric[metric][s]) for s in suite.strategies]
    if suite.resources:
        board_rows.append(Row(COST_TITLE, heading=True))
        board_rows += [Row(strategy_label(s), cost_cells(suite, rows, s)) for s in suite.strategies]
    return Board(title, caption, columns, board_rows)


def select_rows(suite: Suite, rows: list[dict]) -> tuple[Suite, list[dict], dict]:
    """The suite's jobs from the latest bench setup (context, its data by content wherever it lay) in the
    store, the latest row per (strategy, fraction, fold, seed); a fold suite takes its fold count from that setup.
    A transfer suite keeps the latest setup of each training set (both directions of a pair of data sets
    share a store) and takes its test sets' names from them; other suites never read its rows."""
    mine = [r for r in rows if r["strategy"] in suite.strategies and r["fraction"] in suite.fractions
            and (r["fold"] is None) == (not suite.folds)
            and bool(r["context"].get("transfer_test")) == suite.transfer
            and protocol_of(r["config"]) in (suite.protocols or (setup_protocol(r["context"]),))]
    if not mine:
        raise DataError(f"no finished {suite.name} jobs in this store; run `sslbench bench --suite {suite.name}` "
                        "with the same --out first.")
    context = mine[-1]["context"]
    try:  # no row of such a strategy can exist: it is left out, and the caption says so
        suite = fitted_to_backbone(suite, context["backbone"], lambda _: None)
    except UnknownComponentError:
        pass  # a plugin's backbone or pretext this process has not loaded: its rows show as they are
    group = _training_key if suite.transfer else (lambda _: "")
    setups = {group(r["context"]): setup_identity(r["context"]) for r in mine}  # the latest of each group
    latest = {(group(r["context"]), r["strategy"], r["fraction"], protocol_of(r["config"]), r["fold"], r["seed"]): r
              for r in mine
              if setup_identity(r["context"]) == setups[group(r["context"])]}
    test_sets = dict.fromkeys(name for r in latest.values() for name in r["context"].get("transfer_test", {}))
    return (dataclasses.replace(suite, folds=context["folds"], test_sets=tuple(test_sets)), list(latest.values()),
            context)


def _training_key(context: dict) -> str:
    """The data set a bench setup trains on, by content (its path where the content is unknown)."""
    identity = setup_identity(context)
    return json.dumps([identity["data"], identity.get("reader")], sort_keys=True, default=str)


def training_sets(rows: list[dict]) -> list[tuple[str, list[dict]]]:
    """A transfer suite's rows by the data set they trained on, in the order first stored, each named by its
    folder (the built-in synthetic data: "synthetic H&E")."""
    parts: dict[str, list[dict]] = {}
    for row in rows:
        parts.setdefault(_training_key(row["context"]), []).append(row)
    return [(Path(part[-1]["context"]["data"]).name if part[-1]["context"]["data"] else "synthetic H&E", part)
            for part in parts.values()]


def caption(suite: Suite, rows: list[dict], context: dict, aggregation: str) -> str:
    paper = "CPM, 5-fold cross-validation" if suite.folds else "MoNuSeg 2018 test set"
    paper = f" | paper (Δ), as printed ({paper})" if suite.paper else " (the paper has no numbers for this suite)"
    cells = (f"Aggregation: {aggregation} ({AGGREGATION_TEXT[aggregation]}). "
             "Cells: ours mean ± sample std over seeds (Δ vs scratch: mean of the per-seed differences "
             f"[95 % t-interval]){paper}; best of ours per column in bold, among two or more rows with the most seeds.")
    if not suite.transfer:
        return (f"{setup_text(suite, rows, context)}{protocol_note(suite, rows)}{arithmetic_note(rows)}"
                f"{labelled_subsets(rows)}. {cells}" + (f" {COST_TEXT}" if suite.resources else ""))
    # one arithmetic sentence for the whole table (MIXED ARITHMETIC first), then each training set's setup
    arithmetic = arithmetic_note(rows).removeprefix("; ")
    setups = " ".join(f"Trained on {label}: {setup_text(suite, part, part[-1]['context'])}{labelled_subsets(part)}."
                      for label, part in training_sets(rows))
    return (f"{arithmetic[0].upper()}{arithmetic[1:]}. {setups} Columns: each training set's own test set "
            "(in-domain), then every --transfer-test set; post-processing values (where the preset has a grid) chosen "
            f"on the training set's validation images, nothing on any test set. {cells}")


PROTOCOL_TEXT = {"finetune": "finetune (encoder and decoder trained)",
                 "frozen": "frozen (decoder only: no gradient into the encoder, its normalisation statistics frozen)"}


def protocol_note(suite: Suite, rows: list[dict]) -> str:
    """The protocol every row was trained under, or, with a protocol axis, what its columns mean."""
    if suite.protocols:
        return "; protocols: " + ", ".join(PROTOCOL_TEXT[p] for p in suite.protocols)
    return "; protocol: " + " and ".join(PROTOCOL_TEXT[p] for p in sorted({protocol_of(r["config"]) for r in rows}))


def data_label(context: dict, key: str, path: str) -> str:
    """A data folder by its name and content fingerprint where the row recorded one: the absolute path
    names only the machine that ran the job, and the fingerprint is what the job keys hash."""
    content = context.get("data_content", {}).get(key)
    return f"{Path(path).name} (content {content})" if content else path


def setup_text(suite: Suite, rows: list[dict], context: dict) -> str:
    """What the rows of one bench setup trained and were tested on, for a caption."""
    data = data_label(context, "data", context["data"]) if context["data"] else "synthetic H&E (built-in)"
    counts = sorted({r["test_images"] for r in rows})
    if suite.folds:
        test = f"{suite.folds}-fold cross-validation, {'/'.join(map(str, counts))} images per fold"
        if len(counts) > 1:  # then the folds' mean is not the mean over all held-out images
            test += " (Average: the mean over folds, as in the paper's Table 4, not over images)"
    elif context["test_data"]:
        test = f"{counts[0]} labelled images of {data_label(context, 'test_data', context['test_data'])}"
    elif rows[0]["config"]["split"].get("group_by"):
        test = (f"{counts[0]} images of whole {rows[0]['config']['split']['group_by']}s held out of the data "
                "(split.group_by, split.test_ratio, split.seed; train/val also drawn by them)")
    else:
        test = f"{counts[0]} images held out of the data (split.test_ratio, split.seed)"
    if suite.transfer:
        test = f"in-domain {test}"
    for name, entry in context.get("transfer_test", {}).items():
        sizes = sorted({len(r["scores"]["transfer"][name]["per_image"]) for r in rows})
        reader = f" (reader {entry['reader']})" if entry.get("reader") else ""
        test += (f"; {name}: {'/'.join(map(str, sizes))} labelled images of "
                 f"{data_label(context, f'transfer_test.{name}', entry['path'])}{reader}")
    reader = f" (reader {context['reader']})" if context.get("reader") else ""
    extra = f"; overrides {' '.join(context['overrides'])}" if context["overrides"] else ""
    if len({r["seed"] for r in rows}) > 1:
        extra += ("; train/val split and labelled subset redrawn per seed"
                  if rows[0]["config"]["split"].get("resample_per_seed")
                  else "; one train/val split and labelled subset for every seed (std: initialisation and sampling)")
    if suite.left_out:
        extra += f"; not run on this backbone (the pretext cannot pretrain it): {', '.join(suite.left_out)}"
    return (f"Data: {data}{reader}; preset {context['preset']}; backbone {context['backbone']}; "
            f"seeds {', '.join(map(str, sorted({r['seed'] for r in rows})))}; test: {test}{extra}")


def labelled_subsets(rows: list[dict]) -> str:
    """Which images each seed finetuned on below 100 % labels: a few images decide such a column, so
    the reader needs their names (rows stored before the names were recorded are left out)."""
    subsets = {}
    for row in sorted(rows, key=lambda r: (r["fraction"], r["fold"] or 0, r["seed"])):
        if row["fraction"] < 1 and row["train_names"] is not None:
            fold = "" if row["fold"] is None else f"fold {row['fold'] + 1} "
            subsets.setdefault(row["fraction"], {})[f"{fold}seed {row['seed']}"] = ", ".join(row["train_names"])
    return "".join(f"; labelled at {fraction * 100:g} %: " + "; ".join(f"{who} {names}" for who, names in runs.items())
                   for fraction, runs in subsets.items())


def arithmetic_note(rows: list[dict]) -> str:
    """Which arithmetic computed the rows. The same job lands AJI points apart under another precision or
    kernel set (docs/results.md), so a table whose rows were computed differently says so first."""
    kinds = Counter(describe_arithmetic(r["arithmetic"]) for r in rows)
    if len(kinds) == 1:
        return f"; arithmetic: {next(iter(kinds))}"
    listed = "; ".join(f"{kind} ({count} row{'s' if count > 1 else ''})" for kind, count in kinds.most_common())
    if len(kinds.keys() - {describe_arithmetic(None)}) < 2:
        return f"; arithmetic: {listed}"
    return (f"; MIXED ARITHMETIC: {listed}. The same job lands AJI points apart under another arithmetic "
            "(docs/results.md): compare rows computed alike (--runs marks each job's)")


def image_pairs(suite: Suite, rows: list[dict], metric: str = "aji", against: str = "scratch") -> Board:
    """Each strategy against ``against`` (a strategy of the suite; default scratch), per column: over seeds, the
    paired difference of the per-image-mean scores worded by ``stats.describe`` (interval, verdict, power, seeds
    that would resolve it); over test images, on how many (seed, image) pairs it is better and a Student-t
    interval over the images of each image's difference averaged over seeds. Fold suites pool their folds: every
    held-out image is one value. A transfer suite compares within each training set, per test set."""
    board_rows = []
    for label, part in training_sets(rows) if suite.transfer else [("", rows)]:
        if suite.transfer:
            board_rows.append(Row(f"trained on {label}", heading=True))
        board_rows += _pair_rows(suite, part, metric, against)
    headers = [("Folds pooled", False)] if suite.folds else [(c, False) for c in suite.columns]
    margin = (f"equivalence claimed only within ±{suite.equivalence_margin:g} points (named in the suite file, "
              "90 % interval inside it)" if suite.equivalence_margin else "no equivalence margin named: equivalence "
              "is never claimed")
    caption = (f"{METRIC_NAMES[metric]} points against {strategy_label(against)} (same seed: same split, labels and "
               "test images). "
               "Seeds: mean of the per-seed differences of the per-image means [95 % Student-t interval, df = seeds "
               "− 1, sample std]; verdict; where unresolved, the power the comparison had and the seeds that would "
               f"give 80 % power if the observed difference and spread were the truth; {margin}. Images: pairs "
               "better / pairs, and the mean over test images of each image's seed-averaged difference [95 % "
               "Student-t interval over the images, df = images − 1: with 14 images a percentile bootstrap covers "
               "less than it claims, the t-interval keeps 95 % for roughly normal differences]; it shows the spread "
               "over images, not over seeds.")
    return Board(f"{suite.name}: against {strategy_label(against)}, over seeds and over test images", caption, headers,
                 board_rows)


def _pair_rows(suite: Suite, rows: list[dict], metric: str, against: str) -> list[Row]:
    """``image_pairs``' rows: each strategy but ``against``, a cell per column."""
    columns = ["all folds"] if suite.folds else list(suite.columns) if suite.transfer else list(range(len(suite.columns)))

    def row_columns(row: dict) -> list[tuple]:
        if suite.transfer:
            return [(c, found) for c, found in zip(columns, column_scores(suite, row)) if found is not None]
        return [("all folds" if suite.folds else next(i for i in columns if suite.in_column(row, i)), row["scores"])]

    scores = {(r["strategy"], column, r["fold"], r["seed"]): {p["name"]: 100 * p[metric] for p in found["per_image"]}
              for r in rows for column, found in row_columns(r)}
    # (strategy, column) -> {(fold, image): [difference to the baseline per seed]}
    differences: dict[tuple, dict[tuple, list[float]]] = {}
    for (strategy, column, fold, seed), mine in scores.items():
        base = scores.get((against, column, fold, seed), {})
        for image in mine.keys() & base.keys():
            per_image = differences.setdefault((strategy, column), {})
            per_image.setdefault((fold, image), []).append(mine[image] - base[image])
    base_seeds = seed_values(suite, rows, against, metric, "per_image_mean")
    board_rows = []
    for strategy in (s for s in suite.strategies if s != against):
        mine_seeds = seed_values(suite, rows, strategy, metric, "per_image_mean")
        cells = []
        for i, column in enumerate(columns):
            by_image = differences.get((strategy, column))
            if not by_image:
                cells.append(Cell())
                continue
            pairs = [d for ds in by_image.values() for d in ds]
            over_images = mean_and_interval([statistics.fmean(ds) for ds in by_image.values()])
            seeds = seed_differences(mine_seeds[-1 if suite.folds else i], base_seeds[-1 if suite.folds else i])
            over_seeds = describe(seeds, suite.equivalence_margin) if seeds else "no paired seeds"
            cells.append(Cell(text=f"seeds: {over_seeds} | images: {sum(d > 0 for d in pairs)}/{len(pairs)} pairs "
                                   f"better, {over_images}"))
        board_rows.append(Row(strategy_label(strategy), cells))
    return board_rows


def short_names(names: set[str]) -> dict[str, str]:
    """Each image name cut to the fewest fields that still tell the names apart, after the leading
    fields they all share (TCGA-A7-A13E-01Z-00-DX1 -> A7-A13E), so a row of several names stays readable."""
    fields = {n: re.split(r"(?<=[-_. ])", n) for n in names}
    shared = 0
    while len(names) > 1 and all(len(f) > shared + 1 for f in fields.values()) \
            and len({f[shared] for f in fields.values()}) == 1:
        shared += 1
    for kept in range(1, max((len(f) for f in fields.values()), default=0) + 1):
        short = {n: "".join(f[shared:shared + kept]).rstrip("-_. ") for n, f in fields.items()}
        if len(set(short.values())) == len(names):
            return short
    return {n: n for n in names}


def job_runs(suite: Suite, rows: list[dict], metric: str = "aji") -> Board:
    """One row per finished job: which labelled images it finetuned and validated on, its test score and
    each test image's, and its time: what a leaderboard cell averages, for the reader who checks it. A
    transfer suite's jobs come per training set, with their score on each transfer set."""
    sections = [(label, sorted(part, key=lambda r: (suite.strategies.index(r["strategy"]), -r["fraction"],
                                                    r["fold"] or 0, r["seed"])))
                for label, part in (training_sets(rows) if suite.transfer else [("", rows)])]
    rows = [row for _, part in sections for row in part]
    names = {n for r in rows for n in (*(r["train_names"] or ()), *(r["val_names"] or ()), *r["test_names"])}
    short = short_names(names)
    same_test_images = len({tuple(p["name"] for p in r["scores"]["per_image"]) for r in rows}) == 1

    kinds = [describe_arithmetic(r["arithmetic"]) for r in rows]
    mark = {kind: chr(ord("A") + i) for i, kind in enumerate(dict.fromkeys(kinds))}

    def listed(found: list[str] | None) -> str:
        return "—" if found is None else ", ".join(short[n] for n in found)

    def checkpoint(row: dict) -> str:
        """The step whose weights were kept (the first best val AJI, as finetuning keeps it), and that AJI."""
        curve = row["scores"].get("validation")
        if not curve:  # rows from before rows kept the curve, or a run without validation
            return "—"
        best = max(curve, key=lambda v: v["aji"])
        return f"{best['step']} of {curve[-1]['step']} ({100 * best['aji']:.1f})"

    def job_row(row: dict) -> Row:
        seed = f"{row['seed']}" if row["fold"] is None else f"{row['fold'] + 1} / {row['seed']}"
        trained = listed(row["train_names"]) if row["fraction"] < 1 or row["train_names"] is None \
            else f"{len(row['train_names'])} images"
        per_image = [(short.get(p["name"], p["name"]), 100 * p[metric]) for p in row["scores"]["per_image"]]
        per_image_text = (" / ".join(f"{v:.1f}" for _, v in per_image) if same_test_images
                          else ", ".join(f"{n} {v:.1f}" for n, v in per_image))
        pretrain = "reused" if row["pretrain_seconds"] is None else f"{row['pretrain_seconds']:.0f}"
        scores = row["scores"]["per_image_mean"]
        transfer = [Cell(text="—" if found is None else f"{100 * found['per_image_mean'][metric]:.2f}")
                    for found in column_scores(suite, row)[1:]]
        return Row(strategy_label(row["strategy"]), [
            Cell(text=f"{row['fraction'] * 100:g} %"), Cell(text=seed), Cell(text=trained),
            Cell(text=listed(row["val_names"])), Cell(text=checkpoint(row)), Cell(text=f"{100 * scores[metric]:.2f}"),
            Cell(text=per_image_text),
            *transfer, Cell(text=f"{100 * scores['dice']:.2f}"),
            Cell(text=f"{pretrain} / {row['finetune_seconds']:.0f}"),
            *([Cell(text=mark[describe_arithmetic(row["arithmetic"])])] if len(mark) > 1 else [])])

    board_rows = []
    for label, part in sections:
        if suite.transfer:
            board_rows.append(Row(f"trained on {label}", heading=True))
        board_rows += [job_row(row) for row in part]
    headers = ["Labels", "Fold / seed" if suite.folds else "Seed", "Trained on", "Validated on",
               "Checkpoint step (val AJI %)", f"{METRIC_NAMES[metric]} %", f"{METRIC_NAMES[metric]} % per test image",
               *(f"{METRIC_NAMES[metric]} % on {name}" for name in suite.test_sets), "Dice %",
               "Pretrain / finetune s", *(["Arithmetic"] if len(mark) > 1 else [])]
    computed = ("; arithmetic: " + "; ".join(f"{letter} {kind}" for kind, letter in mark.items()) if len(mark) > 1
                else f"; every job's arithmetic: {kinds[0]}")
    order = ("test images in cell order: " + ", ".join(short[p["name"]] for p in rows[0]["scores"]["per_image"])
             if same_test_images else "each cell names its test images")
    caption = (f"One row per finished job; scores are per-image means; {order}; image names cut to the fields that "
               f"tell them apart; pretraining 'reused' where the job found its encoder made (its time is in another "
               f"row, or in the encoder's sidecar, encoders/*.json){computed}.")
    return Board(f"{suite.name}: every job", caption, [(h, False) for h in headers], board_rows)


def suite_leaderboard(out: Path, suite: Suite, aggregation: str = DEFAULT_AGGREGATION) -> Board:
    if aggregation not in AGGREGATION_TEXT:
        raise ConfigError(f"--aggregation must be one of {', '.join(AGGREGATION_TEXT)}, got '{aggregation}'.")
    suite, rows, context = select_rows(suite, Store(out, create=False).rows())
    return suite_board(suite, rows, aggregation, caption(suite, rows, context, aggregation))


def write_board(board: Board, out: Path, name: str) -> list[Path]:
    """leaderboard-<name>.md and .csv beside the results database."""
    paths = [out / f"leaderboard-{name}.md", out / f"leaderboard-{name}.csv"]
    for path, text in zip(paths, (to_markdown(board), to_csv(board))):
        atomic_write(path, lambda tmp, text=text: tmp.write_text(text, encoding="utf-8"))
    return paths
