"""``benchmarks.analysis.control``: a run against its shuffled-label control, on hand-made cells."""

from __future__ import annotations

import pandas as pd
import pytest

from benchmarks.analysis import control


def _cells(values: dict[tuple[str, str], tuple[float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"row": r, "dataset": d, "seed": 0, "macro_f1": v, "macro_f1_lo": lo, "macro_f1_hi": hi}
                         for (r, d), (v, lo, hi) in values.items()])


RUN = _cells({("global", "a"): (0.50, 0.40, 0.60), ("full", "a"): (0.30, 0.20, 0.40),
              ("global", "b"): (0.36, 0.30, 0.42), ("only_run", "a"): (0.9, 0.8, 1.0)})
NULL = _cells({("global", "a"): (0.33, 0.25, 0.41), ("full", "a"): (0.33, 0.26, 0.40),
               ("global", "b"): (0.30, 0.22, 0.36)})


def test_compare_reads_the_upper_bound_of_the_control():
    t = control.compare(RUN, NULL).set_index(["row", "dataset"])
    assert len(t) == 3  # only cells present in both
    assert t.loc[("global", "a"), "above_control"] and t.loc[("global", "a"), "margin"] == pytest.approx(0.09)
    assert not t.loc[("full", "a"), "above_control"]
    assert not t.loc[("global", "b"), "above_control"]  # 0.36 is not above an upper bound of 0.36


def test_cli_prints_the_table_and_bad_input_is_one_line(tmp_path, capsys):
    run, null = tmp_path / "run", tmp_path / "null"
    run.mkdir(), null.mkdir()
    RUN.to_csv(run / "table3_cells.csv", index=False)
    NULL.to_csv(null / "table3_cells.csv", index=False)
    assert control.main([str(run), str(null), "--table", "3", "--out", str(tmp_path / "c.csv")]) == 0
    out = capsys.readouterr().out
    assert "| global | a | 0.500 [0.400, 0.600] | 0.330 [0.250, 0.410] | yes |" in out
    assert "1 of 3 cells above" in out and len(pd.read_csv(tmp_path / "c.csv")) == 3
    assert control.main([str(run), str(tmp_path / "nothing"), "--table", "3"]) == 2
    assert control.main([str(run), str(null), "--table", "3", "--metric", "uar"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(e.startswith("error: ") for e in err)
    assert "CONTROL" in err[0] and "table3_cells.csv" in err[0] and "--metric uar" in err[1]
