"""Paired significance tests of MFVAN against each other row of a table, and the marks they put on cells.

The unit of pairing is the subject (``group`` = ``dataset/subject``, the LOSO fold): each method gets one
score per subject (:func:`per_subject_scores`, the mean over seeds of the metric on that subject's clips),
and the reference (MFVAN) is compared with every other implemented row of the table on the subjects both
scored (:func:`paired_tests`):

- test: two-sided Wilcoxon signed-rank test (``scipy.stats.wilcoxon``, ``zero_method="wilcox"``,
  ``method="auto"``) on the differences reference - other, rounded to 12 decimals so that equal scores
  tie exactly. ``"wilcox"`` discards zero differences; scipy's ``auto`` then uses the exact null
  distribution (no ties, n <= 50), an exhaustive sign-flip permutation (ties or zeros, n <= 13: still
  deterministic) or the normal approximation with tie correction (otherwise); ``p_method`` records which.
- all differences zero (e.g. identical predictions): no evidence of a difference, ``p = 1`` and
  ``statistic = 0`` (scipy would return NaN or warn there); ``note`` says so.
- fewer than 6 non-zero differences: the smallest two-sided p the test can give is ``2 / 2**n``
  (0.0625 for n = 5), so such a comparison can never be significant at 0.05; it is run and reported
  anyway, with a note, and the table legend counts these comparisons.
- no subject scored by both: the comparison is left out (no row).
- multiple comparisons: Holm's step-down correction (:func:`holm`) over *all* comparisons of one table
  (every column group x every other row), valid under any dependence between the tests.

Per-subject metric: accuracy by default. A LOSO test fold is one subject with a handful of clips, often
of one or two classes only; F1 (UF1, macro-F1) on such a fold is ill-defined (classes absent from the
subject) or degenerate, whereas accuracy is the fraction of the subject's clips recognised. ``metric``
may name any metric of :mod:`benchmarks.metrics`.

Marks (:func:`marks_from_tests`) go on the *other* row's cell of the column of the tested metric
(accuracy), or, for a group without that column (Table 2: UF1/UAR only), on the group's first column:
``" *"`` the reference is significantly better (Holm-adjusted p < alpha), ``" †"`` significantly worse,
``" (ns)"`` not significant. :func:`legend` is the matching footer line.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np
import pandas as pd
from scipy import stats as st

from benchmarks import metrics as M
from benchmarks.tablespec import Row, TableSpec

REFERENCE = ("mfvan", "global+s123+ri")
"""The full MFVAN model (Table 3's last row; variant ``full`` of Tables 1 and 2 is the same model)."""
MIN_SUBJECTS_FOR_05 = 6
"""Fewest non-zero paired differences for which a two-sided Wilcoxon p can fall below 0.05 (2/2**6)."""
MARK_BETTER, MARK_WORSE, MARK_NS = " *", " †", " (ns)"
TEST_COLUMNS = ("group", "dataset", "scope", "metric", "reference", "other", "n_subjects", "n_nonzero",
                "mean_reference", "mean_other", "median_diff", "r_plus", "r_minus", "statistic", "p", "p_method",
                "p_holm", "significant", "direction", "note")
_METRIC_FUNCS = {"accuracy": M.accuracy, "uf1": M.uf1, "uar": M.uar, "macro_f1": M.macro_f1,
                 "weighted_f1": M.weighted_f1}
_DECIMALS = 12
_METRIC_NAMES = {"accuracy": "accuracy", "uf1": "UF1", "uar": "UAR", "macro_f1": "F1", "weighted_f1": "weighted F1"}
_SHORT_METRIC = {"accuracy": "Acc", "macro_f1": "F1", "uf1": "UF1", "uar": "UAR"}


# ------------------------------------------------------------------------------ per-subject scores
@cache
def _aliases() -> dict[str, str]:
    # imported on first use: the mfvan_core package loads torch, which this module otherwise never needs
    from mfvan_core.config import ALIASES

    return dict(ALIASES)


def _canonical(variant: str | None) -> str:
    v = variant or ""
    return _aliases().get(v, v)


def _select(pred: pd.DataFrame, method: str, variant: str | None, dataset: str, scope: str) -> pd.DataFrame:
    missing = [c for c in ("method", "variant", "dataset", "y_true", "y_pred") if c not in pred.columns]
    if scope != "all":
        missing += [] if "source" in pred.columns else ["source"]
    if "group" not in pred.columns and "subject" not in pred.columns:
        missing.append("group (or subject)")
    if missing:
        raise ValueError(f"predictions: missing column(s) {missing}")
    m = (pred["method"] == method) & (pred["variant"].fillna("") == (variant or "")) & (pred["dataset"] == dataset)
    if scope != "all":
        m &= pred["source"] == scope
    return pred.loc[m]


def per_subject_scores(pred: pd.DataFrame, method: str, variant: str | None, dataset: str, scope: str = "all",
                       metric: str = "accuracy", n_classes: int | None = None) -> pd.Series:
    """One score per subject: ``metric`` on that subject's clips for each seed, then the mean over seeds.

    ``scope`` restricts to the clips of one source of a composite (column ``source``); ``"all"`` keeps
    every clip of ``dataset``. ``n_classes`` matters only for ``macro_f1``/``weighted_f1`` (absent classes
    count); when None it is the largest label seen + 1. A subject missing from some seeds is averaged
    over the seeds that scored it. Returns a float Series indexed by ``group`` (sorted), named ``metric``;
    empty when the method has no predictions there.
    """
    if metric not in _METRIC_FUNCS:
        raise ValueError(f"metric {metric!r} is not one of {', '.join(_METRIC_FUNCS)}")
    df = _select(pred, method, variant, dataset, scope)
    empty = pd.Series(dtype=np.float64, name=metric, index=pd.Index([], name="group", dtype=object))
    if df.empty:
        return empty
    groups = df["group"] if "group" in df.columns else df["dataset"].astype(str) + "/" + df["subject"].astype(str)
    seeds = df["seed"] if "seed" in df.columns else pd.Series(0, index=df.index)
    t = df["y_true"].to_numpy(dtype=np.int64)
    p = df["y_pred"].to_numpy(dtype=np.int64)
    if n_classes is None:
        n_classes = int(max(t.max(), p.max())) + 1
    frame = pd.DataFrame({"seed": seeds.to_numpy(), "group": groups.astype(str).to_numpy(),
                          "i": np.arange(len(df))})
    fn = _METRIC_FUNCS[metric]
    rows = [(seed, g, float(fn(M.confusion_matrix(t[d["i"].to_numpy()], p[d["i"].to_numpy()], n_classes))))
            for (seed, g), d in frame.groupby(["seed", "group"], sort=True)]
    long = pd.DataFrame(rows, columns=["seed", "group", metric])
    out = long.groupby("group", sort=True)[metric].mean()
    out.name = metric
    return out


# ------------------------------------------------------------------------------ tests
def holm(p: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values, in the input order.

    With the m finite p-values sorted ascending, ``p_adj(i) = max_{j <= i} min(1, (m - j + 1) p(j))``
    (1-based i). NaN entries (no test) stay NaN and do not count in m.
    """
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"holm: expected a 1-D array of p-values, got shape {p.shape}")
    ok = np.flatnonzero(~np.isnan(p))
    if np.any((p[ok] < 0) | (p[ok] > 1)):
        raise ValueError(f"holm: p-values must lie in [0, 1], got {p[ok][(p[ok] < 0) | (p[ok] > 1)][:3]}")
    out = np.full(p.shape, np.nan)
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


def _auto_method(d: np.ndarray) -> str:
    """The p-value method scipy's ``wilcoxon(method="auto")`` picks for the differences ``d`` (zeros kept)."""
    nz = np.abs(d[d != 0])
    if d.size > 50:
        return "asymptotic"
    if nz.size == d.size and np.unique(nz).size == nz.size:
        return "exact"
    return "permutation" if d.size <= 13 else "asymptotic"


def wilcoxon_paired(reference: np.ndarray, other: np.ndarray) -> dict:
    """Two-sided Wilcoxon signed-rank test of ``reference - other`` (paired arrays), with its rank sums.

    Returns ``n_nonzero, median_diff, r_plus, r_minus, statistic, p, p_method, note``; see the module
    docstring for all-zero differences and small samples.
    """
    a, b = np.asarray(reference, dtype=np.float64), np.asarray(other, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"wilcoxon_paired: expected two 1-D arrays of one length, got {a.shape} and {b.shape}")
    if a.size == 0:
        raise ValueError("wilcoxon_paired: no paired values")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("wilcoxon_paired: scores must be finite")
    d = np.round(a - b, _DECIMALS)
    nz = d[d != 0]
    ranks = st.rankdata(np.abs(nz))
    r_plus, r_minus = float(ranks[nz > 0].sum()), float(ranks[nz < 0].sum())
    out = {"n_nonzero": int(nz.size), "median_diff": float(np.median(d)), "r_plus": r_plus, "r_minus": r_minus}
    if nz.size == 0:
        return {**out, "statistic": 0.0, "p": 1.0, "p_method": "none",
                "note": "all paired differences are zero: p set to 1"}
    res = st.wilcoxon(d, zero_method="wilcox", alternative="two-sided", method="auto")
    note = (f"{nz.size} non-zero difference(s) < {MIN_SUBJECTS_FOR_05}: two-sided p >= {2 / 2 ** nz.size:.4g}, "
            "cannot reach 0.05") if nz.size < MIN_SUBJECTS_FOR_05 else ""
    return {**out, "statistic": float(res.statistic), "p": float(res.pvalue), "p_method": _auto_method(d),
            "note": note}


def reference_row(spec: TableSpec, reference: tuple[str, str | None] | str = REFERENCE) -> Row:
    """The implemented row of ``spec`` that is the reference: a row id, or (method, variant) where variant
    names are compared through :data:`mfvan_core.config.ALIASES` (``full`` = ``global+s123+ri``)."""
    if isinstance(reference, str):
        row = spec.row(reference)
        if not row.implemented:
            raise KeyError(f"{spec.path.name}: reference row {reference!r} is reported only (not implemented)")
        return row
    method, variant = reference
    for row in spec.implemented_rows:
        if row.method == method and _canonical(row.variant) == _canonical(variant):
            return row
    raise KeyError(f"{spec.path.name}: no implemented row for reference {method}[{variant}] "
                   f"(implemented: {', '.join(r.id for r in spec.implemented_rows)})")


def _reference_variant(pred: pd.DataFrame, row: Row, dataset: str) -> str:
    """The row's own variant when ``pred`` holds it for ``dataset``, else an alias of it that it holds."""
    own = row.variant or ""
    here = pred.loc[(pred["method"] == row.method) & (pred["dataset"] == dataset), "variant"].fillna("")
    present = set(here.astype(str))
    if own in present:
        return own
    for v in sorted(present):
        if _canonical(v) == _canonical(own):
            return v
    return own


def paired_tests(pred: pd.DataFrame, spec: TableSpec, data: str,
                 reference: tuple[str, str | None] | str = REFERENCE, metric: str = "accuracy",
                 alpha: float = 0.05) -> pd.DataFrame:
    """Wilcoxon signed-rank test of the reference row against every other implemented row of ``spec``, per
    column group filled by data source ``data``, on paired per-subject ``metric``; Holm over the table.

    Columns :data:`TEST_COLUMNS`; ``reference``/``other`` are row ids of the spec, ``median_diff`` is the
    median of reference - other, ``direction`` is ``better``/``worse``/``tie`` for the reference (from the
    signed rank sums ``r_plus``/``r_minus``), ``significant`` is ``p_holm < alpha``. ``attrs`` hold
    ``alpha``, ``metric``, ``reference`` (row id), ``reference_label`` and ``table``. Rows with no paired
    subject, and rows absent from ``pred``, give no test.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if metric not in _METRIC_FUNCS:
        raise ValueError(f"metric {metric!r} is not one of {', '.join(_METRIC_FUNCS)}")
    ref = reference_row(spec, reference)
    recs = []
    if len(pred):
        for g in spec.groups:
            src = g.sources.get(data)
            if src is None:
                continue
            kw = {"dataset": src.dataset, "scope": src.scope, "metric": metric, "n_classes": g.n_classes}
            ref_scores = per_subject_scores(pred, ref.method, _reference_variant(pred, ref, src.dataset), **kw)
            if ref_scores.empty:
                continue
            for row in spec.implemented_rows:
                same_model = row.method == ref.method and _canonical(row.variant) == _canonical(ref.variant)
                if row.id == ref.id or same_model:
                    continue
                other = per_subject_scores(pred, row.method, row.variant, **kw)
                common = ref_scores.index.intersection(other.index)
                if common.empty:
                    continue
                a, b = ref_scores.loc[common].to_numpy(), other.loc[common].to_numpy()
                w = wilcoxon_paired(a, b)
                direction = ("better" if w["r_plus"] > w["r_minus"] else
                             "worse" if w["r_minus"] > w["r_plus"] else "tie")
                recs.append({"group": g.id, "dataset": src.dataset, "scope": src.scope, "metric": metric,
                             "reference": ref.id, "other": row.id, "n_subjects": int(common.size),
                             "mean_reference": float(a.mean()), "mean_other": float(b.mean()),
                             "direction": direction, **w})
    out = pd.DataFrame(recs, columns=list(TEST_COLUMNS))
    if len(out):
        out["p_holm"] = holm(out["p"].to_numpy())
        out["significant"] = (out["p_holm"] < alpha).astype(bool)
    out.attrs.update({"alpha": float(alpha), "metric": metric, "reference": ref.id, "reference_label": ref.label,
                      "table": spec.number})
    return out


# ------------------------------------------------------------------------------ marks and legend
def marked_metric(spec: TableSpec, group_id: str, metric: str) -> str:
    """The metric whose column of ``group_id`` carries the mark: ``metric`` if the group has that column,
    else the group's first column (Table 2: UF1)."""
    cols = [c for c in spec.columns if c.group == group_id]
    if not cols:
        raise KeyError(f"{spec.path.name}: no column in dataset group {group_id!r}")
    return metric if any(c.metric == metric for c in cols) else cols[0].metric


def marks_from_tests(tests: pd.DataFrame, spec: TableSpec) -> dict[tuple[str, str, str], str]:
    """``{(other row id, group id, metric): mark}`` for :func:`benchmarks.render.render`'s ``marks``."""
    marks: dict[tuple[str, str, str], str] = {}
    for r in tests.itertuples(index=False):
        if not r.significant:
            mark = MARK_NS
        else:
            mark = MARK_BETTER if r.direction == "better" else MARK_WORSE if r.direction == "worse" else MARK_NS
        marks[(r.other, r.group, marked_metric(spec, r.group, r.metric))] = mark
    return marks


def legend(tests: pd.DataFrame, spec: TableSpec) -> str:
    """The footer line explaining the marks of :func:`marks_from_tests` ("" when there is no test)."""
    if tests.empty:
        return ""
    metric, alpha = tests.attrs.get("metric", tests["metric"].iloc[0]), tests.attrs.get("alpha", 0.05)
    label = tests.attrs.get("reference_label", tests["reference"].iloc[0])
    cols = sorted({_SHORT_METRIC.get(marked_metric(spec, g, metric), metric) for g in tests["group"]})
    small = int((tests["n_nonzero"] < MIN_SUBJECTS_FOR_05).sum())
    text = (f"Significance vs {label}: two-sided Wilcoxon signed-rank test on paired per-subject "
            f"{_METRIC_NAMES.get(metric, metric)} (mean over seeds; subjects scored by both rows), Holm-corrected "
            f"over the table's {len(tests)} comparisons at alpha = {alpha:g}; marked on the other row's "
            f"{'/'.join(cols)} column only: '{MARK_BETTER.strip()}' {label} significantly better, "
            f"'{MARK_WORSE.strip()}' significantly worse, '{MARK_NS.strip()}' not significant.")
    if small:
        text += (f" {small} comparison(s) had fewer than {MIN_SUBJECTS_FOR_05} non-zero paired differences, "
                 "where no two-sided p below 0.05 is possible.")
    return text
