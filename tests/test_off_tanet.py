"""Off-TANet: reference layout and parameter count, known answers of its CBAM, self-attention, residual
block and strain, overfitting, registration, views on synthetic data and the labelled MEGC2019 fallback."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from baselines.off_tanet import (
    BLOCKS,
    ChannelGate,
    EnhancedBlock,
    MultiHeadRowAttention,
    OffTANet,
    OffTANetConfig,
    ResidualBlock,
    RowSelfAttention,
    SpatialGate,
    code_strain,
    positional_code,
    sobel_xy,
)
from benchmarks.batched_trainer import train_folds_batched
from benchmarks.data.registry import load_dataset
from benchmarks.data.views import ViewSpec, view_array
from benchmarks.evaluate import deep_inputs, resolve_views, run_loso, train_config
from benchmarks.methods.off_tanet import STORED_NOTE, off_tanet_inputs
from benchmarks.registry import get_method, list_methods
from benchmarks.splits import loso_splits
from benchmarks.trainer import TrainConfig, lr_factor, train_fold
from tests.conftest import synthetic_subset

pytestmark = pytest.mark.usefixtures("one_thread")


def _n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _conv(name: str, c_out: int, c_in: int, k: int, bias: bool = True) -> dict[str, tuple[int, ...]]:
    return {f"{name}.weight": (c_out, c_in, k, k), **({f"{name}.bias": (c_out,)} if bias else {})}


def _bn(name: str, c: int) -> dict[str, tuple[int, ...]]:
    return {**{f"{name}.{n}": (c,) for n in ("weight", "bias", "running_mean", "running_var")},
            f"{name}.num_batches_tracked": ()}


def _residual(name: str, c_in: int, c_out: int) -> dict[str, tuple[int, ...]]:
    return {**_conv(f"{name}.conv.0", c_out, c_in, 3), **_bn(f"{name}.conv.1", c_out),
            **_conv(f"{name}.conv.3", c_out, c_out, 3), **_bn(f"{name}.conv.4", c_out),
            **_conv(f"{name}.botneck", c_out, c_in, 1)}


# ECNU-Cross-Innovation-Lab/PRICAI2021-Off-TANet models/off_tanet.py (commit 5ae73be), OffTANet(net_type='ta'):
# the state dict of its checkpoint LOSO1_60epoch.pth has exactly these 88 entries.
REFERENCE_LAYOUT: dict[str, tuple[int, ...]] = {
    **_conv("conv1.0", 8, 3, 7), **_bn("conv1.2", 8),
    **_residual("res1", 8, 18), **_residual("res2", 18, 28),
    **_conv("eres.conv1.0", 28, 28, 3), **_bn("eres.conv1.1", 28),
    **_conv("eres.conv2.0", 8, 28, 3), **_bn("eres.conv2.1", 8),
    **_conv("eres.botneck", 8, 28, 1),
    **_conv("eres.spa.conv1", 1, 2, 3, bias=False),
    **_conv("eres.ca.fc1", 1, 28, 1, bias=False), **_conv("eres.ca.fc2", 28, 1, 1, bias=False),
    **{k: v for h in range(4) for p in ("w_q", "w_k", "w_v")
       for k, v in _conv(f"eres.sa.sa_blocks.{h}.{p}", 7, 28, 1).items()},
    "dense.0.weight": (64, 392), "dense.0.bias": (64,), "dense.3.weight": (64, 64), "dense.3.bias": (64,),
    "dense.6.weight": (3, 64), "dense.6.bias": (3,),
}


# ------------------------------------------------------------------------------------------------ model
def test_reference_layout_and_parameter_count() -> None:
    model = OffTANet()
    assert len(REFERENCE_LAYOUT) == 88
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == REFERENCE_LAYOUT
    assert _n_params(model) == 59_403  # paper abstract and README: 59,403
    # hand count per stage: stem 1,200; residual blocks 4,482 and 12,292; enhanced block 11,922 (of which the
    # 4 heads 2,436 and the CBAM 74); dense 29,507
    parts = {n: _n_params(getattr(model, n)) for n in ("conv1", "res1", "res2", "eres", "dense")}
    assert parts == {"conv1": 1200, "res1": 4482, "res2": 12292, "eres": 11922, "dense": 29507}
    assert (_n_params(model.eres.sa), _n_params(model.eres.ca) + _n_params(model.eres.spa)) == (2436, 74)
    # ablations: cbam drops the heads; sa drops the CBAM and conv2, heads of 8 // 4 = 2 channels; res = Residual(28, 8)
    counts = {b: _n_params(OffTANet(block=b)) for b in BLOCKS}
    assert counts == {"ta": 59403, "cbam": 59403 - 2436, "sa": 59403 - 11922 + 232 + 7140 + 4 * 3 * 58,
                      "res": 59403 - 11922 + 2024 + 16 + 584 + 16 + 232}


@pytest.mark.parametrize("block", BLOCKS)
def test_output_shapes_and_input_checks(block: str) -> None:
    model = OffTANet(num_classes=5, block=block).eval()
    assert model(torch.randn(2, 3, 112, 112)).shape == (2, 5)
    with pytest.raises(ValueError, match="u, v, strain"):
        model(torch.randn(2, 2, 112, 112))
    small = OffTANet(input_size=48, block=block).eval()  # attention maps 6x6, 8 * 3 * 3 = 72 features
    assert small.dense[0].in_features == 72 and small(torch.randn(1, 3, 48, 48)).shape == (1, 3)


def test_block_shapes() -> None:
    x = torch.randn(2, 8, 56, 56)
    assert ResidualBlock(8, 18)(x).shape == (2, 18, 28, 28)
    assert ResidualBlock(18, 28)(torch.randn(2, 18, 28, 28)).shape == (2, 28, 14, 14)
    for block in ("ta", "cbam", "sa"):
        assert EnhancedBlock(28, 8, 14, block)(torch.randn(2, 28, 14, 14)).shape == (2, 8, 7, 7)
    assert MultiHeadRowAttention(28, 7, 4, 14)(torch.randn(2, 28, 14, 14)).shape == (2, 28, 14, 14)
    with pytest.raises(ValueError, match="14x14"):
        RowSelfAttention(28, 7, 14)(torch.randn(1, 28, 12, 14))


def test_residual_block_known_answer() -> None:
    """Zero convolutions (eval BN with fresh statistics passes 0) leave max-pool(1x1 projection(x))."""
    block = ResidualBlock(2, 1).eval()
    with torch.no_grad():
        for m in block.conv:
            if isinstance(m, nn.Conv2d):
                m.weight.zero_()
                m.bias.zero_()
        block.botneck.weight.copy_(torch.tensor([2.0, -1.0]).view(1, 2, 1, 1))
        block.botneck.bias.fill_(0.5)
    x = torch.zeros(1, 2, 2, 4)
    x[0, 0] = torch.tensor([[1.0, 0.0, 3.0, 1.0], [0.0, 2.0, 0.0, 0.0]])
    x[0, 1] = torch.tensor([[0.0, 0.0, 4.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    # 2 u - v + 0.5 = [[2.5, 0.5, 2.5, 2.5], [-0.5, 4.5, 0.5, 0.5]] -> 2x2 max: [4.5, 2.5]
    assert block(x).flatten().tolist() == [4.5, 2.5]


def test_channel_gate_known_answer() -> None:
    gate = ChannelGate(2, ratio=2)  # one hidden unit, as Off-TANet (ratio = channels)
    with torch.no_grad():
        gate.fc1.weight.copy_(torch.tensor([0.5, 1.0]).view(1, 2, 1, 1))
        gate.fc2.weight.copy_(torch.tensor([1.0, -0.5]).view(2, 1, 1, 1))
    x = torch.tensor([[[[1.0, 3.0], [5.0, 7.0]], [[0.0, -2.0], [2.0, 0.0]]]])
    # avg (4, 0), max (7, 2); hidden relu(0.5*4 + 0) = 2 and relu(0.5*7 + 2) = 5.5; logits (7.5, -3.75)
    expected = [1 / (1 + math.exp(-7.5)), 1 / (1 + math.exp(3.75))]
    out = gate(x)
    assert out.shape == (1, 2, 1, 1)
    np.testing.assert_allclose(out.flatten().detach().numpy(), expected, rtol=1e-6)
    with torch.no_grad():
        gate.fc1.weight.mul_(-1)  # negative hidden pre-activations: ReLU gives 0, the gate is sigmoid(0)
    np.testing.assert_allclose(gate(x).flatten().detach().numpy(), [0.5, 0.5])


def test_spatial_gate_known_answer() -> None:
    gate = SpatialGate(3)
    assert gate.conv1.weight.shape == (1, 2, 3, 3) and gate.conv1.bias is None
    with torch.no_grad():
        gate.conv1.weight.zero_()
        gate.conv1.weight[0, 0, 1, 1] = 1.0   # the channel mean at the same pixel
        gate.conv1.weight[0, 1, 1, 2] = 2.0   # twice the channel max of the right neighbour (0 past the border)
    x = torch.tensor([[[[1.0, 4.0], [0.0, -2.0]], [[3.0, 0.0], [2.0, 2.0]]]])
    # mean [[2, 2], [1, 0]], max [[3, 4], [2, 2]] -> logits [[2 + 8, 2 + 0], [1 + 4, 0 + 0]]
    expected = 1 / (1 + np.exp(-np.array([[10.0, 2.0], [5.0, 0.0]])))
    np.testing.assert_allclose(gate(x)[0, 0].detach().numpy(), expected, rtol=1e-6)


def test_positional_code_known_answer() -> None:
    p = [math.sin(1.0), math.cos(1.0), math.sin(0.1), math.cos(0.1)]  # w = 1, 1, 10000^-0.25, 10000^-0.25
    expected = np.array([[a + b for b in p] for a in p])
    np.testing.assert_allclose(positional_code(4).numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("pos_bias", [False, True])
def test_self_attention_known_answer(pos_bias: bool) -> None:
    """Q = K = X (identity 1x1 convs), V = X + 1: softmax over all four entries of X X^T + X P^T (or + P),
    then the element-wise product with V."""
    head = RowSelfAttention(1, 1, 2, pos_bias=pos_bias)
    with torch.no_grad():
        for conv, bias in ((head.w_q, 0.0), (head.w_k, 0.0), (head.w_v, 1.0)):
            conv.weight.fill_(1.0)
            conv.bias.fill_(bias)
    X = np.array([[1.0, 0.0], [0.0, 2.0]])
    s, c = math.sin(1.0), math.cos(1.0)
    P = np.array([[2 * s, s + c], [s + c, 2 * c]])
    logits = X @ X.T + (P if pos_bias else X @ P.T)  # [[1 + 2s, s + c], [2(s + c), 4 + 4c]] without pos_bias
    att = np.exp(logits) / np.exp(logits).sum()
    out = head(torch.tensor(X, dtype=torch.float32).view(1, 1, 2, 2))
    np.testing.assert_allclose(out[0, 0].detach().numpy(), att * (X + 1.0), rtol=1e-5)
    if not pos_bias:
        np.testing.assert_allclose(logits, [[1 + 2 * s, s + c], [2 * (s + c), 4 + 4 * c]])


def test_multi_head_concatenates_heads() -> None:
    mha = MultiHeadRowAttention(3, 2, 2, 4)
    x = torch.randn(1, 3, 4, 4)
    out = mha(x)
    assert out.shape == (1, 4, 4, 4)
    torch.testing.assert_close(out[:, 2:], mha.sa_blocks[1](x))
    assert "sa_blocks.0.pos_code" not in mha.state_dict()  # a fixed, non-persistent buffer (as the reference)


# ------------------------------------------------------------------------------------------------ input
def test_sobel_matches_opencv_and_code_strain_formula() -> None:
    rng = np.random.default_rng(0)
    uv = rng.normal(size=(2, 2, 9, 11)).astype(np.float32)
    gx, gy = sobel_xy(torch.from_numpy(uv[:, 0]))
    for i in range(2):
        np.testing.assert_allclose(gx[i].numpy(), cv2.Sobel(uv[i, 0], cv2.CV_32F, 1, 0), atol=1e-5)
        np.testing.assert_allclose(gy[i].numpy(), cv2.Sobel(uv[i, 0], cv2.CV_32F, 0, 1), atol=1e-5)
    yy, xx = np.mgrid[0:6, 0:7].astype(np.float32)
    # u = 0.5 x: Sobel u_x = 8 * 0.5 = 4 inside (the reflect-101 border gives 0 at the first/last column)
    ramp = code_strain(torch.tensor(np.stack([0.5 * xx, 0 * yy]))[None])[0].numpy()
    np.testing.assert_allclose(ramp[:, 1:-1], 4.0, rtol=1e-6)
    # v = y only: the textbook strain is |v_y| > 0; the reference's formula squares u_y instead: 0
    assert np.abs(code_strain(torch.tensor(np.stack([0 * xx, yy]))[None]).numpy()).max() == 0.0


def test_inputs_fallback_enlarges_bilinearly() -> None:
    cfg = OffTANetConfig()
    ramp = np.tile(np.linspace(0, 1, 28, dtype=np.float32), (28, 1))
    stored = np.stack([ramp, ramp.T, np.full((28, 28), 0.25, np.float32)])[None]
    x = off_tanet_inputs({"flow_uvs": stored}, cfg)
    assert x.shape == (1, 3, 112, 112) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, 2], 0.25)                                       # constant stays constant
    blocks = x[0, 0].reshape(112, 28, 4).mean(axis=2)                               # 4-pixel means along x
    np.testing.assert_allclose(blocks[:, 1:-1], np.broadcast_to(ramp[0, 1:-1], (112, 26)), atol=1e-6)  # exact inside
    assert 0.0 <= x.min() and x.max() <= 1.0
    full = np.random.default_rng(1).normal(size=(2, 3, 112, 112)).astype(np.float32)
    np.testing.assert_array_equal(off_tanet_inputs({"flow_uvs": full}, OffTANetConfig(strain="view")), full)
    coded = off_tanet_inputs({"flow_uvs": full}, cfg)
    np.testing.assert_array_equal(coded[:, :2], full[:, :2])
    np.testing.assert_allclose(coded[:, 2], code_strain(torch.from_numpy(full[:, :2])).numpy())


# ---------------------------------------------------------------------------------------------- training
def test_overfits_a_tiny_batch() -> None:
    torch.manual_seed(0)
    model = OffTANet(input_size=48, dropout=0.0)
    x, y = torch.randn(6, 3, 48, 48), torch.tensor([0, 1, 2, 0, 1, 2])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(40):
        loss = nn.functional.cross_entropy(model(x), y)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    assert loss.item() < 0.1 * first
    assert (model(x).argmax(1) == y).all()


def test_fold_batched_training_agrees_with_sequential() -> None:
    """The runner trains folds batched (vmapped) by default on CUDA: the attention and gates must vmap."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 3, 48, 48)).astype(np.float32)
    y, groups = rng.integers(0, 3, 24), np.repeat(["d/a", "d/b", "d/c"], 8)
    folds = loso_splits(groups)[:2]
    cfg = TrainConfig(epochs=1, batch_size=8, lr=1e-3, lr_schedule="step", lr_step_size=1, lr_gamma=0.3, device="cpu")
    def factory():
        return OffTANet(input_size=48)
    batched = train_folds_batched(factory, x, y, folds, cfg, [1, 2], groups=groups, n_classes=3, max_folds_per_chunk=2)
    for f, r, seed in zip(folds, batched, [1, 2], strict=True):
        a = train_fold(factory, x[f.train_idx], y[f.train_idx], x[f.test_idx], None, cfg, seed,
                       groups_train=groups[f.train_idx], n_classes=3)
        np.testing.assert_allclose(r.proba, a.proba, atol=1e-3)


