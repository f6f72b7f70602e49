"""Metrics against scikit-learn and hand-computed confusion matrices, pooled vs fold-mean, bootstrap."""

from __future__ import annotations

import warnings
from fractions import Fraction as Fr

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from benchmarks.metrics import (
    METRICS,
    MetricPooling,
    accuracy,
    bootstrap_interval,
    compute_metrics,
    confusion_matrix,
    macro_f1,
    metrics_from_cm,
    per_class_f1,
    pooled_metrics,
    score,
    uar,
    uf1,
    weighted_f1,
)


def _from_cm(cm) -> tuple[np.ndarray, np.ndarray]:
    """Label lists that produce the confusion matrix ``cm`` (rows true, columns predicted)."""
    t, p = [], []
    for i, row in enumerate(cm):
        for j, n in enumerate(row):
            t += [i] * n
            p += [j] * n
    return np.array(t), np.array(p)


# ---------------------------------------------------------------------------- hand-computed example
HAND_CM = [[3, 1, 0],
           [0, 2, 2],
           [1, 0, 1]]
# per class (TP, FP, FN): 0: (3, 1, 1) -> F1 6/8 = 3/4, recall 3/4
#                        1: (2, 1, 2) -> F1 4/7,        recall 2/4 = 1/2
#                        2: (1, 2, 1) -> F1 2/5,        recall 1/2
HAND_F1 = [Fr(3, 4), Fr(4, 7), Fr(2, 5)]
HAND = {
    "accuracy": Fr(6, 10),
    "uf1": sum(HAND_F1) / 3,                                   # 241/420
    "uar": (Fr(3, 4) + Fr(1, 2) + Fr(1, 2)) / 3,               # 7/12
    "macro_f1": sum(HAND_F1) / 3,                              # all classes present: equals UF1
    "weighted_f1": (4 * HAND_F1[0] + 4 * HAND_F1[1] + 2 * HAND_F1[2]) / 10,  # 213/350
}


def test_hand_computed_three_class_example():
    assert HAND["uf1"] == Fr(241, 420) and HAND["uar"] == Fr(7, 12) and HAND["weighted_f1"] == Fr(213, 350)
    t, p = _from_cm(HAND_CM)
    cm = confusion_matrix(t, p, 3)
    assert cm.tolist() == HAND_CM
    np.testing.assert_allclose(per_class_f1(cm), [float(x) for x in HAND_F1], rtol=0, atol=1e-15)
    got = compute_metrics(t, p, 3)
    for k, v in HAND.items():
        assert got[k] == pytest.approx(float(v), abs=1e-15), k


def test_hand_example_matches_sklearn():
    t, p = _from_cm(HAND_CM)
    assert skm.f1_score(t, p, average="macro") == pytest.approx(float(HAND["uf1"]), abs=1e-15)
    assert skm.recall_score(t, p, average="macro") == pytest.approx(float(HAND["uar"]), abs=1e-15)


# ---------------------------------------------------------------------------- absent classes
def test_absent_class_conventions():
    # 4 classes; class 3 never occurs; class 2 is predicted once but never true
    t = np.array([0, 0, 1, 1, 1])
    p = np.array([0, 1, 1, 1, 2])
    cm = confusion_matrix(t, p, 4)
    assert cm.shape == (4, 4) and cm[3].sum() == 0 and cm[:, 3].sum() == 0
    f1 = per_class_f1(cm)
    # class 0: (1,0,1) -> 2/3; class 1: (2,1,1) -> 4/6; class 2: (0,1,0) -> 0; class 3: undefined
    np.testing.assert_allclose(f1[:3], [2 / 3, 2 / 3, 0.0])
    assert np.isnan(f1[3])
    assert uf1(cm) == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)       # MEGC: class 3 skipped, class 2 counts 0
    assert macro_f1(cm) == pytest.approx((2 / 3 + 2 / 3 + 0 + 0) / 4)  # sklearn labels=range(4): all count
    assert uar(cm) == pytest.approx((1 / 2 + 2 / 3) / 2)            # only classes present in y_true


