"""The ROI mosaic view ``flow_roi_mosaic``: facial regions of the (u, v, strain) flow cut out and tiled into one image.

Dual-ATME's lower branch (Zhou et al., Entropy 2023, Fig. 1 and Sec. 3.2.2, "HARS") reads the optical flow
of a "puzzled" face: the eye-and-eyebrow regions tiled above the mouth region. The authors cut the regions
from the onset and apex frames and compute the flow of the puzzled frames; their puzzle code is not
published (``HaoliangZhou/Dual-ATME`` reads ready-made ``flow_puzzle`` images). This view cuts the regions
from the flow of the whole aligned face instead (``flow_uvs``), so it also works where only stored flow is
published (``megc2019-public``: 28x28). TV-L1 is local, so the two differ mainly at the seams and by the
resolution the regions are cut from.

A region of interest is 8 numbers, all normalised to [0, 1]: the box ``x0, y0, x1, y1`` in the face
(x right, y down; pixel rows ``round(y0 H) .. round(y1 H)``, columns likewise) and the tile ``tx0, ty0, tx1,
ty1`` it fills in the mosaic; each box is resized to its tile (pixel-area averaging when shrinking,
bilinear when enlarging), later regions overwrite earlier ones, and pixels no tile covers are 0.
:data:`DEFAULT_ROIS` follows the figure's arrangement on a fixed aligned-face layout (boxes read off the mean
of the 442 ``megc2019-public`` apex crops: eyebrows at y ~ 0.15-0.22, eyes ~ 0.27, mouth ~ 0.65-0.8).

Parameters (defaults): ``size=28`` (the mosaic), ``source_size=None`` (the ``flow_uvs`` it is cut from: None =
the finest the data source offers, the frames' own resolution or the stored 28x28), ``scale="minmax"`` (the
base ``flow_uvs`` scale; "minmax" rescales each mosaic channel to [0, 1] again, as an image of the puzzled
flow would be), ``rois=DEFAULT_ROIS``. Landmark-driven regions would be a further ``boxes`` parameter whose
compute reads a landmark view through ``ctx`` and whose ``bases`` lists it; nothing here depends on landmarks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.data import flow as _flow
from benchmarks.data.views import ViewDef, ViewSpec, register_view

DEFAULT_ROIS: tuple[tuple[float, ...], ...] = (
    # box in the face (x0, y0, x1, y1)   tile in the mosaic (tx0, ty0, tx1, ty1)
    (0.05, 0.05, 0.50, 0.45, 0.0, 0.0, 0.5, 0.5),  # image-left eye and eyebrow -> top left
    (0.50, 0.05, 0.95, 0.45, 0.5, 0.0, 1.0, 0.5),  # image-right eye and eyebrow -> top right
    (0.20, 0.60, 0.80, 0.95, 0.0, 0.5, 1.0, 1.0),  # mouth -> bottom half
)
ROI_VIEW_VERSION = "1"
"""Bump when a change here changes the mosaic's numbers (it is in the view's cache key)."""


def check_rois(rois: Any) -> tuple[tuple[float, ...], ...]:
    """``rois`` as a tuple of 8-tuples of floats; raises ValueError unless each box and tile lies in [0, 1]
    with positive width and height."""
    if isinstance(rois, str) or not isinstance(rois, Sequence) or not rois:
        raise ValueError(f"view flow_roi_mosaic: rois must be a non-empty sequence of 8-tuples, got {rois!r}")
    out = []
    for r in rois:
        if isinstance(r, str) or not isinstance(r, Sequence) or len(r) != 8:
            raise ValueError(f"view flow_roi_mosaic: each roi is (x0, y0, x1, y1, tx0, ty0, tx1, ty1), got {r!r}")
        v = tuple(float(a) for a in r)
        for x0, y0, x1, y1 in (v[:4], v[4:]):
            if not (0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0):
                raise ValueError(f"view flow_roi_mosaic: roi {r!r} needs 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1")
        out.append(v)
    return tuple(out)


def _span(a: float, b: float, n: int) -> tuple[int, int]:
    lo = min(int(round(a * n)), n - 1)
    return lo, max(lo + 1, min(int(round(b * n)), n))


def roi_mosaic(uvs: np.ndarray, rois: Sequence[Sequence[float]], size: tuple[int, int] | None = None) -> np.ndarray:
    """Tile the regions ``rois`` of ``uvs`` (C, H, W) into a float32 (C, H', W') mosaic (``size``, default H, W)."""
    if uvs.ndim != 3:
        raise ValueError(f"roi_mosaic expects (C, H, W), got {uvs.shape}")
    c, h, w = uvs.shape
    oh, ow = _flow.as_hw(size, native=(h, w))
    out = np.zeros((c, oh, ow), dtype=np.float32)
    img = np.ascontiguousarray(uvs.transpose(1, 2, 0), dtype=np.float32)
    for x0, y0, x1, y1, tx0, ty0, tx1, ty1 in check_rois(rois):
        (r0, r1), (c0, c1) = _span(y0, y1, h), _span(x0, x1, w)
        (t0, t1), (s0, s1) = _span(ty0, ty1, oh), _span(tx0, tx1, ow)
        tile = _flow.resize_image(np.ascontiguousarray(img[r0:r1, c0:c1]), (t1 - t0, s1 - s0))
        out[:, t0:t1, s0:s1] = tile.reshape(t1 - t0, s1 - s0, c).transpose(2, 0, 1)
    return out


@dataclass(frozen=True)
class _MosaicDef(ViewDef):
    def canonical(self, params: dict[str, Any]) -> dict[str, Any]:
        p = super().canonical(params)
        hw = _flow.as_hw(p["source_size"])
        p["source_size"] = None if hw is None else list(hw)
        p["rois"] = [list(r) for r in check_rois(p["rois"])]
        return p


def _bases(p: dict) -> tuple[ViewSpec, ...]:
    return (ViewSpec.of("flow_uvs", size=p["source_size"], scale=p["scale"]),)


def _compute_mosaic(ds: Any, i: int, p: dict, ctx: Any) -> np.ndarray:
    uvs = ctx.get(ds, i, "flow_uvs", size=p["source_size"], scale=p["scale"])
    out = roi_mosaic(uvs, p["rois"], p["size"])
    return _flow.minmax_scale(out) if p["scale"] == "minmax" else out


register_view(_MosaicDef(
    "flow_roi_mosaic", _compute_mosaic,
    {"size": 28, "source_size": None, "scale": "minmax", "rois": DEFAULT_ROIS},
    "facial regions of (u, v, strain) flow tiled into one image, float32 (3, H, W)",
    bases=_bases, version=ROI_VIEW_VERSION))
