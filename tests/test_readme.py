"""The README's "Adding a method" example registers, runs under LOSO and joins a table as an added row."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from benchmarks.data.registry import load_dataset
from benchmarks.evaluate import run_loso
from benchmarks.registry import get_method, unregister_method
from benchmarks.runner import table_cells
from benchmarks.tablespec import load_table_spec, with_added_methods

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    text = README.read_text()
    section = text[text.index("## Adding a method"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture
def tinyflownet(monkeypatch):
    module = types.ModuleType("readme_tinyflownet")
    monkeypatch.setitem(sys.modules, module.__name__, module)  # dataclasses look their module up
    exec(compile(readme_example(), "README.md", "exec"), module.__dict__)
    yield get_method("tinyflownet")
    unregister_method("tinyflownet")


def test_readme_example_runs_under_loso(tinyflownet):
    ds = load_dataset("synthetic-smic")
    keep = sorted(ds.clips["group"].unique())[:2]
    small = ds.subset(ds.clips["group"].isin(keep).to_numpy())
    df = run_loso("tinyflownet", small, epochs=2)
    assert len(df) == len(small.clips) and set(df["fold"]) == {0, 1}
    assert df["y_pred"].between(0, 2).all() and np.isin(df["y_true"], [0, 1, 2]).all()
    assert tinyflownet.defaults.width == 16 and tinyflownet.sources["width"] == "paper, Sec. 3"


def test_added_method_becomes_a_row_of_every_dataset_group(tinyflownet):
    spec = with_added_methods(load_table_spec(2), ["tinyflownet"])
    row = spec.row("added:tinyflownet")
    assert row.implemented and not row.in_paper and all(c.reported is None for c in row.cells)
    assert ("tinyflownet", "", "megc2019-public") in table_cells([spec], "megc2019-public")
    assert with_added_methods(spec, ["tinyflownet"]).rows == spec.rows  # adding twice adds once
