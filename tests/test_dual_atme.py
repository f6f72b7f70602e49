"""Dual-ATME (baselines/dual_atme.py, benchmarks/methods/dual_atme.py) and the flow_roi_mosaic view."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from baselines.dual_atme import CBAM, DualATME, DualATMEConfig, Inception, contrast_loss, focal_loss
from benchmarks.data.flow import minmax_scale
from benchmarks.data.registry import load_dataset
from benchmarks.data.roi_views import DEFAULT_ROIS, check_rois, roi_mosaic
from benchmarks.data.views import ViewSpec, cache_key, get_view
from benchmarks.evaluate import deep_inputs, method_config, resolve_views, run_loso
from benchmarks.registry import get_method, list_methods
from benchmarks.trainer import TrainConfig, train_fold
from benchmarks.trainer import focal_loss as trainer_focal_loss
from tests.conftest import synthetic_subset

pytestmark = pytest.mark.usefixtures("one_thread")


def _inputs(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 28, 28, generator=g), torch.randn(n, 3, 28, 28, generator=g)


# ------------------------------------------------------------------------------------------------ model
def test_shapes_and_input_checks() -> None:
    model = DualATME(DualATMEConfig(num_classes=5)).eval()
    out = model(*_inputs(4))
    assert out["logits"].shape == (4, 5)
    assert out["face"].shape == out["mosaic"].shape == (4, 48, 7, 7)
    with pytest.raises(ValueError, match="mosaic of shape"):
        model(torch.zeros(2, 3, 28, 28), torch.zeros(2, 2, 28, 28))
    two = DualATME(DualATMEConfig(channels=(0, 1))).eval()
    assert two(torch.zeros(2, 2, 28, 28), torch.zeros(2, 2, 28, 28))["logits"].shape == (2, 3)
    for bad in ({"cbam_branches": "both"}, {"channels": (0, 3)}, {"loss": "ce"}, {"focal_alpha": (1.0, 1.0)}):
        with pytest.raises(ValueError):
            DualATMEConfig(**bad)


def test_parameter_count_matches_the_hand_count() -> None:
    # Inception(3 -> 4x6): 1x1 (3*6+6 + BN 12) = 36; 1x1 (24+12) + 3x3 (6*6*9+6 + 12) = 378; 1x1 (36) + 5x5
    # (6*6*25+6 + 12) = 954; pool 1x1 36 -> 1404. Inception(24 -> 4x12): 324 + (162 + 684) + (162 + 1836) + 324
    # = 3492. CBAM(48, r=16): 48*3+3 + 3*48+48 + 2*9+1 = 358. FC: 4704*1024+1024 + BN 2048 + 1024*3+3 = 4823043.
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(Inception(3, 6)) == 1404 and count(Inception(24, 12)) == 3492 and count(CBAM(48)) == 358
    model = DualATME(DualATMEConfig())
    assert count(model.fc) == 4_823_043
    assert count(model) == 2 * (1404 + 3492) + 358 + 4_823_043 == 4_833_193
    assert count(DualATME(DualATMEConfig(cbam_branches="separate"))) == 4_833_193 + 358


def test_state_dict_names_follow_the_reference_layout() -> None:
    keys = set(DualATME(DualATMEConfig()).state_dict())
    expected = {"Inception1_1.branch3x3.3.weight", "Inception2_2.branch_pool.1.weight",
                "Inception1_2.branch5x5.4.running_var", "cbam.shared_MLP.0.weight", "cbam.shared_MLP.2.bias",
                "cbam.conv2d.weight", "fc.0.weight", "fc.1.running_mean", "fc.4.bias"}
    assert expected <= keys and not any(k.startswith("cbam2") or "focal_alpha" in k for k in keys)


def test_cbam_known_answer() -> None:
    cbam = CBAM(2, reduction=2, kernel_size=3)
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]]]])
    with torch.no_grad():
        cbam.shared_MLP[0].weight.copy_(torch.tensor([[1.0, 1.0]]))
        cbam.shared_MLP[0].bias.zero_()
        cbam.shared_MLP[2].weight.copy_(torch.tensor([[1.0], [-1.0]]))
        cbam.shared_MLP[2].bias.zero_()
        cbam.conv2d.weight.zero_()
        cbam.conv2d.weight[0, 0, 1, 1] = 1.0  # centre tap on the channel mean
        cbam.conv2d.weight[0, 1, 0, 0] = 1.0  # top-left tap on the channel max: out(i, j) += max(i - 1, j - 1)
        cbam.conv2d.bias.zero_()
    sig = lambda v: 1.0 / (1.0 + math.exp(-v))  # noqa: E731
    # avg = (2.5, 0), max = (4, 0); MLP(avg) = (2.5, -2.5), MLP(max) = (4, -4) -> weights sigmoid(+-6.5)
    ca = cbam.channel_attention(x).flatten().tolist()
    assert ca == pytest.approx([sig(6.5), sig(-6.5)], abs=1e-6)
    k = sig(6.5)
    y = [[k * 1, k * 2], [k * 3, k * 4]]  # channel 0 after channel attention; channel 1 stays 0
    # mean = y / 2, max = y; conv: (0,0) k/2, (0,1) k, (1,0) 1.5k, (1,1) 2k + y(0,0) = 3k
    sa = [[sig(0.5 * k), sig(k)], [sig(1.5 * k), sig(3 * k)]]
    expected = torch.tensor([[[[sa[i][j] * y[i][j] for j in range(2)] for i in range(2)], [[0.0, 0.0], [0.0, 0.0]]]])
    assert torch.allclose(cbam(x), expected, atol=1e-6)


def test_inception_output_channels_known_answer() -> None:
    block = Inception(3, 6).eval()
    with torch.no_grad():
        for p in block.parameters():
            p.zero_()
        for value, path in enumerate((block.branch1x1, block.branch3x3, block.branch5x5, block.branch_pool), 1):
            bn = [m for m in path if isinstance(m, torch.nn.BatchNorm2d)][-1]
            bn.weight.fill_(1.0)
            bn.bias.fill_(float(value))  # each path's last BN puts out its own constant
    out = block(torch.randn(2, 3, 5, 5))
    assert out.shape == (2, 24, 5, 5)
    for value in range(1, 5):
        assert torch.all(out[:, 6 * (value - 1): 6 * value] == value)


# ------------------------------------------------------------------------------------------------- loss
def test_focal_part_equals_the_trainer_focal_loss() -> None:
    g = torch.Generator().manual_seed(1)
    logits, y = torch.randn(9, 3, generator=g), torch.tensor([0, 1, 2, 2, 1, 0, 0, 1, 2])
    for gamma, alpha in ((2.0, None), (0.5, torch.tensor([0.2, 1.0, 3.0]))):
        assert torch.allclose(focal_loss(logits, y, gamma, alpha), trainer_focal_loss(logits, y, gamma, alpha))
    model = DualATME(DualATMEConfig())
    out = model(*_inputs(4))
    yy = torch.tensor([0, 1, 2, 1])
    total, parts = model.loss(out, yy)
    assert torch.allclose(parts["focal"], trainer_focal_loss(out["logits"], yy, 2.0, None))
    assert torch.allclose(total, parts["focal"] + 0.01 * parts["contrast"])


def test_contrast_term_known_answer() -> None:
    face = torch.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0]])
    mosaic = torch.tensor([[0.0, 1.0], [2.0, 2.0], [1.0, 1.0]])
    # 1 - cos: orthogonal 1, parallel 0, 45 degrees 1 - 1/sqrt(2)
    assert contrast_loss(face, mosaic).item() == pytest.approx((1 + 0 + 1 - 2 ** -0.5) / 3, abs=1e-6)
    assert contrast_loss(face[:, :, None, None], mosaic[:, :, None, None]).item() == pytest.approx(
        (2 - 2 ** -0.5) / 3, abs=1e-6)


def test_overfits_a_tiny_batch_through_the_trainer() -> None:
    face, mosaic = _inputs(12, seed=3)
    y = torch.arange(12) % 3
    x = {"face": face, "mosaic": mosaic}
    cfg = TrainConfig(epochs=25, batch_size=12, lr=1e-3, device="cpu")
    res = train_fold(lambda: DualATME(DualATMEConfig()), x, y, x, None, cfg, seed=0, n_classes=3)
    assert res.loss_name == "model.loss" and set(res.loss_parts[0]) == {"focal", "contrast"}
    assert res.train_loss[-1] < 0.5 * res.train_loss[0]
    assert np.array_equal(res.y_pred, y.numpy())  # 100 % train accuracy


# --------------------------------------------------------------------------------------------- the view
def test_roi_mosaic_known_answer_on_a_hand_built_flow() -> None:
    uvs = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    swap = [(0, 0, .5, .5, .5, .5, 1, 1), (.5, .5, 1, 1, 0, 0, .5, .5),  # quadrants exchanged on the diagonal
            (.5, 0, 1, .5, 0, .5, .5, 1), (0, .5, .5, 1, .5, 0, 1, .5)]
    expected = np.array([[10, 11, 8, 9], [14, 15, 12, 13], [2, 3, 0, 1], [6, 7, 4, 5]], np.float32)
    assert np.array_equal(roi_mosaic(uvs, swap)[0], expected)
    shrunk = roi_mosaic(uvs, [(0, 0, 1, 1, 0, 0, .5, .5)], size=4)[0]  # 4x4 -> 2x2 by area averaging
    assert np.allclose(shrunk, [[2.5, 4.5, 0, 0], [10.5, 12.5, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    # the default layout on 28x28: eye boxes (rows 1..13, cols 1..27) on top, mouth box (rows 17..27, cols 6..22) below
    face = np.zeros((3, 28, 28), np.float32)
    face[:, 1:13, 1:27] = 1.0
    face[:, 17:27, 6:22] = 2.0
    mosaic = roi_mosaic(face, DEFAULT_ROIS, size=28)
    assert np.allclose(mosaic[:, :14], 1.0) and np.allclose(mosaic[:, 14:], 2.0)
    for bad in ([], [(0, 0, 1, 1)], [(0.5, 0, 0.4, 1, 0, 0, 1, 1)], [(0, 0, 1, 1, 0, 0, 1, 1.5)]):
        with pytest.raises(ValueError):
            check_rois(bad)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Three clips of each of two synthetic-smic subjects (a LOSO with two folds); views cached privately."""
    with synthetic_subset(tmp_path_factory, lambda groups: groups[:2]) as ds:
        keep = ds.clips.groupby("group").head(3).index
        yield ds.subset(ds.clips.index.isin(keep))


