"""A run's images and their split into train, val, test and pretraining images; checks on them that
must fail before any training."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
from mmengine.config import Config

from sslbench.data.base import Sample
from sslbench.data.detect import dataset_from_path
from sslbench.data.splits import k_folds, label_fraction, train_val_split
from sslbench.errors import DataError
from sslbench.registry import DATASETS, build


@dataclass
class DataSplit:
    train: list[Sample]  # labelled, finetuned on (after the label fraction)
    val: list[Sample]
    test: list[Sample]
    pretrain: list[Sample] = field(default_factory=list)  # every non-test image, labelled or not
    transfer: dict[str, list[Sample]] = field(default_factory=dict)  # other sources' test sets, by name


def load_samples(data_cfg: dict, unlabeled: str | None) -> list[Sample]:
    """The ``data`` section's images, read with ``data.reader`` (else the detected reader); ``data.rescale``
    (a reader option) resizes them at load."""
    if data_cfg["type"] == "path":
        samples = dataset_from_path(data_cfg["path"], data_cfg.get("reader"), data_cfg.get("rescale", 1.0)).load()
    else:
        samples = build(DATASETS, data_cfg).load()
    if unlabeled:
        samples += [Sample(s.name, s.image, None, s.source) for s in dataset_from_path(unlabeled, "unlabeled").load()]
    return samples


def load_data(cfg: Config) -> tuple[list[Sample], list[Sample] | None]:
    """The run's images (``--data`` plus ``--unlabeled``) and, with ``--test-data``, its labelled test
    images; an image in both is refused (a test image seen in training inflates every score)."""
    samples = load_samples(cfg.data, cfg.unlabeled)
    if not cfg.get("test_data"):
        return samples, None
    return samples, labelled_test_set(samples, cfg.test_data, None, f"--test-data {cfg.test_data}", False)


def load_transfer(cfg: Config, samples: list[Sample]) -> dict[str, list[Sample]]:
    """The labelled images of each ``transfer_test`` set (bench ``--transfer-test NAME=PATH``), by name;
    ``samples`` are the run's training images, none of which may be one of them."""
    return {name: labelled_test_set(samples, entry["path"], entry.get("reader"),
                                    f"--transfer-test {name}={entry['path']}", True)
            for name, entry in (cfg.get("transfer_test") or {}).items()}


def labelled_test_set(samples: list[Sample], path: str, reader: str | None, given: str,
                      other_source: bool) -> list[Sample]:
    """The labelled images read from ``path`` (``given``: the option that named it, for messages), none
    shared with ``samples`` (``refuse_overlap``)."""
    test = [s for s in dataset_from_path(path, reader).load() if s.labelled]
    if not test:
        raise DataError(f"{given}: no labelled images found; it must hold annotations.")
    refuse_overlap(samples, test, given, other_source)
    return test


def _pixels_digest(sample: Sample) -> str:
    return hashlib.sha1(np.ascontiguousarray(sample.image).tobytes() + str(sample.image.shape).encode()).hexdigest()


def _where(sample: Sample) -> str:
    """A file path where the reader recorded one, else the image name (generated data)."""
    return sample.source if "/" in sample.source or "\\" in sample.source else sample.name


def refuse_overlap(samples: list[Sample], test: list[Sample], given: str, other_source: bool = False) -> None:
    """No test image may also be a training, validation or pretraining image: same file stem, or
    identical pixels under another name. ``given``: the option and path the test images came from.
    Another source's set (``other_source``) may share a generic name by chance ("01_1"): there a shared
    name counts only with the same image size, as a re-encoded copy would have."""
    by_name = {s.name: s for s in samples}
    by_pixels = {_pixels_digest(s): s for s in samples}
    shared = []
    for t in test:
        if t.name in by_name and (not other_source or by_name[t.name].image.shape == t.image.shape):
            shared.append(f"{_where(t)} (same name as {_where(by_name[t.name])})")
        elif (twin := by_pixels.get(_pixels_digest(t))) is not None:
            shared.append(f"{_where(t)} (identical pixels to {_where(twin)})")
    if shared:
        listed = ", ".join(shared[:5]) + (f" and {len(shared) - 5} more" if len(shared) > 5 else "")
        raise DataError(f"{given} shares {len(shared)} image(s) with the training data: {listed}; "
                        "remove them from --data/--unlabeled or from that test folder.")


