"""Bi-WOOF: bi-weighted oriented optical flow (Liong, See, Wong & Phan 2018, "Less is more", SPIC 62:82-92).

Only the onset and apex frames are used. From the onset->apex optical flow ``(u, v)`` and its optical
strain magnitude (both computed by the harness), the face is split into an ``N x N`` block grid; each block
gets an orientation histogram in which every pixel votes with its flow magnitude (local weight); the block
histogram is normalised to sum 1 and multiplied by the block's global weight, the *sum* of optical strain
in the block; the ``N*N*bins`` vector is L2-normalised. N = 5 and 8 bins give 200 dimensions.

Sources checked (read with the search tool; no code copied):

- The authors' MATLAB ``biwoof.m`` in ``christy1206/biwoof`` (commit efa566b1b457dab7ffc98c85d078d020ef55690e;
  "Bi-WOOF implementation, Version 1.0, Author: Liong Sze Teng"): ``nBin = 8``, ``nW = nH = 5``; per
  block ``weightedhistc(orientation, magnitude, -180:45:179)``, then ``histt/sum(histt)`` (the block
  histogram is normalised *before* global weighting), global weight ``sum(os)`` over the block (a sum,
  not a mean), finally ``Hist/norm(Hist)`` (L2). Blocks in row-major order (rows outer).
- ``christy1206/biwoof`` README.md: the three steps (flow between apex and onset; orientation, magnitude and
  optical strain per pixel; histogram locally weighted by magnitude, globally by strain).

Decisions (exposed as config fields or documented):

- Bins: ``n_bins`` equal bins over ``[-pi, pi)``, left-closed, angle ``pi`` wrapped to the first bin. The
  reference's ``histc`` with edges ``-180:45:135`` silently drops angles in (135, 180] degrees (its last
  bin only counts exactly 135); we do not reproduce that loss.
- Orientation ``atan2(v, u)`` of the arrays as given (image rows grow downwards, so positive ``v`` points
  down); a consistent convention is all the histogram needs.
- Block bounds: ``h = floor(H / N)`` with edges ``0, h, ..., (N-1)h, H`` (last block takes the remainder),
  as in ``biwoof.m``. That file's blocks also overlap their neighbours by one pixel on each inner side;
  ``block_margin = 1`` reproduces this exactly, the default 0 gives the paper's non-overlapping blocks.
- A block with zero total magnitude has an all-zero histogram (MATLAB would give NaN from 0/0); a zero
  vector stays zero after the L2 step.
- ``svm_c``: neither the paper text we could reach nor ``biwoof.m`` states the SVM's C; we use the
  C = 10000 of the same group's MEGC 2019 handcrafted-baseline script (``IcedDoggie/ME_Autoencoders``
  ``lbptop_baseline.py`` at commit 3dcc5866b7ae9e9affb0b15386b332ca85e24f48, ``SVC(kernel='linear', C=10000)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BiWOOFConfig:
    """Bi-WOOF hyperparameters (defaults: ``biwoof.m``: 5 x 5 blocks, 8 bins -> 200-D)."""

    grid: int = 5  # N of the N x N block grid (biwoof.m: nW = nH = 5)
    n_bins: int = 8  # orientation bins over [-pi, pi) (biwoof.m: nBin = 8)
    block_margin: int = 0  # 0: non-overlapping blocks (paper); 1: biwoof.m's one-pixel overlap
    svm_c: float = 10000.0  # linear SVM C (see module docstring: not given by the Bi-WOOF sources)

    def __post_init__(self) -> None:
        if not (isinstance(self.grid, int) and self.grid >= 1):
            raise ValueError(f"BiWOOFConfig.grid must be an int >= 1, got {self.grid!r}")
        if not (isinstance(self.n_bins, int) and self.n_bins >= 2):
            raise ValueError(f"BiWOOFConfig.n_bins must be an int >= 2, got {self.n_bins!r}")
        if not (isinstance(self.block_margin, int) and self.block_margin >= 0):
            raise ValueError(f"BiWOOFConfig.block_margin must be an int >= 0, got {self.block_margin!r}")
        if not self.svm_c > 0:
            raise ValueError(f"BiWOOFConfig.svm_c must be > 0, got {self.svm_c!r}")

    @property
    def feature_length(self) -> int:
        return self.grid * self.grid * self.n_bins


def orientation_bins(u: np.ndarray, v: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin index in ``0..n_bins-1`` of ``atan2(v, u)`` over ``[-pi, pi)``, left-closed bins."""
    theta = np.arctan2(v, u)
    idx = np.floor((theta + np.pi) * (n_bins / (2.0 * np.pi))).astype(np.int64)
    return np.where(idx >= n_bins, idx - n_bins, idx)  # theta == pi wraps to the first bin


def block_bounds(length: int, n_blocks: int, margin: int = 0) -> list[tuple[int, int]]:
    """``[start, stop)`` of each block along one axis (see module docstring for the rule)."""
    size = length // n_blocks
    edges = [k * size for k in range(n_blocks)] + [length]
    return [(max(0, edges[k] - margin), min(length, edges[k + 1] + margin)) for k in range(n_blocks)]


def _check(name: str, a: np.ndarray, shape: tuple[int, ...] | None) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"bi_woof: {name} must be a 2-D (H, W) array, got shape {arr.shape}")
    if shape is not None and arr.shape != shape:
        raise ValueError(f"bi_woof: {name} has shape {arr.shape}, expected {shape} (the shape of u)")
    if not np.isfinite(arr).all():
        raise ValueError(f"bi_woof: {name} contains NaN or inf")
    return arr


def bi_woof(u: np.ndarray, v: np.ndarray, strain: np.ndarray, config: BiWOOFConfig = BiWOOFConfig()) -> np.ndarray:
    """Bi-WOOF vector (float64, length ``grid*grid*n_bins``, unit L2 norm unless all zero).

    ``u``, ``v``: horizontal and vertical onset->apex flow, ``(H, W)``; ``strain``: optical strain magnitude
    ``(H, W)``, non-negative.
    """
    u = _check("u", u, None)
    v = _check("v", v, u.shape)
    strain = _check("strain", strain, u.shape)
    if (strain < 0).any():
        raise ValueError(f"bi_woof: strain must be a non-negative magnitude, min is {strain.min():.3g}")
    h, w = u.shape
    if h < config.grid or w < config.grid:
        raise ValueError(f"bi_woof: flow of shape {u.shape} is smaller than the {config.grid}x{config.grid} grid")

    magnitude = np.hypot(u, v)
    bins = orientation_bins(u, v, config.n_bins)
    rows = block_bounds(h, config.grid, config.block_margin)
    cols = block_bounds(w, config.grid, config.block_margin)
    feature = np.zeros((config.grid, config.grid, config.n_bins))
    for i, (r0, r1) in enumerate(rows):
        for j, (c0, c1) in enumerate(cols):
            hist = np.bincount(bins[r0:r1, c0:c1].ravel(), weights=magnitude[r0:r1, c0:c1].ravel(),
                               minlength=config.n_bins)
            total = hist.sum()
            if total > 0:
                feature[i, j] = hist / total * strain[r0:r1, c0:c1].sum()
    feature = feature.ravel()
    norm = np.linalg.norm(feature)
    return feature / norm if norm > 0 else feature
