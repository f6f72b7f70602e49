"""Table specs (tables/table*.toml): they load, hold the paper's printed values, and reject bad files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmarks.paths import shared_data_dir
from benchmarks.tablespec import (
    DATA_SOURCES,
    METRICS,
    REPORTED_ONLY,
    TABLES_DIR,
    TableSpecError,
    list_tables,
    load_spec_file,
    load_table_spec,
)
from tests.conftest import SHARED_REASON

REPORTED_ONLY_LABELS = {"DiSTLBP-RIP", "LBP-SDG", "KTGSL", "LGCcon", "GEME", "AU-GCN", "FeatRef", "DSTAN"}
HARNESS_METHODS = {"lbptop", "biwoof", "off_apexnet", "dssn", "mfvan", "ststnet", "apex_cnn", "dual_atme", "off_tanet",
                   "micro_attention", "icip3d_gru", "mfdan",
                   "htnet"}
MFVAN_VARIANTS = ["global", "global+ri", "global+s1", "global+s1+ri", "global+s12", "global+s12+ri",
                  "global+s123", "global+s123+ri"]
# MEGC2019 challenge baselines, UF1/UAR (See et al. 2019): full composite, then per source.
MEGC2019_BASELINES = {
    "lbptop": {"composite": (0.5882, 0.5785), "smic": (0.2000, 0.5280), "casme2": (0.7026, 0.7429),
               "samm": (0.3954, 0.4102)},
    "biwoof": {"composite": (0.6296, 0.6227), "smic": (0.5727, 0.5829), "casme2": (0.7805, 0.8026),
               "samm": (0.5211, 0.5139)},
    "off_apexnet": {"composite": (0.7196, 0.7096), "smic": (0.6817, 0.6695), "casme2": (0.8764, 0.8681),
                    "samm": (0.5409, 0.5392)},
}


def _base(label: str) -> str:
    return re.sub(r"\s*\(\d{4}\)$", "", label)


@pytest.fixture(scope="module")
def specs():
    return {n: load_table_spec(n) for n in list_tables()}


# ------------------------------------------------------------------------------------ structure


def test_three_tables_load_with_their_shapes(specs):
    assert list_tables() == (1, 2, 3, "leaderboard", "seeds")
    t1, t2, t3 = specs[1], specs[2], specs[3]
    assert (len([r for r in t1.rows if r.in_paper]), len(t1.columns)) == (12, 6)
    assert all(len(r.cells) == 6 for r in t1.rows)
    assert (len([r for r in t3.rows if r.in_paper]), len(t3.columns)) == (8, 6)
    assert all(len(r.cells) == 6 for r in t3.rows)
    paper_rows = [r for r in t2.rows if r.in_paper]
    assert (len(paper_rows), len(t2.columns)) == (8, 8)
    assert [r.id for r in t2.rows if not r.in_paper] == ["ststnet", "apex_cnn"]
    for t in (t1, t3):  # the plain apex reference is the one row each adds, with no published value
        extra = [r for r in t.rows if not r.in_paper]
        assert [r.id for r in extra] == ["apex_cnn"] and all(c.reported is None for c in extra[0].cells)
    assert all(len(r.cells) == 8 for r in t2.rows)


def test_hard_coded_values(specs):
    t1, t2, t3 = specs[1], specs[2], specs[3]
    ktgsl = t1.row("ktgsl").cell("smic.accuracy")
    assert (ktgsl.reported, ktgsl.bold) == (75.64, True)
    assert t1.value("lbptop", "samm.macro_f1") == 0.3589
    assert t1.value("distlbp_rip", "smic.macro_f1") is None  # printed "-"
    assert t1.value("geme", "casme2.macro_f1") == 0.7354 and t1.row("geme").cell("casme2.macro_f1").bold
    assert t1.value("featref", "samm.accuracy") == 60.13
    best_casme = t3.row("global+s1+ri").cell("casme2.accuracy")
    assert (best_casme.reported, best_casme.bold) == (79.45, True)
    assert t3.value("global", "samm.accuracy") == 40.35
    assert t2.value("mfvan", "samm.uar") == 0.8289
    assert t2.value("mfvan", "composite.uf1") == 0.8100
    assert t2.value("lbptop", "casme2.uar") is None  # not recoverable from the printed table
    assert t2.value("ststnet", "composite.uf1") == 0.7353 and t2.value("ststnet", "composite.uar") == 0.7605


def test_reported_only_rows_are_exactly_the_seven(specs):
    t1 = specs[1]
    # DSTAN is reported only in the seed table
    assert {_base(r.label) for r in t1.reported_only_rows} == REPORTED_ONLY_LABELS - {"DSTAN"}
    assert all(r.status == REPORTED_ONLY and r.method is None for r in t1.reported_only_rows)
    for spec in specs.values():
        assert {_base(r.label) for r in spec.reported_only_rows} <= REPORTED_ONLY_LABELS


def test_every_implemented_row_names_a_registered_method(specs):
    for spec in specs.values():
        for r in spec.implemented_rows:
            assert r.method in HARNESS_METHODS, (spec.number, r.id)
    assert {r.method for r in specs[1].implemented_rows} == {"lbptop", "biwoof", "off_apexnet", "dssn", "mfvan",
                                                            "apex_cnn"}
    assert specs[1].row("mfvan").variant == specs[2].row("mfvan").variant == "full"
    paper3 = [r for r in specs[3].rows if r.in_paper]
    assert [r.variant for r in paper3] == MFVAN_VARIANTS
    assert {r.method for r in paper3} == {"mfvan"}


def test_full_variant_is_the_last_ablation_row(specs):
    """Table 3's Global+scale1,2,3+RI is the model of Table 1 (same six printed values)."""
    full, last = specs[1].row("mfvan"), specs[3].row("global+s123+ri")
    assert [c.reported for c in full.cells] == [c.reported for c in last.cells]


