"""Loaders of the licensed releases: the real coding sheets, and end to end on synthetic clips
written in each released layout."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.data import casme2, megc2019, samm, smic
from benchmarks.data.errors import DataError
from benchmarks.data.registry import load_dataset
from tests.layouts import casme2_layout, samm_layout, smic_layout, write_frames, write_xlsx

CASME2_NATIVE = {"others": 99, "disgust": 63, "happiness": 32, "repression": 27, "surprise": 25, "sadness": 7,
                 "fear": 2}
SAMM_NATIVE = {"anger": 57, "other": 26, "happiness": 26, "surprise": 15, "contempt": 12, "disgust": 9, "fear": 8,
               "sadness": 6}


# ------------------------------------------------------------------ the real sheets
def test_casme2_real_sheet(annotations):
    coded = casme2.read_coding_sheet(annotations / casme2.SHEET)
    assert len(coded) == 255 and coded["subject"].nunique() == 26
    assert coded["emotion"].value_counts().to_dict() == CASME2_NATIVE
    est = coded[coded["apex_source"] != "sheet"]
    # the one row whose apex cell is "/" (sub04 EP12_01f, onset 261, offset 321)
    cols = ["subject", "clip", "onset", "apex", "offset"]
    assert est[cols].values.tolist() == [["sub04", "EP12_01f", 261, 291, 321]]
    assert (coded["onset"] <= coded["apex"]).all() and (coded["apex"] <= coded["offset"]).all()


def test_samm_real_sheet_header_below_preamble(annotations):
    coded = samm.read_coding_sheet(annotations / samm.SHEET)
    assert len(coded) == 159 and coded["subject"].nunique() == 29
    assert coded["emotion"].value_counts().to_dict() == SAMM_NATIVE
    assert coded["sheet_row"].min() == 15  # header on row 14, first clip on row 15
    first = coded.iloc[0][["subject", "clip", "onset", "apex", "offset"]].tolist()
    assert first == ["006", "006_1_2", 5562, 5588, 5632]


def test_smic_real_apex_sheet(annotations):
    apex = smic.read_apex_sheet(annotations / "smic_apex.xlsx")
    assert len(apex) == 164
    assert apex["s20_ne_01"] == 17581046


# ------------------------------------------------------------------ end to end, real sheets + synthetic layouts
@pytest.fixture(scope="module")
def releases(tmp_path_factory, annotations) -> Path:
    """One data root holding all three releases (key frames only), their sheets, and the organisers' list."""
    root = tmp_path_factory.mktemp("releases")
    shutil.copy(annotations / casme2.SHEET, root)
    shutil.copy(annotations / samm.SHEET, root)
    casme2_layout(root, casme2.read_coding_sheet(root / casme2.SHEET))
    samm_layout(root, samm.read_coding_sheet(root / samm.SHEET))
    sheet = pd.read_excel(annotations / "smic_apex.xlsx")
    names = {0: "negative", 1: "positive", 2: "surprise"}
    clips = [(f"s{r.subject}", names[r.label], r.clip, list(range(int(r.onset_frame), int(r.apex_frame) + 3)))
             for r in sheet.itertuples()]
    smic_layout(root, clips)
    write_frames(root / "SMIC_all_cropped/HS/s1/non_micro/s1_nm_01", [1, 2, 3], "reg_image{n}.bmp")
    shutil.copy(annotations / "smic_apex.xlsx", root)
    shutil.copy(annotations.parent / "megc2019" / megc2019.GT_CSV, root)
    return root


def test_casme2_end_to_end(releases):
    ds = load_dataset("casme2", releases)
    d = ds.describe()
    assert d["clips"] == 246 and d["subjects"] == 26
    assert d["class_counts"] == {"happiness": 32, "surprise": 25, "disgust": 63, "repression": 27, "others": 99}
    assert ds.exclusions["emotion"].value_counts().to_dict() == {"sadness": 7, "fear": 2}
    assert all("not a class of casme2-5class" in r for r in ds.exclusions["reason"])
    onset, apex = ds.key_frames(0)
    assert onset.shape == apex.shape == (16, 16, 3)
    assert ds.verify() == sum(len({r.onset, r.apex, r.offset}) for r in ds.clips.itertuples())


def test_samm_end_to_end(releases):
    ds = load_dataset("samm", releases)
    assert len(ds.clips) == 136 and ds.clips["subject"].nunique() == 27
    assert ds.describe()["class_counts"] == {"anger": 57, "contempt": 12, "happiness": 26, "surprise": 15, "other": 26}
    assert sorted(ds.exclusions["emotion"].value_counts().to_dict().items()) == [("disgust", 9), ("fear", 8),
                                                                                ("sadness", 6)]


