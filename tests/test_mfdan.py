"""MFDAN (baselines.mfdan, registered as mfdan), the Adan optimizer (baselines.adan) and the linear Eulerian
magnification view (benchmarks.data.magnify_views)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from baselines.adan import Adan
from baselines.mfdan import (
    DROPKEY_FILL,
    MFDAN,
    FlowDrivenWindowAttention,
    MFDANConfig,
    dropkey_mask,
    relative_position_index,
)
from benchmarks.batched_trainer import FoldBatchingUnsupported, StackedOptimizer
from benchmarks.data.magnify_views import band_factors, magnify
from benchmarks.data.views import ViewSpec, get_view, unavailable_reason
from benchmarks.evaluate import NotRunnable, resolve_views, run_loso
from benchmarks.registry import get_method
from benchmarks.trainer import TrainConfig, make_optimizer, train_fold
from benchmarks.units import code_modules
from tests.conftest import synthetic_subset

pytestmark = pytest.mark.usefixtures("one_thread")

# the paper's layout at a test's size: 64 px -> 16x16 tokens (window 4, shifted) -> 2x2 after 3 mergings
TINY = dict(input_size=64, embed_dim=8, heads=(2, 2), window=4, flow_features=16)


def _n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ------------------------------------------------------------------------------------------------ model
def _hand_count(c=96, heads=(3, 6), w=7, merges=3, classes=3, flow_fc=768, side=14) -> int:
    """MFDAN's parameters from its layer list (baselines.mfdan docstring), counted by hand."""
    def layer(d: int, h: int) -> int:
        attn = d * 3 * d + 3 * d + d * d + d + (2 * w - 1) ** 2 * h + h  # qkv, proj, bias table, logit scale
        return attn + (d * 4 * d + 4 * d) + (4 * d * d + d) + 2 * 2 * d  # MLP, two LayerNorms

    total = 3 * 16 * c + c + 2 * c  # 4x4 patch embedding + LayerNorm (shared by image and flow)
    total += sum(2 * 4 * c * 2 ** k + 4 * c * 2 ** k * 2 * c * 2 ** k for k in range(merges))  # mergings
    d2 = c * 2 ** merges
    total += 2 * layer(c, heads[0]) + 2 * layer(d2, heads[1]) + 2 * d2  # two blocks of two layers, final LN
    total += (3 * 11 * 11 * 96 + 96) + (256 * 48 * 25 + 256)  # SSSN conv1, conv2 (two groups)
    total += 256 * side * side * flow_fc + flow_fc  # flow FC
    return total + (flow_fc + d2) * classes + classes


def test_parameter_count_and_layout():
    with torch.device("meta"):
        model = MFDAN.from_config(MFDANConfig())
    assert _hand_count() == 54_845_527  # the paper prints no count
    assert _n_params(model) == 54_845_527
    l1, l2 = model.block1, model.block2
    assert (l1[0].shift, l1[1].shift, l1[0].window) == (0, 3, 7)  # W-Driven, SW-Driven at 56x56
    assert (l2[0].shift, l2[1].shift, l2[1].window) == (0, 0, 7)  # 7x7 map: one window, no shift (Swin)
    assert l1[0].attn.heads == 3 and l2[0].attn.heads == 6 and l2[0].attn.qkv.in_features == 768
    assert MFDANConfig().resolutions == (56, 7)
    shared = _n_params(MFDAN(MFDANConfig(**TINY)))
    assert _n_params(MFDAN(MFDANConfig(**TINY, share_embedding=False))) > shared


def test_output_shape_and_input_check():
    model = MFDAN(MFDANConfig(**TINY)).eval()
    x = torch.rand(2, 3, 64, 64)
    assert model(x, x).shape == (2, 3)
    with pytest.raises(ValueError, match="image of shape"):
        model(x, torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match="halved"):
        MFDANConfig(input_size=60)
    full = MFDAN(MFDANConfig()).eval()
    with torch.no_grad():
        assert full(torch.rand(1, 3, 224, 224), torch.rand(1, 3, 224, 224)).shape == (1, 3)


