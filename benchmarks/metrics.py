"""Recognition metrics: accuracy, UF1, UAR, macro- and weighted-F1, pooled or fold-mean, with a
subject-level bootstrap interval. Pure numpy (scikit-learn is used only by the tests, as a check).

Definitions, from a confusion matrix ``cm`` (rows: true class, columns: predicted class, all
``n_classes`` classes present so that absent classes are counted), per class ``c``:
``TP = cm[c, c]``, ``FP = column sum - TP``, ``FN = row sum - TP``.

- ``accuracy`` = trace / total.
- ``uf1`` (unweighted F1, MEGC) = mean over classes of ``2TP / (2TP + FP + FN)``. A class with
  ``TP + FP + FN = 0`` (never true, never predicted) is left out of the mean; a class that is
  predicted but never true counts with F1 = 0. This is the convention of the MEGC2019 reference
  evaluation (``recognition_evaluation`` in the STSTNet authors' PyTorch port,
  christy1206/STSTNet ``main.py``, reused unchanged by HTNet, wangzhifengharrison/HTNet
  ``main_HTNet.py``): it builds a one-vs-rest 2x2 matrix per class with scikit-learn, and when the
  class occurs in neither list the matrix is 1x1, the unpacking fails and the class is skipped.
  It equals ``sklearn.metrics.f1_score(y_true, y_pred, average="macro")`` with default labels.
- ``uar`` (unweighted average recall, MEGC) = mean over classes of ``TP / (TP + FN)``, over the
  classes that occur in ``y_true``. The reference code divides by zero there (its log prints
  ``UAR: nan`` after its first subject); leaving the class out instead equals
  ``sklearn.metrics.balanced_accuracy_score``. With predictions pooled over a whole dataset every
  class occurs, and both conventions agree with the reference code exactly.
- ``macro_f1`` = ``sklearn.metrics.f1_score(average="macro", labels=range(n_classes),
  zero_division=0)``: every class counts, an absent one with F1 = 0.
- ``weighted_f1`` = per-class F1 weighted by true-class support (scikit-learn's ``"weighted"``).

Pooling (:class:`MetricPooling`): ``pooled`` concatenates the predictions of all folds and computes
each metric once (the MEGC convention, and the default); ``fold-mean`` computes the metric on each
fold (in LOSO: each subject) and averages over folds. Results always carry the pooling label.

Every metric function accepts a stack of matrices ``(..., C, C)`` and returns ``(...)`` values;
the bootstrap relies on that.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
import pandas as pd

METRICS = ("accuracy", "uf1", "uar", "macro_f1", "weighted_f1")
PREDICTION_COLUMNS = ("dataset", "subject", "clip", "y_true", "y_pred")
BOOTSTRAP_SEED = 2019
"""Default bootstrap seed (the MEGC2019 year); any fixed value gives reproducible intervals."""
BOOTSTRAP_N = 1000


class MetricPooling(StrEnum):
    """How fold-level predictions are combined into one score."""

    POOLED = "pooled"
    FOLD_MEAN = "fold-mean"


# ---------------------------------------------------------------------------- confusion matrices
def _labels(y, name: str, n_classes: int) -> np.ndarray:
    a = np.asarray(y)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of class indices, got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        if not (np.issubdtype(a.dtype, np.floating) and np.all(np.isfinite(a)) and np.all(a == np.round(a))):
            raise ValueError(f"{name}: class indices must be integers, got dtype {a.dtype}")
    a = a.astype(np.int64)
    bad = np.flatnonzero((a < 0) | (a >= n_classes))
    if bad.size:
        raise ValueError(f"{name}[{bad[0]}] = {a[bad[0]]}: outside the classes 0..{n_classes - 1}")
    return a


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """``(n_classes, n_classes)`` int64 counts, rows true and columns predicted (scikit-learn layout)."""
    if isinstance(n_classes, bool) or not isinstance(n_classes, int | np.integer) or n_classes < 1:
        raise ValueError(f"n_classes must be a positive int, got {n_classes!r}")
    n_classes = int(n_classes)
    t = _labels(y_true, "y_true", n_classes)
    p = _labels(y_pred, "y_pred", n_classes)
    if t.size != p.size:
        raise ValueError(f"y_true has {t.size} labels but y_pred has {p.size}")
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _counts(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cm = np.asarray(cm, dtype=np.float64)
    if cm.ndim < 2 or cm.shape[-1] != cm.shape[-2]:
        raise ValueError(f"confusion matrix must be (..., C, C), got shape {cm.shape}")
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    fp = cm.sum(axis=-2) - tp
    fn = cm.sum(axis=-1) - tp
    return tp, fp, fn


def _nanmean_last(x: np.ndarray) -> np.ndarray:
    ok = ~np.isnan(x)
    n = ok.sum(axis=-1)
    if np.any(n == 0):
        raise ValueError("metric undefined: a confusion matrix with no clips")
    return np.where(ok, x, 0.0).sum(axis=-1) / n


# ---------------------------------------------------------------------------- per-class values
def per_class_f1(cm: np.ndarray) -> np.ndarray:
    """``2TP / (2TP + FP + FN)`` per class; NaN where ``TP + FP + FN = 0`` (class absent everywhere)."""
    tp, fp, fn = _counts(cm)
    den = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, 2 * tp / den, np.nan)


def per_class_recall(cm: np.ndarray) -> np.ndarray:
    """``TP / (TP + FN)`` per class; NaN for a class with no true clips."""
    tp, _, fn = _counts(cm)
    den = tp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, tp / den, np.nan)


# ---------------------------------------------------------------------------- scalar metrics
def accuracy(cm: np.ndarray) -> np.ndarray:
    cm = np.asarray(cm, dtype=np.float64)
    total = cm.sum(axis=(-2, -1))
    if np.any(total == 0):
        raise ValueError("metric undefined: a confusion matrix with no clips")
    return np.trace(cm, axis1=-2, axis2=-1) / total


def uf1(cm: np.ndarray) -> np.ndarray:
    """Unweighted F1 (MEGC): mean per-class F1 over classes true or predicted at least once."""
    return _nanmean_last(per_class_f1(cm))


def uar(cm: np.ndarray) -> np.ndarray:
    """Unweighted average recall (MEGC): mean recall over the classes present in ``y_true``."""
    return _nanmean_last(per_class_recall(cm))


def macro_f1(cm: np.ndarray) -> np.ndarray:
    """Mean per-class F1 over all classes, an absent class counting 0 (scikit-learn, zero_division=0)."""
    accuracy(cm)  # raises on an empty matrix
    return np.nan_to_num(per_class_f1(cm), nan=0.0).mean(axis=-1)


def weighted_f1(cm: np.ndarray) -> np.ndarray:
    """Per-class F1 weighted by true-class support (scikit-learn ``average="weighted"``)."""
    tp, _, fn = _counts(cm)
    support = tp + fn
    total = support.sum(axis=-1)
    if np.any(total == 0):
        raise ValueError("metric undefined: a confusion matrix with no clips")
    return (np.nan_to_num(per_class_f1(cm), nan=0.0) * support).sum(axis=-1) / total


_METRIC_FUNCS = {
    "accuracy": accuracy, "uf1": uf1, "uar": uar, "macro_f1": macro_f1, "weighted_f1": weighted_f1,
}


def metrics_from_cm(cm: np.ndarray) -> dict[str, float | np.ndarray]:
    """All of :data:`METRICS` for one matrix (floats) or a stack (arrays)."""
    out = {}
    for name in METRICS:
        v = _METRIC_FUNCS[name](cm)
        out[name] = float(v) if np.ndim(v) == 0 else v
    return out


def compute_metrics(y_true, y_pred, n_classes: int) -> dict[str, float]:
    """All of :data:`METRICS` on one set of predictions."""
    return metrics_from_cm(confusion_matrix(y_true, y_pred, n_classes))


# ---------------------------------------------------------------------------- pooling over folds
def _group_cms(y_true, y_pred, folds, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct fold keys (sorted) and one confusion matrix per key, ``(G, C, C)``."""
    t = _labels(y_true, "y_true", n_classes)
    p = _labels(y_pred, "y_pred", n_classes)
    f = np.asarray(folds)
    if not (t.size == p.size == f.size):
        raise ValueError(f"y_true, y_pred and folds differ in length ({t.size}, {p.size}, {f.size})")
    if t.size == 0:
        raise ValueError("no predictions to score")
    keys, inv = np.unique(f, return_inverse=True)
    c2 = n_classes * n_classes
    flat = np.bincount(inv * c2 + t * n_classes + p, minlength=keys.size * c2)
    return keys, flat.reshape(keys.size, n_classes, n_classes)