def test_view_on_synthetic_is_the_mosaic_of_the_native_flow(tiny) -> None:
    spec = ViewSpec.of("flow_roi_mosaic")
    got = get_view(tiny, 0, spec)
    native = get_view(tiny, 0, ViewSpec.of("flow_uvs", size=None))
    assert got.shape == (3, 28, 28) and native.shape[1:] == (128, 128)
    assert np.allclose(got, minmax_scale(roi_mosaic(native, DEFAULT_ROIS, (28, 28))), atol=1e-6)
    other = ViewSpec.of("flow_roi_mosaic", rois=[(0, 0, 1, 1, 0, 0, 1, 1)])
    assert cache_key(tiny, 0, other) != cache_key(tiny, 0, spec)
    assert np.allclose(get_view(tiny, 0, other), get_view(tiny, 0, ViewSpec.of("flow_uvs", size=28)), atol=1e-5)


def test_registered_and_resolves_on_synthetic(tiny) -> None:
    """~8 s: TV-L1 of six 128 px clips (first run) and one LOSO fold of one epoch end to end."""
    assert "dual_atme" in list_methods()
    spec = get_method("dual_atme")
    assert spec.config("script").cbam_branches == "shared" and spec.config("script").lr_schedule == "constant"
    cfg = method_config(spec, tiny, None, None, None)
    views, note, preferred = resolve_views(spec, cfg, tiny)
    assert preferred and note == "" and [v.name for v in views] == ["flow_uvs", "flow_roi_mosaic"]
    x = deep_inputs(spec, cfg, tiny, views)
    assert x["face"].shape == x["mosaic"].shape == (6, 3, 28, 28)
    assert x["face"].min() >= -1 and x["face"].max() <= 1 and x["face"].min() == -1
    df = run_loso("dual_atme", tiny, epochs=1, folds=1, device="cpu")
    assert len(df) == 3 and df["views"].iloc[0].startswith("flow_uvs(")


@pytest.mark.shared
def test_resolves_on_megc2019_public(shared_data) -> None:
    ds = load_dataset("megc2019-public", shared_data / "megc2019")
    spec = get_method("dual_atme")
    cfg = method_config(spec, ds, None, None, None)
    views, note, preferred = resolve_views(spec, cfg, ds)
    assert preferred and note == ""
    x = deep_inputs(spec, cfg, ds, views)
    assert x["face"].shape == x["mosaic"].shape == (442, 3, 28, 28)
    assert x["mosaic"].min() == -1 and x["mosaic"].max() == 1
