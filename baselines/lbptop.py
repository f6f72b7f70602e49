"""LBP-TOP: local binary patterns on three orthogonal planes (Zhao & Pietikäinen 2007; Pfister et al. 2011).

A grey volume ``(T, H, W)`` is described by LBP codes computed on the XY, XT and YT planes through every
centre voxel, histogrammed per block of a ``blocks_t x blocks_y x blocks_x`` grid and concatenated. The
handcrafted baseline classifies these features with a linear SVM (``baselines/svm.py``).

Sources checked (read with the search tool; no code copied):

- Zhao & Pietikäinen's MATLAB ``LBPTOP.m`` (Copyright 2009, MATLAB version by Xiaohua Huang), read in the
  copy ``iwawiwi/dip-advanced-final-project`` ``LBPTOP.m`` (commit 44a1e14a543fa6a571861591d6109598c57b4718;
  signature ``LBPTOP(VolData, FxRadius, FyRadius, TInterval, NeighborPoints, TimeLength, BorderLength,
  bBilinearInterpolation, Bincount, Code)``): neighbour ``p`` of P
  on the XY plane at ``(x + Rx cos(2 pi p/P), y - Ry sin(2 pi p/P))``, on XT at ``(x + Rx cos, t + Rt sin)``,
  on YT at ``(y - Ry sin, t + Rt cos)``; bit ``p`` has weight ``2**p`` and is set when ``neighbour >=
  centre``; centres skip a border of ``BorderLength`` pixels (usually ``max(Rx, Ry)``) and ``TimeLength``
  frames (usually ``Rt``); optional bilinear interpolation; each plane's histogram is L1-normalised.
- Huang's block version of the same code (``LBPTOP(VolData, ..., rows, cols, timePart, overatio,
  mappingtype)``, "original C++ version by Dr. Zhao"): codes are computed once on the whole volume, each
  centre voxel votes in the block that contains it; blocks tile the region inside the border, block size
  ``floor(len / n)``, the last block takes the remainder; histograms are laid out block by block, planes
  XY, XT, YT inside a block. That code L1-normalises the *whole* vector; we normalise each block-plane
  histogram (``normalisation="block_plane"``, the per-plane rule of ``LBPTOP.m`` applied per block) and
  keep the whole-vector rule as ``normalisation="global"``.
- scikit-image ``skimage/feature/_texture.pyx`` (``_local_binary_pattern``) and
  ``skimage/_shared/interpolation.pxd`` (``bilinear_interpolation``): same XY sampling convention;
  neighbour offsets rounded to 5 decimals; bilinear value ``(1-dr)*((1-dc)*tl + dc*tr) + dr*((1-dc)*bl +
  dc*br)`` with ``dr, dc`` the fractional parts of the absolute sample position; the ``nri_uniform`` label
  (non-rotation-invariant uniform, ``P*(P-1)+3`` labels, 59 for P=8). We use exactly this arithmetic and
  this label numbering for the u2 mapping, so the XY codes equal skimage's ``nri_uniform`` output
  (tested). The u2 labels are a permutation of the ``getmapping(P, 'u2')`` labels of the MATLAB code, so
  the histograms carry the same information.
- MEGC 2019 group's LBP-TOP evaluation script, ``IcedDoggie/ME_Autoencoders`` ``lbptop_baseline.py`` (commit
  3dcc5866b7ae9e9affb0b15386b332ca85e24f48):
  features named ``lbptopR114_N4_noTIM`` (radii (1, 1, 4), 4 neighbours, no TIM) classified by
  ``SVC(kernel='linear', C=10000)``. The 5 x 5 block grid of the MEGC setting comes from the project issue
  (MEGC 2019 baseline description), not from a file we could read.

Decisions where the sources differ or are silent (all exposed as config fields):

- Sampling: bilinear (``interpolation="bilinear"``, the flag of ``LBPTOP.m``) or nearest
  (``"nearest"``: ``floor(offset + 0.5)``, the MATLAB default). The MATLAB bilinear branch floors the
  interpolated value; for integer-valued volumes this never changes ``value >= centre`` (the centre is an
  integer) and for float volumes (e.g. after TIM) we compare the unfloored value, as skimage does.
- Interpolation order per plane (it only decides exact sample == centre ties, e.g. in flat regions, where
  rounding of ``(1-d)*a + d*a`` can land either side of ``a``): columns first then rows, as in skimage, with
  (row, column) axes (y, x) on XY, (t, x) on XT and (t, y) on YT.
- Border: ``ceil(max(Rx, Ry))`` pixels in space, ``ceil(Rt)`` frames in time (the MATLAB defaults).
- TIM: ``n_frames`` is the frame count the *harness* resamples each clip to (``benchmarks/data/tim.py``)
  before calling :func:`lbp_top`; ``None`` means no TIM (the MEGC 2019 setting). This module never resamples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np

Plane = Literal["xy", "xt", "yt"]
PLANES: tuple[Plane, ...] = ("xy", "xt", "yt")

# (row axis, column axis) of the bilinear interpolation on each plane; axes of the volume are (t, y, x).
_PLANE_AXES: dict[str, tuple[int, int]] = {"xy": (1, 2), "xt": (0, 2), "yt": (0, 1)}


@dataclass(frozen=True)
class LBPTOPConfig:
    """LBP-TOP hyperparameters. Defaults: the MEGC 2019 baseline (R = (1, 1, 4), P = 4, 5 x 5 blocks, no TIM).

    ``OULU_CONFIG`` below holds the Oulu-style setting (R = (3, 3, 3), P = 8, 8 x 8 blocks, TIM 10).
    """

    radius_x: float = 1.0  # Rx, MEGC 2019 (lbptop_baseline.py: "R114")
    radius_y: float = 1.0  # Ry
    radius_t: float = 4.0  # Rt
    points_xy: int = 4  # P on XY, MEGC 2019 ("N4")
    points_xt: int = 4  # P on XT
    points_yt: int = 4  # P on YT
    blocks_x: int = 5  # block grid columns (issue: MEGC 5 x 5)
    blocks_y: int = 5  # block grid rows
    blocks_t: int = 1  # temporal blocks (1 in both reference settings)
    mapping: Literal["u2", "none"] = "u2"  # u2: P*(P-1)+3 bins (59 for P=8); none: 2**P bins
    interpolation: Literal["bilinear", "nearest"] = "bilinear"
    normalisation: Literal["block_plane", "global"] = "block_plane"  # L1 per block-plane histogram
    n_frames: int | None = None  # TIM target length, applied by the harness; None = no TIM (MEGC 2019)
    svm_c: float = 10000.0  # linear SVM C of the MEGC 2019 script (lbptop_baseline.py)

    def __post_init__(self) -> None:
        for name in ("radius_x", "radius_y", "radius_t"):
            r = getattr(self, name)
            if not (isinstance(r, int | float) and math.isfinite(r) and r > 0):
                raise ValueError(f"LBPTOPConfig.{name} must be a positive finite number, got {r!r}")
        for name in ("points_xy", "points_xt", "points_yt"):
            p = getattr(self, name)
            if not (isinstance(p, int) and 2 <= p <= 24):
                raise ValueError(f"LBPTOPConfig.{name} must be an int in [2, 24], got {p!r}")
            if self.mapping == "none" and p > 16:
                raise ValueError(f"LBPTOPConfig.{name}={p}: mapping 'none' (2**P bins) allows P <= 16")
        for name in ("blocks_x", "blocks_y", "blocks_t"):
            b = getattr(self, name)
            if not (isinstance(b, int) and b >= 1):
                raise ValueError(f"LBPTOPConfig.{name} must be an int >= 1, got {b!r}")
        if self.mapping not in ("u2", "none"):
            raise ValueError(f"LBPTOPConfig.mapping must be 'u2' or 'none', got {self.mapping!r}")
        if self.interpolation not in ("bilinear", "nearest"):
            raise ValueError(f"LBPTOPConfig.interpolation must be 'bilinear'|'nearest', got {self.interpolation!r}")
        if self.normalisation not in ("block_plane", "global"):
            raise ValueError(f"LBPTOPConfig.normalisation must be 'block_plane'|'global', got {self.normalisation!r}")
        if self.n_frames is not None and not (isinstance(self.n_frames, int) and self.n_frames >= 1):
            raise ValueError(f"LBPTOPConfig.n_frames must be None or an int >= 1, got {self.n_frames!r}")
        if not self.svm_c > 0:
            raise ValueError(f"LBPTOPConfig.svm_c must be > 0, got {self.svm_c!r}")

    def points(self, plane: Plane) -> int:
        return {"xy": self.points_xy, "xt": self.points_xt, "yt": self.points_yt}[plane]

    def n_bins(self, plane: Plane) -> int:
        """Histogram length of one block on ``plane``."""
        p = self.points(plane)
        return n_u2_bins(p) if self.mapping == "u2" else 2**p

    @property
    def n_blocks(self) -> int:
        return self.blocks_t * self.blocks_y * self.blocks_x

    @property
    def feature_length(self) -> int:
        """``n_blocks * (bins_xy + bins_xt + bins_yt)``; with equal P: blocks_x*blocks_y*blocks_t*3*bins."""
        return self.n_blocks * sum(self.n_bins(p) for p in PLANES)

    @property
    def border_space(self) -> int:
        return math.ceil(max(self.radius_x, self.radius_y))

    @property
    def border_time(self) -> int:
        return math.ceil(self.radius_t)


MEGC_CONFIG = LBPTOPConfig()
OULU_CONFIG = LBPTOPConfig(
    radius_x=3.0, radius_y=3.0, radius_t=3.0, points_xy=8, points_xt=8, points_yt=8,
    blocks_x=8, blocks_y=8, n_frames=10,
)


def n_u2_bins(points: int) -> int:
    """Number of u2 labels for P neighbours: P*(P-1) rotated uniform patterns, all-0, all-1, non-uniform."""
    return points * (points - 1) + 3


def neighbour_offsets(plane: Plane, config: LBPTOPConfig) -> np.ndarray:
    """``(P, 3)`` offsets ``(dt, dy, dx)`` of the P neighbours on ``plane``, rounded to 5 decimals (skimage)."""
    p = config.points(plane)
    angle = 2.0 * np.pi * np.arange(p, dtype=np.float64) / p
    zero = np.zeros(p)
    if plane == "xy":
        off = (zero, -config.radius_y * np.sin(angle), config.radius_x * np.cos(angle))
    elif plane == "xt":
        off = (config.radius_t * np.sin(angle), zero, config.radius_x * np.cos(angle))
    elif plane == "yt":
        off = (config.radius_t * np.cos(angle), -config.radius_y * np.sin(angle), zero)
    else:
        raise ValueError(f"plane must be one of {PLANES}, got {plane!r}")
    return np.round(np.stack(off, axis=1), 5) + 0.0  # + 0.0 turns -0.0 into 0.0


def u2_labels(bits: np.ndarray) -> np.ndarray:
    """u2 label of each pattern; ``bits`` is ``(P, ...)`` bool (bit p = neighbour p >= centre).

    Numbering of scikit-image's ``nri_uniform``: 0 = all zeros, ``P*(P-1)+1`` = all ones,
    ``1 + (n_ones-1)*P + rotation`` for the other uniform patterns, ``P*(P-1)+2`` for non-uniform ones.
    A pattern is uniform when its circular bit string has at most two 0/1 transitions (equivalently at most
    two transitions among bits 0..P-1 read linearly, skimage's test).
    """
    b = np.asarray(bits, dtype=np.int8)
    p = b.shape[0]
    n_ones = b.sum(axis=0, dtype=np.int64)
    changes = np.abs(np.diff(b, axis=0)).sum(axis=0, dtype=np.int64)
    first_one = np.argmax(b, axis=0)
    first_zero = np.argmax(1 - b, axis=0)
    rot = np.where(first_one == 0, n_ones - first_zero, p - first_one)
    label = 1 + (n_ones - 1) * p + rot
    label = np.where(n_ones == 0, 0, label)
    label = np.where(n_ones == p, p * (p - 1) + 1, label)
    return np.where(changes > 2, p * (p - 1) + 2, label).astype(np.int64)


_LUT_MAX_POINTS = 16  # 2**16 labels: a 512 KiB table; above this the codes are mapped by u2_labels directly


@cache
def u2_table(points: int) -> np.ndarray:
    """u2 label of every basic code ``0..2**points-1`` (bit p = neighbour p), read-only int64 (a lookup table)."""
    codes = np.arange(2**points, dtype=np.int64)
    table = u2_labels((codes[None, :] >> np.arange(points)[:, None]) & 1)
    table.flags.writeable = False
    return table


def _validate_volume(volume: np.ndarray, config: LBPTOPConfig) -> np.ndarray:
    vol = np.asarray(volume)
    if vol.ndim != 3:
        raise ValueError(f"lbp_top: volume must be (T, H, W) grayscale, got shape {vol.shape}")
    if not (np.issubdtype(vol.dtype, np.integer) or np.issubdtype(vol.dtype, np.floating)):
        raise TypeError(f"lbp_top: volume must be integer or float, got dtype {vol.dtype}")
    vol = vol.astype(np.float64)
    if not np.isfinite(vol).all():
        raise ValueError("lbp_top: volume contains NaN or inf")
    t, h, w = vol.shape
    bt, bs = config.border_time, config.border_space
    need = {
        "T (frames)": (t, 2 * bt + config.blocks_t, f"2*ceil(radius_t)+blocks_t = {2 * bt}+{config.blocks_t}"),
        "H (rows)": (h, 2 * bs + config.blocks_y, f"2*ceil(max(Rx,Ry))+blocks_y = {2 * bs}+{config.blocks_y}"),
        "W (cols)": (w, 2 * bs + config.blocks_x, f"2*ceil(max(Rx,Ry))+blocks_x = {2 * bs}+{config.blocks_x}"),
    }
    for axis, (have, minimum, why) in need.items():
        if have < minimum:
            raise ValueError(f"lbp_top: volume {axis} = {have} is too small; need >= {minimum} ({why})")
    return vol


def _sample(vol: np.ndarray, offset: np.ndarray, plane: Plane, lo: tuple[int, ...], hi: tuple[int, ...],
            interpolation: str) -> np.ndarray:
    """Values at ``centre + offset`` for every centre in the box ``[lo, hi)`` (vectorised over centres)."""

    def view(shift: tuple[int, int, int]) -> np.ndarray:
        return vol[tuple(slice(lo[a] + shift[a], hi[a] + shift[a]) for a in range(3))]

    if interpolation == "nearest":
        return view(tuple(int(math.floor(offset[a] + 0.5)) for a in range(3)))

    ra, ca = _PLANE_AXES[plane]
    floor_off = [int(math.floor(offset[a])) for a in range(3)]
    ceil_off = [int(math.ceil(offset[a])) for a in range(3)]

    def frac(axis: int) -> np.ndarray | None:
        # fractional part of the absolute position, as skimage computes it (r + rp - floor(r + rp)); None when
        # the offset is an integer: the fraction is then exactly 0 and (1 - 0) * a + 0 * b == a, so skip it
        if floor_off[axis] == ceil_off[axis]:
            return None
        pos = np.arange(lo[axis], hi[axis], dtype=np.float64) + offset[axis]
        shape = [1, 1, 1]
        shape[axis] = -1
        return (pos - np.floor(pos)).reshape(shape)

    def corner(r_off: int, c_off: int) -> np.ndarray:
        shift = [floor_off[0], floor_off[1], floor_off[2]]  # the third axis has offset 0
        shift[ra], shift[ca] = r_off, c_off
        return view((shift[0], shift[1], shift[2]))

    def row(r_off: int) -> np.ndarray:  # interpolate along columns first, as skimage
        left = corner(r_off, floor_off[ca])
        return left if dc is None else (1 - dc) * left + dc * corner(r_off, ceil_off[ca])

    dr, dc = frac(ra), frac(ca)
    top = row(floor_off[ra])
    return top if dr is None else (1 - dr) * top + dr * row(ceil_off[ra])


def centre_box(shape: tuple[int, int, int], config: LBPTOPConfig) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(lo, hi)`` corners of the centre voxels: everything but the temporal and spatial borders."""
    t, h, w = shape
    bt, bs = config.border_time, config.border_space
    return (bt, bs, bs), (t - bt, h - bs, w - bs)


def lbp_top_codes(volume: np.ndarray, config: LBPTOPConfig = MEGC_CONFIG) -> dict[str, np.ndarray]:
    """Per-plane labels (u2 or basic codes) of every centre voxel, each array shaped like the centre box.

    Centre voxel ``(i, j, k)`` of an output array is voxel ``(i + border_time, j + border_space, k +
    border_space)`` of ``volume``.
    """
    vol = _validate_volume(volume, config)
    lo, hi = centre_box(vol.shape, config)
    return {plane: plane_codes(vol, plane, config, lo, hi) for plane in PLANES}


def plane_codes(vol: np.ndarray, plane: Plane, config: LBPTOPConfig, lo: tuple[int, ...],
                hi: tuple[int, ...]) -> np.ndarray:
    """Labels on one ``plane`` of every centre voxel in the box ``[lo, hi)`` of a float64 volume (unchecked).

    Every neighbour of a centre in the box must lie inside ``vol``; :func:`lbp_top_codes` validates the volume
    and passes :func:`centre_box`. On ``"xy"`` a single image is ``vol = image[None]`` with ``lo = (0, b, b)``.
    """
    centre = vol[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    offsets = neighbour_offsets(plane, config)
    code = np.zeros(centre.shape, dtype=np.int64)  # basic code: sum of 2**p over the set bits
    for p, off in enumerate(offsets):
        code |= (_sample(vol, off, plane, lo, hi, config.interpolation) >= centre).astype(np.int64) << p
    if config.mapping == "none":
        return code
    if len(offsets) <= _LUT_MAX_POINTS:
        return u2_table(len(offsets))[code]
    return u2_labels((code[None] >> np.arange(len(offsets)).reshape(-1, 1, 1, 1)) & 1)


def _block_index(length: int, n_blocks: int) -> np.ndarray:
    """Block of each position 0..length-1: size ``length // n``, the last block takes the remainder."""
    size = length // n_blocks
    return np.minimum(np.arange(length) // size, n_blocks - 1)


def lbp_top(volume: np.ndarray, config: LBPTOPConfig = MEGC_CONFIG) -> np.ndarray:
    """LBP-TOP feature vector (float64, length ``config.feature_length``) of a grey volume ``(T, H, W)``.

    Layout: blocks in (t, y, x) row-major order; inside a block the XY, XT, YT histograms. ``volume`` must
    already have ``config.n_frames`` frames when TIM is used (the harness resamples).
    """
    codes = lbp_top_codes(volume, config)
    shape = codes["xy"].shape
    bt = _block_index(shape[0], config.blocks_t)
    by = _block_index(shape[1], config.blocks_y)
    bx = _block_index(shape[2], config.blocks_x)
    block = (bt[:, None, None] * config.blocks_y + by[None, :, None]) * config.blocks_x + bx[None, None, :]
    hists = []
    for plane in PLANES:
        nb = config.n_bins(plane)
        flat = (block * nb + codes[plane]).ravel()
        h = np.bincount(flat, minlength=config.n_blocks * nb).reshape(config.n_blocks, nb).astype(np.float64)
        if config.normalisation == "block_plane":
            h /= h.sum(axis=1, keepdims=True)  # every block holds >= 1 centre (checked in _validate_volume)
        hists.append(h)
    feature = np.concatenate(hists, axis=1).ravel()
    if config.normalisation == "global":
        feature /= feature.sum()
    return feature