def test_relative_position_index_known_answer():
    # tokens (0,0) (0,1) (1,0) (1,1); index (dy + 1) * 3 + (dx + 1) of query minus key
    assert relative_position_index(2).tolist() == [[4, 3, 1, 0], [5, 4, 2, 1], [7, 6, 4, 3], [8, 7, 5, 4]]
    attn = FlowDrivenWindowAttention(dim=2, heads=1, window=2)
    with torch.no_grad():
        attn.bias_table.copy_(torch.arange(9.0)[:, None] * 10)
    assert attn.position_bias()[0].tolist() == [[40, 30, 10, 0], [50, 40, 20, 10], [70, 60, 40, 30],
                                                [80, 70, 50, 40]]


def _hand_attention(bias_diag: float = 0.0) -> FlowDrivenWindowAttention:
    """dim 2, one head, window 2: q = (x1, 0), k = (x2, 0), v = x, identity projection, 1/tau = ln 2, bias on the
    zero offset only (table entry 4)."""
    attn = FlowDrivenWindowAttention(dim=2, heads=1, window=2, tau_init=1 / math.log(2.0))
    w = torch.tensor([[1.0, 0], [0, 0], [0, 1], [0, 0], [1, 0], [0, 1]])
    with torch.no_grad():
        attn.qkv.weight.copy_(w)
        attn.qkv.bias.zero_()
        attn.proj.weight.copy_(torch.eye(2))
        attn.proj.bias.zero_()
        attn.bias_table.zero_()
        attn.bias_table[4] = bias_diag
    return attn


S = torch.tensor([1.0, -1.0, 2.0, -2.0])  # image tokens x_j = (0, s_j); flow tokens (1, 0)


def _tokens() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.stack([torch.zeros(4), S], dim=-1)[None]
    return x, torch.tensor([[1.0, 0.0]]).repeat(4, 1)[None]


def test_flow_driven_attention_known_answer():
    attn = _hand_attention().eval()
    assert math.isclose(float(attn.logit_scale.detach().exp()), math.log(2.0), rel_tol=1e-6)  # exp(cos / tau) = 2^cos
    x, f = _tokens()
    # image queries are 0: the self term is uniform, mean(v) = (0, 0). Flow query (1, 0) against keys (s_j, 0):
    # cos = sign(s_j) = (1, -1, 1, -1); weights 2^cos / 5 = (.4, .1, .4, .1); sum .4 - .1 + .8 - .2 = 0.9
    y = attn(x, f)
    torch.testing.assert_close(y, torch.tensor([[0.0, 0.9]]).repeat(4, 1)[None])
    # zero-offset bias ln 3 on both terms; token 0: self (3, 1, 1, 1)/6 . s = 2/6; flow (6, .5, 2, .5)/9 . s = 8.5/9
    y = _hand_attention(math.log(3.0)).eval()(x, f)
    torch.testing.assert_close(y[0, 0], torch.tensor([0.0, 2 / 6 + 8.5 / 9]))
    # cosine: scaling the flow changes nothing; the values come from the image: doubling it doubles the output
    torch.testing.assert_close(attn(x, 5 * f), attn(x, f))
    torch.testing.assert_close(attn(2 * x, f), 2 * attn(x, f))


def test_dropkey_masks_keys_in_training_only_and_follows_the_seed():
    attn = _hand_attention()
    attn.dropkey = 0.5
    x, f = _tokens()
    torch.manual_seed(3)
    mask = dropkey_mask(torch.Size([1, 1, 4, 4]), 0.5, x.device, x.dtype)
    assert set(mask.unique().tolist()) <= {0.0, float(torch.tensor(DROPKEY_FILL))}  # float32 of -1e12
    torch.manual_seed(3)
    y = attn.train()(x, f).detach()
    keep = (mask[0, 0] == 0).double()  # expected: each softmax restricted to the kept keys
    assert 0 < keep.sum() < 16
    s = S.double()
    for i in range(4):
        k = keep[i]
        if k.any():
            self_w, flow_w = k / k.sum(), k * 2.0 ** torch.sign(s) / (k * 2.0 ** torch.sign(s)).sum()
        else:  # every key dropped: the logits drown in the fill, both softmaxes are uniform
            self_w = flow_w = torch.full((4,), 0.25, dtype=torch.float64)
        assert math.isclose(float(y[0, i, 1]), float(self_w @ s + flow_w @ s), rel_tol=1e-5, abs_tol=1e-6)
    torch.manual_seed(3)
    torch.testing.assert_close(attn(x, f), y)  # same seed, same mask
    torch.manual_seed(4)
    assert not torch.allclose(attn(x, f), y)
    attn.eval()  # evaluation: no mask
    torch.testing.assert_close(attn(x, f), _hand_attention().eval()(x, f))
    p = dropkey_mask(torch.Size([200, 200]), 0.3, x.device, x.dtype)
    assert abs(float((p != 0).double().mean()) - 0.3) < 0.02


