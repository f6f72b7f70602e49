"""Optical flow between two frames and the quantities derived from it, as pure functions on arrays.

Conventions (image coordinates, y down):

- A flow field is a ``float32`` array of shape (2, H, W): channel 0 is the horizontal component
  ``u`` (pixels, positive to the right, along x = column index), channel 1 the vertical component
  ``v`` (pixels, positive downwards, along y = row index). The flow from ``a`` to ``b`` satisfies
  ``a[y, x] ~= b[y + v, x + u]``: content at (x, y) in ``a`` has moved by (u, v) in ``b``.
- Orientation is ``atan2(v, u)`` in (-pi, pi]; because y points down, a positive angle turns
  clockwise on screen (pi/2 is straight down).
- Sizes are ``None`` (keep), an int ``s`` (s x s) or a pair ``(H, W)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

Size = int | tuple[int, int] | None


# ---------------------------------------------------------------------------------------------- sizes
def as_hw(size: Size, native: tuple[int, int] | None = None) -> tuple[int, int] | None:
    """Normalise a size argument to ``(H, W)``; None stays None unless ``native`` is given."""
    if size is None:
        return None if native is None else (int(native[0]), int(native[1]))
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        hw = (int(size), int(size))
    elif isinstance(size, (tuple, list)) and len(size) == 2 and all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in size):
        hw = (int(size[0]), int(size[1]))
    else:
        raise ValueError(f"size must be None, an int or a pair (H, W) of ints, got {size!r}")
    if min(hw) < 1:
        raise ValueError(f"size must be positive, got {size!r}")
    return hw


def resize_interpolation(src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> int:
    """OpenCV interpolation used for every resize of the views.

    Shrinking (in either direction) uses ``INTER_AREA`` (pixel-area averaging, the anti-aliased
    choice); enlarging uses ``INTER_LINEAR``. Both are linear in the pixel values.
    """
    return cv2.INTER_AREA if dst_hw[0] < src_hw[0] or dst_hw[1] < src_hw[1] else cv2.INTER_LINEAR


def resize_image(img: np.ndarray, size: Size) -> np.ndarray:
    """Resize an (H, W) or (H, W, C) image to ``size`` (see :func:`resize_interpolation`); dtype kept."""
    hw = as_hw(size)
    if hw is None or hw == img.shape[:2]:
        return img
    out = cv2.resize(img, (hw[1], hw[0]), interpolation=resize_interpolation(img.shape[:2], hw))
    if img.ndim == 3 and out.ndim == 2:      # cv2 drops a trailing channel axis of length 1
        out = out[..., None]
    return out


# ---------------------------------------------------------------------------------------------- TV-L1
@dataclass(frozen=True)
class TVL1Params:
    """Parameters of OpenCV's Dual TV-L1 optical flow (Zach, Pock & Bischof 2007; Wedel et al. 2009).

    The defaults are OpenCV's own (``cv2.optflow.DualTVL1OpticalFlow_create()``), which is also
    what the MER codes that cite "TV-L1" (OFF-ApexNet, STSTNet, Bi-WOOF ports) call:
    tau 0.25 (time step), lambda 0.15 (data-term weight), theta 0.3 (coupling), 5 pyramid scales
    with scale step 0.8, 5 warpings per scale, epsilon 0.01 (stopping tolerance), 30 inner and
    10 outer iterations, gamma 0 (no illumination term), median filtering 5.
    """

    tau: float = 0.25
    lambda_: float = 0.15
    theta: float = 0.3
    nscales: int = 5
    warps: int = 5
    epsilon: float = 0.01
    inner_iterations: int = 30
    outer_iterations: int = 10
    scale_step: float = 0.8
    gamma: float = 0.0
    median_filtering: int = 5

    def as_dict(self) -> dict:
        return asdict(self)


def tvl1_flow(onset_gray: np.ndarray, apex_gray: np.ndarray, params: TVL1Params | None = None) -> np.ndarray:
    """Dense TV-L1 flow from ``onset_gray`` to ``apex_gray`` (both (H, W) uint8), as (2, H, W) float32.

    Computed at the frames' own resolution; resize afterwards with :func:`resize_flow`.
    """
    for name, a in (("onset_gray", onset_gray), ("apex_gray", apex_gray)):
        if a.ndim != 2:
            raise ValueError(f"tvl1_flow: {name} must be a 2-D grayscale image, got shape {a.shape}")
        if a.dtype != np.uint8:
            raise ValueError(f"tvl1_flow: {name} must be uint8, got {a.dtype}")
    if onset_gray.shape != apex_gray.shape:
        raise ValueError(f"tvl1_flow: onset {onset_gray.shape} and apex {apex_gray.shape} differ in size")
    p = params or TVL1Params()
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create(
        tau=p.tau, lambda_=p.lambda_, theta=p.theta, nscales=p.nscales, warps=p.warps, epsilon=p.epsilon,
        innnerIterations=p.inner_iterations, outerIterations=p.outer_iterations, scaleStep=p.scale_step,
        gamma=p.gamma, medianFiltering=p.median_filtering, useInitialFlow=False)
    flow = tvl1.calc(np.ascontiguousarray(onset_gray), np.ascontiguousarray(apex_gray), None)
    return np.ascontiguousarray(flow.transpose(2, 0, 1), dtype=np.float32)


def resize_flow(flow: np.ndarray, size: Size) -> np.ndarray:
    """Resize a (2, H, W) flow to ``size`` and rescale the vectors: u by W'/W, v by H'/H.

    The displacement is then expressed in pixels of the resized grid.
    """
    _check_flow(flow, "resize_flow")
    h, w = flow.shape[1:]
    hw = as_hw(size, native=(h, w))
    if hw == (h, w):
        return flow.astype(np.float32, copy=True)
    interp = resize_interpolation((h, w), hw)
    u = cv2.resize(np.ascontiguousarray(flow[0], dtype=np.float32), (hw[1], hw[0]), interpolation=interp)
    v = cv2.resize(np.ascontiguousarray(flow[1], dtype=np.float32), (hw[1], hw[0]), interpolation=interp)
    return np.stack([u * (hw[1] / w), v * (hw[0] / h)]).astype(np.float32)


# ---------------------------------------------------------------------------------------------- derived
def strain_tensor(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Components (eps_xx, eps_yy, eps_xy) of the infinitesimal strain tensor of a (2, H, W) flow.

    eps = 1/2 [grad(u) + grad(u)^T] for the displacement (u, v), so
    eps_xx = du/dx, eps_yy = dv/dy, eps_xy = eps_yx = 1/2 (du/dy + dv/dx).
    Derivatives are ``np.gradient`` in pixel units: central differences inside, one-sided at the
    border. Axis 0 of an image is y (rows) and axis 1 is x (columns).
    """
    _check_flow(flow, "strain_tensor")
    u = flow[0].astype(np.float64)
    v = flow[1].astype(np.float64)
    du_dy, du_dx = _gradient(u)
    dv_dy, dv_dx = _gradient(v)
    return du_dx, dv_dy, 0.5 * (du_dy + dv_dx)


