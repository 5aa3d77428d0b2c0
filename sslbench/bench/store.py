"""Results store: one SQLite file per output folder, one row per finished job.

A row is written in one transaction after its job has finished and its files are in place, so the
row is the "done" marker: a run killed at any point (SIGKILL included) leaves either no row (the job
re-runs) or a whole one (it is skipped), never half of one.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

from sslbench.errors import DataError

FILENAME = "results.sqlite"
# Headline metrics with the "dataset" aggregation as plain columns for SQL users; both aggregations
# and the per-image values are in ``scores`` (JSON).
METRIC_COLUMNS = ("aji", "aji_plus", "pq", "dice", "f1")
_JSON_COLUMNS = ("config", "scores", "versions", "context", "test_names")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY,          -- hash of the resolved job config
    suite TEXT NOT NULL,           -- the suite that first ran it (suites share identical jobs)
    strategy TEXT NOT NULL,
    fraction REAL NOT NULL,
    fold INTEGER,                  -- NULL outside cross-validation
    seed INTEGER NOT NULL,
    preset TEXT NOT NULL,
    context TEXT NOT NULL,         -- JSON: data, test data, preset, backbone, overrides (one bench setup)
    config TEXT NOT NULL,          -- JSON: the resolved job config
    {", ".join(f"{m} REAL" for m in METRIC_COLUMNS)},
    scores TEXT NOT NULL,          -- JSON: {{"dataset", "per_image_mean", "per_image"}}
    test_images INTEGER NOT NULL,
    test_names TEXT NOT NULL,
    pretrain_seconds REAL,         -- NULL when the encoder was reused from an earlier job
    finetune_seconds REAL NOT NULL,
    device TEXT NOT NULL,
    versions TEXT NOT NULL,
    git_commit TEXT,
    encoder TEXT NOT NULL,         -- paths relative to the output folder
    prediction TEXT,
    finished_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)"""


class Store:
    def __init__(self, folder: Path, create: bool = True):
        self.path = Path(folder) / FILENAME
        if not create and not self.path.is_file():
            raise DataError(f"{folder}: no {FILENAME} here; run `sslbench bench --out {folder}` first.")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with closing(self._connect()) as db, db:
                db.execute(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise DataError(f"{self.path}: not a readable results database ({exc}); move it away.") from None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        return db

    def done_keys(self) -> set[str]:
        with closing(self._connect()) as db:
            return {row["key"] for row in db.execute("SELECT key FROM jobs")}

    def add(self, record: dict) -> None:
        """Insert (or, for --force, replace) one finished job in a single transaction."""
        row = {k: json.dumps(v, sort_keys=True, default=str) if k in _JSON_COLUMNS else v
               for k, v in record.items()}
        columns = ", ".join(row)
        with closing(self._connect()) as db, db:
            db.execute(f"INSERT OR REPLACE INTO jobs ({columns}) VALUES ({', '.join('?' * len(row))})",
                       list(row.values()))

    def rows(self) -> list[dict]:
        """Every finished job, oldest first, JSON columns decoded."""
        with closing(self._connect()) as db:
            rows = db.execute("SELECT * FROM jobs ORDER BY finished_at, rowid").fetchall()
        return [{k: json.loads(row[k]) if k in _JSON_COLUMNS else row[k] for k in row.keys()} for row in rows]