def test_overfits_a_tiny_batch():
    rng = np.random.default_rng(0)
    x = {k: rng.random((12, 3, 64, 64), dtype=np.float32) for k in ("flow", "image")}
    y = np.arange(12) % 3
    # Adam: the model's capacity is tested here (Adan, whose m starts at g_0 and decays by 0.98, is slow on 12
    # full-batch steps: 0.506 -> 0.350 in 40 epochs; its numbers are tested by the known answer below)
    cfg = TrainConfig(epochs=30, batch_size=12, lr=1e-3, optimizer="adam", loss="focal", focal_gamma=2.0)
    res = train_fold(lambda: MFDAN(MFDANConfig(**TINY, dropkey=0.1, flow_dropout=0.0)), x, y, x, None, cfg,
                     seed=0, n_classes=3)
    assert (res.y_pred == y).mean() == 1.0
    assert res.train_loss[-1] < 0.1 * res.train_loss[0]


# ------------------------------------------------------------------------------------------------- Adan
def test_adan_known_answer_on_two_parameters():
    lr, wd, (b1, b2, b3), eps = 0.1, 0.5, (0.98, 0.92, 0.99), 1e-8
    theta = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = Adan([theta], lr=lr, weight_decay=wd)
    assert opt.defaults["betas"] == (b1, b2, b3) and opt.defaults["eps"] == eps

    def grad(t):  # loss t0^2 + t1^2 / 2
        return [2 * t[0], t[1]]

    got = []
    for _ in range(3):
        opt.zero_grad()
        (theta[0] ** 2 + 0.5 * theta[1] ** 2).backward()
        opt.step()
        got.append(theta.detach().tolist())
    # step 1 (m = g, v = 0, n = g^2): g = (2, -2) -> theta = ((1, -2) - 0.1 (1, -1)) / 1.05
    assert got[0] == pytest.approx([0.9 / 1.05, -1.9 / 1.05], abs=1e-8)
    t, g0 = [1.0, -2.0], grad([1.0, -2.0])
    m, v, n = list(g0), [0.0, 0.0], [x * x for x in g0]
    t = [(t[i] - lr * m[i] / (math.sqrt(n[i]) + eps)) / (1 + lr * wd) for i in range(2)]
    prev = g0
    for k in (1, 2):  # step 2 sets v = g1 - g0, step 3 decays it
        g = grad(t)
        for i in range(2):
            d = g[i] - prev[i]
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = d if k == 1 else b2 * v[i] + (1 - b2) * d
            n[i] = b3 * n[i] + (1 - b3) * (g[i] + b2 * d) ** 2
        t = [(t[i] - lr * (m[i] + b2 * v[i]) / (math.sqrt(n[i]) + eps)) / (1 + lr * wd) for i in range(2)]
        prev = g
        assert got[k] == pytest.approx(t, abs=1e-12)


def test_adan_in_the_trainer_and_refused_by_the_fold_batched_one():
    model = torch.nn.Linear(2, 2)
    assert isinstance(make_optimizer(model, TrainConfig(optimizer="adan", lr=1e-4)), Adan)
    with pytest.raises(FoldBatchingUnsupported, match="adan"):
        StackedOptimizer({"w": torch.zeros(2, 3)}, TrainConfig(optimizer="adan"))


# ---------------------------------------------------------------------------------------- magnification
def test_band_factors_follow_wu_et_al_bound():
    # alpha_l = clip(11 * 2^(l+1) / 16 - 1, 0, 10)
    assert band_factors(10.0, 16.0, 5) == pytest.approx([0.375, 1.75, 4.5, 10.0, 10.0])
    assert band_factors(10.0, 1e-6, 3) == [10.0, 10.0, 10.0]


