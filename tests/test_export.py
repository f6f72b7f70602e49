"""Exporting a run folder as a committable result set keeps every prediction and renders the same tables."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from benchmarks import export, render

MINI = Path(__file__).resolve().parents[1] / "results" / "mini"


def test_export_round_trips_predictions_and_tables(tmp_path):
    assert export.main([str(MINI), str(tmp_path / "a"), "--n-boot", "200"]) == 0
    got = render.load_predictions(tmp_path / "a" / "predictions.csv.gz")
    ref = render.load_predictions(MINI / "predictions.csv")
    keys = ["method", "variant", "dataset", "seed", "fold", "clip"]
    pd.testing.assert_frame_equal(got, ref.sort_values(keys, kind="stable").reset_index(drop=True),
                                  check_dtype=False)
    for n in (1, 2, 3):  # the tables equal the committed renders of the same predictions
        assert (tmp_path / "a" / f"table{n}.md").read_text() == (MINI / "expected" / f"table{n}.md").read_text()


def test_export_is_byte_reproducible(tmp_path):
    for d in ("a", "b"):
        assert export.main([str(MINI), str(tmp_path / d), "--n-boot", "50"]) == 0
    a, b = ((tmp_path / d / "predictions.csv.gz").read_bytes() for d in ("a", "b"))
    assert a == b and gzip.decompress(a)


def test_export_of_a_folder_without_predictions_is_an_error(tmp_path, capsys):
    assert export.main([str(tmp_path), str(tmp_path / "x")]) == 2
    assert "needs stored predictions" in capsys.readouterr().err


def test_stripped_labels_are_joined_back_from_the_dataset(tmp_path):
    assert export.main([str(MINI), str(tmp_path / "s"), "--n-boot", "200", "--strip-labels"]) == 0
    stored = render.load_predictions(tmp_path / "s" / "predictions.csv.gz")
    assert "y_true" not in stored.columns
    for n in (1, 2, 3):  # rendered with the labels joined from the (synthetic) datasets
        assert (tmp_path / "s" / f"table{n}.md").read_text() == (MINI / "expected" / f"table{n}.md").read_text()


def test_joined_labels_must_match_the_recorded_digest(tmp_path):
    assert export.main([str(MINI), str(tmp_path / "s"), "--n-boot", "50", "--strip-labels"]) == 0
    pred = render.load_predictions(tmp_path / "s" / "predictions.csv.gz")
    meta = json.loads((tmp_path / "s" / "run.json").read_text())
    name = pred["dataset"].iloc[0]
    assert len(render.attach_labels(pred, meta)) == len(pred)
    meta["labels"]["sha256"][name] = "0" * 64  # as if the dataset's labels had changed since the export
    with pytest.raises(ValueError, match=f"{name}: the labels found here differ"):
        render.attach_labels(pred, meta)


def _split_by_method(tmp_path: Path) -> tuple[Path, Path]:
    """The mini run cut in two run folders: LBP-TOP's rows and everything else, each with the run.json."""
    pred = render.load_predictions(MINI / "predictions.csv")
    parts = []
    for name, rows in (("a", pred[pred["method"] == "lbptop"]), ("b", pred[pred["method"] != "lbptop"])):
        (tmp_path / name).mkdir()
        rows.to_csv(tmp_path / name / "predictions.csv", index=False)
        (tmp_path / name / "run.json").write_text((MINI / "run.json").read_text())
        parts.append(tmp_path / name)
    return parts[0], parts[1]


def test_merging_two_runs_of_one_grid_gives_the_whole_runs_set(tmp_path):
    a, b = _split_by_method(tmp_path)
    assert export.main([str(b), str(a), str(tmp_path / "m"), "--n-boot", "50"]) == 0
    assert export.main([str(MINI), str(tmp_path / "whole"), "--n-boot", "50"]) == 0
    m, whole = tmp_path / "m", tmp_path / "whole"
    assert (m / "predictions.csv.gz").read_bytes() == (whole / "predictions.csv.gz").read_bytes()
    merged_line = "- Merged from 2 runs of this grid (units per run: "
    for n in (1, 2, 3):  # the one-run export's tables, plus one footer line naming the merge
        got = (m / f"table{n}.md").read_text().splitlines()
        assert [x for x in got if not x.startswith(merged_line)] == (whole / f"table{n}.md").read_text().splitlines()
        assert sum(x.startswith(merged_line) for x in got) == 1
    meta = json.loads((tmp_path / "m" / "run.json").read_text())
    single = json.loads((MINI / "run.json").read_text())
    assert [s["source"] for s in meta["merged_from"]] == [str(b), str(a)]
    assert meta["n_units"] == 2 * single["n_units"] and meta["tables"] == single["tables"]


def test_merging_stripped_sets_keeps_them_stripped_and_renders_the_same(tmp_path):
    a, b = _split_by_method(tmp_path)
    for src in (a, b):
        assert export.main([str(src), str(tmp_path / f"{src.name}s"), "--n-boot", "50", "--strip-labels"]) == 0
    assert export.main([str(tmp_path / "as"), str(tmp_path / "bs"), str(tmp_path / "m"), "--n-boot", "50"]) == 0
    assert export.main([str(MINI), str(tmp_path / "whole"), "--n-boot", "50"]) == 0
    assert "y_true" not in render.load_predictions(tmp_path / "m" / "predictions.csv.gz").columns
    for n in (1, 2, 3):
        got = [x for x in (tmp_path / "m" / f"table{n}.md").read_text().splitlines() if not x.startswith("- Merged")]
        assert got == (tmp_path / "whole" / f"table{n}.md").read_text().splitlines()


def test_merging_overlapping_or_foreign_runs_is_an_error(tmp_path, capsys):
    a, b = _split_by_method(tmp_path)
    assert export.main([str(a), str(MINI), str(tmp_path / "x")]) == 2
    assert "rows lbptop/" in capsys.readouterr().err  # the same unit from two sources
    meta = json.loads((b / "run.json").read_text())
    meta["preset"] = "default"
    (b / "run.json").write_text(json.dumps(meta))
    assert export.main([str(a), str(b), str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err
    assert f"{b}/run.json: preset 'default' differs" in err and not (tmp_path / "y").exists()
