"""Paired per-subject Wilcoxon tests, Holm correction and the table marks (benchmarks.stats)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from benchmarks import stats as S
from benchmarks.render import RenderContext, render
from benchmarks.tablespec import load_table_spec


def make_pred(method: str, variant: str, dataset: str, subjects, wrong_per_subject=0, seed: int = 0,
              n_clips: int = 4, n_classes: int = 3, source: str | None = None) -> pd.DataFrame:
    """``n_clips`` clips per subject, labels cycling over the classes; the first ``wrong_per_subject[s]``
    clips of subject s are predicted wrong (an int applies to every subject)."""
    rows = []
    for k, subj in enumerate(subjects):
        n_wrong = wrong_per_subject if isinstance(wrong_per_subject, int) else wrong_per_subject[k]
        for c in range(n_clips):
            t = c % n_classes
            p = (t + 1) % n_classes if c < n_wrong else t
            rows.append({"method": method, "variant": variant, "dataset": dataset, "source": source or dataset,
                         "subject": subj, "group": f"{dataset}/{subj}", "clip": f"{subj}_{c}", "fold": k,
                         "seed": seed, "y_true": t, "y_pred": p})
    return pd.DataFrame(rows)


SUBJECTS = [f"s{i:02d}" for i in range(10)]


@pytest.fixture(scope="module")
def table1():
    return load_table_spec(1)


# ------------------------------------------------------------------------------ Holm
def test_holm_hand_example():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.02 0.03 0.06 0.06
    np.testing.assert_allclose(S.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_keeps_monotone_and_skips_nan():
    np.testing.assert_allclose(S.holm([0.5, 0.6]), [1.0, 1.0])          # 0.5*2 = 1.0, then max(1.0, 0.6)
    out = S.holm([0.02, np.nan, 0.01])                                  # m = 2: 0.01*2 = 0.02, 0.02*1 = 0.02
    assert np.isnan(out[1])
    np.testing.assert_allclose(out[[0, 2]], [0.02, 0.02])
    assert S.holm([]).size == 0
    with pytest.raises(ValueError, match="p-values must lie in"):
        S.holm([0.1, 1.5])


# ------------------------------------------------------------------------------ Wilcoxon
def test_wilcoxon_matches_scipy_and_exact_value():
    rng = np.random.default_rng(3)
    a = rng.uniform(0.3, 0.9, 12)
    b = a - np.array([0.05, 0.1, -0.02, 0.07, 0.2, 0.01, 0.15, -0.04, 0.09, 0.12, 0.03, 0.06])
    w = S.wilcoxon_paired(a, b)
    ref = st.wilcoxon(np.round(a - b, 12), zero_method="wilcox")
    assert w["p"] == pytest.approx(ref.pvalue) and w["statistic"] == pytest.approx(ref.statistic)
    assert w["p_method"] == "exact"
    # negative ranks: |-0.02| -> 2, |-0.04| -> 4: r_minus = 6, r_plus = 78 - 6
    assert (w["r_minus"], w["r_plus"]) == (6.0, 72.0) and w["statistic"] == 6.0
    # all ten differences positive and distinct: exact two-sided p = 2 / 2**10
    w = S.wilcoxon_paired(np.arange(1, 11) / 10 + 1, np.ones(10))
    assert w["p"] == pytest.approx(2 / 1024)


def test_wilcoxon_with_zeros_and_ties_matches_scipy_wilcox():
    a = np.array([0.5, 0.75, 0.5, 1.0, 0.25, 0.5, 0.75, 1.0, 0.5, 0.75])
    b = np.array([0.25, 0.5, 0.5, 0.5, 0.25, 0.25, 0.5, 0.75, 0.75, 0.5])
    w = S.wilcoxon_paired(a, b)
    ref = st.wilcoxon(a - b, zero_method="wilcox")
    assert w["p"] == pytest.approx(ref.pvalue)
    assert w["n_nonzero"] == 8 and w["p_method"] == "permutation"


def test_all_zero_differences_give_p_one():
    w = S.wilcoxon_paired(np.full(7, 0.5), np.full(7, 0.5))
    assert w["p"] == 1.0 and w["statistic"] == 0.0 and w["n_nonzero"] == 0 and "zero" in w["note"]


def test_fewer_than_six_subjects_cannot_be_significant():
    w = S.wilcoxon_paired(np.ones(5), np.zeros(5))
    assert w["p"] == pytest.approx(2 / 32) and w["p"] > 0.05 and "cannot reach 0.05" in w["note"]


# ------------------------------------------------------------------------------ per-subject scores
def test_per_subject_accuracy_averages_seeds():
    p0 = make_pred("m", "", "d", ["a", "b"], wrong_per_subject=[0, 2], seed=0)   # a 1.0, b 0.5
    p1 = make_pred("m", "", "d", ["a", "b"], wrong_per_subject=[2, 4], seed=1)   # a 0.5, b 0.0
    s = S.per_subject_scores(pd.concat([p0, p1]), "m", "", "d")
    assert list(s.index) == ["d/a", "d/b"]
    np.testing.assert_allclose(s.to_numpy(), [0.75, 0.25])


def test_per_subject_scope_and_metric():
    pa = make_pred("m", "", "comp", ["a"], wrong_per_subject=1, source="smic")
    pb = make_pred("m", "", "comp", ["b"], wrong_per_subject=0, source="samm")
    pred = pd.concat([pa, pb])
    s = S.per_subject_scores(pred, "m", "", "comp", scope="smic")
    assert list(s.index) == ["comp/a"] and s.iloc[0] == pytest.approx(0.75)
    # subject a: true 0 1 2 0, pred 1 1 2 0 -> F1 per class: 2/3, 2/3, 1 -> UF1 7/9
    u = S.per_subject_scores(pred, "m", "", "comp", scope="smic", metric="uf1")
    assert u.iloc[0] == pytest.approx(7 / 9)
    assert S.per_subject_scores(pred, "other", "", "comp").empty
    with pytest.raises(ValueError, match="metric 'kappa'"):
        S.per_subject_scores(pred, "m", "", "comp", metric="kappa")


# ------------------------------------------------------------------------------ paired tests on a table
def test_perfect_reference_vs_half_wrong_is_significant_and_marked(table1):
    pred = pd.concat([make_pred("mfvan", "full", "synthetic-smic", SUBJECTS, 0),
                      make_pred("lbptop", "", "synthetic-smic", SUBJECTS, 2)])
    t = S.paired_tests(pred, table1, "synthetic")
    assert len(t) == 1
    r = t.iloc[0]
    assert (r["group"], r["reference"], r["other"], r["n_subjects"]) == ("smic", "mfvan", "lbptop", 10)
    assert r["median_diff"] == pytest.approx(0.5) and r["direction"] == "better"
    # ten equal positive differences: exhaustive sign flips give p = 2 / 2**10
    assert r["p"] == pytest.approx(2 / 1024) and r["p_holm"] == pytest.approx(2 / 1024) and r["significant"]
    marks = S.marks_from_tests(t, table1)
    assert marks == {("lbptop", "smic", "accuracy"): S.MARK_BETTER}
    text = S.legend(t, table1)
    assert "Wilcoxon" in text and "Holm" in text and "Acc column only" in text and "MFVAN" in text


def test_identical_predictions_not_significant(table1):
    pred = pd.concat([make_pred("mfvan", "full", "synthetic-smic", SUBJECTS, 1),
                      make_pred("biwoof", "", "synthetic-smic", SUBJECTS, 1)])
    t = S.paired_tests(pred, table1, "synthetic")
    r = t.iloc[0]
    assert r["p"] == 1.0 and r["p_holm"] == 1.0 and not r["significant"] and r["direction"] == "tie"
    assert S.marks_from_tests(t, table1) == {("biwoof", "smic", "accuracy"): S.MARK_NS}


def test_missing_subjects_are_dropped_and_worse_reference_marked(table1):
    pred = pd.concat([make_pred("mfvan", "full", "synthetic-casme2", SUBJECTS, 3, n_classes=5),
                      make_pred("dssn", "", "synthetic-casme2", SUBJECTS[:8], 0, n_classes=5)])
    t = S.paired_tests(pred, table1, "synthetic")
    r = t.iloc[0]
    assert r["n_subjects"] == 8 and r["group"] == "casme2" and r["direction"] == "worse" and r["significant"]
    assert S.marks_from_tests(t, table1) == {("dssn", "casme2", "accuracy"): S.MARK_WORSE}


def test_holm_over_all_comparisons_of_the_table(table1):
    wrong = [2, 1, 2, 0, 2, 1, 2, 2, 1, 2]
    pred = pd.concat([make_pred("mfvan", "full", "synthetic-smic", SUBJECTS, 0),
                      make_pred("lbptop", "", "synthetic-smic", SUBJECTS, wrong),
                      make_pred("biwoof", "", "synthetic-smic", SUBJECTS, 1),
                      make_pred("biwoof", "", "synthetic-samm", SUBJECTS, 1, n_classes=5),
                      make_pred("mfvan", "full", "synthetic-samm", SUBJECTS[:4], 0, n_classes=5)])
    t = S.paired_tests(pred, table1, "synthetic")
    assert len(t) == 3
    np.testing.assert_allclose(t["p_holm"], S.holm(t["p"].to_numpy()))
    samm = t[t["group"] == "samm"].iloc[0]
    assert samm["n_subjects"] == 4 and "cannot reach 0.05" in samm["note"] and not samm["significant"]
    assert "fewer than 6" in S.legend(t, table1)


def test_reference_alias_and_table3(table1):
    t3 = load_table_spec(3)
    assert S.reference_row(t3).id == "global+s123+ri"
    assert S.reference_row(table1).id == "mfvan"                       # variant "full" = global+s123+ri
    # Table 3 run only: Table 1's reference falls back to the alias variant's predictions
    pred = pd.concat([make_pred("mfvan", "global+s123+ri", "synthetic-smic", SUBJECTS, 0),
                      make_pred("mfvan", "global", "synthetic-smic", SUBJECTS, 2),
                      make_pred("lbptop", "", "synthetic-smic", SUBJECTS, 2)])
    t = S.paired_tests(pred, table1, "synthetic")
    assert list(t["other"]) == ["lbptop"] and t.iloc[0]["significant"]
    t = S.paired_tests(pred, t3, "synthetic")
    assert list(t["other"]) == ["global"] and t.iloc[0]["reference"] == "global+s123+ri"
    with pytest.raises(KeyError, match="no implemented row for reference"):
        S.reference_row(t3, ("ststnet", None))


def test_composite_table_marks_uf1_and_empty_inputs():
    t2 = load_table_spec(2)
    pred = pd.concat([make_pred("mfvan", "full", "synthetic-megc2019", SUBJECTS[:5], 0, source="synthetic-smic"),
                      make_pred("mfvan", "full", "synthetic-megc2019", SUBJECTS[5:], 0, source="synthetic-samm"),
                      make_pred("ststnet", "", "synthetic-megc2019", SUBJECTS[:5], 2, source="synthetic-smic"),
                      make_pred("ststnet", "", "synthetic-megc2019", SUBJECTS[5:], 2, source="synthetic-samm")])
    t = S.paired_tests(pred, t2, "synthetic")
    assert dict(zip(t["group"], t["n_subjects"])) == {"smic": 5, "samm": 5, "composite": 10}
    marks = S.marks_from_tests(t, t2)
    assert set(marks) == {("ststnet", g, "uf1") for g in ("smic", "samm", "composite")}
    assert marks[("ststnet", "composite", "uf1")] == S.MARK_BETTER        # p = 2/1024, Holm x3 < 0.05
    assert marks[("ststnet", "smic", "uf1")] == S.MARK_NS                 # 5 subjects: p = 1/16
    assert "UF1 column only" in S.legend(t, t2)
    empty = S.paired_tests(pred.iloc[:0], t2, "synthetic")
    assert empty.empty and list(empty.columns) == list(S.TEST_COLUMNS)
    assert S.marks_from_tests(empty, t2) == {} and S.legend(empty, t2) == ""


def test_marks_reach_the_rendered_table(table1, tmp_path):
    pred = pd.concat([make_pred("mfvan", "full", "synthetic-smic", SUBJECTS, 0),
                      make_pred("lbptop", "", "synthetic-smic", SUBJECTS, 2)])
    for c, v in (("epoch_policy", "last"), ("chosen_epoch", 0), ("code_version", "x"), ("protocol_note", ""),
                 ("policy_label", "last")):
        pred[c] = v
    t = S.paired_tests(pred, table1, "synthetic")
    ctx = RenderContext("synthetic", "default", "last", extra=[S.legend(t, table1)])
    paths = render(table1, pred, ctx, tmp_path, marks=S.marks_from_tests(t, table1), n_boot=20)
    md = paths["md"].read_text()
    lbp = next(line for line in md.splitlines() if line.startswith("| LBP-TOP"))
    assert "50.00 [" in lbp and "] *" in lbp
    assert "Significance vs MFVAN" in md