def test_megc_reference_example_first_subject():
    """The first fold of the STSTNet authors' PyTorch log (christy1206/STSTNet) prints UF1 0.5185 for
    truth [0]*9+[2,2], prediction [0]*7+[1,0,0,2]: class 1 is predicted but never true and counts 0."""
    t = np.array([0] * 9 + [2, 2])
    p = np.array([0] * 7 + [1, 0, 0, 2])
    # class 0: (8,1,1) -> 16/18; class 1: (0,1,0) -> 0; class 2: (1,0,1) -> 2/3
    assert uf1(confusion_matrix(t, p, 3)) == pytest.approx((16 / 18 + 0 + 2 / 3) / 3)
    assert round(float(uf1(confusion_matrix(t, p, 3))), 4) == 0.5185


@pytest.mark.parametrize("case", range(12))
def test_against_sklearn_random_with_absent_classes(case):
    rng = np.random.default_rng(case)
    n = 4
    size = int(rng.integers(1, 40))
    true_classes = [0, 1, 2, 3] if case % 3 == 0 else [0, 1, 2] if case % 3 == 1 else [1, 3]
    pred_classes = [0, 1, 2, 3] if case % 2 == 0 else [0, 2]
    t = rng.choice(true_classes, size)
    p = rng.choice(pred_classes, size)
    cm = confusion_matrix(t, p, n)
    got = metrics_from_cm(cm)
    labels = list(range(n))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cm.tolist() == skm.confusion_matrix(t, p, labels=labels).tolist()
        assert got["accuracy"] == pytest.approx(skm.accuracy_score(t, p), abs=1e-12)
        assert got["macro_f1"] == pytest.approx(
            skm.f1_score(t, p, average="macro", labels=labels, zero_division=0), abs=1e-12)
        assert got["uf1"] == pytest.approx(skm.f1_score(t, p, average="macro", zero_division=0), abs=1e-12)
        assert got["uar"] == pytest.approx(skm.balanced_accuracy_score(t, p), abs=1e-12)
        present = sorted(set(t.tolist()))
        assert got["uar"] == pytest.approx(
            skm.recall_score(t, p, average="macro", labels=present, zero_division=0), abs=1e-12)
        assert got["weighted_f1"] == pytest.approx(
            skm.f1_score(t, p, average="weighted", labels=labels, zero_division=0), abs=1e-12)
        if set(t.tolist()) == set(labels):  # every class true at least once: plain sklearn macro recall
            assert got["uar"] == pytest.approx(skm.recall_score(t, p, average="macro"), abs=1e-12)


def test_metric_functions_accept_stacks():
    rng = np.random.default_rng(0)
    cms = rng.integers(0, 5, size=(6, 3, 3))
    cms[2] = [[4, 0, 0], [0, 0, 0], [1, 0, 0]]  # class 1 absent
    for f in (accuracy, uf1, uar, macro_f1, weighted_f1):
        stacked = f(cms)
        assert stacked.shape == (6,)
        np.testing.assert_allclose(stacked, [f(c) for c in cms])


def test_bad_labels_are_named():
    with pytest.raises(ValueError, match=r"y_pred\[2\] = 3"):
        confusion_matrix([0, 1, 2], [0, 1, 3], 3)
    with pytest.raises(ValueError, match="y_pred has 2"):
        confusion_matrix([0, 1, 2], [0, 1], 3)
    with pytest.raises(ValueError, match="n_classes"):
        confusion_matrix([0], [0], 0)
    with pytest.raises(ValueError, match="no clips"):
        uf1(np.zeros((3, 3)))


# ---------------------------------------------------------------------------- pooled vs fold-mean
# fold A: truth [0,0,0,1], prediction [0,0,0,0]; fold B: truth [1], prediction [1]
POOL_T = [0, 0, 0, 1, 1]
POOL_P = [0, 0, 0, 0, 1]
POOL_F = ["d/A", "d/A", "d/A", "d/A", "d/B"]


