"""Deterministic splits: 80:20 train/val (paper), by image or by patient, nested label fractions, k folds."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np


def _shuffled(names: Sequence[str], seed: int) -> list[str]:
    ordered = sorted(names)  # independent of the order files were listed in
    if len(set(ordered)) != len(ordered):
        raise ValueError("image names must be unique; duplicate names would land in both splits.")
    return [ordered[i] for i in np.random.default_rng(seed).permutation(len(ordered))]


def train_val_split(names: Sequence[str], val_ratio: float = 0.2, seed: int = 0,
                    groups: Mapping[str, str] | None = None) -> tuple[list[str], list[str]]:
    """Names split into (train, val); val has round(val_ratio * n) names, at least 1 when n >= 2.

    With ``groups`` (name -> group, e.g. its patient) whole groups are drawn instead: n counts groups,
    and every name of a group lands in the part its group does (tiles of one patient never in both)."""
    if groups is not None:
        members: dict[str, list[str]] = {}
        for name in names:
            members.setdefault(groups[name], []).append(name)
        kept, held = train_val_split(list(members), val_ratio, seed)
        return sorted(n for g in kept for n in members[g]), sorted(n for g in held for n in members[g])
    if not 0 <= val_ratio < 1:
        raise ValueError(f"val_ratio must be in [0, 1), got {val_ratio}.")
    shuffled = _shuffled(names, seed)
    n_val = round(val_ratio * len(shuffled))
    if val_ratio > 0 and len(shuffled) >= 2:
        n_val = min(max(n_val, 1), len(shuffled) - 1)
    return sorted(shuffled[n_val:]), sorted(shuffled[:n_val])


def label_fraction(names: Sequence[str], fraction: float, seed: int = 0) -> list[str]:
    """The first ceil(fraction * n) names of one seeded order: smaller fractions are subsets of larger."""
    if not 0 < fraction <= 1:
        raise ValueError(f"label fraction must be in (0, 1], got {fraction}.")
    if not names:
        return []
    return sorted(_shuffled(names, seed)[: max(1, math.ceil(fraction * len(names) - 1e-9))])


def k_folds(names: Sequence[str], k: int = 5, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    """k (train, test) pairs; every name is tested exactly once."""
    if not 2 <= k <= len(names):
        raise ValueError(f"k-fold needs 2 <= k <= number of images ({len(names)}), got k={k}.")
    folds = np.array_split(np.array(_shuffled(names, seed), dtype=object), k)
    return [(sorted(n for j, f in enumerate(folds) if j != i for n in f), sorted(folds[i])) for i in range(k)]
