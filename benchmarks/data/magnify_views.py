"""Motion-magnified apex frame (view ``magnified_apex``): linear Eulerian video magnification of the onset ->
apex change, a documented substitute for the learning-based MagNet (Oh et al., ECCV 2018) that MFDAN uses
(its weights are not part of this project).

Linear Eulerian magnification (Wu, Rubinstein, Shih, Guttag, Durand & Freeman, "Eulerian Video Magnification
for Revealing Subtle Changes in the World", SIGGRAPH 2012): each frame is decomposed into a Laplacian pyramid,
each band's temporal variation is band-passed, multiplied by ``alpha_l`` and added back. With the two frames
MagNet also receives (onset as reference, apex), the temporal band-pass is the change ``apex - onset`` (MagNet's
"static" two-frame mode), so::

    magnified = apex + collapse(alpha_0 L_0(D), ..., alpha_{n-1} L_{n-1}(D), 0 * R(D)),   D = apex - onset

where ``L_l`` are the Laplacian bands (``cv2.pyrDown``/``pyrUp``), ``R`` the low-pass residual (the mean
illumination change, not amplified) and, per Wu et al.'s bound (1 + alpha) delta < lambda / 8 (their Eq. 14),
the factor of band ``l`` (shortest wavelength ``lambda_l = 2^(l+1)`` px) is
``alpha_l = clip((1 + alpha) lambda_l / lambda_c - 1, 0, alpha)``: full ``alpha`` for wavelengths >= ``lambda_c``,
attenuated below it (fine bands, where a linear approximation of the motion breaks down, are not blown up).
The frames are the ``onset_frame`` / ``apex_frame`` views at ``size`` (the same crop and resizing as the flow),
magnified per colour channel; the result is clipped to 0..255, float32 (H, W, 3) RGB or (H, W) gray.

Choices (MFDAN gives no factor: it randomises MagNet's amplification factor during training, Sec. III-B; that
augmentation is not reproduced): ``alpha`` 10, ``lambda_c`` 16 px at 224 and ``levels`` 6 (residual 4x4 at
224) are this harness's choices, exposed in ``MFDANConfig``. A derived view: available wherever onset and apex
frames are, so not on the public MEGC2019 composite (no onset frames).
"""

from __future__ import annotations

import cv2
import numpy as np

from benchmarks.data.views import ViewDef, ViewSpec, register_view

VERSION = "1"  # bump when the numbers of this view change


def band_factors(alpha: float, lambda_c: float, levels: int) -> list[float]:
    """``alpha_l`` of bands 0 (finest) .. levels-1: Wu et al.'s bound with ``lambda_l = 2^(l+1)`` px."""
    return [float(np.clip((1.0 + alpha) * 2.0 ** (level + 1) / lambda_c - 1.0, 0.0, alpha))
            for level in range(levels)]


def laplacian_pyramid(img: np.ndarray, levels: int) -> tuple[list[np.ndarray], np.ndarray]:
    """(bands finest first, low-pass residual) of a float32 image; ``collapse`` inverts it exactly."""
    bands, cur = [], img
    for _ in range(levels):
        down = cv2.pyrDown(cur)
        up = cv2.pyrUp(down, dstsize=(cur.shape[1], cur.shape[0]))
        bands.append(cur - up)
        cur = down
    return bands, cur


def collapse(bands: list[np.ndarray], residual: np.ndarray) -> np.ndarray:
    cur = residual
    for band in reversed(bands):
        cur = cv2.pyrUp(cur, dstsize=(band.shape[1], band.shape[0])) + band
    return cur


def magnify(onset: np.ndarray, apex: np.ndarray, alpha: float, lambda_c: float, levels: int) -> np.ndarray:
    """The apex with the onset -> apex change magnified (float32, same shape, not clipped)."""
    if onset.shape != apex.shape:
        raise ValueError(f"magnify: onset {onset.shape} and apex {apex.shape} differ in shape")
    apex = apex.astype(np.float32)
    bands, residual = laplacian_pyramid(apex - onset.astype(np.float32), levels)
    factors = band_factors(alpha, lambda_c, levels)
    change = collapse([np.float32(a) * b for a, b in zip(factors, bands, strict=True)], np.zeros_like(residual))
    return (apex + change).astype(np.float32)


def _bases(p: dict) -> tuple[ViewSpec, ...]:
    return tuple(ViewSpec.of(f"{w}_frame", size=p["size"], color=p["color"]) for w in ("onset", "apex"))


def _compute(ds, i: int, p: dict, ctx) -> np.ndarray:
    if not p["alpha"] >= 0 or not p["lambda_c"] > 0 or int(p["levels"]) < 1:
        raise ValueError(f"view magnified_apex: alpha >= 0, lambda_c > 0 and levels >= 1 needed, got {p}")
    onset, apex = (ctx.get(ds, i, b.name, **b.kwargs) for b in _bases(p))
    out = magnify(onset, apex, float(p["alpha"]), float(p["lambda_c"]), int(p["levels"]))
    return np.ascontiguousarray(np.clip(out, 0.0, 255.0), dtype=np.float32)


register_view(ViewDef("magnified_apex", _compute,
                      {"size": 224, "color": "rgb", "alpha": 10.0, "lambda_c": 16.0, "levels": 6},
                      "apex with the onset -> apex change magnified (linear Eulerian), float32 (H, W[, 3]) 0..255",
                      bases=_bases, version=VERSION))
