"""The drift check compares a sweep's pooled metrics with the goldens under per-metric tolerances.

The comparison and the command are tested on goldens made here (independent of which cells the committed
sweep holds); the committed file is only checked for its shape."""

from __future__ import annotations

import json

import pytest

from benchmarks import check

GOLDEN = {"a/x": {"accuracy": 0.50, "uf1": 0.40, "uar": 0.40, "macro_f1": 0.40},
          "b[v]/x": {"accuracy": 0.60, "uf1": 0.50, "uar": 0.50, "macro_f1": 0.50}}


def _shift(cells: dict, by: dict[tuple[str, str], float]) -> dict:
    return {c: {m: v + by.get((c, m), 0.0) for m, v in d.items()} for c, d in cells.items()}


def test_compare_flags_drift_missing_and_extra_cells():
    within = {c: {m: v + 0.9 * check.TOLERANCE[m] * (-1) ** i for i, (m, v) in enumerate(d.items())}
              for c, d in GOLDEN.items()}
    table, drift = check.compare(within, GOLDEN)
    assert not drift and set(table["status"]) == {"ok"} and len(table) == 2 * len(check.TOLERANCE)
    assert table["diff"].abs().max() == pytest.approx(0.9 * max(check.TOLERANCE.values()))
    moved = _shift(GOLDEN, {("a/x", "uf1"): 1.1 * check.TOLERANCE["uf1"]})
    table, drift = check.compare(moved, GOLDEN)
    assert drift and table.loc[table["status"] == "DRIFT", ["cell", "metric"]].values.tolist() == [["a/x", "uf1"]]
    down = _shift(GOLDEN, {("b[v]/x", "uar"): -1.1 * check.TOLERANCE["uar"]})
    assert check.compare(down, GOLDEN)[0].query("status == 'DRIFT'")["cell"].tolist() == ["b[v]/x"]
    table, drift = check.compare({"a/x": GOLDEN["a/x"], "c/x": GOLDEN["b[v]/x"]}, GOLDEN)
    assert drift and set(table.loc[table["cell"] == "b[v]/x", "status"]) == {"missing in run"}
    assert set(table.loc[table["cell"] == "c/x", "status"]) == {"not in goldens"}


def _golden_file(tmp_path, cells=GOLDEN):
    path = tmp_path / "golden.json"
    path.write_text(json.dumps({"cells": cells, "tolerance": check.TOLERANCE}))
    return path


@pytest.mark.parametrize("now, code, word", [
    (GOLDEN, 0, "no drift"),
    (_shift(GOLDEN, {("a/x", "accuracy"): 0.5 * check.TOLERANCE["accuracy"]}), 0, "no drift"),
    (_shift(GOLDEN, {("a/x", "macro_f1"): 2 * check.TOLERANCE["macro_f1"]}), 1, "DRIFT"),
    ({"a/x": GOLDEN["a/x"]}, 1, "DRIFT"),
])
def test_main_exit_code_follows_the_comparison(monkeypatch, tmp_path, capsys, now, code, word):
    monkeypatch.setattr(check, "run_sweep", lambda out, jobs=1: now)
    assert check.main(["--golden", str(_golden_file(tmp_path))]) == code
    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith(f"{word}: {len(now)} cells checked")


def test_update_writes_goldens_that_then_pass(monkeypatch, tmp_path, capsys):
    now = _shift(GOLDEN, {("a/x", "uf1"): 0.3})
    monkeypatch.setattr(check, "run_sweep", lambda out, jobs=1: now)
    path = tmp_path / "new.json"
    assert check.main(["--update", "--golden", str(path)]) == 0
    assert json.loads(path.read_text())["cells"] == now
    assert check.main(["--golden", str(path)]) == 0


@pytest.mark.parametrize("content, message", [
    (None, "no goldens at"),
    ("{not json", "is not valid JSON"),
    ('{"tolerance": {}}', "has no 'cells'"),
])
def test_bad_golden_file_is_one_error_line(monkeypatch, tmp_path, capsys, content, message):
    monkeypatch.setattr(check, "run_sweep", lambda out, jobs=1: GOLDEN)
    path = tmp_path / "g.json"
    if content is not None:
        path.write_text(content)
    assert check.main(["--golden", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and str(path) in err[0] and message in err[0]


@pytest.mark.parametrize("argv, message", [
    (["--jobs", "0"], "argument --jobs: 0 is not a positive integer"),
    (["--jobs", "x"], "argument --jobs: 'x' is not a positive integer"),
])
def test_bad_arguments_exit_2(capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        check.main(argv)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_committed_goldens_have_the_shape_the_check_reads():
    golden = json.loads(check.GOLDEN.read_text())
    assert set(golden["cells"]) == {f"{m}[{v}]/{d}" if v else f"{m}/{d}" for m, v, d in check.CELLS}
    assert golden["tolerance"] == check.TOLERANCE
    assert all(set(v) == set(check.TOLERANCE) for v in golden["cells"].values())


def _chance_uf1(dataset: str) -> float:
    from benchmarks.data.registry import load_dataset

    return 1.0 / load_dataset(dataset).n_classes


def test_committed_mfvan_goldens_are_well_above_chance():
    """A golden at chance could not tell a working MFVAN from a broken one (issue 11)."""
    golden = json.loads(check.GOLDEN.read_text())["cells"]
    for m, v, d in check.CELLS:
        if m == "mfvan":
            assert golden[f"{m}[{v}]/{d}"]["macro_f1"] > _chance_uf1(d) + 0.1, (v, d)


def test_a_broken_mfvan_is_reported_as_drift(monkeypatch, tmp_path):
    """The MFVAN Global cell trained on shuffled labels (a deliberately broken pipeline: the same code, the
    association of clips and labels gone) drifts from the committed goldens (~3 min on 2 CPU cores)."""
    from benchmarks import evaluate

    cell = next(c for c in check.CELLS if c[:2] == ("mfvan", "global"))
    real = evaluate.training_labels
    monkeypatch.setattr(evaluate, "training_labels", lambda y, fold, control, key: real(y, fold, "shuffled", key))
    now = check.run_sweep(tmp_path, cells=[cell])
    golden = {k: v for k, v in json.loads(check.GOLDEN.read_text())["cells"].items() if k in now}
    table, drift = check.compare(now, golden)
    assert drift and "DRIFT" in set(table["status"]), table
    assert now[f"mfvan[global]/{cell[2]}"]["macro_f1"] < golden[f"mfvan[global]/{cell[2]}"]["macro_f1"] - 0.1
