"""What a result depends on, as JSON: a phase resumes, an encoder is reused and a bench job is skipped
only when its fingerprint (or the hash of it) is the same."""

from __future__ import annotations

import contextlib
import hashlib
import json

from mmengine.config import Config

from sslbench.data.fingerprint import dataset_fingerprint
from sslbench.engine.checkpoint import normalise
from sslbench.errors import DataError

#: where and how fast a job runs, not what it computes: left out of fingerprints and job keys
EXECUTION_KEYS = ("device", "engine")
#: the split settings pretraining depends on: which images are test images (train/val and labels do not matter);
#: group_by only where set, so encoders made before it existed keep their identity
PRETRAINING_SPLIT_KEYS = ("test_ratio", "seed", "group_by")
#: the keys naming a data folder, in run configs, pretraining fingerprints and bench contexts alike
DATA_KEYS = ("data", "test_data", "unlabeled")
#: extra labelled test sets ({name: {"path", "reader"}}), in run configs and bench contexts; a set is keyed
#: "transfer_test.NAME" among the data folders
TRANSFER_KEY = "transfer_test"


def content_hash(content: dict) -> str:
    """16 hex digits of the SHA-256 of ``content`` as sorted JSON: bench's job keys, the encoders' identity."""
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]


def pretrain_fingerprint(cfg: Config, fold: int | None = None, folds: int = 0) -> dict:
    """What the pretrained encoder depends on (not the label fraction or finetuning settings). Under
    cross-validation (bench's ``folds``) the fold decides the test images, so it is part of it."""
    split = {k: cfg.split[k] for k in PRETRAINING_SPLIT_KEYS if cfg.split.get(k) is not None}
    if folds:
        split.update(fold=fold, folds=folds)
    return normalise({"pretext": cfg.pretext, "backbone": cfg.backbone, "seed": cfg.seed, "data": cfg.data,
                      "test_data": cfg.get("test_data"), "unlabeled": cfg.unlabeled, "pretrain": cfg.pretrain,
                      "split": split})


def run_fingerprint(cfg: Config) -> dict:
    """The whole config except how it is executed: a run may resume on another device or path."""
    return normalise({k: v for k, v in cfg.to_dict().items() if k not in EXECUTION_KEYS})


def data_sources(section: dict) -> dict[str, tuple[str, str | None]]:
    """The data folders ``section`` (a run config, a pretraining fingerprint, a bench context) names by
    path, by key, each with the reader it is read with (None: detected); the synthetic default data is
    named by its config and has none. --data's reader is ``data.reader`` in a config, ``reader`` in a
    bench context."""
    sources = {}
    for key in DATA_KEYS:
        value = section.get(key)
        named = isinstance(value, dict) and value.get("type") == "path"
        path = value.get("path") if named else value
        reader = value.get("reader") if named else section.get("reader") if key == "data" else None
        if isinstance(path, str) and path:
            sources[key] = (path, "unlabeled" if key == "unlabeled" else reader)
    for name, entry in (section.get(TRANSFER_KEY) or {}).items():
        sources[f"{TRANSFER_KEY}.{name}"] = (entry["path"], entry.get("reader"))
    return sources


def data_contents(section: dict) -> dict[str, str]:
    """Each data folder's content fingerprint, by key; DataError for a folder that is not there."""
    return {key: dataset_fingerprint(path, reader) for key, (path, reader) in data_sources(section).items()}


def recorded_contents(section: dict, recorded: dict | None) -> dict[str, str]:
    """The contents a stored result recorded; else (written before contents were recorded) those of
    its data folders that are here: a folder that is not keeps its path in the result's key."""
    if recorded is not None:
        return recorded
    found = {}
    for key, (path, reader) in data_sources(section).items():
        with contextlib.suppress(DataError):
            found[key] = dataset_fingerprint(path, reader)
    return found


def portable(content: dict, contents: dict[str, str]) -> dict:
    """``content`` with each data folder's path replaced by its content fingerprint (``contents``): job
    keys and encoder identities hash this, so they follow the data wherever it lies (the paths stay in
    rows, sidecars and checkpoints, to read)."""
    replaced = dict(content)
    for key, fingerprint in contents.items():
        parent, _, name = key.rpartition(".")  # "transfer_test.NAME": a set inside the transfer section
        holder = replaced
        if parent:
            holder = replaced[parent] = dict(replaced[parent])
        value = holder[name]
        kept = {k: v for k, v in value.items() if k != "path"} if isinstance(value, dict) else {}
        holder[name] = {**kept, "content": fingerprint}
    return replaced
