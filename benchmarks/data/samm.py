"""SAMM (Davison et al. 2016): ``SAMM_Micro_FACS_Codes_v2.xlsx`` and the released frames.

Layout: ``SAMM/006/006_1_2/006_05562.jpg`` (``root`` holds ``SAMM/``, or is that folder). The
sheet (sheet ``MICRO_ONLY``) opens with a free-text preamble; its header row (``Subject``,
``Filename``, ``Onset Frame``, ``Apex Frame``, ``Offset Frame``, ..., ``Estimated Emotion``) is
found by its first cell, wherever it sits (row 14 in v2). 159 micro clips of 29 subjects; the
5-class protocol keeps 136 (anger, contempt, happiness, surprise, other). The frames are not aligned
face crops: each clip is cropped by the face detector (``face_crop``; :mod:`benchmarks.data.landmarks`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmarks.data.clips import ClipDataset
from benchmarks.data.errors import DataError
from benchmarks.data.landmarks import FACE_CROP_DETECTOR
from benchmarks.data.protocols import SAMM_5, apply_protocol
from benchmarks.data.release import (
    as_frame_number,
    check_key_frames,
    check_order,
    find_first,
    read_sheet,
    require_root,
)

SHEET = "SAMM_Micro_FACS_Codes_v2.xlsx"
EMOTIONS = ("anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise", "other")
CITATION = ("Davison A. K. et al. (2016) SAMM: A spontaneous micro-facial movement dataset. "
            "IEEE Trans. Affect. Comput. 9:116-129")


def subject_id(value) -> str:
    """SAMM subject ids are three-digit strings (``6`` and ``006`` are the same subject)."""
    s = str(value).strip()
    if s.endswith(".0"):
        s = s[:-2]
    return s.zfill(3) if s.isdigit() else s


def read_coding_sheet(path: Path) -> pd.DataFrame:
    t = read_sheet(path, "Subject", "samm",
                   required=("Subject", "Filename", "Onset Frame", "Apex Frame", "Offset Frame",
                             "Estimated Emotion"))
    rows = []
    for r in t.to_dict("records"):
        row = r["sheet_row"]
        emotion = str(r["Estimated Emotion"]).strip().lower()
        if emotion not in EMOTIONS:
            raise DataError(f"samm: {path} row {row}: unknown emotion {r['Estimated Emotion']!r} "
                            f"(known: {', '.join(EMOTIONS)})")
        nums = {}
        for col in ("Onset Frame", "Apex Frame", "Offset Frame"):
            n = as_frame_number(r[col], path, row, col, "samm")
            if n is None:
                raise DataError(f"samm: {path} row {row}: {col} = {r[col]!r} is not a frame number")
            nums[col] = n
        onset, apex, offset = nums["Onset Frame"], nums["Apex Frame"], nums["Offset Frame"]
        check_order(onset, apex, offset, "samm", f"{path.name} row {row}")
        rows.append({"dataset": "samm", "subject": subject_id(r["Subject"]), "clip": str(r["Filename"]).strip(),
                     "emotion": emotion, "onset": onset, "apex": apex, "offset": offset,
                     "apex_source": "sheet", "sheet_row": row})
    return pd.DataFrame(rows)


def find_frames_root(root: Path) -> Path:
    for cand in (root / "SAMM", root):
        if cand.is_dir() and any(p.is_dir() and p.name.isdigit() for p in cand.iterdir()):
            return cand
    raise DataError(f"samm: frames folder not found; looked for subject folders (006, 007, ...) in "
                    f"{root / 'SAMM'} and {root}")


def coded_clips(root: Path, sheet: Path | None = None, check_frames: bool = True) -> tuple[pd.DataFrame, list[str]]:
    sheet = sheet or find_first(root, [SHEET, f"SAMM/{SHEET}"], "coding sheet", "samm")
    coded = read_coding_sheet(sheet)
    frames_root = find_frames_root(root)
    coded["frames"] = [str(frames_root / s / c) for s, c in zip(coded["subject"], coded["clip"])]
    coded["face_crop"] = FACE_CROP_DETECTOR  # the released frames are not aligned face crops
    if check_frames:
        for r in coded.itertuples():
            check_key_frames(Path(r.frames), {"onset": r.onset, "apex": r.apex, "offset": r.offset}, "samm",
                             f"{sheet.name} row {r.sheet_row}")
    return coded.drop(columns="sheet_row"), [f"SAMM frames at {frames_root}; sheet {sheet}"]


def load(root: Path | None, sheet: str | Path | None = None, check_frames: bool = True, **_) -> ClipDataset:
    """SAMM under the 5-class protocol of the MFVAN paper (136 clips)."""
    root = require_root(root, "samm")
    coded, notes = coded_clips(root, Path(sheet) if sheet else None, check_frames)
    clips, excl = apply_protocol(coded, SAMM_5)
    return ClipDataset("samm", "SAMM (5 classes)", SAMM_5.classes, clips, excl, kind="raw", root=str(root),
                       notes=notes)