def test_smic_end_to_end_middle_and_sheet_apex(releases):
    ds = load_dataset("smic", releases)
    assert len(ds.clips) == 164 and ds.clips["subject"].nunique() == 16
    assert ds.describe()["class_counts"] == {"negative": 70, "positive": 51, "surprise": 43}
    assert list(ds.exclusions["clip"]) == ["s1_nm_01"]
    r = ds.clips.set_index("clip").loc["s20_ne_01"]
    assert (r["onset"], r["offset"]) == (17581039, 17581046 + 2)
    assert r["apex"] == 17581039 + (17581048 - 17581039 + 1) // 2 and r["apex_source"] == smic.APEX_MIDDLE
    ds2 = load_dataset("smic", releases, apex="sheet")
    r2 = ds2.clips.set_index("clip").loc["s20_ne_01"]
    assert r2["apex"] == 17581046 and "smic_apex.xlsx" in r2["apex_source"]


def test_megc2019_composite_from_releases_matches_organisers_list(releases):
    ds = load_dataset("megc2019", releases)
    d = ds.describe()
    assert d["clips"] == 442 and d["subjects"] == 68
    assert d["class_counts"] == {"negative": 250, "positive": 109, "surprise": 83}
    assert {k: v["clips"] for k, v in d["per_source"].items()} == {"casme2": 145, "samm": 133, "smic": 164}
    reasons = ds.exclusions["reason"].str.split(" ").str[0].value_counts()
    assert reasons.sum() == len(ds.exclusions) > 0
    assert not any("relabel" in n for n in ds.notes)


def test_manifest_hash_changes_with_labels_and_frames(releases, tmp_path):
    root = tmp_path / "r"
    shutil.copytree(releases / "SMIC_all_cropped", root / "SMIC_all_cropped")
    h0 = load_dataset("smic", root).manifest_hash()
    assert load_dataset("smic", root).manifest_hash() == h0
    clip = root / "SMIC_all_cropped/HS/s20/micro/negative/s20_ne_01"
    shutil.move(str(clip), str(root / "SMIC_all_cropped/HS/s20/micro/positive/s20_ne_01"))  # relabel
    h1 = load_dataset("smic", root).manifest_hash()
    assert h1 != h0
    first = sorted((root / "SMIC_all_cropped/HS/s20/micro/positive/s20_ne_01").iterdir())[0]
    write_frames(first.parent, [int(first.stem.replace("reg_image", ""))], "reg_image{n}.bmp", seed=99)
    assert load_dataset("smic", root).manifest_hash() != h1


# ------------------------------------------------------------------ bad inputs, each error names its culprit
def _casme2_sheet(path: Path, rows: list[list]) -> Path:
    header = ["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None, "Action Units",
              "Estimated Emotion"]
    return write_xlsx(path / casme2.SHEET, [header] + rows)


def test_missing_root():
    with pytest.raises(DataError, match="no data root"):
        load_dataset("casme2", None)
    with pytest.raises(DataError, match="data root not found: /definitely/not/here"):
        load_dataset("casme2", "/definitely/not/here")


def test_missing_sheet(tmp_path):
    (tmp_path / "Cropped").mkdir()
    with pytest.raises(DataError, match=r"coding sheet not found.*CASME2-coding-20140508\.xlsx"):
        load_dataset("casme2", tmp_path)


def test_unknown_emotion_namessheet_row(tmp_path):
    _casme2_sheet(tmp_path, [[1, "EP01_01", None, 1, 2, 3, None, "12", "happiness"],
                             [1, "EP01_02", None, 1, 2, 3, None, "12", "joy"]])
    with pytest.raises(DataError, match=r"row 3: unknown emotion 'joy'"):
        load_dataset("casme2", tmp_path)


def test_apex_outside_onset_offset_namessheet_row(tmp_path):
    _casme2_sheet(tmp_path, [[1, "EP01_01", None, 10, 30, 20, None, "12", "happiness"]])
    with pytest.raises(DataError, match=r"row 2: apex 30 outside onset..offset 10..20"):
        load_dataset("casme2", tmp_path)


def test_clip_folder_with_missing_frames(tmp_path):
    _casme2_sheet(tmp_path, [[1, "EP01_01", None, 10, 12, 14, None, "12", "happiness"]])
    write_frames(tmp_path / "Cropped/sub01/EP01_01", [10, 12], "reg_img{n}.jpg")
    with pytest.raises(DataError, match=r"Cropped/sub01/EP01_01: missing frame\(s\) \{'offset': 14\}"):
        load_dataset("casme2", tmp_path)
    (tmp_path / "Cropped/sub01/EP01_01").rename(tmp_path / "Cropped/sub01/other")
    with pytest.raises(DataError, match=r"clip folder missing: .*Cropped/sub01/EP01_01"):
        load_dataset("casme2", tmp_path)


