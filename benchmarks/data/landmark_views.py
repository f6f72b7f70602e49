"""The landmark views, registered with :func:`benchmarks.data.views.register_view` (imported by views.py).

=================  ==========================================================  ===========================
name               value                                                       parameters (defaults)
=================  ==========================================================  ===========================
``face_landmarks``  float32 (5, 2) (x, y) in pixels of the ``size`` grid:       frame="apex", size=28,
                    image-left eye, image-right eye, nose tip, image-left and    detect_size=None
                    image-right mouth corners; all NaN when no face is found
``face_box``        float32 (5,) = (cx, cy, side, angle, found): the clip's      template="auto"
                    square face crop in pixels of its raw frames (angle in
                    radians, from the eye line); found 0 = the fallback box
=================  ==========================================================  ===========================

``face_landmarks`` reads the ``frame`` view (``apex_frame`` / ``onset_frame`` at the frames' own
resolution, so a stored apex crop serves on megc2019-public, and a raw release's frames come
through their face crop), resizes it to ``detect_size`` (None: as is), runs the detector
(:mod:`benchmarks.data.landmarks`) and rescales the points to ``size`` x ``size``.
``face_box`` detects on the clip's raw onset frame (the first frame when the onset is unknown) and
fits the crop template of the clip's source (``template="auto"``: :func:`landmarks.template_for`,
or a name in :data:`landmarks.CROP_TEMPLATES`). Frame-based views use it for the clips whose
``face_crop`` is not ``release`` (see :func:`views.needs_face_crop`). The detector's name and version
(and the templates) are part of both views' cache keys.
"""

from __future__ import annotations

import numpy as np

from benchmarks.data import frames as _frames
from benchmarks.data import landmarks as lm
from benchmarks.data.clips import ClipDataset
from benchmarks.data.errors import DataError
from benchmarks.data.views import ViewDef, ViewSpec, get_view, register_view


def _frame_spec(p: dict) -> ViewSpec:
    return ViewSpec(f"{p['frame']}_frame", {"size": None, "color": "rgb"})


def _compute_landmarks(ds: ClipDataset, i: int, p: dict, ctx) -> np.ndarray:
    img = ctx.get(ds, i, f"{p['frame']}_frame", size=None, color="rgb")
    size = None if p["size"] is None else tuple(p["size"])
    detect = None if p["detect_size"] is None else tuple(p["detect_size"])
    return lm.landmarks(img, size=size, detect_size=detect)


def _compute_face_box(ds: ClipDataset, i: int, p: dict, ctx) -> np.ndarray:
    r = ds.clips.iloc[int(i)]
    n = int(r["onset"]) if int(r["onset"]) >= 0 else _frames.available_frames(r["frames"])[0]
    img = ds.read_frames(i, [n])[0]                     # raw: this view defines the crop
    template = lm.template_for(str(r["dataset"])) if p["template"] == "auto" else p["template"]
    if template not in lm.CROP_TEMPLATES:
        raise DataError(f"face_box: unknown template {template!r}; known: {sorted(lm.CROP_TEMPLATES)}")
    pts, _, _ = lm.detect(img)
    if np.isnan(pts).any():
        return np.append(lm.fallback_box(img.shape[:2]), np.float32(0)).astype(np.float32)
    return np.append(lm.fit_box(pts, template), np.float32(1)).astype(np.float32)


def label_face_crops(ds: ClipDataset, **kw) -> ClipDataset:
    """Relabel ``face_crop`` = ``none`` for the detector-cropped clips whose onset shows no face (their
    ``face_box`` is the fallback); computes (and caches) the boxes. Returns ``ds``, changed in place."""
    if "face_crop" not in ds.clips.columns:
        return ds
    for i, label in enumerate(ds.clips["face_crop"].astype(str)):
        if label.startswith("detector:") and get_view(ds, i, ViewSpec("face_box"), **kw)[4] == 0:
            ds.clips.loc[i, "face_crop"] = lm.FACE_CROP_NONE
    ds._manifest = None
    return ds


register_view(ViewDef("face_landmarks", _compute_landmarks, {"frame": "apex", "size": 28, "detect_size": None},
                      "five facial landmarks (x, y), float32 (5, 2); NaN when no face",
                      bases=lambda p: (_frame_spec(p),), version=lm.DETECTOR_ID))
register_view(ViewDef("face_box", _compute_face_box, {"template": "auto"},
                      "per-clip face crop (cx, cy, side, angle, found), float32 (5,)", version=lm.DETECTOR_ID))
