"""Store rows made by hand, for tests of the store, the leaderboard and the launcher."""

import json
import sqlite3
from contextlib import closing

CONTEXT = {"preset": "smoke", "backbone": "resnet18", "data": None, "test_data": None, "unlabeled": None,
           "overrides": [], "folds": 0}


def record(strategy, aji, seed=0, fraction=1.0, fold=None, context=CONTEXT, dice=0.5, key=None):
    per_image_mean = {"aji": aji, "aji_plus": aji, "pq": aji, "dq": aji, "sq": aji, "dice": dice, "f1": aji}
    summed = {k: v / 2 for k, v in per_image_mean.items()}
    return {"key": key or f"{strategy}-{seed}-{fraction}-{fold}-{context['preset']}", "suite": "t",
            "strategy": strategy, "fraction": fraction, "fold": fold, "seed": seed, "preset": context["preset"],
            "context": context, "config": {"seed": seed, "split": {"resample_per_seed": False}}, **{m: per_image_mean[m] for m in ("aji", "aji_plus", "pq", "dice", "f1")},
            "scores": {"per_image_mean": per_image_mean, "summed": summed, "per_image": []}, "test_images": 4,
            "test_names": ["a"], "pretrain_seconds": 1.0, "finetune_seconds": 2.0, "device": "cpu",
            "versions": {"torch": "x"}, "git_commit": None, "encoder": "encoders/e.safetensors", "prediction": None}


def set_arithmetic(out, record):
    """Every stored row as if computed with ``record`` (another machine's, say)."""
    with closing(sqlite3.connect(out / "results.sqlite")) as db, db:
        db.execute("UPDATE jobs SET arithmetic = ?", (json.dumps(record),))
