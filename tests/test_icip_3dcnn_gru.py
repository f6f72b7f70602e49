"""ICIP 2024 3D-CNN + GRU + modified CBAM (baselines.icip_3dcnn_gru, registered as icip3d_gru) and the
frame_sequence view (benchmarks.data.sequence_views)."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from baselines.icip_3dcnn_gru import (
    GRU,
    ICIP3DCNNGRU,
    ChannelAttention3D,
    ICIP3DConfig,
    ModifiedCBAM3D,
    SpatialAttention3D,
)
from benchmarks import batched_trainer as BT
from benchmarks.data.sequence_views import sequence_numbers
from benchmarks.data.views import ViewSpec, get_view, view_array
from benchmarks.evaluate import NotRunnable, method_config, resolve_views, run_loso
from benchmarks.methods.icip_3dcnn_gru import dataset_defaults
from benchmarks.registry import get_method
from benchmarks.splits import loso_splits
from benchmarks.trainer import TrainConfig, train_fold
from benchmarks.units import code_modules
from tests.conftest import synthetic_subset

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(n_frames=8, image_size=32, filters=4, reduction=2, hidden=(16, 8), gru_units=16, head_hidden=8)


def _n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ------------------------------------------------------------------------------------------------ model
def _hand_count(size=128, f=32, c_in=3, r=8, hidden=(128, 64), units=1024, head=32, k=3) -> int:
    """Parameters of ME_model.py's Keras model, layer by layer (GRU with reset_after=True: two biases)."""
    conv = lambda kk, i, o: kk ** 3 * i * o + o  # noqa: E731
    side = math.ceil(math.ceil(size / 2) / 2)
    mlp = (f * (f // r) + f // r) + ((f // r) * f + f)
    return (conv(5, c_in, f) + conv(3, c_in, f) + conv(3, 2 * f, f) + 2 * mlp + conv(3, 2, f)
            + (side * side * f * hidden[0] + hidden[0]) + (hidden[0] * hidden[1] + hidden[1])
            + 3 * (hidden[1] * units + units * units + 2 * units) + (units * head + head) + (head * k + k))


def test_parameter_count_at_the_reference_configuration():
    assert _hand_count() == 7_656_395
    assert _n_params(ICIP3DCNNGRU(ICIP3DConfig())) == 7_656_395
    # frames change the steps, not the weights
    smic = ICIP3DCNNGRU(ICIP3DConfig(n_frames=10, dropout=0.3, init="torch"))
    assert _n_params(smic) == 7_656_395
    shared = ICIP3DCNNGRU(ICIP3DConfig(shared_mlp=True, init="torch"))  # the figure's shared MLP: one MLP fewer
    assert _n_params(shared) == 7_656_395 - (32 * 4 + 4 + 4 * 32 + 32)
    tiny = ICIP3DConfig(**TINY)
    assert _n_params(ICIP3DCNNGRU(tiny)) == _hand_count(32, 4, 3, 2, (16, 8), 16, 8, 3)


def test_shapes_at_the_reference_size():
    model = ICIP3DCNNGRU(ICIP3DConfig()).eval()
    x = torch.randn(1, 3, 30, 128, 128)
    with torch.no_grad():
        feats = model.features(x)
        out = model(x)
    assert feats.shape == (1, 32, 8, 32, 32)  # 30 -> 15 -> 8 steps, 128 -> 64 -> 32
    assert out["step_logits"].shape == (1, 8, 3) and out["logits"].shape == (1, 3)
    torch.testing.assert_close(out["logits"], out["step_logits"][:, 0])  # the script reads step 0
    assert ICIP3DConfig(n_frames=10).steps() == 3 and ICIP3DConfig().steps() == 8
    with pytest.raises(ValueError, match="expects"):
        model(torch.randn(1, 30, 3, 128, 128))


def test_readouts_and_config_checks():
    x = torch.randn(2, 3, 8, 32, 32)
    torch.manual_seed(0)
    last = ICIP3DCNNGRU(ICIP3DConfig(**TINY, readout="last")).eval()
    torch.manual_seed(0)
    mean = ICIP3DCNNGRU(ICIP3DConfig(**TINY, readout="mean")).eval()
    with torch.no_grad():
        a, b = last(x), mean(x)
    torch.testing.assert_close(a["step_logits"], b["step_logits"])
    torch.testing.assert_close(a["logits"], a["step_logits"][:, -1])
    torch.testing.assert_close(b["logits"], b["step_logits"].mean(1))
    with pytest.raises(ValueError, match="class_weights"):
        ICIP3DConfig(num_classes=5)  # the reference's three weights need three classes
    with pytest.raises(ValueError, match="readout"):
        ICIP3DConfig(readout="middle")


def test_modified_channel_attention_known_answer():
    ca = ChannelAttention3D(4, reduction=4, leak=0.2)
    with torch.no_grad():
        ca.mlp_avg[0].weight.copy_(torch.tensor([[1.0, 1.0, 1.0, 1.0]]))
        ca.mlp_avg[0].bias.zero_()
        ca.mlp_avg[2].weight.copy_(torch.tensor([[1.0], [0.0], [-1.0], [0.5]]))
        ca.mlp_avg[2].bias.zero_()
        ca.mlp_max[0].weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.0]]))
        ca.mlp_max[0].bias.fill_(-5.0)
        ca.mlp_max[2].weight.fill_(1.0)
        ca.mlp_max[2].bias.copy_(torch.tensor([0.0, 1.0, 0.0, 0.0]))
    # channels: avg = (2, 0, 0, 4), max = (3, 0, 2, 4)
    x = torch.tensor([[1.0, 3.0], [0.0, 0.0], [-2.0, 2.0], [4.0, 4.0]]).reshape(1, 4, 1, 1, 2)
    # MLP_avg: sum(avg) = 6 -> (6, 0, -6, 3); MLP_max: 3 - 5 = -2 -> LeakyReLU -0.4 -> (-0.4, 0.6, -0.4, -0.4)
    expected = torch.sigmoid(torch.tensor([-3.2, 0.3, 2.8, -1.7]))  # 0.5 (max - avg)
    got = ca(x)
    assert got.shape == (1, 4, 1, 1, 1)
    torch.testing.assert_close(got.flatten(), expected)
    ca.combine = "sum"  # CBAM's: sigmoid(avg + max)
    torch.testing.assert_close(ca(x).flatten(), torch.sigmoid(torch.tensor([5.6, 0.6, -6.4, 2.6])))