def test_dataset_mapping_names_registered_datasets_and_protocols(specs):
    import benchmarks.data.loaders  # noqa: F401  (registers every dataset)
    from benchmarks.data.protocols import PROTOCOLS
    from benchmarks.data.registry import list_datasets

    registered = set(list_datasets())
    for spec in specs.values():
        for g in spec.groups:
            assert g.class_protocol in PROTOCOLS, (spec.number, g.id)
            assert len(PROTOCOLS[g.class_protocol].classes) == g.n_classes
            assert set(g.sources) | set(g.unavailable) == set(DATA_SOURCES)
            for src, ref in g.sources.items():
                assert ref.dataset in registered, (spec.number, g.id, src)
                assert ref.scope == "all" or ref.scope in registered, (spec.number, g.id, src)
    t2 = specs[2]
    assert t2.group("composite").source("raw").dataset == "megc2019"
    assert t2.group("samm").source("megc2019-public").scope == "samm"
    assert t2.group("casme2").source("synthetic").scope == "synthetic-casme2"
    assert specs[1].group("samm").source("megc2019-public") is None
    with pytest.raises(KeyError, match="unknown data source"):
        specs[1].group("samm").source("kaggle")


def test_metric_names_are_the_harness_names(specs):
    from benchmarks import metrics

    assert set(METRICS) <= set(metrics.METRICS)
    assert {c.metric for c in specs[1].columns} == {"accuracy", "macro_f1"}
    assert {c.metric for c in specs[2].columns} == {"uf1", "uar"}
    acc = specs[1].column("smic.accuracy")
    assert acc.unit == "percent" and acc.to_paper_units(0.7987) == pytest.approx(79.87)
    assert specs[2].column("composite.uar").to_paper_units(0.7605) == pytest.approx(0.7605)


def test_protocol_records_pooling(specs):
    assert specs[1].protocol.pooling == specs[3].protocol.pooling == "not stated"
    assert specs[2].protocol.pooling == "pooled"
    assert all(s.protocol.split == "loso" for s in specs.values())


# ------------------------------------------------------------------------------ the text's claims


def test_section_4_2_differences_match_table1(specs):
    """Section 4.2: MFVAN beats KTGSL and OFF-Apex on SMIC by 4.23 / 12.19 (accuracy), 0.1109 / 0.13 (F1)."""
    t1 = specs[1]
    acc, f1 = "smic.accuracy", "smic.macro_f1"
    assert t1.value("mfvan", acc) - t1.value("ktgsl", acc) == pytest.approx(4.23)
    assert t1.value("mfvan", acc) - t1.value("off_apexnet", acc) == pytest.approx(12.19)
    assert t1.value("mfvan", f1) - t1.value("ktgsl", f1) == pytest.approx(0.1109)
    assert t1.value("mfvan", f1) - t1.value("off_apexnet", f1) == pytest.approx(0.13)


