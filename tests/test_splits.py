"""Leave-one-subject-out splits: invariants, determinism, colliding subject ids, inner validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.data.clips import group_key
from benchmarks.paths import shared_data_dir
from benchmarks.splits import Fold, fold_seed, inner_val_groups, inner_val_split, loso_splits


def _groups(seed: int = 0) -> np.ndarray:
    """Clips of three datasets whose subject ids collide ("006" and "s1" exist in two datasets)."""
    rng = np.random.default_rng(seed)
    subjects = [("samm", "006"), ("casme2", "006"), ("samm", "007"), ("smic", "s1"), ("casme2", "s1"),
                ("casme2", "sub01"), ("smic", "s2")]
    rows = [group_key(d, s) for d, s in subjects for _ in range(rng.integers(1, 6))]
    return rng.permutation(np.array(rows))


def _check_invariants(groups: np.ndarray, folds: list[Fold]) -> None:
    n = groups.size
    tested = np.concatenate([f.test_idx for f in folds])
    assert np.array_equal(np.sort(tested), np.arange(n)), "every clip is tested exactly once"
    for f in folds:
        assert set(groups[f.test_idx]) == {f.test_group}
        assert f.test_group not in set(groups[f.train_idx]), "no group on both sides"
        assert np.intersect1d(f.train_idx, f.test_idx).size == 0
        assert f.n_train + f.n_test == n
        assert np.all(np.diff(f.train_idx) > 0) and np.all(np.diff(f.test_idx) > 0)


def test_loso_invariants_with_colliding_subject_ids():
    g = _groups()
    folds = loso_splits(g)
    _check_invariants(g, folds)
    assert [f.test_group for f in folds] == sorted(set(g.tolist()))
    assert [f.k for f in folds] == list(range(7))
    # the two subjects named "006" (and the two named "s1") are separate folds
    names = {f.test_group for f in folds}
    assert {"samm/006", "casme2/006", "smic/s1", "casme2/s1"} <= names
    samm006 = next(f for f in folds if f.test_group == "samm/006")
    assert np.all(g[samm006.train_idx] != "samm/006")
    assert np.any(g[samm006.train_idx] == "casme2/006"), "the other '006' stays in training"


def test_loso_is_deterministic_and_order_independent():
    g = _groups(1)
    a, b = loso_splits(g), loso_splits(g.tolist())
    assert [(f.k, f.test_group) for f in a] == [(f.k, f.test_group) for f in b]
    assert all(np.array_equal(x.test_idx, y.test_idx) for x, y in zip(a, b, strict=True))
    # a shuffled clip table gives the same fold per subject, with the rows permuted accordingly
    perm = np.random.default_rng(5).permutation(g.size)
    c = loso_splits(g[perm])
    for x, y in zip(a, c, strict=True):
        assert x.test_group == y.test_group
        assert np.array_equal(np.sort(perm[y.test_idx]), x.test_idx)


def test_fold_arrays_are_read_only_and_fold_is_frozen():
    f = loso_splits(_groups())[0]
    with pytest.raises(ValueError):
        f.test_idx[0] = 99
    with pytest.raises(AttributeError):
        f.k = 3  # type: ignore[misc]
    assert f.test_idx.dtype == np.int64 and f.train_idx.dtype == np.int64


@pytest.mark.parametrize("bad", [["006", "007"], ["samm/006", ""], ["samm/", "samm/007"], [None, "a/b"]])
def test_loso_rejects_bare_subject_ids(bad):
    with pytest.raises(ValueError, match="dataset/subject"):
        loso_splits(bad)


def test_loso_needs_two_subjects():
    with pytest.raises(ValueError, match="at least 2 subjects"):
        loso_splits(["samm/006", "samm/006"])
    with pytest.raises(ValueError, match="no clips"):
        loso_splits([])


def test_fold_seed_depends_on_subject_not_position():
    g = _groups()
    folds = loso_splits(g)
    more = loso_splits(np.concatenate([g, ["aaa/first"]]))  # a new subject sorts first: every k shifts
    by_group = {f.test_group: f.seed(7) for f in more}
    for f in folds:
        assert f.seed(7) == by_group[f.test_group] == fold_seed(7, f.test_group)
    assert len({f.seed(7) for f in folds}) == len(folds)
    assert folds[0].seed(7) != folds[0].seed(8)
    assert 0 <= folds[0].seed() < 2**31


def test_inner_val_groups_deterministic_subset():
    train = np.array([f"samm/{i:03d}" for i in range(20) for _ in range(3)])
    a = inner_val_groups(train, 4, seed=11)
    b = inner_val_groups(train.tolist(), 4, seed=11)
    assert np.array_equal(a, b)
    assert a.size == 4 and len(set(a)) == 4 and set(a) <= set(train)
    assert list(a) == sorted(a)
    draws = {tuple(inner_val_groups(train, 4, seed=s)) for s in range(10)}
    assert len(draws) > 1, "the choice depends on the seed"


@pytest.mark.parametrize("n_val", [0, 3, -1])
def test_inner_val_groups_bounds(n_val):
    with pytest.raises(ValueError, match="n_val"):
        inner_val_groups(["a/1", "a/2", "b/1"], n_val, seed=0)


def test_inner_val_split_partitions_training_rows_by_subject():
    g = _groups(3)
    for fold in loso_splits(g):
        fit, val = inner_val_split(g, fold, n_val=2, base_seed=1)
        assert np.array_equal(np.sort(np.concatenate([fit, val])), fold.train_idx)
        assert not set(g[fit]) & set(g[val]), "a validation subject is held out whole"
        assert len(set(g[val])) == 2 and fold.test_group not in set(g[val])
        fit2, val2 = inner_val_split(g, fold, n_val=2, base_seed=1)
        assert np.array_equal(val, val2) and np.array_equal(fit, fit2)


def test_megc2019_composite_has_68_folds():
    root = shared_data_dir()
    if root is None or not (root / "megc2019" / "combined_3class_gt.csv").is_file():
        pytest.skip("../shared/data/megc2019/combined_3class_gt.csv not present")
    gt = pd.read_csv(root / "megc2019" / "combined_3class_gt.csv", header=None,
                     names=["dataset", "subject", "clip", "label"], dtype=str)
    groups = np.array([group_key(d, s) for d, s in zip(gt["dataset"], gt["subject"], strict=True)])
    folds = loso_splits(groups)
    _check_invariants(groups, folds)
    assert len(folds) == 68 and groups.size == 442
    per_source = pd.Series([f.test_group.split("/")[0] for f in folds]).value_counts().to_dict()
    assert per_source == {"samm": 28, "casme2": 24, "smic": 16}
