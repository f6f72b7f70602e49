"""SMIC-HS (Li et al. 2013): the 164-clip high-speed release; labels come from folder names.

Layouts (``root`` holds them, or a ``SMIC/`` folder inside it):

- cropped:   ``SMIC_all_cropped/HS/s1/micro/negative/s1_ne_01/reg_image106614.bmp``
- uncropped: ``HS/s1/micro/negative/s1_ne_01/image106614.bmp``

The uncropped frames are cropped per clip by the face detector (column ``face_crop``;
:mod:`benchmarks.data.landmarks`). Classes negative, positive, surprise (164 clips, 16 subjects).
Clips under ``non_micro/`` hold no micro-expression and are listed as exclusions.

Apex: SMIC-HS does not annotate it. Onset is the first frame of the clip and offset the last
(the release is cut to the expression). The apex is estimated, and the estimate is labelled in
``apex_source``:

- ``apex="middle"`` (default): the middle frame of the clip (index ``T // 2`` of its sorted
  frames). Cheap, deterministic, and close to the third-party estimates (``smic_apex.xlsx`` places
  most apexes within a few frames of the middle of onset..offset).
- ``apex="sheet"``: frame numbers from a sheet in the ``smic_apex.xlsx`` format (columns subject,
  clip, apex_frame), given as ``apex_sheet`` or found at ``root/smic_apex.xlsx``; clips the sheet
  lacks fall back to the middle frame, labelled so.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmarks.data.clips import ClipDataset
from benchmarks.data.errors import DataError
from benchmarks.data.frames import folder_index
from benchmarks.data.landmarks import FACE_CROP_DETECTOR, FACE_CROP_RELEASE
from benchmarks.data.protocols import SMIC_3, apply_protocol
from benchmarks.data.release import read_sheet, require_root

EMOTIONS = ("negative", "positive", "surprise")
RELEASES = {"cropped": "SMIC_all_cropped/HS", "raw": "HS"}
CITATION = ("Li X. et al. (2013) A spontaneous micro-expression database: inducement, collection and "
            "baseline. IEEE FG 2013")
APEX_MIDDLE = "estimated: middle frame of the clip"
APEX_SHEET = "estimated: apex sheet {name}"


def find_hs_root(root: Path, release: str = "auto") -> tuple[str, Path]:
    if release not in ("auto", *RELEASES):
        raise ValueError(f"smic: release must be auto, cropped or raw (got {release!r})")
    names = list(RELEASES) if release == "auto" else [release]
    looked = []
    for base in (root, root / "SMIC"):
        for name in names:
            p = base / RELEASES[name]
            looked.append(str(p))
            if p.is_dir():
                return name, p
    raise DataError(f"smic: HS folder not found; looked for: {', '.join(looked)}")


def read_apex_sheet(path: Path) -> dict[str, int]:
    """clip id -> apex frame number from a sheet in the ``smic_apex.xlsx`` format."""
    t = read_sheet(path, "data", "smic", required=("subject", "clip", "apex_frame"))
    out = {}
    for r in t.to_dict("records"):
        try:
            out[str(r["clip"]).strip()] = int(float(r["apex_frame"]))
        except (TypeError, ValueError):
            raise DataError(f"smic: {path} row {r['sheet_row']}: apex_frame = {r['apex_frame']!r} "
                            "is not a number") from None
    return out


def scan_release(hs_root: Path) -> tuple[list[dict], list[dict]]:
    """Walk ``HS/<subject>/{micro,non_micro}/...``: (micro clips, non-micro exclusions)."""
    clips, excluded = [], []
    subjects = sorted((p for p in hs_root.iterdir() if p.is_dir()), key=lambda p: _subject_order(p.name))
    if not subjects:
        raise DataError(f"smic: no subject folders in {hs_root}")
    for sdir in subjects:
        micro = sdir / "micro"
        if not micro.is_dir():
            raise DataError(f"smic: {sdir} has no micro/ folder")
        for edir in sorted(p for p in micro.iterdir() if p.is_dir()):
            emotion = edir.name.strip().lower()
            if emotion not in EMOTIONS:
                raise DataError(f"smic: unknown emotion folder {edir} (known: {', '.join(EMOTIONS)})")
            for cdir in sorted(p for p in edir.iterdir() if p.is_dir()):
                clips.append({"dataset": "smic", "subject": sdir.name, "clip": cdir.name, "emotion": emotion,
                              "frames": str(cdir)})
        non = sdir / "non_micro"
        if non.is_dir():
            for cdir in sorted(p for p in non.rglob("*") if p.is_dir() and not any(q.is_dir() for q in p.iterdir())):
                excluded.append({"dataset": "smic", "subject": sdir.name, "clip": cdir.name, "emotion": "non_micro",
                                 "reason": "non-micro clip (no micro-expression; not part of the 164-clip set)"})
    return clips, excluded


def _subject_order(name: str) -> tuple[int, str]:
    digits = "".join(ch for ch in name if ch.isdigit())
    return (int(digits) if digits else 10**9, name)


def coded_clips(root: Path, release: str = "auto", apex: str = "middle",
                apex_sheet: Path | None = None) -> tuple[pd.DataFrame, list[dict], list[str]]:
    rel, hs_root = find_hs_root(root, release)
    clips, excluded = scan_release(hs_root)
    sheet_apex: dict[str, int] = {}
    if apex == "sheet":
        apex_sheet = apex_sheet or root / "smic_apex.xlsx"
        if not apex_sheet.exists():
            raise DataError(f"smic: apex='sheet' but no apex sheet at {apex_sheet}")
        sheet_apex = read_apex_sheet(apex_sheet)
    elif apex != "middle":
        raise ValueError(f"smic: apex must be 'middle' or 'sheet' (got {apex!r})")
    for c in clips:
        index = folder_index(c["frames"])
        if not index:
            raise DataError(f"smic: clip folder has no frames: {c['frames']}")
        numbers = sorted(index)
        c["onset"], c["offset"] = numbers[0], numbers[-1]
        c["apex"], c["apex_source"] = numbers[len(numbers) // 2], APEX_MIDDLE
        c["face_crop"] = FACE_CROP_RELEASE if rel == "cropped" else FACE_CROP_DETECTOR
        if c["clip"] in sheet_apex:
            n = sheet_apex[c["clip"]]
            if n not in index:
                raise DataError(f"smic: apex sheet gives frame {n} for {c['clip']}, not in {c['frames']}")
            c["apex"], c["apex_source"] = n, APEX_SHEET.format(name=apex_sheet.name)
    notes = [f"SMIC-HS {rel} release at {hs_root}; labels from folder names; onset = first frame, "
             f"offset = last frame; apex {APEX_MIDDLE if apex == 'middle' else 'from ' + str(apex_sheet)}"]
    return pd.DataFrame(clips), excluded, notes


def load(root: Path | None, release: str = "auto", apex: str = "middle", apex_sheet: str | Path | None = None,
         **_) -> ClipDataset:
    """SMIC-HS, 3 classes (164 clips, 16 subjects)."""
    root = require_root(root, "smic")
    coded, non_micro, notes = coded_clips(root, release, apex, Path(apex_sheet) if apex_sheet else None)
    clips, excl = apply_protocol(coded, SMIC_3)
    excl = pd.concat([excl, pd.DataFrame(non_micro, columns=excl.columns)], ignore_index=True)
    return ClipDataset("smic", "SMIC-HS (3 classes)", SMIC_3.classes, clips, excl, kind="raw", root=str(root),
                       notes=notes)
