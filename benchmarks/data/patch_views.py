"""HTNet's input: four flow windows centred on facial landmarks, as a 2x2 mosaic (a derived view).

``landmark_patches`` (parameters ``size=28``, ``patch=14``, ``landmarks="fixed"``, ``centres="reference"``; HTNet
asks for ``landmarks="detector"``):
float32 ``(C, 2 * patch, 2 * patch)``, cut from ``flow_uvs(size, scale="minmax")`` of the clip by
:func:`landmark_patches` around the landmarks of the view ``face_landmarks(frame="apex", size=size,
detect_size=size)`` (five (x, y) points in pixels of the ``size`` grid: image-left eye, image-right eye,
nose, image-left mouth corner, image-right mouth corner; all NaN when no face is found), or, for
``landmarks="fixed"`` and for a clip without a face, around HTNet's fixed coordinates
(:data:`FALLBACK_LANDMARKS`). The view is available wherever its input views are (on the public MEGC2019
composite: the stored flow and apex images); ``landmarks="detector"`` needs the ``face_landmarks`` view
registered (else :class:`benchmarks.data.views.ViewUnavailable` says so).

The arithmetic of the reference (``wangzhifengharrison/HTNet`` commit
91cf4bda0a2db50d638d46c04c5d7cf3b602d446, ``main_HTNet.py``, functions ``whole_face_block_coordinates``
and ``crop_optical_flow_block`` and the ``hconcat``/``vconcat`` of ``main``; read for facts only):
MTCNN landmarks of the apex image resized to 28x28; each coordinate clipped to [7, 21], then truncated to
an int; window ``k`` = ``image[c_k0 - 7 : c_k0 + 7, c_k1 - 7 : c_k1 + 7]`` with ``c_k = (x, y)``: the
*row* range comes from x and the column range from y (``centres="reference"``); the mosaic is
``[[w0, w1], [w3, w4]]`` (the nose window is cut but unused). On a frontal face the transposed centres
land near the other landmarks' regions, so the mosaic holds [[left eye, left mouth corner], [right eye,
right mouth corner]] (the reference's names ``l_eye, l_lips, r_eye, r_lips``), windows of the image
itself (not transposed). ``centres="image"`` takes rows from y and columns from x and arranges
``[[w0, w3], [w1, w4]]``, the same facial areas in the same mosaic cells, centred on the landmarks
themselves. For another ``size`` the clip range is [patch / 2, size - patch / 2] and the fixed
coordinates scale by ``size / 28``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.data.views import ViewDef, ViewSpec, register_view

FALLBACK_LANDMARKS = np.array([[9.528073, 11.062551], [21.396168, 10.919773], [15.380184, 17.380562],
                               [10.255435, 22.121233], [20.583706, 22.25584]], dtype=np.float32)
"""HTNet's coordinates (x, y on the 28 grid) when MTCNN finds no face (``main_HTNet.py``, commit 91cf4bd)."""
FALLBACK_SIZE = 28
DETECTOR_VIEW = "face_landmarks"
LANDMARK_SOURCES = ("detector", "fixed")
CENTRES = ("reference", "image")
_LAYOUT = {"reference": ((0, 1), (3, 4)), "image": ((0, 3), (1, 4))}  # landmark index of each mosaic cell


def patch_centres(landmarks: np.ndarray | None, size: int, half: int) -> tuple[np.ndarray, bool]:
    """Integer (x, y) window centres (5, 2) and whether the fixed fallback was used: ``landmarks``
    (float (5, 2) on the ``size`` grid; None or any NaN -> :data:`FALLBACK_LANDMARKS` scaled to ``size``)
    clipped to [half, size - half], then truncated towards zero."""
    lm = None if landmarks is None else np.asarray(landmarks, dtype=np.float64)
    fallback = lm is None or bool(np.isnan(lm).any())
    if fallback:
        lm = FALLBACK_LANDMARKS.astype(np.float64) * (size / FALLBACK_SIZE)
    if lm.shape != (5, 2):
        raise ValueError(f"landmarks must be (5, 2) (x, y) points, got shape {lm.shape}")
    return np.trunc(np.clip(lm, half, size - half)).astype(np.int64), fallback


def landmark_patches(flow: np.ndarray, landmarks: np.ndarray | None, half: int = 7,
                     centres: str = "reference") -> np.ndarray:
    """The 2x2 mosaic ``(C, 4 * half, 4 * half)`` of ``2 * half`` windows of ``flow`` (C, S, S) around
    the landmarks (see the module docstring for the arithmetic and ``centres``)."""
    if centres not in CENTRES:
        raise ValueError(f"centres must be one of {CENTRES}, got {centres!r}")
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[1] != flow.shape[2]:
        raise ValueError(f"flow must be (C, S, S), got shape {flow.shape}")
    size = flow.shape[1]
    if not 0 < 2 * half <= size:
        raise ValueError(f"window 2 * {half} does not fit a {size}x{size} flow image")
    c, _ = patch_centres(landmarks, size, half)
    rows, cols = (c[:, 0], c[:, 1]) if centres == "reference" else (c[:, 1], c[:, 0])
    win = [flow[:, r - half:r + half, q - half:q + half] for r, q in zip(rows, cols, strict=True)]
    return np.ascontiguousarray(np.concatenate(
        [np.concatenate([win[k] for k in row], axis=2) for row in _LAYOUT[centres]], axis=1))


@dataclass(frozen=True)
class _PatchesDef(ViewDef):
    def canonical(self, params: dict[str, Any]) -> dict[str, Any]:
        p = super().canonical(params)
        size, patch = p["size"], p["patch"]
        if size is None or size[0] != size[1]:
            raise ValueError(f"view {self.name}: size must be square (an int), got {size!r}")
        if not isinstance(patch, int) or patch < 2 or patch % 2 or patch > size[0]:
            raise ValueError(f"view {self.name}: patch must be an even int in [2, size], got {patch!r}")
        for key, allowed in (("landmarks", LANDMARK_SOURCES), ("centres", CENTRES)):
            if p[key] not in allowed:
                raise ValueError(f"view {self.name}: {key} must be one of {list(allowed)}, got {p[key]!r}")
        return p


def _inputs(p: dict[str, Any]) -> tuple[ViewSpec, ...]:
    s = p["size"][0]
    flow = ViewSpec.of("flow_uvs", size=s, scale="minmax")
    if p["landmarks"] == "fixed":
        return (flow,)
    return flow, ViewSpec.of(DETECTOR_VIEW, frame="apex", size=s, detect_size=s)


def _compute(ds, i: int, p: dict[str, Any], ctx) -> np.ndarray:
    flow_spec, *lm_spec = _inputs(p)
    flow = ctx.get(ds, i, flow_spec.name, **flow_spec.kwargs)
    lm = ctx.get(ds, i, lm_spec[0].name, **lm_spec[0].kwargs) if lm_spec else None
    return landmark_patches(flow, lm, p["patch"] // 2, p["centres"]).astype(np.float32)


register_view(_PatchesDef("landmark_patches", _compute,
                          {"size": 28, "patch": 14, "landmarks": "fixed", "centres": "reference"},
                          "2x2 mosaic of flow_uvs windows around the eyes and mouth corners, float32 "
                          "(3, 2 patch, 2 patch)", bases=_inputs))
