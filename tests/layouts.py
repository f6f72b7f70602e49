"""Write synthetic clips in the licensed releases' folder layouts (for loader tests).

Frames are tiny images; only their names, numbers and readability matter to the loaders.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import openpyxl


def write_frames(folder: Path, numbers, pattern: str, size: int = 16, seed: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for n in numbers:
        img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / pattern.format(n=n)), img)


def write_xlsx(path: Path, rows: list[list], sheet: str = "Sheet1") -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet
    for r in rows:
        ws.append(r)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def casme2_layout(root: Path, coded, release: str = "cropped") -> Path:
    """Folders for the coded clips (DataFrame from casme2.read_coding_sheet): key frames only."""
    base = root / ("Cropped" if release == "cropped" else "CASME2_RAW_selected")
    pattern = "reg_img{n}.jpg" if release == "cropped" else "img{n}.jpg"
    for r in coded.itertuples():
        write_frames(base / r.subject / r.clip, sorted({r.onset, r.apex, r.offset}), pattern)
    return base


def samm_layout(root: Path, coded) -> Path:
    base = root / "SAMM"
    for r in coded.itertuples():
        write_frames(base / r.subject / r.clip, sorted({r.onset, r.apex, r.offset}),
                     f"{r.subject}_{{n:05d}}.jpg")
    return base


def smic_layout(root: Path, clips: list[tuple[str, str, str, list[int]]], release: str = "cropped") -> Path:
    """clips: (subject, emotion, clip, frame numbers)."""
    base = root / ("SMIC_all_cropped/HS" if release == "cropped" else "HS")
    pattern = "reg_image{n}.bmp" if release == "cropped" else "image{n}.bmp"
    for subject, emotion, clip, numbers in clips:
        write_frames(base / subject / "micro" / emotion / clip, numbers, pattern)
    return base
