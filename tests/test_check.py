"""The drift check compares a sweep's pooled metrics with the goldens under per-metric tolerances."""

from __future__ import annotations

import json

from benchmarks import check


def test_compare_flags_drift_missing_and_extra_cells():
    golden = {"a/x": {"accuracy": 0.50, "uf1": 0.40, "uar": 0.40, "macro_f1": 0.40},
              "b/x": {"accuracy": 0.60, "uf1": 0.50, "uar": 0.50, "macro_f1": 0.50}}
    same = {k: dict(v) for k, v in golden.items()}
    table, drift = check.compare(same, golden)
    assert not drift and set(table["status"]) == {"ok"}
    within = {k: {m: v + 0.019 for m, v in d.items()} for k, d in golden.items()}
    assert not check.compare(within, golden)[1]
    moved = {**same, "a/x": {**same["a/x"], "uf1": 0.43}}
    table, drift = check.compare(moved, golden)
    assert drift and table.loc[table["status"] == "DRIFT", ["cell", "metric"]].values.tolist() == [["a/x", "uf1"]]
    table, drift = check.compare({"a/x": same["a/x"], "c/x": same["b/x"]}, golden)
    assert drift and {"missing in run", "not in goldens"} <= set(table["status"])


def test_committed_goldens_name_the_check_cells_and_tolerances():
    golden = json.loads(check.GOLDEN.read_text())
    assert set(golden["cells"]) == {f"{m}/{d}" for m, _, d in check.CELLS}
    assert golden["tolerance"] == check.TOLERANCE
    assert all(set(v) == set(check.TOLERANCE) for v in golden["cells"].values())


def test_main_exits_nonzero_on_drift(monkeypatch, tmp_path, capsys):
    golden = json.loads(check.GOLDEN.read_text())
    shifted = {k: {m: v + 0.5 for m, v in d.items()} for k, d in golden["cells"].items()}
    monkeypatch.setattr(check, "run_sweep", lambda out, jobs=1: shifted)
    assert check.main([]) == 1 and "DRIFT" in capsys.readouterr().out
    monkeypatch.setattr(check, "run_sweep", lambda out, jobs=1: golden["cells"])
    assert check.main([]) == 0
    assert check.main(["--golden", str(tmp_path / "none.json")]) == 2
