import pytest

from sslbench.data.splits import k_folds, label_fraction, train_val_split

NAMES = [f"img{i:02d}" for i in range(30)]


def test_train_val_is_80_20_disjoint_and_seeded():
    train, val = train_val_split(NAMES, seed=1)
    assert (len(train), len(val)) == (24, 6)
    assert set(train) | set(val) == set(NAMES) and not set(train) & set(val)
    assert train_val_split(list(reversed(NAMES)), seed=1) == (train, val)  # listing order is irrelevant
    assert train_val_split(NAMES, seed=2) != (train, val)


def test_label_fractions_are_nested_and_never_empty():
    train, _ = train_val_split(NAMES, seed=0)
    subsets = [set(label_fraction(train, f, seed=0)) for f in (0.1, 0.3, 0.5, 0.7, 1.0)]
    assert [len(s) for s in subsets] == [3, 8, 12, 17, 24]
    assert all(small <= big for small, big in zip(subsets, subsets[1:]))
    assert label_fraction(train, 0.3, seed=0) == label_fraction(train, 0.3, seed=0)
    assert len(label_fraction(["only"], 0.1)) == 1


def test_k_folds_test_every_name_once():
    tested = [name for _, test in k_folds(NAMES, k=5) for name in test]
    assert sorted(tested) == NAMES


def test_duplicate_names_are_refused():
    with pytest.raises(ValueError, match="duplicate"):
        train_val_split(["a", "b", "a"])
