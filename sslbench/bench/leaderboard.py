"""Leaderboard tables shaped like the paper's, our numbers beside the paper's own."""

from __future__ import annotations

from rich.table import Table

_METRICS = (("aji", "AJI"), ("aji_plus", "AJI+"), ("pq", "PQ"), ("dice", "Dice"), ("f1", "F1"))


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}"


def run_table(rows: list[dict], title: str, caption: str) -> Table:
    """rows: {"label", "test": {"dataset": {...}}, "paper_aji": % or None, "seconds": {...}}."""
    table = Table(title=title, caption=caption, caption_justify="left")
    table.add_column("Training strategy")
    table.add_column("AJI % (ours)", justify="right", style="bold")
    table.add_column("AJI % (paper)", justify="right")
    for _, name in _METRICS[1:]:
        table.add_column(f"{name} %", justify="right")
    table.add_column("pretrain / finetune s", justify="right")
    for row in rows:
        scores = row["test"]["dataset"]
        paper = "—" if row.get("paper_aji") is None else f"{row['paper_aji']:.2f}"
        timing = f"{row['seconds']['pretrain']:.0f} / {row['seconds']['finetune']:.0f}"
        table.add_row(row["label"], _pct(scores["aji"]), paper, *(_pct(scores[k]) for k, _ in _METRICS[1:]), timing)
    return table
