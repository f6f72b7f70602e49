"""Bi-WOOF on synthetic flow fields with known orientation and strain; the shared linear SVM factory."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from baselines.biwoof import BiWOOFConfig, bi_woof, block_bounds, orientation_bins
from baselines.svm import linear_svm
from benchmarks.methods.biwoof import HarnessBiWOOFConfig, center_minmax

CFG = BiWOOFConfig()  # 5 x 5 blocks, 8 bins


def _flow_in_block(u: np.ndarray, v: np.ndarray, rows: slice, cols: slice, angle_deg: float, mag: float) -> None:
    u[rows, cols] = mag * np.cos(np.deg2rad(angle_deg))
    v[rows, cols] = mag * np.sin(np.deg2rad(angle_deg))


def test_uniform_flow_in_one_block_is_one_bin_of_that_block() -> None:
    # 50 x 50, 5 x 5 grid of 10 x 10 blocks; flow at 45 degrees in block (row 1, col 2).
    # Bins of width 45 degrees over [-180, 180), left-closed: 45 degrees is the start of bin 5.
    u, v, strain = np.zeros((50, 50)), np.zeros((50, 50)), np.ones((50, 50))
    _flow_in_block(u, v, slice(10, 20), slice(20, 30), 45.0, 2.0)
    feat = bi_woof(u, v, strain, CFG)
    assert feat.shape == (200,) == (CFG.feature_length,)
    expected = np.zeros(200)
    expected[(1 * 5 + 2) * 8 + 5] = 1.0
    np.testing.assert_allclose(feat, expected, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(feat), 1.0)


@pytest.mark.parametrize("angle, bin_", [(-170.0, 0), (-100.0, 1), (-60.0, 2), (-10.0, 3), (10.0, 4),
                                         (60.0, 5), (100.0, 6), (170.0, 7), (180.0, 0), (-180.0, 0)])
def test_orientation_bins(angle: float, bin_: int) -> None:
    u, v = np.array([np.cos(np.deg2rad(angle))]), np.array([np.sin(np.deg2rad(angle))])
    if angle == 180.0:
        u, v = np.array([-1.0]), np.array([0.0])  # atan2(0, -1) = +pi exactly: wraps to the first bin
    assert orientation_bins(u, v, 8)[0] == bin_


def test_block_with_zero_strain_contributes_zero() -> None:
    u, v, strain = np.zeros((50, 50)), np.zeros((50, 50)), np.ones((50, 50))
    _flow_in_block(u, v, slice(0, 10), slice(0, 10), 100.0, 1.0)  # block 0, bin 6
    _flow_in_block(u, v, slice(40, 50), slice(40, 50), -10.0, 1.0)  # block 24, bin 3
    strain[40:50, 40:50] = 0.0
    feat = bi_woof(u, v, strain, CFG)
    expected = np.zeros(200)
    expected[0 * 8 + 6] = 1.0
    np.testing.assert_allclose(feat, expected, atol=1e-12)


def test_global_weight_is_the_strain_sum_and_histograms_are_normalised_first() -> None:
    # 12 x 12 with a 5 x 5 grid: block size 2, the last row/column of blocks takes 4 (2 + remainder 2).
    # Block (0, 0) has 2x2 = 4 pixels, block (4, 4) has 4x4 = 16; unit strain -> weights 4 and 16 (a mean
    # would give 1 and 1). Magnitudes 10 vs 1 must not matter: each block histogram is normalised first.
    u, v, strain = np.zeros((12, 12)), np.zeros((12, 12)), np.ones((12, 12))
    _flow_in_block(u, v, slice(0, 2), slice(0, 2), 60.0, 10.0)  # bin 5
    _flow_in_block(u, v, slice(8, 12), slice(8, 12), 60.0, 1.0)
    feat = bi_woof(u, v, strain, CFG)
    expected = np.zeros(200)
    expected[0 * 8 + 5], expected[24 * 8 + 5] = 4.0, 16.0
    np.testing.assert_allclose(feat, expected / np.linalg.norm(expected), atol=1e-12)


def test_magnitude_weighted_votes_inside_a_block() -> None:
    # One 10 x 10 block: left half at -100 degrees (bin 1) magnitude 1, right half at 170 (bin 7) magnitude 3.
    # Block histogram after normalisation: bin 1 = 50/(50+150) = 0.25, bin 7 = 0.75; strain 2 per pixel -> x200.
    u, v, strain = np.zeros((50, 50)), np.zeros((50, 50)), np.full((50, 50), 2.0)
    _flow_in_block(u, v, slice(20, 30), slice(20, 25), -100.0, 1.0)
    _flow_in_block(u, v, slice(20, 30), slice(25, 30), 170.0, 3.0)
    feat = bi_woof(u, v, strain, CFG)
    expected = np.zeros(200)
    expected[12 * 8 + 1], expected[12 * 8 + 7] = 0.25 * 200, 0.75 * 200
    np.testing.assert_allclose(feat, expected / np.linalg.norm(expected), atol=1e-12)


def test_block_bounds_reproduce_reference_overlap_with_margin_one() -> None:
    # biwoof.m (1-based, inclusive) for 25 rows, 5 blocks, h = 5: 1..6, 5..11, 10..16, 15..21, 20..25.
    assert block_bounds(25, 5, 1) == [(0, 6), (4, 11), (9, 16), (14, 21), (19, 25)]
    assert block_bounds(25, 5, 0) == [(0, 5), (5, 10), (10, 15), (15, 20), (20, 25)]
    assert block_bounds(12, 5, 0)[-1] == (8, 12)
    u, v, strain = np.zeros((25, 25)), np.zeros((25, 25)), np.ones((25, 25))
    _flow_in_block(u, v, slice(0, 5), slice(0, 5), 10.0, 1.0)  # fills block (0, 0) exactly
    f0 = bi_woof(u, v, strain, CFG)
    f1 = bi_woof(u, v, strain, dataclasses.replace(CFG, block_margin=1))
    assert np.count_nonzero(f0) == 1
    assert np.count_nonzero(f1) == 4  # its border row/column also falls in blocks (0,1), (1,0), (1,1)


def test_zero_flow_gives_zero_vector_not_nan() -> None:
    feat = bi_woof(np.zeros((20, 20)), np.zeros((20, 20)), np.ones((20, 20)), CFG)
    assert feat.shape == (200,) and not feat.any()


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="v has shape"):
        bi_woof(np.zeros((20, 20)), np.zeros((20, 21)), np.zeros((20, 20)))
    with pytest.raises(ValueError, match="non-negative"):
        bi_woof(np.zeros((20, 20)), np.zeros((20, 20)), -np.ones((20, 20)))
    with pytest.raises(ValueError, match="smaller than"):
        bi_woof(np.zeros((4, 20)), np.zeros((4, 20)), np.zeros((4, 20)))
    with pytest.raises(ValueError, match="NaN"):
        bi_woof(np.full((20, 20), np.nan), np.zeros((20, 20)), np.zeros((20, 20)))
    with pytest.raises(ValueError, match="grid"):
        BiWOOFConfig(grid=0)


# ------------------------------------------------------------------------------------------ linear SVM
def test_linear_svm_pipeline_scales_inside_the_fit_and_separates_toy_data() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (20, 5)), rng.normal(4, 1, (20, 5))]) * 1000.0
    y = np.repeat([0, 1], 20)
    clf = linear_svm(CFG.svm_c).fit(x, y)
    assert [name for name, _ in clf.steps] == ["standardscaler", "svc"]
    svc = clf.named_steps["svc"]
    assert svc.kernel == "linear" and svc.C == 10000.0
    np.testing.assert_allclose(clf.named_steps["standardscaler"].mean_, x.mean(axis=0))  # fitted on x only
    assert (clf.predict(x) == y).all()
    assert [n for n, _ in linear_svm(1.0, standardize=False).steps] == ["svc"]
    with pytest.raises(ValueError, match="C must be"):
        linear_svm(0.0)


def test_center_minmax_recovers_the_features_of_the_signed_flow() -> None:
    # A face where most pixels do not move; u and v share one range, so min-max scaling each to 0..1 is the
    # same affine map for both and the median recovers the zero: Bi-WOOF (scale-invariant) sees the same flow.
    rng = np.random.default_rng(0)
    u, v = np.zeros((28, 28)), np.zeros((28, 28))
    _flow_in_block(u, v, slice(0, 5), slice(0, 5), 135.0, 2.0)
    _flow_in_block(u, v, slice(22, 28), slice(22, 28), -45.0, 2.0)
    strain = rng.uniform(0.1, 1.0, (28, 28))
    lo, hi = min(u.min(), v.min()), max(u.max(), v.max())
    su, sv = (u - lo) / (hi - lo), (v - lo) / (hi - lo)
    ref = bi_woof(u, v, strain, CFG)
    centred = bi_woof(center_minmax(su), center_minmax(sv), strain, CFG)
    np.testing.assert_allclose(centred, ref, atol=1e-12)
    raw = bi_woof(center_minmax(su, "none"), center_minmax(sv, "none"), strain, CFG)
    assert np.abs(raw - ref).max() > 0.1  # uncentred: every orientation in one quadrant
    assert set(np.flatnonzero(raw.reshape(-1, 8).sum(0))) <= {4, 5, 6}  # 0..90 degrees, 90 opens bin 6


def test_center_minmax_rejects_an_unknown_rule() -> None:
    with pytest.raises(ValueError, match="zero must be one of"):
        center_minmax(np.zeros((3, 3)), "mean")
    with pytest.raises(ValueError, match="minmax_zero"):
        HarnessBiWOOFConfig(minmax_zero="mean")
