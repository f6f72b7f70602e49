"""LBP-TOP: agreement with scikit-image on XY, with a slow per-pixel reference on all planes, known answers."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
from skimage.feature import local_binary_pattern

from baselines.lbptop import (
    MEGC_CONFIG,
    OULU_CONFIG,
    PLANES,
    LBPTOPConfig,
    lbp_top,
    lbp_top_codes,
    n_u2_bins,
    u2_labels,
)


def _cfg(**kw) -> LBPTOPConfig:
    base = dict(radius_x=1.0, radius_y=1.0, radius_t=1.0, points_xy=8, points_xt=8, points_yt=8,
                blocks_x=1, blocks_y=1)
    base.update(kw)
    return LBPTOPConfig(**base)


# ---------------------------------------------------------------------------------------------- u2 mapping
@pytest.mark.parametrize("p", [4, 8])
def test_u2_mapping_is_a_bijection_on_uniform_patterns(p: int) -> None:
    codes = np.arange(2**p)
    bits = ((codes[None, :] >> np.arange(p)[:, None]) & 1).astype(bool)
    labels = u2_labels(bits)
    circular = np.array([sum(bits[i, c] != bits[(i + 1) % p, c] for i in range(p)) for c in codes])
    uniform = circular <= 2
    assert uniform.sum() == p * (p - 1) + 2  # 58 for P = 8
    assert sorted(labels[uniform]) == list(range(p * (p - 1) + 2))  # distinct labels 0..P(P-1)+1
    assert set(labels[~uniform]) == {p * (p - 1) + 2}
    assert n_u2_bins(p) == p * (p - 1) + 3
    assert labels[0] == 0 and labels[2**p - 1] == p * (p - 1) + 1


# --------------------------------------------------------------------------------- agreement with skimage
def _skimage_nri(image: np.ndarray, p: int, r: float) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skimage warns on float images
        return local_binary_pattern(image, p, r, "nri_uniform")


@pytest.mark.parametrize("p, r", [(8, 1.0), (8, 2.0), (4, 1.0), (8, 1.5)])
@pytest.mark.parametrize("levels", [256, 3])  # 3 grey levels: many exact ties between sample and centre
def test_xy_codes_equal_skimage_nri_uniform(p: int, r: float, levels: int) -> None:
    rng = np.random.default_rng(p * 100 + int(r * 10) + levels)
    vol = rng.integers(0, levels, size=(3, 31, 29)).astype(np.uint8)
    cfg = _cfg(radius_x=r, radius_y=r, points_xy=p)
    codes = lbp_top_codes(vol, cfg)["xy"]
    b = cfg.border_space
    expected = _skimage_nri(vol[1], p, r)[b:-b, b:-b]
    np.testing.assert_array_equal(codes[0], expected)


def test_xy_histogram_is_the_59_bin_histogram_of_skimage_codes() -> None:
    vol = np.random.default_rng(5).integers(0, 256, size=(3, 30, 30)).astype(np.uint8)
    feat = lbp_top(vol, _cfg())  # one block; Rt = 1 and 3 frames: the middle frame is the only centre frame
    ref = _skimage_nri(vol[1], 8, 1.0)[1:-1, 1:-1].astype(np.int64)
    np.testing.assert_allclose(feat[:59], np.bincount(ref.ravel(), minlength=59) / ref.size, atol=1e-15)


def test_xy_codes_equal_skimage_on_float_volume() -> None:
    vol = np.random.default_rng(7).random((3, 24, 26))
    codes = lbp_top_codes(vol, _cfg())["xy"]
    np.testing.assert_array_equal(codes[0], _skimage_nri(vol[1], 8, 1.0)[1:-1, 1:-1])


# ------------------------------------------------------------------------------- slow per-pixel reference
def _ref_offsets(plane: str, rx: float, ry: float, rt: float, p: int) -> list[tuple[float, float, float]]:
    out = []
    for k in range(p):
        a = 2 * math.pi * k / p
        if plane == "xy":
            d = (0.0, -ry * math.sin(a), rx * math.cos(a))
        elif plane == "xt":
            d = (rt * math.sin(a), 0.0, rx * math.cos(a))
        else:
            d = (rt * math.cos(a), -ry * math.sin(a), 0.0)
        out.append(tuple(round(v, 5) + 0.0 for v in d))
    return out


_AXES = {"xy": (1, 2), "xt": (0, 2), "yt": (0, 1)}  # (row, column) axes of the bilinear step


def _ref_value(vol: np.ndarray, centre: tuple[int, int, int], d: tuple[float, float, float], plane: str,
               interpolation: str) -> float:
    pos = [centre[a] + d[a] for a in range(3)]
    if interpolation == "nearest":
        return float(vol[tuple(int(math.floor(pos[a] + 0.5)) for a in range(3))])
    ra, ca = _AXES[plane]

    def at(rr: int, cc: int) -> float:
        idx = list(centre)
        idx[ra], idx[ca] = rr, cc
        return float(vol[tuple(idx)])

    r, c = pos[ra], pos[ca]
    r0, r1, c0, c1 = math.floor(r), math.ceil(r), math.floor(c), math.ceil(c)
    dr, dc = r - r0, c - c0
    top = (1 - dc) * at(r0, c0) + dc * at(r0, c1)
    bottom = (1 - dc) * at(r1, c0) + dc * at(r1, c1)
    return (1 - dr) * top + dr * bottom


def _ref_label(bits: list[int]) -> int:
    p = len(bits)
    if sum(bits[i] != bits[(i + 1) % p] for i in range(p)) > 2:
        return p * (p - 1) + 2
    n = sum(bits)
    if n == 0:
        return 0
    if n == p:
        return p * (p - 1) + 1
    first_one, first_zero = bits.index(1), bits.index(0)
    rot = n - first_zero if first_one == 0 else p - first_one
    return 1 + (n - 1) * p + rot


def _reference_feature(vol: np.ndarray, cfg: LBPTOPConfig) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-pixel loops: codes of every centre voxel, then block histograms (L1 per block-plane)."""
    vol = vol.astype(np.float64)
    t, h, w = vol.shape
    bt = math.ceil(cfg.radius_t)
    bs = math.ceil(max(cfg.radius_x, cfg.radius_y))
    points = {"xy": cfg.points_xy, "xt": cfg.points_xt, "yt": cfg.points_yt}
    codes = {pl: np.zeros((t - 2 * bt, h - 2 * bs, w - 2 * bs), dtype=np.int64) for pl in PLANES}
    for pl in PLANES:
        offs = _ref_offsets(pl, cfg.radius_x, cfg.radius_y, cfg.radius_t, points[pl])
        for i in range(bt, t - bt):
            for j in range(bs, h - bs):
                for k in range(bs, w - bs):
                    c = vol[i, j, k]
                    bits = [int(_ref_value(vol, (i, j, k), d, pl, cfg.interpolation) >= c) for d in offs]
                    codes[pl][i - bt, j - bs, k - bs] = _ref_label(bits)
    ct, ch, cw = codes["xy"].shape
    hist = []
    for bti in range(cfg.blocks_t):
        for byi in range(cfg.blocks_y):
            for bxi in range(cfg.blocks_x):
                for pl in PLANES:
                    nb = n_u2_bins(points[pl])
                    counts = np.zeros(nb)
                    for i in range(ct):
                        for j in range(ch):
                            for k in range(cw):
                                blk = (min(i // (ct // cfg.blocks_t), cfg.blocks_t - 1),
                                       min(j // (ch // cfg.blocks_y), cfg.blocks_y - 1),
                                       min(k // (cw // cfg.blocks_x), cfg.blocks_x - 1))
                                if blk == (bti, byi, bxi):
                                    counts[codes[pl][i, j, k]] += 1
                    hist.append(counts / counts.sum())
    return codes, np.concatenate(hist)


@pytest.mark.parametrize("p", [8, 4, 17])  # 17: above the u2 lookup table (P <= 16)
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_matches_per_pixel_reference_with_unequal_radii(p: int, interpolation: str) -> None:
    cfg = LBPTOPConfig(radius_x=1.0, radius_y=2.0, radius_t=3.0, points_xy=p, points_xt=p, points_yt=p,
                       blocks_x=2, blocks_y=3, blocks_t=1, interpolation=interpolation)
    rng = np.random.default_rng(p)
    for vol in (rng.integers(0, 256, size=(8, 13, 11)).astype(np.uint8),
                rng.integers(0, 3, size=(8, 13, 11)).astype(np.uint8),  # ties
                rng.random((8, 13, 11))):
        ref_codes, ref_feature = _reference_feature(vol, cfg)
        codes = lbp_top_codes(vol, cfg)
        for pl in PLANES:
            np.testing.assert_array_equal(codes[pl], ref_codes[pl], err_msg=pl)
        np.testing.assert_allclose(lbp_top(vol, cfg), ref_feature, rtol=0, atol=1e-12)


# ------------------------------------------------------------------------------------------ known answers
def test_ramp_along_x_gives_hand_computed_labels() -> None:
    # V(t, y, x) = x. XY and XT: neighbours with cos > 0 are larger, cos = 0 equal (bit 1), cos < 0 smaller:
    # bits p=0..7 = 1,1,1,0,0,0,1,1 -> n_ones 5, first_zero 3, rotation 5-3 = 2, label 1 + 4*8 + 2 = 35.
    # YT: every neighbour has the centre's x, all bits 1 -> label P*(P-1)+1 = 57.
    vol = np.broadcast_to(np.arange(20, dtype=np.float64), (7, 15, 20)).copy()
    codes = lbp_top_codes(vol, _cfg(radius_x=2.0, radius_y=1.0, radius_t=2.0))
    assert (codes["xy"] == 35).all() and (codes["xt"] == 35).all() and (codes["yt"] == 57).all()


def test_constant_volume_histograms_are_one_hot_on_all_ones_label() -> None:
    cfg = LBPTOPConfig(blocks_x=3, blocks_y=2)  # MEGC radii / P = 4
    feat = lbp_top(np.full((9, 20, 22), 17, dtype=np.uint8), cfg)
    hists = feat.reshape(cfg.n_blocks * 3, n_u2_bins(4))
    assert np.all(hists[:, 4 * 3 + 1] == 1.0) and hists.sum() == cfg.n_blocks * 3


def test_feature_length_and_normalisation() -> None:
    vol = np.random.default_rng(1).integers(0, 256, size=(12, 40, 36)).astype(np.uint8)
    for cfg in (MEGC_CONFIG, OULU_CONFIG):
        feat = lbp_top(vol, cfg)
        bins = n_u2_bins(cfg.points_xy)
        assert feat.shape == (cfg.blocks_x * cfg.blocks_y * 3 * bins,) == (cfg.feature_length,)
        np.testing.assert_allclose(feat.reshape(-1, bins).sum(axis=1), 1.0)  # L1 per block-plane
    assert MEGC_CONFIG.feature_length == 5 * 5 * 3 * 15 and OULU_CONFIG.feature_length == 8 * 8 * 3 * 59
    glob = lbp_top(vol, dataclasses.replace(MEGC_CONFIG, normalisation="global"))
    np.testing.assert_allclose(glob.sum(), 1.0)
    segments = glob.reshape(-1, n_u2_bins(4))  # same counts, only the normalisation differs
    np.testing.assert_allclose(segments / segments.sum(axis=1, keepdims=True),
                               lbp_top(vol, MEGC_CONFIG).reshape(-1, n_u2_bins(4)), atol=1e-12)


def test_unequal_points_per_plane_and_basic_mapping() -> None:
    vol = np.random.default_rng(2).integers(0, 256, size=(7, 20, 20)).astype(np.uint8)
    cfg = _cfg(points_xy=8, points_xt=4, points_yt=6, blocks_x=2, blocks_y=2)
    assert lbp_top(vol, cfg).shape == (4 * (59 + 15 + 33),)
    basic = dataclasses.replace(cfg, mapping="none")
    codes = lbp_top_codes(vol, basic)
    assert codes["xy"].max() < 256 and codes["xt"].max() < 16 and lbp_top(vol, basic).shape == (4 * (256 + 16 + 64),)


def test_deterministic() -> None:
    vol = np.random.default_rng(3).integers(0, 256, size=(10, 32, 32)).astype(np.uint8)
    np.testing.assert_array_equal(lbp_top(vol, OULU_CONFIG), lbp_top(vol.copy(), OULU_CONFIG))


# ----------------------------------------------------------------------------------------------- errors
def test_bad_input_is_rejected_with_clear_errors() -> None:
    with pytest.raises(ValueError, match="T \\(frames\\)"):
        lbp_top(np.zeros((8, 30, 30)), MEGC_CONFIG)  # Rt = 4 needs >= 9 frames
    with pytest.raises(ValueError, match="\\(T, H, W\\)"):
        lbp_top(np.zeros((30, 30)), MEGC_CONFIG)
    with pytest.raises(ValueError, match="NaN"):
        lbp_top(np.full((9, 30, 30), np.nan), MEGC_CONFIG)
    with pytest.raises(ValueError, match="points_xy"):
        LBPTOPConfig(points_xy=1)
    with pytest.raises(ValueError, match="radius_t"):
        LBPTOPConfig(radius_t=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        MEGC_CONFIG.blocks_x = 3  # type: ignore[misc]