def pooled_metrics(y_true, y_pred, folds, n_classes: int,
                   pooling: MetricPooling | str = MetricPooling.POOLED) -> dict[str, float]:
    """Metrics over predictions from several folds (``folds``: one fold key per prediction)."""
    pooling = MetricPooling(pooling)
    _, cms = _group_cms(y_true, y_pred, folds, n_classes)
    if pooling is MetricPooling.POOLED:
        return metrics_from_cm(cms.sum(axis=0))
    per_fold = metrics_from_cm(cms)
    return {k: float(np.mean(v)) for k, v in per_fold.items()}


def bootstrap_interval(y_true, y_pred, groups, n_classes: int,
                       pooling: MetricPooling | str = MetricPooling.POOLED, n_boot: int = BOOTSTRAP_N,
                       seed: int = BOOTSTRAP_SEED, level: float = 0.95) -> dict[str, tuple[float, float]]:
    """Subject-level percentile bootstrap interval for every metric of :data:`METRICS`.

    Each replicate draws as many subjects (``groups``) as there are, with replacement, keeps all
    clips of each drawn subject (a subject drawn twice counts twice) and recomputes the metric with
    the given pooling (for ``fold-mean``, each subject is a fold). The interval is the
    ``(1 - level) / 2`` and ``(1 + level) / 2`` percentiles of the replicates. Draws use
    ``numpy.random.default_rng(seed)``, so an interval is reproducible for a seed.
    """
    pooling = MetricPooling(pooling)
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    _, cms = _group_cms(y_true, y_pred, groups, n_classes)
    g = cms.shape[0]
    rng = np.random.default_rng(seed)
    # the count of each subject in a resample of g subjects drawn with replacement
    counts = rng.multinomial(g, np.full(g, 1.0 / g), size=n_boot).astype(np.float64)  # (B, G)
    if pooling is MetricPooling.POOLED:
        boot_cms = (counts @ cms.reshape(g, -1)).reshape(n_boot, n_classes, n_classes)
        reps = metrics_from_cm(boot_cms)
    else:
        per_group = metrics_from_cm(cms)
        reps = {k: counts @ np.asarray(v) / g for k, v in per_group.items()}
    q = 100 * np.array([(1 - level) / 2, (1 + level) / 2])
    return {k: tuple(float(x) for x in np.percentile(np.asarray(v), q)) for k, v in reps.items()}