def split_samples(samples: list[Sample], split: dict, seed: int = 0, test: list[Sample] | None = None,
                  fold: int | None = None, folds: int = 0,
                  transfer: dict[str, list[Sample]] | None = None) -> DataSplit:
    """The one split routine of ``run`` and ``bench``.

    Test set, in order of precedence: fold ``fold`` of ``k_folds`` over the labelled images; ``test``
    (``--test-data``: all of ``samples`` is then train/val/pretraining); else ``split.test_ratio`` of the
    labelled images, drawn with ``split.seed``. The rest of the labelled images is split
    ``1 - val_ratio : val_ratio`` into train/val, and the label fraction cuts BOTH to nested subsets
    (val keeps at least one image): a "10 %" row must not pick its checkpoint with the full annotated
    validation set. Train/val and the label subset are drawn with ``split.seed``, or with the run's
    ``seed`` under ``split.resample_per_seed`` (then the std over seeds covers which images happened to be
    labelled); the test set never moves. With ``split.group_by`` ("patient") test and train/val are
    drawn by whole patients (the ratios count patients; the label fraction still counts images).
    Pretraining sees every image that is not a test image. ``transfer``: other sources' test sets,
    carried along to be scored.
    """
    labelled = {s.name: s for s in samples if s.labelled}
    groups = None
    if split.get("group_by"):  # train, val and (unless given) test: at least one patient each
        groups = patient_groups(labelled.values(), split["group_by"], fold, 2 if test is not None else 3)
    held_out: set[str] = set()
    if fold is not None:
        try:
            held_out = set(k_folds(list(labelled), folds, split["seed"])[fold][1])
        except ValueError as exc:
            raise DataError(f"cross-validation: {exc}") from None
        test = [s for n, s in labelled.items() if n in held_out]
    elif test is None:
        if len(labelled) < 3:
            raise DataError(f"need at least 3 labelled images (train, val, test), found {len(labelled)}; "
                            "add annotated images or use the synthetic default data.")
        _, test_names = train_val_split(list(labelled), split["test_ratio"], split["seed"], groups)
        held_out = set(test_names)
        test = [labelled[n] for n in test_names]
    label_seed = seed if split.get("resample_per_seed") else split["seed"]
    fraction = split.get("label_fraction", 1.0)
    train, val = train_val_split([n for n in labelled if n not in held_out], split["val_ratio"], label_seed, groups)
    train, val = (label_fraction(names, fraction, label_seed) for names in (train, val))
    return DataSplit(train=[labelled[n] for n in train], val=[labelled[n] for n in val], test=test,
                     pretrain=[s for s in samples if s.name not in held_out], transfer=transfer or {})


def patient_groups(labelled, key: str, fold: int | None, parts: int) -> dict[str, str]:
    """Image name -> its ``key`` (patient) as its reader recorded it, for a split by whole patients."""
    if fold is not None:
        raise DataError(f"split.group_by={key}: cross-validation folds are drawn by image; drop split.group_by "
                        "or run a suite with a fixed test set.")
    groups = {s.name: s.meta.get(key) for s in labelled}
    missing = [name for name, group in groups.items() if group is None]
    if missing:
        raise DataError(f"split.group_by={key}: image {missing[0]} records no {key} (its reader knows none); read "
                        "--data with a reader that does (--reader tnbc) or drop split.group_by.")
    if len(set(groups.values())) < parts:
        raise DataError(f"split.group_by={key}: need at least {parts} {key}s (one per part of the split), found "
                        f"{len(set(groups.values()))}.")
    return groups


def check_sizes(images: list[Sample], minimum: int, purpose: str) -> None:
    for sample in images:
        height, width = sample.image.shape[:2]
        if min(height, width) < minimum:
            raise DataError(f"{sample.source or sample.name}: image is {height}×{width} but {purpose} needs "
                            f"at least {minimum}×{minimum}; use a smaller crop (preset) or larger images.")


def check_inputs(cfg: Config, split: DataSplit) -> None:
    """Checks that would otherwise fail only after pretraining: call before any training."""
    check_sizes(split.train, cfg.finetune["crop"], "finetuning")
