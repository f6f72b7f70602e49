"""benchmarks.score reads the logs MER repositories publish, as they are: the MEGC-style per-subject block
log and the per-subject Predicted / Ground Truth list log. Hand-checked values; malformed lines are named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.published_logs import PredictionFileError, detect_format, read_block_log, read_list_log
from benchmarks.score import main
from tests.test_score import EXPECTED, HEADER, ROWS

# The clips of tests/test_score.py's CSV (hand-computed scores in EXPECTED), as a block log ...
BLOCKS = """samm 006
a 0 0
b 1 0
samm 007
c 1 1
casme2 006
d 0 0
e 2 2
casme2 sub02
f 2 1
"""
# ... and as a list log (subject ids must be unique in a list log: casme2's 006 is sub01 here), with the
# running scores and the closing lines such logs carry, and one list wrapped over two lines.
LISTS = """Subject: 006
Predicted   : [0, 0]
Ground Truth: [0, 1]
UF1: 0.6667 | UAR: 0.75
Subject: 007
Predicted   : [1]
Ground Truth: [1]
UF1: 0.6 | UAR: 0.5
Subject: sub01
Predicted   : [0,
               2]
Ground Truth: [0 2]
Subject: sub02
Predicted   : [1]
Ground Truth: [2]
Final Evaluation:
UF1: 0.6556 | UAR: 0.6667
"""
SUBJECTS = "subject,dataset\n006,samm\n007,samm\nsub01,casme2\nsub02,casme2\n"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _scores(capsys, argv) -> dict:
    assert main([*argv, "--json", "--n-boot", "0"]) == 0
    return {r["scope"]: r for r in json.loads(capsys.readouterr().out)["scores"]}


def _assert_expected(scores: dict, scopes) -> None:
    assert set(scores) == set(scopes)
    for scope in scopes:
        for k, v in EXPECTED[scope].items():
            assert scores[scope][k] == pytest.approx(v), (scope, k)


def test_formats_are_told_from_the_content(tmp_path):
    assert detect_format(_write(tmp_path, "a.csv", HEADER + ROWS)) == "csv"
    assert detect_format(_write(tmp_path, "b.txt", BLOCKS)) == "megc-blocks"
    assert detect_format(_write(tmp_path, "c.txt", LISTS)) == "lists"
    with pytest.raises(PredictionFileError, match=r"line 2: cannot tell the format .* pass --format"):
        detect_format(_write(tmp_path, "d.txt", "# a log\nsomething else entirely\n"))


def test_block_log_scores_as_the_csv(tmp_path, capsys):
    log = _write(tmp_path, "STSTNet_logfile.txt", BLOCKS)
    df = read_block_log(log)
    assert df[["dataset", "subject", "clip"]].values.tolist()[:3] == [["samm", "006", "a"], ["samm", "006", "b"],
                                                                      ["samm", "007", "c"]]
    assert df["line"].tolist() == [2, 3, 5, 7, 8, 10]
    _assert_expected(_scores(capsys, [str(log)]), ("all", "samm", "casme2"))
    assert _scores(capsys, [str(log), "--format", "megc-blocks"]) == _scores(capsys, [str(log)])


def test_list_log_pooled_without_and_per_source_with_a_subject_list(tmp_path, capsys):
    log = _write(tmp_path, "STSTNet_python_logfile.txt", LISTS)
    df = read_list_log(log)
    assert df["clip"].tolist() == ["#1", "#2", "#1", "#1", "#2", "#1"] and df["y_pred"].tolist() == [0, 0, 1, 0, 2, 1]
    _assert_expected(_scores(capsys, [str(log)]), ("all",))  # no dataset names: pooled only
    subjects = _write(tmp_path, "subjects.csv", SUBJECTS)
    _assert_expected(_scores(capsys, [str(log), "--subjects", str(subjects)]), ("all", "samm", "casme2"))
    assert main([str(log), "--n-boot", "0"]) == 0
    assert "| all" in capsys.readouterr().out


@pytest.mark.parametrize("fmt, text, message", [
    ("megc-blocks", "samm 006\na 0\nb 1 1\n", "line 2: 'a 0' follows the header 'samm 006' (line 1) with no clip"),
    ("megc-blocks", "samm 006\na 0 0\nsamm 007\n", "line 3: subject block 'samm 007' has no clip lines"),
    ("megc-blocks", "samm 006\n1 0\n", "line 2: '1 0' is neither a '<dataset> <subject>' header"),
    ("megc-blocks", "samm 006\na 0 0 1\n", "line 2: expected '<dataset> <subject>' or '<clip> <true> <pred>', got 4"),
    ("megc-blocks", "samm 006\na 0 x\n", "line 2: predicted label 'x' is not a class index"),
    ("megc-blocks", "samm 006\na -1 0\n", "line 2: true label '-1' is not a class index"),
    ("megc-blocks", "a 0 0\nsamm 006\n", "line 1: clip line before any '<dataset> <subject>' header"),
    ("megc-blocks", "samm 006\na 0 0\n\nsamm 006\nb 0 0\n", "line 4: subject samm/006 appears a second time"),
    ("megc-blocks", "samm 006\na 0 0\na 1 1\n", "line 3: clip samm/006/a appears more than once"),
    ("lists", "Subject: 1\nPredicted : [0, 1]\nGround Truth: [0]\n", "line 3: subject 1: 1 ground-truth labels but 2"),
    ("lists", "Subject: 1\nPredicted : [0, one]\nGround Truth: [0, 1]\n", "line 2: label 'one' is not a class"),
    ("lists", "Predicted : [0]\nGround Truth: [0]\n", "line 1: Predicted list before any 'Subject:' line"),
    ("lists", "Subject: 1\nPredicted : [0, 1\nSubject: 2\n", "line 2: list not closed with ']'"),
    ("lists", "Subject: 1\nPredicted : [0]\n", "line 1: subject 1 has no Ground Truth list"),
    ("lists", "Subject: 1\nPredicted : [0]\nPredicted : [1]\n", "line 3: a second Predicted list for subject 1"),
    ("lists", "Subject: 1\nPredicted : [0]\nGround Truth: [0]\nSubject: 1\nPredicted : [0]\nGround Truth: [0]\n",
     "line 4: subject 1 appears a second time"),
])
def test_malformed_line_is_named_by_file_and_line(tmp_path, capsys, fmt, text, message):
    log = _write(tmp_path, "log.txt", text)
    for argv in ([str(log)], [str(log), "--format", fmt]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: {log}: ") and message in err[0], err


@pytest.mark.parametrize("subjects, message", [
    ("subject,dataset\n006,samm\n007,samm\n", "line 9: subject sub01 is not in --subjects"),
    ("subject,source\n006,samm\n", "missing column 'dataset'"),
    ("subject,dataset\n006,samm\n006,casme2\n", "line 3: subject 006 is given as samm and as casme2"),
])
def test_bad_subject_list(tmp_path, capsys, subjects, message):
    log = _write(tmp_path, "log.txt", LISTS)
    sub = _write(tmp_path, "subjects.csv", subjects)
    assert main([str(log), "--subjects", str(sub)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err


@pytest.mark.parametrize("argv, message", [
    (["--format", "xml"], "argument --format: invalid choice: 'xml'"),
    (["--n-boot", "-1"], "argument --n-boot: -1 is not an integer >= 0"),
    (["--n-classes", "0"], "argument --n-classes: 0 is not a positive integer"),
])
def test_bad_arguments(tmp_path, capsys, argv, message):
    log = _write(tmp_path, "log.txt", BLOCKS)
    with pytest.raises(SystemExit) as e:
        main([str(log), *argv])
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_subjects_only_for_list_logs_and_binary_files(tmp_path, capsys):
    log = _write(tmp_path, "log.txt", BLOCKS)
    assert main([str(log), "--subjects", str(_write(tmp_path, "s.csv", SUBJECTS))]) == 2
    assert "only for logs that name no dataset" in capsys.readouterr().err
    binary = tmp_path / "weights.pth"
    binary.write_bytes(b"\x80\x02\xff\xfe" * 10)
    assert main([str(binary)]) == 2
    assert f"error: {binary}: not a text file" in capsys.readouterr().err
