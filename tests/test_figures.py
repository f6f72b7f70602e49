"""Confusion-matrix and attention-map figures (benchmarks.figures): values drawn, files written, PNGs readable."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from benchmarks import figures as F


def _pred(method, variant, dataset, y_true, y_pred, seed=0):
    n = len(y_true)
    return pd.DataFrame({"method": method, "variant": variant, "dataset": dataset, "subject": [f"s{i % 3}"
                         for i in range(n)], "fold": [i % 3 for i in range(n)], "seed": seed,
                         "clip": [f"c{i}" for i in range(n)], "y_true": y_true, "y_pred": y_pred})


@pytest.fixture
def pred():
    return pd.concat([
        _pred("mfvan", "global+s123+ri", "synthetic-smic", [0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], seed=0),
        _pred("mfvan", "global+s123+ri", "synthetic-smic", [0, 0, 1, 2, 2, 2], [0, 0, 1, 2, 2, 1], seed=1),
        _pred("lbptop", "", "synthetic-smic", [0, 1, 2], [1, 1, 1]),
    ], ignore_index=True)


def test_confusion_matrix_hand_example(pred):
    cm = F.confusion_matrix_for(pred, "mfvan", "global+s123+ri", "synthetic-smic", 3)
    # seed 0: (0,0) (0,1) (1,1) (2,2) (2,0) (2,2); seed 1: (0,0) (0,0) (1,1) (2,2) (2,2) (2,1)
    np.testing.assert_array_equal(cm, [[3, 1, 0], [0, 2, 0], [1, 1, 4]])
    np.testing.assert_allclose(F.row_normalise(cm), [[0.75, 0.25, 0], [0, 1, 0], [1 / 6, 1 / 6, 4 / 6]])
    np.testing.assert_array_equal(F.row_normalise(np.zeros((2, 2))), np.zeros((2, 2)))   # empty row stays 0
    with pytest.raises(ValueError, match="no predictions of dssn"):
        F.confusion_matrix_for(pred, "dssn", "", "synthetic-smic", 3)


def test_file_names_are_sanitised():
    assert F.confusion_file_name("mfvan", "global+s123+ri", "casme2") == "confusion_mfvan_global-s123-ri_casme2.png"
    assert F.confusion_file_name("lbptop", "", "megc2019-public") == "confusion_lbptop_megc2019-public.png"
    assert F.confusion_file_name("a b", "x/y", "d") == "confusion_a_b_x_y_d.png"


def test_confusion_figures_written_and_readable(pred, tmp_path):
    names = {"synthetic-smic": ["negative", "positive", "surprise"]}
    paths = F.confusion_figures(pred, names, tmp_path / "figures")
    assert [p.name for p in paths] == ["confusion_lbptop_synthetic-smic.png",
                                       "confusion_mfvan_global-s123-ri_synthetic-smic.png"]
    for p in paths:
        img = cv2.imread(str(p))
        assert img is not None and img.ndim == 3
        assert 300 <= img.shape[0] <= 2000 and 300 <= img.shape[1] <= 2000
        assert img.std() > 10                                    # not a blank canvas
    with pytest.raises(KeyError, match="synthetic-smic"):
        F.confusion_figures(pred, {"casme2": ["a"] * 5}, tmp_path / "x")


def test_upsample_attention_is_bilinear():
    const = np.full((2, 7, 7), 0.25, dtype=np.float32)
    up = F.upsample_attention(const, (56, 40))
    assert up.shape == (2, 56, 40) and np.allclose(up, 0.25)
    ramp = np.tile(np.arange(4, dtype=np.float32), (1, 4, 1))    # (1, 4, 4): value = column index
    up = F.upsample_attention(ramp, (8, 8))[0]
    # half-pixel centres: output column x samples input at (x + 0.5) / 2 - 0.5, clamped to [0, 3]
    expect = np.clip((np.arange(8) + 0.5) / 2 - 0.5, 0, 3)
    np.testing.assert_allclose(up[3], expect, atol=1e-6)
    peak = np.zeros((1, 7, 7), dtype=np.float32)
    peak[0, 0, 0] = 1.0
    up = F.upsample_attention(peak, (70, 70))[0]
    r, c = np.unravel_index(up.argmax(), up.shape)
    assert r < 10 and c < 10


def test_attention_figure_grid(tmp_path):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 255, (2, 64, 64, 3), dtype=np.uint8)
    att = {s: rng.dirichlet(np.ones(49), 2).reshape(2, 7, 7) for s in (3, 1, 2)}
    out = F.attention_figure(imgs, att, tmp_path / "figures" / "attention.png", titles=["clip a", "clip b"])
    img = cv2.imread(str(out))
    assert img is not None
    # 2 rows x (1 + 3) columns of 2 inch cells (+0.4 inch), at DPI
    assert img.shape == (round((2 * 2.0 + 0.4) * F.DPI), round(4 * 2.0 * F.DPI), 3)


def test_attention_figure_rejects_bad_input(tmp_path):
    imgs = np.zeros((2, 32, 32, 3), dtype=np.uint8)
    good = {1: np.ones((2, 4, 4))}
    with pytest.raises(ValueError, match="uint8 RGB"):
        F.attention_figure(imgs.astype(np.float32), good, tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"attention\[1\]: expected \(2, s, s\)"):
        F.attention_figure(imgs, {1: np.ones((3, 4, 4))}, tmp_path / "a.png")
    with pytest.raises(ValueError, match="non-finite"):
        F.attention_figure(imgs, {1: np.full((2, 4, 4), np.nan)}, tmp_path / "a.png")
    with pytest.raises(ValueError, match="titles: 1 given for 2 images"):
        F.attention_figure(imgs, good, tmp_path / "a.png", titles=["x"])