def test_config_and_trainer_settings() -> None:
    cfg = OffTANetConfig()
    assert (cfg.lr, cfg.batch_size, cfg.epochs, cfg.optimizer) == (1e-3, 64, 201, "adam")
    tcfg = train_config(cfg, "last", "cpu")
    assert (tcfg.lr_schedule, tcfg.lr_step_size, tcfg.lr_gamma) == ("step", 60, 0.3)
    # StepLR(60, 0.3) stepped after each epoch: epochs 1-60 at lr, 61-120 at 0.3 lr, ..., 181-201 at 0.027 lr
    factors = [lr_factor(e, tcfg) for e in (1, 60, 61, 120, 121, 181, 201)]
    np.testing.assert_allclose(factors, [1, 1, 0.3, 0.3, 0.09, 0.027, 0.027])
    for bad in ({"block": "bot"}, {"strain": "sobel"}, {"input_size": 100}):
        with pytest.raises(ValueError):
            OffTANetConfig(**bad)


# ------------------------------------------------------------------------------------------ registration
def test_registration() -> None:
    spec = get_method("off_tanet")
    assert "off_tanet" in list_methods(family="deep")
    assert spec.views == (ViewSpec.of("flow_uvs", size=112, scale="none"),)
    assert [f.views for f in spec.fallbacks] == [(ViewSpec.of("flow_uvs", size=28, scale="minmax"),)]
    assert spec.fallbacks[0].note == STORED_NOTE and STORED_NOTE.startswith("approximation")
    assert "oracle" in spec.notes and "common to all folds" in spec.notes
    assert {"architecture", "input", "strain", "lr", "batch_size", "epochs", "lr_schedule"} <= set(spec.sources)
    assert _n_params(spec.build(spec.config())) == 59_403
    assert spec.config("cbam").block == "cbam" and spec.config("res").block == "res"


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Four clips of each of two synthetic-smic subjects (their TV-L1 flow is computed in a few seconds)."""
    with synthetic_subset(tmp_path_factory, lambda groups: groups[:2]) as ds:
        yield ds.subset((ds.clips.groupby("group").cumcount() < 4).to_numpy())


def test_views_resolve_on_synthetic(small) -> None:
    spec = get_method("off_tanet")
    cfg = spec.config()
    views, note, preferred = resolve_views(spec, cfg, small)
    assert preferred and note == "" and views == spec.views
    x = deep_inputs(spec, cfg, small, views)
    flow = view_array(small, "flow", size=112, progress=False)  # u, v in pixels of the 112 grid
    assert x.shape == (len(small.clips), 3, 112, 112) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, :2], flow, atol=1e-6)
    np.testing.assert_allclose(x[:, 2], code_strain(torch.from_numpy(flow)).numpy(), rtol=1e-5, atol=1e-6)
    df = run_loso("off_tanet", small, epochs=1, folds=1)
    assert len(df) == (small.clips["group"] == sorted(small.clips["group"].unique())[0]).sum()
    assert (df["protocol_note"] == "").all() and (df["views"] == "flow_uvs(scale='none', size=112)").all()


@pytest.mark.shared
def test_megc2019_public_through_the_labelled_fallback(shared_data) -> None:
    ds = load_dataset("megc2019-public", shared_data / "megc2019")
    spec = get_method("off_tanet")
    views, note, preferred = resolve_views(spec, spec.config(), ds)
    assert not preferred and note == STORED_NOTE
    assert views == (ViewSpec.of("flow_uvs", size=28, scale="minmax"),)
    x = deep_inputs(spec, spec.config(), ds, views)
    assert x.shape == (len(ds.clips), 3, 112, 112) and 0.0 <= x.min() and x.max() <= 1.0
    # every prediction row obtained through the fallback carries its note (one fold, one epoch on a subset)
    small = ds.subset(ds.clips["group"].isin(sorted(ds.clips["group"].unique())[:3]).to_numpy())
    df = run_loso("off_tanet", small, epochs=1, folds=1)
    assert len(df) > 0 and (df["protocol_note"] == STORED_NOTE).all() and (df["data_source"] == "public").all()
    assert (df["views"] == "flow_uvs(scale='minmax', size=28)").all()
