"""Results store: one SQLite file per output folder, one row per finished job.

A row is written in one transaction after its job has finished and its files are in place, so the
row is the "done" marker: a run killed at any point (SIGKILL included) leaves either no row (the job
re-runs) or a whole one (it is skipped), never half of one.

Tasks run by a launcher (``sslbench bench --launcher local|slurm``) do not share the database: each
writes its row atomically as ``results/<key>.json`` and :meth:`Store.merge` folds those files in.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

from sslbench.engine.weights import atomic_write
from sslbench.errors import DataError

FILENAME = "results.sqlite"
RESULTS_FOLDER = "results"  # one JSON row per job finished by a launched task, merged into FILENAME
# Headline metrics with the default aggregation (per-image mean, as the paper and MoNuSeg report) as
# plain columns for SQL users; both aggregations and the per-image values are in ``scores`` (JSON).
METRIC_COLUMNS = ("aji", "aji_plus", "pq", "dice", "f1")
_JSON_COLUMNS = ("config", "scores", "arithmetic", "versions", "context", "test_names", "train_names", "val_names",
                 "resources")
# columns added to the schema later: an older store gains them (NULL in its old rows) when opened
_ADDED_COLUMNS = ("train_names", "val_names", "arithmetic", "resources")

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
    scores TEXT NOT NULL,          -- JSON: {{"per_image_mean", "summed", "per_image"}}
    test_images INTEGER NOT NULL,
    test_names TEXT NOT NULL,
    train_names TEXT,              -- the labelled images this job finetuned on (its label fraction's subset)
    val_names TEXT,                -- and chose its checkpoint and post-processing on
    pretrain_seconds REAL,         -- NULL when another row (or the encoder's sidecar) has it
    finetune_seconds REAL NOT NULL,
    device TEXT NOT NULL,
    arithmetic TEXT,               -- JSON: precision, kernels, threads, processor, processes (accel.arithmetic)
    resources TEXT,                -- JSON: {"pretrain", "finetune"}: step_seconds, peak_memory_bytes (engine.resources)
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
                present = {c["name"] for c in db.execute("PRAGMA table_info(jobs)")}
                for column in _ADDED_COLUMNS:
                    if column not in present:
                        db.execute(f"ALTER TABLE jobs ADD COLUMN {column} TEXT")
        except sqlite3.DatabaseError as exc:
            raise DataError(f"{self.path}: not a readable results database ({exc}); move it away.") from None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        return db

    def add(self, record: dict) -> None:
        """Insert (or, for --force, replace) one finished job in a single transaction."""
        row = _encode(record)
        with closing(self._connect()) as db, db:
            db.execute(f"INSERT OR REPLACE INTO jobs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                       list(row.values()))

    def merge(self, folder: Path) -> list[str]:
        """Fold the result files in ``folder`` into the store in one transaction; returns a one-line
        warning per unreadable file, which is left out (its job has no row, so the next bench re-runs
        it). A row is replaced only by a newer result (--force), so merging again changes nothing."""
        with closing(self._connect()) as db:
            columns = {c["name"]: c for c in db.execute("PRAGMA table_info(jobs)")}
        required = {name for name, c in columns.items() if (c["notnull"] and c["dflt_value"] is None) or c["pk"]}
        required.add("finished_at")  # what decides between a file and a row of the same job
        rows, problems = [], []
        for path in sorted(Path(folder).glob("*.json")):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
                problem = _record_problem(record, path.stem, set(columns), required)
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                problem = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            if problem:
                problems.append(f"{path}: unreadable results file ({problem}); left out of the store. "
                                "The next bench re-runs its job and rewrites it; or delete the file.")
            else:
                rows.append(_encode(record))
        with closing(self._connect()) as db, db:
            for row in rows:
                updates = ", ".join(f"{c} = excluded.{c}" for c in row if c != "key")
                db.execute(f"INSERT INTO jobs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))}) "
                           f"ON CONFLICT(key) DO UPDATE SET {updates} WHERE excluded.finished_at > jobs.finished_at",
                           list(row.values()))
        return problems

    def rows(self) -> list[dict]:
        """Every finished job, oldest first, JSON columns decoded."""
        with closing(self._connect()) as db:
            rows = db.execute("SELECT * FROM jobs ORDER BY finished_at, rowid").fetchall()
        decoded = [{k: json.loads(row[k]) if k in _JSON_COLUMNS and row[k] is not None else row[k] for k in row.keys()}
                   for row in rows]
        for row in decoded:  # stores written before 0.2 named the summed aggregation "dataset"
            if "dataset" in row["scores"]:
                row["scores"]["summed"] = row["scores"].pop("dataset")
        return decoded


def _encode(record: dict) -> dict:
    return {k: json.dumps(v, sort_keys=True, default=str) if k in _JSON_COLUMNS else v for k, v in record.items()}


def _record_problem(record, key: str, columns: set[str], required: set[str]) -> str | None:
    if not isinstance(record, dict):
        return "not a JSON object"
    if record.get("key") != key:
        return f"its key is {record.get('key')!r}, not the file name's {key!r}"
    missing = sorted(c for c in required if record.get(c) is None)
    unknown = sorted(set(record) - columns)
    if missing or unknown:
        return f"missing {', '.join(missing)}" if missing else f"unknown field {unknown[0]}"
    return None


def now() -> str:
    """UTC time in the format of the store's ``finished_at`` default (so the two compare as text)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def write_result(out: Path, record: dict) -> Path:
    """A launched task's row, written atomically as ``out/results/<key>.json`` for :meth:`Store.merge`."""
    path = Path(out) / RESULTS_FOLDER / f"{record['key']}.json"
    text = json.dumps(dict(record, finished_at=now()), indent=1, sort_keys=True, default=str)
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path


def merge_results(out: Path, warn: Callable[[str], None]) -> None:
    """Fold the results that launched tasks left in ``out`` into its store; each unreadable file is one
    ``warn``. A no-op for a folder whose jobs all ran in-process."""
    folder = Path(out) / RESULTS_FOLDER
    if folder.is_dir():
        for problem in Store(out).merge(folder):
            warn(problem)
