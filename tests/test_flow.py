"""Flow math on fields with known answers: strain, magnitude/orientation, resizing, TV-L1."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.data import flow as F

H, W = 24, 31          # not square, so that confusing axis 0 (y) with axis 1 (x) shows


def field(u_fn, v_fn, h: int = H, w: int = W) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    return np.stack([u_fn(x, y) * np.ones((h, w)), v_fn(x, y) * np.ones((h, w))]).astype(np.float32)


# ------------------------------------------------------------------------------------------ strain
def test_translation_has_no_strain():
    f = field(lambda x, y: 1.7, lambda x, y: -0.4)
    assert np.abs(F.optical_strain(f)).max() == 0.0


def test_stretch_along_x_only_gives_eps_xx():
    a = 0.03
    exx, eyy, exy = F.strain_tensor(field(lambda x, y: a * x, lambda x, y: 0.0))
    np.testing.assert_allclose(exx, a, atol=1e-6)
    np.testing.assert_allclose(eyy, 0.0, atol=1e-12)
    np.testing.assert_allclose(exy, 0.0, atol=1e-12)
    np.testing.assert_allclose(F.optical_strain(field(lambda x, y: a * x, lambda x, y: 0.0)), a, rtol=1e-5)


def test_stretch_along_y_only_gives_eps_yy():
    c = -0.05
    exx, eyy, exy = F.strain_tensor(field(lambda x, y: 0.0, lambda x, y: c * y))
    np.testing.assert_allclose(eyy, c, atol=1e-6)
    np.testing.assert_allclose(exx, 0.0, atol=1e-12)
    np.testing.assert_allclose(exy, 0.0, atol=1e-12)


def test_pure_shear_strain_is_sqrt2_b():
    b = 0.02
    f = field(lambda x, y: b * y, lambda x, y: b * x)
    exx, eyy, exy = F.strain_tensor(f)
    np.testing.assert_allclose(exy, b, rtol=1e-5)
    np.testing.assert_allclose(exx, 0.0, atol=1e-12)
    np.testing.assert_allclose(F.optical_strain(f), np.sqrt(2) * b, rtol=1e-5)


def test_simple_shear_counts_half_the_gradient():
    # u = b*y, v = 0: eps_xy = b/2 and |eps| = sqrt(2 (b/2)^2) = b / sqrt(2)
    b = 0.04
    f = field(lambda x, y: b * y, lambda x, y: 0.0)
    np.testing.assert_allclose(F.strain_tensor(f)[2], b / 2, rtol=1e-5)
    np.testing.assert_allclose(F.optical_strain(f), b / np.sqrt(2), rtol=1e-5)


def test_rotation_has_no_strain():
    w = 0.01
    cy, cx = H / 2, W / 2
    f = field(lambda x, y: -w * (y - cy), lambda x, y: w * (x - cx))
    assert np.abs(F.optical_strain(f)).max() < 1e-7


def test_general_linear_field_matches_formula():
    # u = a x + b y, v = c x + d y: eps_xx = a, eps_yy = d, eps_xy = (b + c) / 2
    a, b, c, d = 0.01, -0.03, 0.05, 0.02
    f = field(lambda x, y: a * x + b * y, lambda x, y: c * x + d * y)
    expected = np.sqrt(a ** 2 + d ** 2 + 2 * ((b + c) / 2) ** 2)
    np.testing.assert_allclose(F.optical_strain(f), expected, rtol=1e-5)


def test_smooth_field_strain_matches_analytic_inside():
    k = 2 * np.pi / 40
    f = field(lambda x, y: np.sin(k * x), lambda x, y: np.cos(k * y))
    y, x = np.mgrid[0:H, 0:W]
    expected = np.sqrt((k * np.cos(k * x)) ** 2 + (-k * np.sin(k * y)) ** 2)
    got = F.optical_strain(f)
    # central differences are second-order accurate: error ~ k^3 / 6
    np.testing.assert_allclose(got[1:-1, 1:-1], expected[1:-1, 1:-1], atol=k ** 3 / 4)


# ------------------------------------------------------------------------------------------ mag/ori
def test_magnitude_orientation_quadrants():
    f = np.zeros((2, 1, 5), np.float32)
    f[:, 0, 0] = (3, 4)       # right and down
    f[:, 0, 1] = (-1, 0)      # left: orientation pi, not -pi
    f[:, 0, 2] = (0, 2)       # straight down (y down): +pi/2
    f[:, 0, 3] = (0, -2)      # up: -pi/2
    f[:, 0, 4] = (-1, -1)     # up-left: -3pi/4
    mo = F.magnitude_orientation(f)
    np.testing.assert_allclose(mo[0, 0], [5, 1, 2, 2, np.sqrt(2)], rtol=1e-6)
    np.testing.assert_allclose(mo[1, 0], [np.arctan2(4, 3), np.pi, np.pi / 2, -np.pi / 2, -3 * np.pi / 4],
                               rtol=1e-6)
    assert mo.dtype == np.float32 and mo.shape == (2, 1, 5)


# ------------------------------------------------------------------------------------------ resize
def test_resize_flow_scales_vectors_by_the_resize_factor():
    f = field(lambda x, y: 2.0, lambda x, y: 3.0, h=100, w=50)
    r = F.resize_flow(f, (20, 25))               # H 100 -> 20 (x0.2), W 50 -> 25 (x0.5)
    assert r.shape == (2, 20, 25) and r.dtype == np.float32
    np.testing.assert_allclose(r[0], 2.0 * 25 / 50, rtol=1e-6)
    np.testing.assert_allclose(r[1], 3.0 * 20 / 100, rtol=1e-6)
    up = F.resize_flow(f, 200)                   # enlarging: W x4, H x2
    np.testing.assert_allclose(up[0], 8.0, rtol=1e-6)
    np.testing.assert_allclose(up[1], 6.0, rtol=1e-6)


def test_resize_flow_keeps_strain_of_isotropic_linear_field():
    a = 0.02
    f = field(lambda x, y: a * x, lambda x, y: -a * y, h=112, w=112)
    small = F.resize_flow(f, 28)
    np.testing.assert_allclose(F.optical_strain(small), a * np.sqrt(2), rtol=1e-4)


def test_resize_flow_none_is_identity_copy():
    f = field(lambda x, y: x, lambda x, y: y)
    r = F.resize_flow(f, None)
    np.testing.assert_array_equal(r, f)
    assert r is not f


@pytest.mark.parametrize("bad", [0, -3, (4,), "28", 2.5, (3, 0), True])
def test_bad_sizes_are_refused(bad):
    with pytest.raises(ValueError, match="size"):
        F.as_hw(bad)


def test_bad_flow_shape_is_refused():
    with pytest.raises(ValueError, match=r"\(2, H, W\)"):
        F.optical_strain(np.zeros((3, 4, 4)))


def test_minmax_scale_per_channel():
    x = np.stack([np.arange(6.0).reshape(2, 3), -np.arange(6.0).reshape(2, 3), np.full((2, 3), 7.0)])
    m = F.minmax_scale(x)
    np.testing.assert_allclose(m[0], np.arange(6).reshape(2, 3) / 5)
    np.testing.assert_allclose(m[1], 1 - np.arange(6).reshape(2, 3) / 5)
    np.testing.assert_array_equal(m[2], 0.0)       # a flat channel maps to 0


# ------------------------------------------------------------------------------------------ TV-L1
def texture(h: int, w: int, dx: float = 0.0, dy: float = 0.0, seed: int = 0) -> np.ndarray:
    """A smooth random texture (sum of plane waves) translated by (dx, dy), exactly, then quantised."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w))
    for _ in range(30):
        fx, fy = rng.uniform(-0.35, 0.35, 2)
        img += rng.uniform(0.5, 1.0) * np.cos(fx * (x - dx) + fy * (y - dy) + rng.uniform(0, 2 * np.pi))
    return np.clip(128 + 10 * img, 0, 255).round().astype(np.uint8)