def test_magnify_known_answers():
    rng = np.random.default_rng(0)
    apex = rng.uniform(60, 190, (64, 64, 3)).astype(np.float32)
    # a uniform change (illumination) sits in the residual: not amplified
    np.testing.assert_allclose(magnify(apex - 5, apex, 10.0, 16.0, 3), apex, atol=1e-4)
    # every band at full alpha: apex + alpha (D - expand(residual of D)), with cv2's pyramid directly
    d = rng.normal(0, 2, (64, 64, 3)).astype(np.float32)
    r = d
    for _ in range(3):
        r = cv2.pyrDown(r)
    for s in (16, 32, 64):
        r = cv2.pyrUp(r, dstsize=(s, s))
    np.testing.assert_allclose(magnify(apex - d, apex, 7.0, 1e-6, 3), apex + 7.0 * (d - r), atol=1e-3)
    # a smooth change (wavelength 112 px) is multiplied by nearly alpha (measured 9.23: the bands overlap and
    # the 4x4 residual is not amplified); a fine one (8 px, below lambda_c = 16) is attenuated (measured 1.11)
    xx = np.mgrid[0:224, 0:224][1].astype(np.float32)
    base = np.full((224, 224), 120.0, dtype=np.float32)
    core = (slice(28, -28), slice(28, -28))  # away from the pyramid's borders
    gains = []
    for lam in (112, 8):
        wave = (2.0 * np.sin(2 * np.pi * xx / lam)).astype(np.float32)
        out = magnify(base, base + wave, 10.0, 16.0, 6) - (base + wave)
        gains.append(float((out[core] * wave[core]).sum() / (wave[core] ** 2).sum()))
    assert 9.0 < gains[0] <= 10.0 and 0.5 < gains[1] < 2.0


# ------------------------------------------------------------------------------------------ registration
@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Two clips of each of two subjects of synthetic-casme2, views cached in a private folder."""
    with synthetic_subset(tmp_path_factory, lambda groups: [groups[0], groups[2]], "synthetic-casme2") as ds:
        yield ds.subset((ds.clips.groupby("group").cumcount() < 2).to_numpy())


def test_registration_views_and_a_fold_on_a_synthetic_dataset(small):
    spec = get_method("mfdan")
    cfg = spec.config()
    assert spec.family == "deep" and "flow-driven" in spec.paper.lower()
    assert (cfg.optimizer, cfg.lr, cfg.batch_size, cfg.loss, cfg.focal_gamma) == ("adan", 1e-4, 16, "focal", 2.0)
    assert cfg.dropkey == 0.4 and spec.config("dropkey0.3").dropkey == 0.3
    for key in ("heads", "window", "merges", "dropkey", "optimizer", "image_input", "magnify_alpha"):
        assert len(spec.sources[key]) > 10
    assert "0.8453" in spec.notes and "0.9326" in spec.notes and "SUBSTITUTE" in spec.notes
    assert {"baselines.mfdan", "baselines.adan", "baselines.dssn", "benchmarks.data.magnify_views"} <= \
        code_modules("mfdan")
    views, note, preferred = resolve_views(spec, cfg, small)
    assert preferred and [v.name for v in views] == ["flow_uvs", "magnified_apex"]
    assert "substitute magnification" in note and "Eulerian" in note
    spec64 = ViewSpec.of("magnified_apex", size=64)
    img = get_view(small, 0, spec64)
    onset, apex = (get_view(small, 0, ViewSpec.of(f"{w}_frame", size=64)) for w in ("onset", "apex"))
    assert img.shape == (64, 64, 3) and img.dtype == np.float32
    np.testing.assert_allclose(img, np.clip(magnify(onset, apex, 10.0, 16.0, 6), 0, 255), atol=1e-4)
    np.testing.assert_array_equal(get_view(small, 0, spec64), img)  # from the cache
    x = spec.inputs({"flow_uvs": np.zeros((1, 3, 64, 64)), "magnified_apex": img[None]}, cfg)
    assert x["image"].shape == (1, 3, 64, 64) and float(x["image"].max()) <= 1.0
    df = run_loso("mfdan", small, epochs=1, folds=1, overrides=TINY)
    assert len(df) == (small.clips["group"] == sorted(small.clips["group"].unique())[0]).sum()
    assert df["protocol_note"].str.contains("substitute magnification").all()


def test_not_runnable_on_public_megc(shared_data):
    from benchmarks.data.registry import load_dataset

    ds = load_dataset("megc2019-public", shared_data / "megc2019")
    spec = get_method("mfdan")
    with pytest.raises(NotRunnable, match="mfdan cannot run on megc2019-public"):
        resolve_views(spec, spec.config(), ds)  # first reason: the stored flow is 28x28, not 224
    reason = unavailable_reason(ds, spec.input_views(spec.config())[1])
    assert "onset_frame needs the onset frame" in reason and "magnified_apex is computed from" in reason
