"""The learning-curves diagnostic: per-epoch records of real folds, pooled correctly, drawn."""

from __future__ import annotations

import pytest

from benchmarks.analysis import learning_curves as lc

pytestmark = pytest.mark.usefixtures("one_thread")


def test_pooling_counts_clips_not_folds():
    folds = [{"records": [{"train_correct": 9, "n_train": 10, "test_correct": 1, "n_test": 1, "test_hist": [1, 0],
                           "loss": 1.0}]},
             {"records": [{"train_correct": 5, "n_train": 10, "test_correct": 0, "n_test": 3, "test_hist": [0, 3],
                           "loss": 3.0}]}]
    (row,) = lc.pool_folds(folds)
    assert row["train_acc"] == 14 / 20 and row["test_acc"] == 1 / 4
    assert row["test_hist"] == [1, 3] and row["loss"] == 2.0


def test_curves_of_two_smoke_folds_with_and_without_ri(tmp_path):
    curves = lc.run([("mfvan", "global"), ("mfvan", "global+ri")], ["synthetic-smic"], "smoke", folds=2, jobs=1,
                    epochs=2)
    g, ri = curves["mfvan[global]/synthetic-smic"], curves["mfvan[global+ri]/synthetic-smic"]
    assert len(g["folds"]) == 2 and len(g["curve"]) == 2
    n_test = sum(g["curve"][0]["test_hist"])
    assert n_test == sum(ri["curve"][-1]["test_hist"]) > 0
    for row in g["curve"] + ri["curve"]:
        assert 0 <= row["train_acc"] <= 1 and 0 <= row["test_acc"] <= 1 and row["loss"] > 0
    assert "student_mse" not in g["curve"][0]
    assert ri["curve"][0]["student_mse"] > 0 and ri["curve"][0]["trivial_mse"] > 0
    assert "loss_remove" in ri["curve"][0] and "loss_remove" not in g["curve"][0]
    assert lc.plot(curves, "synthetic-smic", tmp_path / "c.png").stat().st_size > 1000


def test_bad_arguments_are_one_error_line(capsys):
    assert lc.main(["--methods", "nosuch", "--datasets", "synthetic-smic", "--out", "x"]) == 2
    assert lc.main(["--methods", "mfvan[global]", "--datasets", "synthetic-smic", "--out", "x", "--jobs", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error:") for line in err)