def test_pooled_and_fold_mean_differ_on_constructed_example():
    pooled = pooled_metrics(POOL_T, POOL_P, POOL_F, 2, "pooled")
    mean = pooled_metrics(POOL_T, POOL_P, POOL_F, 2, MetricPooling.FOLD_MEAN)
    # pooled cm [[3,0],[1,1]]: F1 class 0 = 6/7, class 1 = 2/3
    assert pooled["uf1"] == pytest.approx(float((Fr(6, 7) + Fr(2, 3)) / 2))  # 16/21 = 0.7619
    assert pooled["accuracy"] == pytest.approx(4 / 5)
    assert pooled["uar"] == pytest.approx(3 / 4)
    # fold A cm [[3,0],[1,0]]: UF1 (6/7 + 0)/2 = 3/7, accuracy 3/4, macro-F1 3/7
    # fold B cm [[0,0],[0,1]]: class 0 absent -> UF1 = 1 (MEGC skip), macro-F1 = 1/2, accuracy 1
    assert mean["uf1"] == pytest.approx((3 / 7 + 1) / 2)          # 5/7 = 0.7143
    assert mean["accuracy"] == pytest.approx((3 / 4 + 1) / 2)     # 7/8
    assert mean["macro_f1"] == pytest.approx((3 / 7 + 1 / 2) / 2)  # 13/28
    assert mean["uar"] == pytest.approx((1 / 2 + 1) / 2)
    assert pooled["uf1"] != pytest.approx(mean["uf1"])
    assert pooled["accuracy"] != pytest.approx(mean["accuracy"])


def test_fold_order_does_not_matter():
    perm = [4, 2, 0, 3, 1]
    for pooling in MetricPooling:
        a = pooled_metrics(POOL_T, POOL_P, POOL_F, 2, pooling)
        b = pooled_metrics(np.take(POOL_T, perm), np.take(POOL_P, perm), np.take(POOL_F, perm), 2, pooling)
        assert a == pytest.approx(b)


# ---------------------------------------------------------------------------- bootstrap
def _random_predictions(seed: int = 0, n_subjects: int = 30):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 12, n_subjects)
    groups = np.repeat([f"d/{i:02d}" for i in range(n_subjects)], sizes)
    t = rng.choice(3, groups.size, p=[0.55, 0.25, 0.2])
    p = np.where(rng.random(groups.size) < 0.65, t, rng.choice(3, groups.size))
    return t, p, groups


@pytest.mark.parametrize("pooling", list(MetricPooling))
def test_bootstrap_contains_point_and_is_deterministic(pooling):
    t, p, g = _random_predictions()
    point = pooled_metrics(t, p, g, 3, pooling)
    ci = bootstrap_interval(t, p, g, 3, pooling=pooling, n_boot=500, seed=3)
    assert set(ci) == set(METRICS)
    for k, (lo, hi) in ci.items():
        assert 0.0 <= lo <= point[k] <= hi <= 1.0, k
        assert hi - lo > 0.01, k
    assert bootstrap_interval(t, p, g, 3, pooling=pooling, n_boot=500, seed=3) == ci
    assert bootstrap_interval(t, p, g, 3, pooling=pooling, n_boot=500, seed=4) != ci


def test_bootstrap_matches_naive_subject_resampling():
    """The vectorised replicates equal a clip-level recomputation of each resample of subjects."""
    t, p, g = _random_predictions(1, n_subjects=12)
    n_boot, seed = 100, 9
    ci = bootstrap_interval(t, p, g, 3, n_boot=n_boot, seed=seed)
    subjects = np.unique(g)
    counts = np.random.default_rng(seed).multinomial(subjects.size, np.full(subjects.size, 1 / subjects.size),
                                                     size=n_boot)
    reps = []
    for c in counts:
        idx = np.concatenate([np.repeat(np.flatnonzero(g == s), k) for s, k in zip(subjects, c, strict=True)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reps.append(skm.f1_score(t[idx], p[idx], average="macro", zero_division=0))
    lo, hi = np.percentile(reps, [2.5, 97.5])
    assert ci["uf1"] == pytest.approx((lo, hi), abs=1e-12)


def test_bootstrap_with_one_subject_is_degenerate():
    t, p = np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2])
    point = compute_metrics(t, p, 3)
    ci = bootstrap_interval(t, p, ["d/x"] * 4, 3, n_boot=50)
    for k, (lo, hi) in ci.items():
        assert lo == pytest.approx(point[k]) and hi == pytest.approx(point[k])