def test_spatial_attention_known_answer_and_parallel_order():
    sa = SpatialAttention3D(out_channels=2, kernel=3)
    with torch.no_grad():  # centre taps only: map 0 = sigmoid(max over C), map 1 = sigmoid(mean over C + 0.5)
        sa.conv.weight.zero_()
        sa.conv.weight[0, 0, 1, 1, 1] = 1.0
        sa.conv.weight[1, 1, 1, 1, 1] = 1.0
        sa.conv.bias.copy_(torch.tensor([0.0, 0.5]))
    x = torch.tensor([[1.0, -2.0, 0.0], [3.0, 0.0, 0.0]]).reshape(1, 2, 1, 1, 3)
    got = sa(x)
    assert got.shape == (1, 2, 1, 1, 3)
    torch.testing.assert_close(got[0, 0].flatten(), torch.sigmoid(torch.tensor([3.0, 0.0, 0.0])))
    torch.testing.assert_close(got[0, 1].flatten(), torch.sigmoid(torch.tensor([2.5, -0.5, 0.5])))
    torch.manual_seed(0)
    cbam = ModifiedCBAM3D(4, ICIP3DConfig(reduction=2))
    x = torch.randn(2, 4, 3, 5, 5)
    torch.testing.assert_close(cbam(x), x * cbam.channel(x) * cbam.spatial(x))  # both maps from x
    cbam.order = "sequential"
    y = x * cbam.channel(x)
    torch.testing.assert_close(cbam(x), y * cbam.spatial(y))


def test_gru_equals_torch_gru():
    torch.manual_seed(0)
    ours, ref = GRU(6, 5), torch.nn.GRU(6, 5, batch_first=True)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(ref, f"{name}_l0").copy_(getattr(ours, name))
    x = torch.randn(3, 4, 6)
    torch.testing.assert_close(ours(x), ref(x)[0])


