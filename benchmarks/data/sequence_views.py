"""The view ``frame_sequence``: the first ``n_frames`` frames of a clip, resized, not resampled.

Some methods read a fixed number of consecutive frames from the start of a clip instead of a
time-normalised sequence (``tim_sequence`` resamples onset..offset or the whole clip to ``n_frames``
by TIM or linear interpolation, which changes the frame rate). Fang, Liu and Liu's 3D-CNN + GRU
(ICIP 2024, ``dannyFan-0201/ICIP_2024`` ``ME_model.py``) reads frames ``0 .. n_frames - 1`` of each clip's
video and resizes them to 128x128 with pixel-area averaging.

Parameters (defaults): ``n_frames=30``; ``size=128`` (None, an int or (H, W); pixel-area averaging when
shrinking, bilinear when enlarging, as every frame view); ``color="rgb"`` (or ``"gray"``); ``start``:
``"clip"`` (the clip's first available frame, the reference's frame 0 of its video file) or ``"onset"``
(the onset frame; an unknown onset (-1) starts at the first frame). A clip with fewer than ``n_frames``
frames from the start is padded by repeating its last frame (``pad="repeat_last"``, the only choice; the
reference has no rule: its video reader raises on a frame past the end). Value: uint8 ``(n_frames, H, W, 3)``
RGB or ``(n_frames, H, W)`` gray. Frames of raw releases are read through the clip's face crop as
for every frame view (:func:`benchmarks.data.views._read_frames`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.data import flow as _flow
from benchmarks.data import frames as _frames
from benchmarks.data.errors import DataError
from benchmarks.data.views import ViewDef, _clip_name, _read_frames, _to_color, register_view

STARTS = ("clip", "onset")
PADS = ("repeat_last",)
SEQUENCE_VIEW_VERSION = "1"
"""Bump when a change here changes the view's numbers (it is in the view's cache key)."""


@dataclass(frozen=True)
class _SequenceDef(ViewDef):
    def canonical(self, params: dict[str, Any]) -> dict[str, Any]:
        p = super().canonical(params)
        for key, allowed in (("start", STARTS), ("pad", PADS)):
            if p[key] not in allowed:
                raise ValueError(f"view {self.name}: {key} must be one of {list(allowed)}, got {p[key]!r}")
        return p


def sequence_numbers(available: list[int], n_frames: int, start: int | None = None) -> tuple[list[int], int]:
    """(the frame numbers to read, how many of them repeat the last one): the first ``n_frames`` of
    ``available`` (sorted frame numbers) from ``start`` (None: the first), the last repeated when short."""
    numbers = sorted(available) if start is None else [n for n in sorted(available) if n >= start]
    if not numbers:
        raise ValueError(f"no frame at or after {start}")
    taken = numbers[:n_frames]
    pad = n_frames - len(taken)
    return taken + [taken[-1]] * pad, pad


def _compute(ds, i: int, p: dict[str, Any], ctx) -> np.ndarray:
    r = ds.clips.iloc[int(i)]
    onset = int(r["onset"])
    start = onset if p["start"] == "onset" and onset >= 0 else None
    try:
        numbers, _ = sequence_numbers(_frames.available_frames(r["frames"]), p["n_frames"], start)
    except ValueError as e:
        raise DataError(f"{_clip_name(ds, i)}: frame_sequence: {e}") from None
    unique = sorted(set(numbers))
    frames = dict(zip(unique, _read_frames(ds, i, unique, ctx), strict=True))
    seq = [_to_color(_flow.resize_image(frames[n], p["size"]), p["color"]) for n in numbers]
    shapes = {a.shape for a in seq}
    if len(shapes) > 1:
        raise DataError(f"{_clip_name(ds, i)}: frames differ in size {sorted(shapes)}; pass a size")
    return np.ascontiguousarray(np.stack(seq), dtype=np.uint8)


register_view(_SequenceDef("frame_sequence", _compute,
                           {"n_frames": 30, "size": 128, "color": "rgb", "start": "clip", "pad": "repeat_last"},
                           "the first n_frames frames of the clip (from its first frame or onset), resized, "
                           "the last repeated when short; uint8 (N, H, W[, 3])", version=SEQUENCE_VIEW_VERSION))
