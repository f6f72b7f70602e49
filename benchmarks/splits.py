"""Leave-one-subject-out (LOSO) splits and the inner validation subjects of a training fold.

A subject's identity is its group ``"dataset/subject"`` (the clip table's ``group`` column, see
:func:`benchmarks.data.clips.group_key`): subject ids collide across datasets (``006`` may exist in
two sources), so splitting on the bare subject id would merge two people into one fold. In a
composite (the MEGC2019 "3DB-combined" set) every subject of every source is one fold: 68 folds for
the 442 clips.

Folds come in sorted group order, so fold ``k`` is the same subject whatever order the clip table
has. Per-fold seeds are derived from the held-out group's name (:meth:`Fold.seed`), not from ``k``,
so adding or removing a subject does not reshuffle the randomness of the other folds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from benchmarks.atomic import stable_hash


@dataclass(frozen=True, eq=False)
class Fold:
    """One LOSO fold: clips of ``test_group`` are tested, every other clip trains.

    ``train_idx`` and ``test_idx`` are sorted, read-only int64 row positions into the clip table.
    """

    k: int
    test_group: str
    train_idx: np.ndarray
    test_idx: np.ndarray

    @property
    def n_train(self) -> int:
        return int(self.train_idx.size)

    @property
    def n_test(self) -> int:
        return int(self.test_idx.size)

    def seed(self, base_seed: int = 0) -> int:
        """A 31-bit seed for this fold's unit of work, derived from ``base_seed`` and the test group."""
        return fold_seed(base_seed, self.test_group)


def fold_seed(base_seed: int, test_group: str) -> int:
    """Deterministic seed of the fold that holds out ``test_group`` (independent of fold order)."""
    return int(stable_hash(["loso", int(base_seed), str(test_group)], n=8), 16) & 0x7FFFFFFF


def _as_groups(groups: Sequence[str] | np.ndarray, name: str = "groups") -> np.ndarray:
    arr = np.asarray(groups, dtype=object)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of 'dataset/subject' strings, got shape {arr.shape}")
    for i, g in enumerate(arr):
        if not isinstance(g, str) or "/" not in g or g.startswith("/") or g.endswith("/"):
            raise ValueError(
                f"{name}[{i}] = {g!r}: a group must be a 'dataset/subject' string "
                "(subject ids collide across datasets; use the clip table's 'group' column)"
            )
    return arr.astype(str)


def loso_splits(groups: Sequence[str] | np.ndarray) -> list[Fold]:
    """Leave-one-subject-out folds over ``groups`` (one ``"dataset/subject"`` string per clip).

    One fold per distinct group, in sorted group order. Every clip is tested exactly once, and no
    group ever has clips on both sides of a fold.
    """
    arr = _as_groups(groups)
    if arr.size == 0:
        raise ValueError("groups: no clips to split")
    uniq, inverse = np.unique(arr, return_inverse=True)
    if uniq.size < 2:
        raise ValueError(f"groups: leave-one-subject-out needs at least 2 subjects, got only {uniq[0]!r}")
    rows = np.arange(arr.size, dtype=np.int64)
    folds = []
    for k, g in enumerate(uniq):
        test = rows[inverse == k]
        train = rows[inverse != k]
        test.setflags(write=False)
        train.setflags(write=False)
        folds.append(Fold(k=k, test_group=str(g), train_idx=train, test_idx=test))
    return folds


def inner_val_groups(train_groups: Sequence[str] | np.ndarray, n_val: int, seed: int) -> np.ndarray:
    """Choose ``n_val`` distinct subjects of a training fold to hold out for validation.

    Used by the ``val`` epoch policy (early stopping on held-out training subjects, never on the
    test subject). ``train_groups`` is the group of each training clip (repeats allowed); the
    choice is uniform without replacement over the sorted distinct groups with
    ``numpy.random.default_rng(seed)``; pass :meth:`Fold.seed` so that it is seeded from the fold.
    Returns the chosen groups, sorted. At least one subject is always left to fit on.
    """
    uniq = np.unique(_as_groups(train_groups, "train_groups"))
    if isinstance(n_val, bool) or not isinstance(n_val, int | np.integer):
        raise TypeError(f"n_val must be an int, got {type(n_val).__name__}")
    if not 1 <= n_val < uniq.size:
        raise ValueError(f"n_val={n_val}: must be between 1 and {uniq.size - 1} "
                         f"(the training fold has {uniq.size} subjects and one must remain to fit on)")
    rng = np.random.default_rng(int(seed))
    return np.sort(rng.choice(uniq, size=int(n_val), replace=False))


def inner_val_split(groups: Sequence[str] | np.ndarray, fold: Fold, n_val: int,
                    base_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split ``fold.train_idx`` into (fit rows, validation rows) by :func:`inner_val_groups`.

    ``groups`` is the full per-clip group array the fold was built from; the seed is
    ``fold.seed(base_seed)``.
    """
    arr = _as_groups(groups)
    train_groups = arr[fold.train_idx]
    if fold.test_group in set(train_groups):
        raise ValueError(f"fold {fold.k}: its test group {fold.test_group!r} appears in the training rows; "
                         "were the folds built from these groups?")
    val = inner_val_groups(train_groups, n_val, fold.seed(base_seed))
    is_val = np.isin(train_groups, val)
    return fold.train_idx[~is_val], fold.train_idx[is_val]