def test_section_4_3_differences_are_printed_column_pairs(specs):
    """Section 4.3's MFVAN - AU-GCN margins are the differences of printed P1/P2, P3/P4, P5/P6."""
    t2 = specs[2]
    mf = [float(x) for x in t2.row("mfvan").printed]
    au = [float(x) for x in t2.row("au_gcn").printed]
    diffs = [round(a - b, 4) for a, b in zip(mf, au)]
    assert diffs[:6] == [0.0794, 0.0684, 0.0263, 0.0186, 0.0186, 0.0263]


# ------------------------------------------------------------------------------ Table 2 reconstruction


def test_table2_maps_baseline_rows_to_megc2019_values(specs):
    t2 = specs[2]
    for rid, ref in MEGC2019_BASELINES.items():
        row = t2.row(rid)
        for src in ("smic", "samm"):
            uf1, uar = ref[src]
            assert row.cell(f"{src}.uf1").reported == uf1, (rid, src)
            if (rid, src) == ("off_apexnet", "samm"):
                # printed 0.5409 repeats the SAMM UF1: kept as printed, the baseline named in the note
                assert row.cell("samm.uar").reported == 0.5409
                assert "0.5392" in row.cell("samm.uar").note
            else:
                assert row.cell(f"{src}.uar").reported == uar, (rid, src)
        assert row.cell("casme2.uf1").reported == ref["casme2"][0]
        assert row.cell("composite.uf1").reported == ref["composite"][0]
        assert row.cell("casme2.uar").reported is None and row.cell("composite.uar").reported is None


def test_table2_column_map_regenerates_the_printed_baseline_rows(specs):
    """Reading the baselines through column_map gives the printed rows: 23 of 24 numbers."""
    t2 = specs[2]
    mismatches = []
    for rid, ref in MEGC2019_BASELINES.items():
        for pos, (tok, target) in enumerate(zip(t2.row(rid).printed, t2.column_map), 1):
            group, metric = target.split(".")
            expected = ref[group][0 if metric == "uf1" else 1]
            if float(tok) != expected:
                mismatches.append((rid, pos))
    assert mismatches == [("off_apexnet", 8)]


def test_table2_duplicate_pattern_and_lgccon(specs):
    t2 = specs[2]
    for r in t2.rows:
        if not r.in_paper:
            continue
        p = r.printed
        if r.id == "lgccon":
            assert p[3] != p[4] and p[2] != p[5] and p[6] == p[7] == "\u2013"
            assert r.cell("smic.uf1").reported is None and r.cell("composite.uf1").reported is None
            assert (r.cell("casme2.uf1").reported, r.cell("samm.uar").reported) == (0.7762, 0.4711)
        else:
            assert p[3] == p[4] and p[2] == p[5], r.id
    assert "P4 = full-composite UF1" in t2.reconstruction


# ------------------------------------------------------------------------------ against the seed text


def _seed_tables() -> dict[int, list[tuple[str, list[str]]]]:
    """The paper's table rows from its extracted text under ../shared/seeds: number -> (label, tokens)."""
    data = shared_data_dir()
    if data is None:
        pytest.skip(SHARED_REASON)
    text = None
    for p in sorted((data.parent / "seeds").glob("*.txt")):
        t = p.read_text(encoding="utf-8", errors="replace")
        if "Multi-scale fusion visual attention network" in t and "TABLE 2 " in t:
            text = t
            break
    if text is None:
        pytest.skip("the MFVAN paper text is not under ../shared/seeds")
    tables: dict[int, list[tuple[str, list[str]]]] = {}
    current = None
    for line in text.splitlines():
        m = re.match(r"^TABLE (\d) ", line)
        if m:
            current = int(m.group(1))
            tables[current] = []
        elif current is not None:
            if line.startswith("The bold values"):
                current = None
            elif "\t" in line and not line.startswith(("\t", "Methods")):
                label, *tokens = [f.strip() for f in line.split("\t")]
                tables[current].append((label, tokens))
    return tables


def _value(tok: str) -> tuple[float | None, bool]:
    bold = tok.startswith("<b>")
    tok = re.sub(r"</?b>", "", tok)
    return (None if tok in {"-", "\u2013"} else float(tok)), bold


@pytest.mark.shared
def test_tables_1_and_3_match_the_seed_text(specs):
    seed = _seed_tables()
    for n in (1, 3):
        spec = specs[n]
        paper_rows = [r for r in spec.rows if r.in_paper]
        assert [label for label, _ in seed[n]] == [r.label for r in paper_rows]
        for (label, tokens), row in zip(seed[n], paper_rows):
            assert len(tokens) == len(row.cells) == 6, label
            for tok, cell in zip(tokens, row.cells):
                assert _value(tok) == (cell.reported, cell.bold), (n, label, cell.column, tok)