# ---------------------------------------------------------------------------- prediction tables
def validate_predictions(df: pd.DataFrame, n_classes: int, source: str = "predictions") -> pd.DataFrame:
    """Check a long prediction table and return a normalised copy with a ``group`` column.

    Columns :data:`PREDICTION_COLUMNS` are required; labels must be integers in ``0..n_classes-1``;
    a clip (dataset, subject, clip) may appear only once. Errors name ``source`` and the row.
    """
    missing = [c for c in PREDICTION_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing}; required {list(PREDICTION_COLUMNS)}")
    if len(df) == 0:
        raise ValueError(f"{source}: no predictions")
    out = df.reset_index(drop=True).copy()
    for c in ("dataset", "subject", "clip"):
        out[c] = out[c].astype(str)
    for c in ("y_true", "y_pred"):
        num = pd.to_numeric(out[c], errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(num) | (num != np.round(num)) | (num < 0) | (num >= n_classes))
        if bad.size:
            i, v = int(bad[0]), df[c].iloc[int(bad[0])]
            shown = repr(v) if isinstance(v, str) else str(v)
            raise ValueError(f"{source}: row {i}: {c} = {shown} is not a class index "
                             f"(an integer in 0..{n_classes - 1})")
        out[c] = num.astype(np.int64)
    dup = out.duplicated(["dataset", "subject", "clip"], keep=False)
    if dup.any():
        rows = np.flatnonzero(dup.to_numpy())[:4].tolist()
        r = out.iloc[rows[0]]
        raise ValueError(f"{source}: clip {r['dataset']}/{r['subject']}/{r['clip']} is scored more than once "
                         f"(rows {rows})")
    out["group"] = out["dataset"] + "/" + out["subject"]
    return out


def score(df: pd.DataFrame, n_classes: int, pooling: MetricPooling | str = MetricPooling.POOLED,
          by: str | None = "dataset", n_boot: int = BOOTSTRAP_N, seed: int = BOOTSTRAP_SEED,
          level: float = 0.95) -> pd.DataFrame:
    """Score a long prediction table overall (scope ``all``) and per value of ``by`` (the composite's
    per-source scores).

    Groups are ``dataset/subject``; with ``fold-mean`` pooling each group is a fold (LOSO). Columns:
    ``scope, pooling, n_clips, n_subjects``, the :data:`METRICS`, and with ``n_boot > 0`` a
    ``<metric>_lo``/``<metric>_hi`` subject-bootstrap interval per metric (at ``level``, seeded
    with ``seed``).
    """
    pooling = MetricPooling(pooling)
    data = validate_predictions(df, n_classes)
    scopes: list[tuple[str, pd.DataFrame]] = [("all", data)]
    if by is not None:
        if by not in data.columns:
            raise ValueError(f"by={by!r}: no such column in the predictions")
        scopes += [(str(k), g) for k, g in data.groupby(by, sort=True)]
    rows = []
    for name, part in scopes:
        t, p, grp = part["y_true"].to_numpy(), part["y_pred"].to_numpy(), part["group"].to_numpy()
        row: dict = {"scope": name, "pooling": str(pooling), "n_clips": int(len(part)),
                     "n_subjects": int(part["group"].nunique())}
        row.update(pooled_metrics(t, p, grp, n_classes, pooling))
        if n_boot > 0:
            ci = bootstrap_interval(t, p, grp, n_classes, pooling, n_boot, seed, level)
            for k, (lo, hi) in ci.items():
                row[f"{k}_lo"], row[f"{k}_hi"] = lo, hi
        rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs.update({"pooling": str(pooling), "n_classes": int(n_classes), "n_boot": int(n_boot),
                      "seed": int(seed), "level": float(level)})
    return out