def test_loss_is_the_keras_weighted_cross_entropy_plus_l2():
    model = ICIP3DCNNGRU(ICIP3DConfig(**TINY))
    steps = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]], [[0.0, 0.0, 0.0], [1.0, 1.0, 3.0]]])
    y = torch.tensor([0, 2])
    loss, parts = model.loss({"step_logits": steps, "logits": steps[:, 0]}, y)
    p = torch.softmax(steps, -1)
    w = torch.tensor([0.3, 0.35, 0.35])
    nll = -torch.log(torch.stack([p[0, :, 0], p[1, :, 2]]))  # (clip, step)
    wce = (w[y][:, None] * nll).mean()  # Keras: mean over batch and steps, no division by sum(w_y)
    l2 = 0.01 * sum((t ** 2).sum() for t in (model.fc1.weight, model.fc2.weight, model.cbam.channel.mlp_avg[0].weight,
                                             model.cbam.channel.mlp_max[0].weight))
    torch.testing.assert_close(parts["wce"], wce)
    torch.testing.assert_close(parts["l2"], l2)
    torch.testing.assert_close(loss, wce + l2)
    model.set_class_weights(torch.tensor([0, 0, 0, 1, 1, 2]))  # "balanced": 1/n, summing to 1
    torch.testing.assert_close(model.class_weight, torch.tensor([1 / 3, 1 / 2, 1.0]) / (11 / 6))


def test_overfits_a_tiny_batch():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 3, 8, 32, 32), dtype=np.float32)
    y = np.arange(12) % 3
    cfg = TrainConfig(epochs=40, batch_size=12, lr=3e-3)
    res = train_fold(lambda: ICIP3DCNNGRU(ICIP3DConfig(**TINY, dropout=0.0)), x, y, x, None, cfg, seed=0,
                     n_classes=3)
    assert res.loss_name == "model.loss"
    assert (res.y_pred == y).mean() == 1.0
    assert res.loss_parts[-1]["wce"] < 0.1 * res.loss_parts[0]["wce"]


def test_fold_batched_trainer_runs_the_five_d_model_under_vmap():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((9, 3, 4, 16, 16), dtype=np.float32)
    y, groups = np.arange(9) % 3, np.repeat(["d/a", "d/b", "d/c"], 3)
    folds = loso_splits(groups)
    tiny = {**TINY, "n_frames": 4, "image_size": 16}
    cfg = TrainConfig(epochs=2, batch_size=4, lr=1e-3)
    factory = lambda: ICIP3DCNNGRU(ICIP3DConfig(**tiny))  # noqa: E731
    seeds = [11, 12, 13]
    batched = BT.train_folds_batched(factory, x, y, folds, cfg, seeds, n_classes=3, max_folds_per_chunk=3)
    for f, s, r in zip(folds, seeds, batched, strict=True):
        seq = train_fold(factory, x[f.train_idx], y[f.train_idx], x[f.test_idx], None, cfg, s, n_classes=3)
        np.testing.assert_allclose(r.train_loss, seq.train_loss, rtol=1e-4)


