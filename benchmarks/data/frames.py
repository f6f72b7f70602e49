"""Reading a clip's frames, whatever the storage: a folder of numbered images or a ``.npy`` stack.

Frame numbers are those the coding sheets use: the integer at the end of an image's file name
(``reg_img46.jpg`` -> 46, ``006_05562.jpg`` -> 5562); for a ``.npy`` stack, the index in the stack.
Frames come back as ``uint8`` RGB arrays of shape (T, H, W, 3).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from benchmarks.data.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
_TRAILING_INT = re.compile(r"(\d+)$")


def frame_number(path: str | Path) -> int | None:
    """The frame number in an image file name (trailing digits of the stem), or None."""
    m = _TRAILING_INT.search(Path(path).stem.strip())
    return int(m.group(1)) if m else None


@lru_cache(maxsize=4096)
def _folder_index(folder: str, mtime_ns: int) -> dict[int, str]:
    index: dict[int, str] = {}
    for p in sorted(Path(folder).iterdir()):
        if p.suffix.lower() in IMAGE_SUFFIXES:
            n = frame_number(p)
            if n is not None:
                index[n] = str(p)
    return index


def folder_index(folder: str | Path) -> dict[int, str]:
    """Map frame number -> image path for a clip folder (cached on the folder's mtime)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"clip folder not found: {folder}")
    return dict(_folder_index(str(folder), folder.stat().st_mtime_ns))


def read_image(path: str | Path) -> np.ndarray:
    """Read one image as uint8 RGB (H, W, 3); raise DataError naming the file if unreadable."""
    path = Path(path)
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(f"unreadable image: {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def available_frames(frames: str | Path) -> list[int]:
    """Sorted frame numbers available in a clip's storage."""
    frames = Path(frames)
    if frames.suffix == ".npy":
        if not frames.exists():
            raise DataError(f"frame stack not found: {frames}")
        return list(range(np.load(frames, mmap_mode="r").shape[0]))
    return sorted(folder_index(frames))


def read_frames(frames: str | Path, numbers: Sequence[int] | None = None) -> np.ndarray:
    """Read frames ``numbers`` (all when None) of a clip stored at ``frames``."""
    frames = Path(frames)
    if frames.suffix == ".npy":
        if not frames.exists():
            raise DataError(f"frame stack not found: {frames}")
        stack = np.load(frames, mmap_mode="r")
        idx = list(range(stack.shape[0])) if numbers is None else list(numbers)
        bad = [n for n in idx if not 0 <= n < stack.shape[0]]
        if bad:
            raise DataError(f"{frames}: frames {bad} outside 0..{stack.shape[0] - 1}")
        out = np.asarray(stack[idx])
        if out.ndim == 3:
            out = np.repeat(out[..., None], 3, axis=-1)
        return out
    index = folder_index(frames)
    wanted = sorted(index) if numbers is None else list(numbers)
    missing = [n for n in wanted if n not in index]
    if missing:
        raise DataError(f"{frames}: missing frame(s) {missing[:10]} (folder has {len(index)} frames)")
    if not wanted:
        raise DataError(f"{frames}: no frames")
    return np.stack([read_image(index[n]) for n in wanted])
