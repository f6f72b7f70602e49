"""Tables rendered from the committed mini result set (``results/mini``, stored predictions of a smoke run of
``--table all`` on the synthetic default) equal the committed expected tables, without training.

After an intended change of the rendering, rewrite the expected tables with
``python -m benchmarks.render --table all --out results/mini --to results/mini/expected --n-boot 200``
and review the diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import render

MINI = Path(__file__).resolve().parents[1] / "results" / "mini"
EXPECTED = sorted((MINI / "expected").iterdir())


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rendered")
    assert render.main(["--table", "all", "--out", str(MINI), "--to", str(out), "--n-boot", "200"]) == 0
    return out


def test_the_expected_set_is_complete():
    names = {p.name for p in EXPECTED}
    for n in (1, 2, 3):
        assert {f"table{n}.md", f"table{n}.tex", f"table{n}.csv", f"table{n}_tests.csv"} <= names


@pytest.mark.parametrize("expected", EXPECTED, ids=lambda p: p.name)
def test_rendered_table_equals_the_committed_one(rendered, expected):
    got = (rendered / expected.name).read_text()
    assert got == expected.read_text(), f"{expected.name} differs from the committed table (see module docstring)"


def test_the_tables_come_from_the_stored_predictions(rendered):
    md = (rendered / "table3.md").read_text()
    assert "Preset: smoke" in md and "trainer: sequential" in md and "Metric pooling: pooled" in md
    assert "| 79.87" in md  # the paper's value beside the reproduced one