@pytest.mark.parametrize("dx,dy", [(1.3, -0.6), (-0.5, 2.0)])
def test_tvl1_recovers_a_known_translation(dx, dy):
    onset, apex = texture(64, 64), texture(64, 64, dx, dy)
    f = F.tvl1_flow(onset, apex)
    assert f.shape == (2, 64, 64) and f.dtype == np.float32
    inner = f[:, 8:-8, 8:-8]
    assert abs(float(np.median(inner[0])) - dx) < 0.2
    assert abs(float(np.median(inner[1])) - dy) < 0.2
    assert np.mean(np.abs(inner[0] - dx)) < 0.2 and np.mean(np.abs(inner[1] - dy)) < 0.2


def test_tvl1_is_deterministic_and_zero_for_identical_frames():
    a, b = texture(48, 40), texture(48, 40, 1.0, 0.5)
    np.testing.assert_array_equal(F.tvl1_flow(a, b), F.tvl1_flow(a, b))
    assert np.abs(F.tvl1_flow(a, a)).max() < 1e-3


def test_tvl1_refuses_bad_input():
    a = texture(16, 16)
    with pytest.raises(ValueError, match="uint8"):
        F.tvl1_flow(a.astype(np.float32), a)
    with pytest.raises(ValueError, match="differ"):
        F.tvl1_flow(a, texture(16, 20))
    with pytest.raises(ValueError, match="grayscale"):
        F.tvl1_flow(np.stack([a] * 3, -1), a)