@pytest.mark.shared
def test_table2_printed_rows_match_the_seed_text(specs):
    seed = _seed_tables()
    t2 = specs[2]
    paper_rows = [r for r in t2.rows if r.in_paper]
    assert [label for label, _ in seed[2]] == [r.label for r in paper_rows]
    for (label, tokens), row in zip(seed[2], paper_rows):
        assert [re.sub(r"</?b>", "", t) for t in tokens] == list(row.printed), label
        for tok, target in zip(tokens, row.column_map):
            if target is not None:
                value, bold = _value(tok)
                assert (row.cell(target).reported, row.cell(target).bold) == (value, bold), (label, target)


# ------------------------------------------------------------------------------ malformed specs


def _write_variant(tmp_path: Path, n: int, old: str, new: str) -> Path:
    text = (TABLES_DIR / f"table{n}.toml").read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / f"table{n}.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_missing_field_names_file_and_row(tmp_path):
    path = _write_variant(tmp_path, 1, 'label = "DiSTLBP-RIP (2019)"\n', "")
    with pytest.raises(TableSpecError, match=r"table1\.toml: row 3 \('distlbp_rip'\): missing field 'label'"):
        load_spec_file(path)


def test_unknown_metric_names_file_and_column(tmp_path):
    path = _write_variant(tmp_path, 1, 'metric = "macro_f1"\nheader = "SAMM (5) F1-Score"',
                          'metric = "f2"\nheader = "SAMM (5) F1-Score"')
    with pytest.raises(TableSpecError, match=r"table1\.toml: column 6: unknown metric 'f2'"):
        load_spec_file(path)


def test_unknown_reported_column_names_the_row(tmp_path):
    path = _write_variant(tmp_path, 3, '"smic.accuracy" = 59.88', '"smic.acc" = 59.88')
    with pytest.raises(TableSpecError, match=r"table3\.toml: row 1 \('global'\): reported: unknown column 'smic.acc'"):
        load_spec_file(path)


def test_implemented_row_without_method_is_rejected(tmp_path):
    path = _write_variant(tmp_path, 1, 'method = "dssn"\n', "")
    with pytest.raises(TableSpecError, match=r"row 7 \('dssn'\): an implemented row must name its registered method"):
        load_spec_file(path)


def test_value_out_of_unit_range_is_rejected(tmp_path):
    path = _write_variant(tmp_path, 1, '"smic.macro_f1" = 0.4600', '"smic.macro_f1" = 46.00')
    with pytest.raises(TableSpecError, match=r"row 1 \('lbptop'\): reported.smic.macro_f1 = 46.0 is outside"):
        load_spec_file(path)


def test_reported_value_must_match_the_printed_row(tmp_path):
    path = _write_variant(tmp_path, 2, '"samm.uar" = 0.4102', '"samm.uar" = 0.4120')
    with pytest.raises(TableSpecError, match=r"table2\.toml: row 1 \('lbptop'\): printed position 8 \(0.4102\)"):
        load_spec_file(path)


def test_invented_value_is_rejected(tmp_path):
    path = _write_variant(tmp_path, 2, '"smic.uf1" = 0.2000,', '"smic.uf1" = 0.2000, "casme2.uar" = 0.7429,')
    with pytest.raises(TableSpecError, match=r"row 1 \('lbptop'\): reported casme2.uar not backed by any printed"):
        load_spec_file(path)


def test_unknown_field_and_bad_toml_are_rejected(tmp_path):
    path = _write_variant(tmp_path, 3, 'kind = "ablation"\n', 'kind = "ablation"\nvariamt = "x"\n')
    with pytest.raises(TableSpecError, match=r"table3\.toml: row 1 \('global'\): unknown field\(s\) 'variamt'"):
        load_spec_file(path)
    bad = tmp_path / "table9.toml"
    bad.write_text("table = [", encoding="utf-8")
    with pytest.raises(TableSpecError, match=r"table9\.toml: not valid TOML"):
        load_spec_file(bad)


def test_missing_table_and_number_mismatch(tmp_path):
    with pytest.raises(TableSpecError,
                       match=r"table7\.toml: no such table spec \(tables in .*: 1, 2, 3, leaderboard, seeds\)"):
        load_table_spec(7)
    path = _write_variant(tmp_path, 3, "table = 3\n", "table = 4\n")
    with pytest.raises(TableSpecError, match="field 'table' is 4, expected 3"):
        load_table_spec(3, root=path.parent)
