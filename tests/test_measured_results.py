"""The committed measured result sets (``results/measured``, see its README) render, from their stored
predictions alone, to exactly the committed tables; and their headline numbers are the ones the README and
the method docs quote."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from benchmarks import render
from benchmarks.metrics import compute_metrics
from benchmarks.tablespec import load_table_spec

MEASURED = Path(__file__).resolve().parents[1] / "results" / "measured"
SETS = sorted(p for p in MEASURED.iterdir() if p.is_dir()) if MEASURED.exists() else []


def _needs_shared(folder: Path, request) -> None:
    """Sets stored without labels (the public composite: its annotations stay in ../shared) join them from the
    dataset; without ../shared they are skipped with the fixture's reason."""
    if "labels" in json.loads((folder / "run.json").read_text()):
        request.getfixturevalue("shared_data")


@pytest.mark.parametrize("folder", SETS, ids=lambda p: p.name)
def test_tables_render_from_the_stored_predictions(folder, tmp_path, request):
    _needs_shared(folder, request)
    tables = json.loads((folder / "run.json").read_text())["tables"]
    for n in tables:
        assert render.main(["--table", str(n), "--out", str(folder), "--to", str(tmp_path)]) == 0
        for suffix in (".md", ".tex", ".csv"):
            name = f"{load_table_spec(n).stem}{suffix}"
            assert (tmp_path / name).read_text() == (folder / name).read_text(), f"{folder.name}/{name} differs"


def _rows(folder: str, method: str, variant: str = "", policy: str | None = None) -> pd.DataFrame:
    """A committed set's predictions of one row (labels joined where the set was stored without them)."""
    pred = render.load_predictions(MEASURED / folder / "predictions.csv.gz")
    if "y_true" not in pred.columns:
        pred = render.attach_labels(pred, json.loads((MEASURED / folder / "run.json").read_text()))
    keep = (pred["method"] == method) & (pred["variant"] == variant)
    sel = pred[keep if policy is None else keep & (pred["epoch_policy"] == policy)]
    assert len(sel), (folder, method, variant, policy)
    return sel


def _scores(folder: str, method: str, variant: str = "", policy: str | None = None) -> dict[str, float]:
    sel = _rows(folder, method, variant, policy)
    return compute_metrics(sel["y_true"].to_numpy(), sel["y_pred"].to_numpy(), 3)


@pytest.mark.skipif(not (MEASURED / "table2-megc2019-public-default").exists(), reason="set not committed")
def test_public_set_stores_no_labels():
    pred = render.load_predictions(MEASURED / "table2-megc2019-public-default" / "predictions.csv.gz")
    assert "y_true" not in pred.columns and len(pred) == 442 * 7


@pytest.mark.skipif(not (MEASURED / "table2-megc2019-public-default").exists(), reason="set not committed")
@pytest.mark.parametrize("method, uf1, uar", [("ststnet", 0.6941, 0.7001), ("off_apexnet", 0.7443, 0.7448),
                                              ("biwoof", 0.6415, 0.6407)])
def test_composite_headline_numbers(method, uf1, uar, shared_data):
    m = _scores("table2-megc2019-public-default", method)
    assert (round(m["uf1"], 4), round(m["uar"], 4)) == (uf1, uar)


@pytest.mark.skipif(not (MEASURED / "leaderboard-megc2019-public").exists(), reason="set not committed")
@pytest.mark.parametrize("method, variant, last, oracle", [("off_apexnet", "", 0.6742, 0.7702),
                                                          ("dual_atme", "", 0.6599, 0.7192),
                                                          ("mfvan", "global+s123", 0.3657, 0.5522),
                                                          ("micro_attention", "", 0.3954, 0.4671),
                                                          ("off_tanet", "", 0.3959, 0.4014),
                                                          ("dssn", "", 0.3462, 0.3470)])
def test_leaderboard_oracle_above_last(method, variant, last, oracle, shared_data):
    """The leaderboard's headline: the test-set epoch choice scores above the last epoch (quoted in the README)."""
    folder = MEASURED / "leaderboard-megc2019-public"
    pred = render.attach_labels(render.load_predictions(folder / "predictions.csv.gz"),
                                json.loads((folder / "run.json").read_text()))
    uf1 = {}
    for policy in ("last", "oracle"):
        sel = pred[(pred["method"] == method) & (pred["variant"] == variant) & (pred["epoch_policy"] == policy)]
        assert len(sel) == 442
        uf1[policy] = round(compute_metrics(sel["y_true"].to_numpy(), sel["y_pred"].to_numpy(), 3)["uf1"], 4)
    assert (uf1["last"], uf1["oracle"]) == (last, oracle)


@pytest.mark.parametrize("folder, method, variant, policy, uf1, uar", [
    ("seeds-synthetic-default", "micro_attention", "", "last", 0.8167, 0.8496),
    ("seeds-synthetic-default", "mfvan", "full", "last", 0.6718, 0.7424),
    ("seeds-synthetic-default", "icip3d_gru", "", "oracle", 0.5270, 0.5461),
    ("seeds-synthetic-default", "icip3d_gru", "", "last", 0.5022, 0.5419),
    ("seeds-synthetic-default", "mfdan", "", "last", 0.3349, 0.3792),
    ("seeds-megc2019-public", "micro_attention", "", "last", 0.3954, 0.4180),
    ("leaderboard-synthetic-dual_atme-off_tanet", "dual_atme", "", "last", 0.9332, 0.9188),
    ("leaderboard-synthetic-dual_atme-off_tanet", "off_tanet", "", "last", 0.7219, 0.6748)])
def test_seed_systems_headline_numbers(folder, method, variant, policy, uf1, uar, request):
    """The seeds table's composite UF1 / UAR (all clips pooled) as the README and results/README quote them."""
    if not (MEASURED / folder).exists():
        pytest.skip(f"{folder} not committed")
    _needs_shared(MEASURED / folder, request)
    sel = _rows(folder, method, variant, policy)
    assert len(sel) in (442, 444)  # every clip of the composite once
    m = compute_metrics(sel["y_true"].to_numpy(), sel["y_pred"].to_numpy(), 3)
    assert (round(m["uf1"], 4), round(m["uar"], 4)) == (uf1, uar)