def test_unreadable_image_is_named(tmp_path):
    _casme2_sheet(tmp_path, [[1, "EP01_01", None, 10, 12, 14, None, "12", "happiness"]])
    write_frames(tmp_path / "CASME2_RAW_selected/sub01/EP01_01", [10, 12, 14], "img{n}.jpg")
    bad = tmp_path / "CASME2_RAW_selected/sub01/EP01_01/img12.jpg"
    bad.write_bytes(b"not a jpeg")
    ds = load_dataset("casme2", tmp_path)
    assert ds.notes[0].startswith("CASME II raw release")
    with pytest.raises(DataError, match=r"unreadable image: .*img12\.jpg"):
        ds.verify()


def test_samm_header_found_below_preamble_and_bad_cell(tmp_path):
    header = ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame", "Duration",
              "Micro", "Action Units", "Estimated Emotion"]
    rows = [["SAMM Dataset - Master FACS Codes"], [], ["Symbol Key:"], header,
            ["006", "006_1_2", 1, 5562, 5588, 5632, 71, "Micro", "4+7", "Anger"],
            ["007", "007_1_1", 1, 100, "x", 140, 71, "Micro", "4", "Anger"]]
    write_xlsx(tmp_path / samm.SHEET, rows, sheet="MICRO_ONLY")
    with pytest.raises(DataError, match=r"row 6: Apex Frame = 'x' is not a frame number"):
        load_dataset("samm", tmp_path)
    write_xlsx(tmp_path / samm.SHEET, rows[:5], sheet="MICRO_ONLY")
    write_frames(tmp_path / "SAMM/006/006_1_2", [5562, 5588, 5632], "006_{n:05d}.jpg")
    ds = load_dataset("samm", tmp_path)
    assert ds.clips[["subject", "clip", "label"]].values.tolist() == [["006", "006_1_2", 0]]


def test_smic_unknown_emotion_folder_and_empty_clip(tmp_path):
    smic_layout(tmp_path, [("s1", "negative", "s1_ne_01", [1, 2, 3])], release="raw")
    assert load_dataset("smic", tmp_path).clips["apex"].tolist() == [2]
    (tmp_path / "HS/s1/micro/angry/s1_an_01").mkdir(parents=True)
    with pytest.raises(DataError, match=r"unknown emotion folder .*HS/s1/micro/angry"):
        load_dataset("smic", tmp_path)
    (tmp_path / "HS/s1/micro/angry/s1_an_01").rmdir()
    (tmp_path / "HS/s1/micro/angry").rmdir()
    (tmp_path / "HS/s1/micro/positive/s1_po_01").mkdir(parents=True)
    with pytest.raises(DataError, match=r"clip folder has no frames: .*s1_po_01"):
        load_dataset("smic", tmp_path)


# ------------------------------------------------------------------ the public composite
def test_public_composite_counts(shared_data):
    ds = load_dataset("megc2019-public")
    d = ds.describe()
    assert (d["clips"], d["subjects"]) == (442, 68)
    assert d["class_counts"] == {"negative": 250, "positive": 109, "surprise": 83}
    assert {k: (v["clips"], v["subjects"]) for k, v in d["per_source"].items()} == {
        "casme2": (145, 24), "samm": (133, 28), "smic": (164, 16)}
    assert not ds.has_frames and set(ds.stored_views) == {"flow_uvs_28", "apex_224"}
    row = ds.clips.set_index(["dataset", "subject", "clip"]).loc[("smic", "s1", "s1_ne_01")]
    assert row["flow_path"].endswith("s01_s01_ne_01 .png") and row["apex_path"].endswith("s01_s1_ne_01.jpg")
    assert ds.clips.set_index("clip").loc["006_1_2", "subject"] == "006"
    with pytest.raises(ValueError, match="has no frames"):
        ds.read_frames(0)


def test_public_composite_missing_and_unexpected_files(shared_data, tmp_path):
    pub = tmp_path / "pub"
    shutil.copytree(shared_data / "megc2019", pub)
    (pub / "flow_uvs_28" / "sub01_EP02_01f .png").unlink()
    with pytest.raises(DataError, match=r"missing file.*sub01_EP02_01f \.png"):
        load_dataset("megc2019-public", pub)
    shutil.copy(shared_data / "megc2019/flow_uvs_28/sub01_EP02_01f .png", pub / "flow_uvs_28")
    (pub / "apex_224" / "stray.jpg").write_bytes(b"x")
    with pytest.raises(DataError, match=r"unexpected file\(s\) in .*apex_224: 'stray.jpg'"):
        load_dataset("megc2019-public", pub)
