"""CASME II (Yan et al. 2014): coding sheet ``CASME2-coding-20140508.xlsx`` and the released frames.

Layouts (``root`` is the folder holding them, or a ``CASME2/`` folder inside it):

- cropped release: ``Cropped/sub01/EP02_01f/reg_img46.jpg``
- raw release:     ``CASME2_RAW_selected/sub01/EP02_01f/img46.jpg``

The number in a file name is the frame number the sheet uses. The raw release's 640x480 frames are
cropped per clip by the face detector (clip-table column ``face_crop``; :mod:`benchmarks.data.landmarks`).
The sheet has 255 coded clips of 26 subjects; one row (sub04 EP12_01f) has ``/`` for its apex: its
apex is estimated as the middle frame of onset..offset and labelled so in ``apex_source``. Protocol: 5 classes (see
:mod:`benchmarks.data.protocols`), 246 clips.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmarks.data.clips import ClipDataset
from benchmarks.data.errors import DataError
from benchmarks.data.landmarks import FACE_CROP_DETECTOR, FACE_CROP_RELEASE
from benchmarks.data.protocols import CASME2_5, apply_protocol
from benchmarks.data.release import (
    as_frame_number,
    check_key_frames,
    check_order,
    find_first,
    read_sheet,
    require_root,
)

SHEET = "CASME2-coding-20140508.xlsx"
EMOTIONS = ("happiness", "surprise", "disgust", "repression", "others", "fear", "sadness")
RELEASES = {"cropped": "Cropped", "raw": "CASME2_RAW_selected"}
CITATION = ("Yan W.-J. et al. (2014) CASME II: an improved spontaneous micro-expression database and the "
            "baseline evaluation. PLoS One 9:e86041")
APEX_ESTIMATE = "estimated: middle of onset..offset (sheet apex cell not a number)"


def read_coding_sheet(path: Path) -> pd.DataFrame:
    """The coded clips of the sheet: dataset, subject, clip, emotion, onset, apex, offset, apex_source, sheet_row."""
    t = read_sheet(path, "Subject", "casme2",
                   required=("Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Estimated Emotion"))
    rows = []
    for r in t.to_dict("records"):
        row = r["sheet_row"]
        subj = as_frame_number(r["Subject"], path, row, "Subject", "casme2")
        if subj is None:
            raise DataError(f"casme2: {path} row {row}: Subject = {r['Subject']!r} is not a number")
        emotion = str(r["Estimated Emotion"]).strip().lower()
        if emotion not in EMOTIONS:
            raise DataError(f"casme2: {path} row {row}: unknown emotion {r['Estimated Emotion']!r} "
                            f"(known: {', '.join(EMOTIONS)})")
        onset = as_frame_number(r["OnsetFrame"], path, row, "OnsetFrame", "casme2")
        offset = as_frame_number(r["OffsetFrame"], path, row, "OffsetFrame", "casme2")
        if onset is None or offset is None:
            raise DataError(f"casme2: {path} row {row}: onset/offset must be frame numbers "
                            f"(got {r['OnsetFrame']!r}, {r['OffsetFrame']!r})")
        apex = as_frame_number(r["ApexFrame"], path, row, "ApexFrame", "casme2")
        source = "sheet"
        if apex is None:
            apex, source = (onset + offset) // 2, APEX_ESTIMATE
        where = f"{path.name} row {row}"
        check_order(onset, apex, offset, "casme2", where)
        rows.append({"dataset": "casme2", "subject": f"sub{subj:02d}", "clip": str(r["Filename"]).strip(),
                     "emotion": emotion, "onset": onset, "apex": apex, "offset": offset,
                     "apex_source": source, "sheet_row": row})
    return pd.DataFrame(rows)


def find_frames_root(root: Path, release: str = "auto") -> tuple[str, Path]:
    names = list(RELEASES) if release == "auto" else [release]
    if release not in ("auto", *RELEASES):
        raise ValueError(f"casme2: release must be auto, cropped or raw (got {release!r})")
    for base in (root, root / "CASME2", root / "CASME II"):
        for name in names:
            if (base / RELEASES[name]).is_dir():
                return name, base / RELEASES[name]
    looked = [str(b / RELEASES[n]) for b in (root, root / "CASME2") for n in names]
    raise DataError(f"casme2: frames folder not found; looked for: {', '.join(looked)}")


def coded_clips(root: Path, release: str = "auto", sheet: Path | None = None,
                check_frames: bool = True) -> tuple[pd.DataFrame, list[str]]:
    sheet = sheet or find_first(root, [SHEET, f"CASME2/{SHEET}", f"CASME II/{SHEET}"], "coding sheet", "casme2")
    coded = read_coding_sheet(sheet)
    rel, frames_root = find_frames_root(root, release)
    coded["frames"] = [str(frames_root / s / c) for s, c in zip(coded["subject"], coded["clip"])]
    coded["face_crop"] = FACE_CROP_RELEASE if rel == "cropped" else FACE_CROP_DETECTOR
    if check_frames:
        for r in coded.itertuples():
            check_key_frames(Path(r.frames), {"onset": r.onset, "apex": r.apex, "offset": r.offset}, "casme2",
                             f"{sheet.name} row {r.sheet_row}")
    notes = [f"CASME II {rel} release at {frames_root}; sheet {sheet}"]
    estimated = coded[coded["apex_source"] != "sheet"]
    notes += [f"apex of {r.subject}/{r.clip} {APEX_ESTIMATE}: frame {r.apex}" for r in estimated.itertuples()]
    return coded.drop(columns="sheet_row"), notes


def load(root: Path | None, release: str = "auto", sheet: str | Path | None = None,
         check_frames: bool = True, **_) -> ClipDataset:
    """CASME II under the 5-class protocol of the MFVAN paper (246 clips, 26 subjects)."""
    root = require_root(root, "casme2")
    coded, notes = coded_clips(root, release, Path(sheet) if sheet else None, check_frames)
    clips, excl = apply_protocol(coded, CASME2_5)
    return ClipDataset("casme2", "CASME II (5 classes)", CASME2_5.classes, clips, excl, kind="raw",
                       root=str(root), notes=notes)