def optical_strain(flow: np.ndarray) -> np.ndarray:
    """Optical strain magnitude of a (2, H, W) flow, as (H, W) float32.

    |eps| = sqrt(eps_xx^2 + eps_yy^2 + 2 eps_xy^2), the Frobenius norm of the symmetric 2x2 strain
    tensor (eps_xy appears twice, as eps_xy and eps_yx); see :func:`strain_tensor`. Equivalently
    sqrt(u_x^2 + v_y^2 + 1/2 (u_y + v_x)^2). A rigid translation or rotation has zero strain.
    """
    exx, eyy, exy = strain_tensor(flow)
    return np.sqrt(exx ** 2 + eyy ** 2 + 2.0 * exy ** 2).astype(np.float32)


def magnitude_orientation(flow: np.ndarray) -> np.ndarray:
    """(2, H, W) float32: magnitude sqrt(u^2 + v^2) and orientation atan2(v, u) in (-pi, pi] (y down)."""
    _check_flow(flow, "magnitude_orientation")
    u = flow[0].astype(np.float64)
    v = flow[1].astype(np.float64)
    return np.stack([np.hypot(u, v), np.arctan2(v, u)]).astype(np.float32)


def minmax_scale(channels: np.ndarray) -> np.ndarray:
    """Scale each channel of a (C, H, W) array to [0, 1] by its own min and max (a flat channel -> 0).

    This is the per-clip normalisation of the published STSTNet/OFF-ApexNet inputs (there to
    0..255); it discards the absolute flow magnitude.
    """
    x = channels.astype(np.float64)
    lo = x.min(axis=(1, 2), keepdims=True)
    span = x.max(axis=(1, 2), keepdims=True) - lo
    out = np.divide(x - lo, span, out=np.zeros_like(x), where=span > 0)
    return out.astype(np.float32)


def median_centred(channels: np.ndarray, axis: tuple[int, ...] = (-2, -1)) -> np.ndarray:
    """Signed estimate of flow channels stored min-max scaled per clip (:func:`minmax_scale`, the published
    MEGC2019 images): the scaling lost the zero; most pixels of a face barely move, so each channel's median
    over ``axis`` estimates it and is subtracted. The per-channel scale stays unknown."""
    return channels - np.median(channels, axis=axis, keepdims=True)


def _gradient(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(d/dy, d/dx) of a 2-D array; a size-1 axis has zero derivative."""
    dy = np.gradient(a, axis=0) if a.shape[0] > 1 else np.zeros_like(a)
    dx = np.gradient(a, axis=1) if a.shape[1] > 1 else np.zeros_like(a)
    return dy, dx


def _check_flow(flow: np.ndarray, where: str) -> None:
    if flow.ndim != 3 or flow.shape[0] != 2:
        raise ValueError(f"{where}: flow must have shape (2, H, W), got {flow.shape}")
