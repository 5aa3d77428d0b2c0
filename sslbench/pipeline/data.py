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


def load_samples(data_cfg: dict, unlabeled: str | None) -> list[Sample]:
    """The ``data`` section's images; ``data.rescale`` (a reader option) resizes them at load."""
    if data_cfg["type"] == "path":
        samples = dataset_from_path(data_cfg["path"], rescale=data_cfg.get("rescale", 1.0)).load()
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
    test = [s for s in dataset_from_path(cfg.test_data).load() if s.labelled]
    if not test:
        raise DataError(f"--test-data {cfg.test_data}: no labelled images found; it must hold annotations.")
    refuse_overlap(samples, test, cfg.test_data)
    return samples, test


def _pixels_digest(sample: Sample) -> str:
    return hashlib.sha1(np.ascontiguousarray(sample.image).tobytes() + str(sample.image.shape).encode()).hexdigest()


def _where(sample: Sample) -> str:
    """A file path where the reader recorded one, else the image name (generated data)."""
    return sample.source if "/" in sample.source or "\\" in sample.source else sample.name


def refuse_overlap(samples: list[Sample], test: list[Sample], test_path: str) -> None:
    """No test image may also be a training, validation or pretraining image: same file stem, or
    identical pixels under another name."""
    by_name = {s.name: s for s in samples}
    by_pixels = {_pixels_digest(s): s for s in samples}
    shared = []
    for t in test:
        if t.name in by_name:
            shared.append(f"{_where(t)} (same name as {_where(by_name[t.name])})")
        elif (twin := by_pixels.get(_pixels_digest(t))) is not None:
            shared.append(f"{_where(t)} (identical pixels to {_where(twin)})")
    if shared:
        listed = ", ".join(shared[:5]) + (f" and {len(shared) - 5} more" if len(shared) > 5 else "")
        raise DataError(f"--test-data {test_path} shares {len(shared)} image(s) with the training data: {listed}; "
                        "remove them from --data/--unlabeled or from --test-data.")


def split_samples(samples: list[Sample], split: dict, seed: int = 0, test: list[Sample] | None = None,
                  fold: int | None = None, folds: int = 0) -> DataSplit:
    """The one split routine of ``run`` and ``bench``.

    Test set, in order of precedence: fold ``fold`` of ``k_folds`` over the labelled images; ``test``
    (``--test-data``: all of ``samples`` is then train/val/pretraining); else ``split.test_ratio`` of the
    labelled images, drawn with ``split.seed``. The rest of the labelled images is split
    ``1 - val_ratio : val_ratio`` into train/val, and the label fraction cuts BOTH to nested subsets
    (val keeps at least one image): a "10 %" row must not pick its checkpoint with the full annotated
    validation set. Train/val and the label subset are drawn with ``split.seed``, or with the run's
    ``seed`` under ``split.resample_per_seed`` (then the std over seeds covers which images happened to be
    labelled); the test set never moves. Pretraining sees every image that is not a test image.
    """
    labelled = {s.name: s for s in samples if s.labelled}
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
        _, test_names = train_val_split(list(labelled), split["test_ratio"], split["seed"])
        held_out = set(test_names)
        test = [labelled[n] for n in test_names]
    label_seed = seed if split.get("resample_per_seed") else split["seed"]
    fraction = split.get("label_fraction", 1.0)
    train, val = train_val_split([n for n in labelled if n not in held_out], split["val_ratio"], label_seed)
    train, val = (label_fraction(names, fraction, label_seed) for names in (train, val))
    return DataSplit(train=[labelled[n] for n in train], val=[labelled[n] for n in val], test=test,
                     pretrain=[s for s in samples if s.name not in held_out])


def check_sizes(images: list[Sample], minimum: int, purpose: str) -> None:
    for sample in images:
        height, width = sample.image.shape[:2]
        if min(height, width) < minimum:
            raise DataError(f"{sample.source or sample.name}: image is {height}×{width} but {purpose} needs "
                            f"at least {minimum}×{minimum}; use a smaller crop (preset) or larger images.")


def check_inputs(cfg: Config, split: DataSplit) -> None:
    """Checks that would otherwise fail only after pretraining: call before any training."""
    check_sizes(split.train, cfg.finetune["crop"], "finetuning")
