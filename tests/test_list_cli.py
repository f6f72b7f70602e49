"""``python -m benchmarks.list``: registered methods, datasets and paper tables, as text and JSON."""

from __future__ import annotations

import json

import pytest

from benchmarks import list as listing

BASELINES = {"lbptop": "handcrafted", "biwoof": "handcrafted", "off_apexnet": "deep", "dssn": "deep",
             "ststnet": "deep"}


def _json(capsys, *argv: str) -> dict:
    assert listing.main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_methods_json_lists_baselines_with_sourced_defaults(capsys):
    recs = {m["name"]: m for m in _json(capsys, "methods")["methods"]}
    for name, family in BASELINES.items():
        assert recs[name]["family"] == family
        assert recs[name]["views"] and recs[name]["citation"]
    st = {d["name"]: d for d in recs["ststnet"]["defaults"]}
    # STSTNet: the authors' port uses Adam lr 5e-5, batch 256, 800 epochs
    assert (st["lr"]["default"], st["batch_size"]["default"], st["epochs"]["default"]) == (5e-05, 256, 800)
    assert "0.00005" in st["lr"]["source"]
    assert recs["ststnet"]["views"] == ["flow_uvs(scale='minmax', size=28)"]
    # LBP-TOP documents its radii under a combined key 'radius_x/radius_y/radius_t'
    lbp = {d["name"]: d for d in recs["lbptop"]["defaults"]}
    assert lbp["radius_t"]["source"] and lbp["radius_t"]["source"] == lbp["radius_x"]["source"]
    # tuples in a config come out as JSON lists
    dssn = {d["name"]: d for d in recs["dssn"]["defaults"]}
    assert dssn["stream_a"]["default"] == ["u", "v", "strain"]


def test_methods_pattern_filters(capsys):
    names = [m["name"] for m in _json(capsys, "methods", "*net")["methods"]]
    assert {"off_apexnet", "ststnet"} <= set(names) and all(n.endswith("net") for n in names)  # grows with methods
    assert names == sorted(names) and "lbptop" not in names


def test_datasets_json_from_specs(capsys):
    recs = {d["name"]: d for d in _json(capsys, "datasets")["datasets"]}
    for name in ("casme2", "samm", "smic", "megc2019", "megc2019-public", "synthetic-casme2", "synthetic-samm",
                 "synthetic-smic", "synthetic-megc2019"):
        assert name in recs
    assert recs["casme2"]["kind"] == "raw" and recs["casme2"]["n_classes"] == 5
    assert recs["megc2019-public"]["kind"] == "public"
    assert recs["megc2019-public"]["classes"] == ["negative", "positive", "surprise"]
    assert recs["smic"]["root_hint"] and recs["smic"]["citation"]


def test_tables_json_rows_columns_and_sources(capsys):
    tables = {t["number"]: t for t in _json(capsys, "tables")["tables"]}
    assert set(tables) == {1, 2, 3, "leaderboard", "seeds"}
    t3 = tables[3]
    assert len(t3["rows"]) == 9 and all(r["status"] == "implemented" for r in t3["rows"])
    assert [r["method"] for r in t3["rows"]] == ["mfvan"] * 8 + ["apex_cnn"]  # the plain reference: not in the paper
    assert [r["variant"] for r in t3["rows"]][:2] == ["global", "global+ri"]
    assert len(t3["columns"]) == 6
    smic = next(g for g in t3["groups"] if g["id"] == "smic")
    assert smic["sources"]["raw"] == {"dataset": "smic", "scope": "all"}
    assert smic["sources"]["synthetic"]["dataset"] == "synthetic-smic"
    assert "unavailable" in smic["sources"]["megc2019-public"]
    t1 = tables[1]
    reported_only = [r["id"] for r in t1["rows"] if r["status"] == "reported only"]
    assert "geme" in reported_only and all(r["method"] is None for r in t1["rows"] if r["id"] in reported_only)
    composite = next(g for g in tables[2]["groups"] if g["id"] == "composite")
    assert composite["sources"]["megc2019-public"] == {"dataset": "megc2019-public", "scope": "all"}


@pytest.mark.parametrize("kind,needle", [("methods", "ststnet"), ("datasets", "megc2019-public"),
                                         ("tables", "Table 3:")])
def test_text_output(capsys, kind, needle):
    assert listing.main([kind]) == 0
    assert needle in capsys.readouterr().out


def test_no_match_is_an_error(capsys):
    assert listing.main(["tables", "9"]) == 2
    assert "no tables match '9'" in capsys.readouterr().err
