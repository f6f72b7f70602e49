"""The scoring CLI: hand-checked values on a small CSV, JSON output, and clear errors on bad files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.score import PredictionFileError, infer_n_classes, main, read_predictions

HEADER = "dataset,subject,clip,y_true,y_pred\n"
# samm/006 and casme2/006 are different subjects
ROWS = ("samm,006,a,0,0\nsamm,006,b,1,0\nsamm,007,c,1,1\n"
        "casme2,006,d,0,0\ncasme2,006,e,2,2\ncasme2,sub02,f,2,1\n")
# all:    cm [[2,0,0],[1,1,0],[0,1,1]]  F1 (4/5, 1/2, 2/3)  recall (1, 1/2, 1/2)  accuracy 4/6
# samm:   cm [[1,0,0],[1,1,0],[0,0,0]]  F1 (2/3, 2/3, -)    recall (1, 1/2, -)    accuracy 2/3
# casme2: cm [[1,0,0],[0,0,0],[0,1,1]]  F1 (1, 0, 2/3)      recall (1, -, 1/2)    accuracy 2/3
EXPECTED = {
    "all": {"uf1": (4 / 5 + 1 / 2 + 2 / 3) / 3, "uar": 2 / 3, "accuracy": 4 / 6,
            "macro_f1": (4 / 5 + 1 / 2 + 2 / 3) / 3, "n_clips": 6, "n_subjects": 4},
    "samm": {"uf1": 2 / 3, "uar": 3 / 4, "accuracy": 2 / 3, "macro_f1": 4 / 9, "n_clips": 3, "n_subjects": 2},
    "casme2": {"uf1": 5 / 9, "uar": 3 / 4, "accuracy": 2 / 3, "macro_f1": 5 / 9, "n_clips": 3,
               "n_subjects": 2},
}


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    p = tmp_path / "preds.csv"
    p.write_text(HEADER + ROWS)
    return p


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "bad.csv"
    p.write_text(text)
    return p


def test_json_scores_match_hand_values(csv_file, capsys):
    assert main([str(csv_file), "--json", "--n-boot", "200"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["pooling"] == "pooled" and out["n_classes"] == 3
    scores = {r["scope"]: r for r in out["scores"]}
    assert set(scores) == set(EXPECTED)
    for scope, exp in EXPECTED.items():
        for k, v in exp.items():
            assert scores[scope][k] == pytest.approx(v), (scope, k)
        assert scores[scope]["uf1_lo"] <= scores[scope]["uf1"] <= scores[scope]["uf1_hi"]
    # deterministic: the same seed gives the same intervals
    assert main([str(csv_file), "--json", "--n-boot", "200"]) == 0
    assert json.loads(capsys.readouterr().out) == out


def test_markdown_table_states_pooling(csv_file, capsys):
    assert main([str(csv_file)]) == 0
    text = capsys.readouterr().out
    assert "[pooling: pooled]" in text and "pooled over all folds" in text
    assert "| scope" in text and "UF1 95% CI" in text
    all_row = next(line for line in text.splitlines() if line.startswith("| all"))
    cells = [c.strip() for c in all_row.strip("|").split("|")]
    assert cells[:7] == ["all", "0.6556", "0.6667", "0.6667", "0.6556", "6", "4"]


def test_fold_mean_pooling(csv_file, capsys):
    assert main([str(csv_file), "--json", "--pooling", "fold-mean", "--n-boot", "0"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["pooling"] == "fold-mean"
    row = next(r for r in out["scores"] if r["scope"] == "all")
    # per-subject accuracy: samm/006 1/2, samm/007 1, casme2/006 1, casme2/sub02 0
    assert row["accuracy"] == pytest.approx(0.625)
    assert "uf1_lo" not in row
    assert main([str(csv_file), "--pooling", "fold-mean", "--n-boot", "0"]) == 0
    assert "[pooling: fold-mean]" in capsys.readouterr().out


def test_n_classes_inferred_or_given(csv_file, capsys):
    df = read_predictions(csv_file)
    assert infer_n_classes(df) == 3
    assert main([str(csv_file), "--json", "--n-boot", "0", "--n-classes", "4"]) == 0
    row = next(r for r in json.loads(capsys.readouterr().out)["scores"] if r["scope"] == "all")
    assert row["uf1"] == pytest.approx(EXPECTED["all"]["uf1"])  # an absent class 3 is skipped by UF1
    assert row["macro_f1"] == pytest.approx(EXPECTED["all"]["macro_f1"] * 3 / 4)  # but counts 0 in macro-F1
    assert main([str(csv_file), "--n-classes", "2"]) == 2
    assert "line 6: y_true = 2 is not below --n-classes 2" in capsys.readouterr().err


@pytest.mark.parametrize("text, message", [
    ("dataset,subject,clip,y_true\nsamm,006,a,0\n", "missing column 'y_pred'"),
    ("dataset,subject,y_true,y_pred\nsamm,006,0,0\n", "missing column 'clip'"),
    (HEADER + "samm,006,a,0,0\nsamm,006,b,one,0\n", "line 3: y_true = 'one' is not an integer label"),
    (HEADER + "samm,006,a,0,1.0\n", "line 2: y_pred = '1.0' is not an integer label"),
    (HEADER + "samm,006,a,0,\n", "line 2: y_pred = '' is not an integer label"),
    (HEADER + "samm,006,a,-1,0\n", "line 2: y_true = -1 is negative"),
    (HEADER + "samm,,a,0,0\n", "line 2: empty subject"),
    (HEADER + "samm,006,a,0,0\nsamm,006,a,1,1\n", "line 3: clip samm/006/a appears more than once"),
    (HEADER, "no prediction rows"),
    ("", "not a readable CSV"),
])
def test_malformed_csv_errors_name_file_and_line(tmp_path, capsys, text, message):
    bad = _write(tmp_path, text)
    with pytest.raises(PredictionFileError) as e:
        read_predictions(bad)
    assert str(bad) in str(e.value) and message in str(e.value)
    assert main([str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and message in err


def test_missing_file(tmp_path, capsys):
    assert main([str(tmp_path / "nope.csv")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_extra_columns_and_whitespace_are_tolerated(tmp_path, capsys):
    p = tmp_path / "log.csv"
    p.write_text("fold,dataset, subject,clip,y_true,y_pred,prob\n"
                 + "".join(f"{i},{r.replace(',', ', ')},0.5\n" for i, r in enumerate(ROWS.splitlines())))
    assert main([str(p), "--json", "--n-boot", "0"]) == 0
    row = next(r for r in json.loads(capsys.readouterr().out)["scores"] if r["scope"] == "all")
    assert row["uf1"] == pytest.approx(EXPECTED["all"]["uf1"]) and row["n_subjects"] == 4


def test_module_entry_point(csv_file):
    r = subprocess.run([sys.executable, "-m", "benchmarks.score", str(csv_file), "--n-boot", "0"],
                       capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert r.returncode == 0, r.stderr
    assert "| all" in r.stdout and "0.6556" in r.stdout