# ----------------------------------------------------------------------------------------------- views
def test_sequence_numbers_take_the_first_frames_and_repeat_the_last():
    assert sequence_numbers([3, 4, 5, 6], 3) == ([3, 4, 5], 0)
    assert sequence_numbers([3, 4, 5], 5) == ([3, 4, 5, 5, 5], 2)
    assert sequence_numbers([3, 4, 5, 6], 2, start=5) == ([5, 6], 0)
    with pytest.raises(ValueError):
        sequence_numbers([3, 4], 2, start=9)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Two clips of each of two subjects of synthetic-smic, views cached in a private folder."""
    with synthetic_subset(tmp_path_factory, lambda groups: [groups[0], groups[2]]) as ds:
        yield ds.subset((ds.clips.groupby("group").cumcount() < 2).to_numpy())


def test_frame_sequence_view(small):
    from benchmarks.data import frames as F

    r = small.clips.iloc[0]
    n_avail = len(F.available_frames(r["frames"]))
    seq = get_view(small, 0, ViewSpec.of("frame_sequence", n_frames=4, size=64))
    raw = small.read_frames(0, F.available_frames(r["frames"])[:4])
    assert seq.shape == (4, 64, 64, 3) and seq.dtype == np.uint8
    import cv2
    np.testing.assert_array_equal(seq[1], cv2.resize(raw[1], (64, 64), interpolation=cv2.INTER_AREA))
    long = get_view(small, 0, ViewSpec.of("frame_sequence", n_frames=n_avail + 3, size=32))
    assert long.shape[0] == n_avail + 3
    np.testing.assert_array_equal(long[n_avail:], np.repeat(long[n_avail - 1:n_avail], 3, axis=0))
    onset = int(r["onset"])
    from_onset = get_view(small, 0, ViewSpec.of("frame_sequence", n_frames=2, size=32, start="onset"))
    first = get_view(small, 0, ViewSpec.of("frame_sequence", n_frames=onset + 2, size=32))
    np.testing.assert_array_equal(from_onset, first[onset:onset + 2])
    with pytest.raises(ValueError, match="start"):
        ViewSpec.of("frame_sequence", start="apex").canonical()


# ------------------------------------------------------------------------------------------- harness
def test_registration_dataset_defaults_and_a_loso_fold(small):
    spec = get_method("icip3d_gru")
    assert "3dcnn" in spec.paper.lower() and spec.family == "deep"
    assert "0.732" in spec.notes and "0.755" in spec.notes
    for key in ("n_frames", "dropout", "readout", "class_weights", "select_epoch", "step_labels"):
        assert len(spec.sources[key]) > 20
    assert {"benchmarks.data.sequence_views", "baselines.icip_3dcnn_gru"} <= code_modules("icip3d_gru")
    cfg = method_config(spec, small, None, None, None)  # synthetic-smic: SMIC/ME_model.py's settings
    assert (cfg.n_frames, cfg.dropout, cfg.class_weights) == (10, 0.3, (0.3, 0.35, 0.35))
    assert method_config(spec, small, None, {"n_frames": 12}, None).n_frames == 12  # overrides win
    views, note, preferred = resolve_views(spec, cfg, small)
    assert views == (ViewSpec.of("frame_sequence", n_frames=10, size=128, color="rgb", start="clip"),) and preferred
    seq = view_array(small, "frame_sequence", rows=[0, 1], **views[0].kwargs, progress=False)
    x = spec.inputs({"frame_sequence": seq}, cfg)
    assert x.shape == (2, 3, 10, 128, 128) and x.dtype == np.float32
    np.testing.assert_allclose(x.max(), 1.0, rtol=1e-6)  # (x - mean) / max(x - mean)
    np.testing.assert_allclose(x.mean(), 0.0, atol=1e-6)
    df = run_loso("icip3d_gru", small, epochs=1, folds=1, overrides={**TINY, "n_frames": 10})
    assert len(df) == (small.clips["group"] == sorted(small.clips["group"].unique())[0]).sum()
    assert (df["views"].str.contains("frame_sequence")).all() and (df["protocol_note"] == "").all()


def test_dataset_defaults_per_source_and_for_composites():
    def fake(sources, classes=("negative", "positive", "surprise")):
        return SimpleNamespace(clips=pd.DataFrame({"dataset": sources}), classes=classes)

    assert dataset_defaults(fake(["smic", "smic"])) == {"n_frames": 10, "dropout": 0.3}
    assert dataset_defaults(fake(["synthetic-samm"])) == {"n_frames": 30, "dropout": 0.3}
    assert dataset_defaults(fake(["casme2"])) == {"n_frames": 30, "dropout": 0.5}
    assert dataset_defaults(fake(["casme2", "samm", "smic"])) == {"n_frames": 30, "dropout": 0.5}
    five = dataset_defaults(fake(["casme2"], ("happiness", "surprise", "disgust", "repression", "others")))
    assert five["class_weights"] == "balanced"
    cfg = dataclasses.replace(ICIP3DConfig(init="torch"), num_classes=5, class_weights="balanced")
    assert ICIP3DCNNGRU(cfg).class_weight.shape == (5,)


def test_not_runnable_on_public_megc(shared_data):
    from benchmarks.data.registry import load_dataset

    ds = load_dataset("megc2019-public", shared_data / "megc2019")
    spec = get_method("icip3d_gru")
    with pytest.raises(NotRunnable, match="no frames") as e:
        resolve_views(spec, method_config(spec, ds, None, None, None), ds)
    assert "frame_sequence" in e.value.reason


def test_dataset_defaults_sit_below_variants_and_overrides(small):
    toy = dataclasses.replace(get_method("icip3d_gru"), name="toy_icip", variants={"v": {"dropout": 0.1}},
                              dataset_defaults=lambda ds: {"dropout": 0.9, "n_frames": 7})  # not registered
    assert method_config(toy, small, None, None, None).dropout == 0.9
    assert method_config(toy, small, "v", None, None).dropout == 0.1
    assert method_config(toy, small, "v", {"dropout": 0.2}, None).dropout == 0.2
    assert method_config(toy, small, "v", None, None).n_frames == 7