# ---------------------------------------------------------------------------- prediction tables
def _table() -> pd.DataFrame:
    # two datasets share the subject id "006"; they are two subjects
    rows = [("samm", "006", "a", 0, 0), ("samm", "006", "b", 1, 0), ("samm", "007", "c", 1, 1),
            ("casme2", "006", "d", 0, 0), ("casme2", "006", "e", 2, 2), ("casme2", "sub02", "f", 2, 1)]
    return pd.DataFrame(rows, columns=["dataset", "subject", "clip", "y_true", "y_pred"])


def test_score_overall_and_per_dataset():
    df = _table()
    out = score(df, 3, n_boot=0).set_index("scope")
    assert list(out.index) == ["all", "casme2", "samm"]
    assert out.loc["all", "n_subjects"] == 4 and out.loc["all", "n_clips"] == 6
    assert (out["pooling"] == "pooled").all()
    # all: cm [[2,0,0],[1,1,0],[0,1,1]] -> F1 (4/5, 1/2, 2/3), recall (1, 1/2, 1/2)
    assert out.loc["all", "uf1"] == pytest.approx((4 / 5 + 1 / 2 + 2 / 3) / 3)
    assert out.loc["all", "uar"] == pytest.approx(2 / 3)
    assert out.loc["all", "accuracy"] == pytest.approx(4 / 6)
    # samm: cm [[1,0,0],[1,1,0],[0,0,0]] -> class 2 absent: UF1 over 2 classes, macro-F1 over 3
    assert out.loc["samm", "uf1"] == pytest.approx((2 / 3 + 2 / 3) / 2)
    assert out.loc["samm", "macro_f1"] == pytest.approx((2 / 3 + 2 / 3) / 3)
    assert out.loc["samm", "uar"] == pytest.approx((1 + 1 / 2) / 2)
    for scope in out.index:
        part = df if scope == "all" else df[df["dataset"] == scope]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert out.loc[scope, "uf1"] == pytest.approx(
                skm.f1_score(part["y_true"], part["y_pred"], average="macro", zero_division=0))


def test_score_without_per_source_rows():
    out = score(_table(), 3, by=None, n_boot=0)
    assert out["scope"].tolist() == ["all"]
    with pytest.raises(ValueError, match="by='source'"):
        score(_table(), 3, by="source")


def test_score_fold_mean_uses_one_fold_per_subject():
    out = score(_table(), 3, pooling="fold-mean", n_boot=0).set_index("scope")
    assert (out["pooling"] == "fold-mean").all()
    # accuracy per subject: samm/006 1/2, samm/007 1, casme2/006 1, casme2/sub02 0
    assert out.loc["all", "accuracy"] == pytest.approx((0.5 + 1 + 1 + 0) / 4)
    assert out.loc["samm", "accuracy"] == pytest.approx(0.75)


def test_score_bootstrap_columns_and_attrs():
    out = score(_table(), 3, n_boot=100, seed=1)
    for m in METRICS:
        assert (out[f"{m}_lo"] <= out[m] + 1e-12).all() and (out[m] <= out[f"{m}_hi"] + 1e-12).all()
    assert out.attrs["pooling"] == "pooled" and out.attrs["n_boot"] == 100 and out.attrs["seed"] == 1


def test_score_rejects_bad_tables():
    df = _table()
    with pytest.raises(ValueError, match="y_pred"):
        score(df.drop(columns="y_pred"), 3)
    bad = df.copy()
    bad["y_true"] = bad["y_true"].astype(object)
    bad.loc[3, "y_true"] = "x"
    with pytest.raises(ValueError, match="row 3: y_true"):
        score(bad, 3)
    with pytest.raises(ValueError, match="row 1: y_true = 1"):
        score(df, 1)
    with pytest.raises(ValueError, match="more than once"):
        score(pd.concat([df, df.iloc[[0]]]), 3)
