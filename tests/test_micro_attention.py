"""Micro-Attention (baselines.micro_attention, registered as micro_attention) and the trainer's balanced batch order."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from baselines.micro_attention import (
    CaffeBatchNorm2d,
    MicroAttention,
    MicroAttentionConfig,
    MicroAttentionNet,
    iterations_to_epochs,
)
from benchmarks import batched_trainer as BT
from benchmarks import trainer
from benchmarks.data.views import ViewSpec, view_array
from benchmarks.evaluate import resolve_views, run_loso, train_config
from benchmarks.registry import get_method, hyperparameters, list_methods
from benchmarks.seeding import derive_seed, seeded_generator
from tests.conftest import synthetic_subset

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(input_size=32, train_resize=32, widths=(4, 8, 8, 8))  # the layout at a test's size


def _n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ------------------------------------------------------------------------------------------------ model
def _hand_count(widths=(64, 128, 256, 512), classes=3) -> int:
    """Parameters of the prototxt's network, layer by layer (Scale = 2 per channel, convs without bias but conv1)."""
    w0 = widths[0]
    total = 2 + (49 * w0 + w0) + 2 * w0  # data_bn/scale, conv1 (+bias), conv1_bn/scale
    total += 2 * 9 * w0 * w0 + 2 * w0 + 3 * w0 * w0  # layer_64_1: conv1, bn2, conv2; mask 1x1 (3C -> C)
    for c_in, c in zip(widths[:-1], widths[1:]):  # bn1, conv1, bn2, conv2, expand, mask
        total += 2 * c_in + 9 * c_in * c + 2 * c + 9 * c * c + c_in * c + 3 * c * c
    return total + 2 * widths[-1] + widths[-1] * classes + classes  # last_bn/scale, FC


def test_parameter_count_and_fixed_average():
    model = MicroAttentionNet(MicroAttentionConfig())
    assert _hand_count() == 5_943_813  # no count is published (paper, MA, ATN); this is the prototxt's
    assert _n_params(model) == 5_943_813
    state = model.state_dict()
    for k, c in enumerate((64, 128, 256, 512)):  # the fixed C -> 1 conv: weights 1/C, stored, never trained
        avg = state[f"blocks.{k}.attention.average"]
        assert avg.shape == (1, c, 1, 1) and torch.all(avg == 1.0 / c)
        assert f"blocks.{k}.attention.average" not in dict(model.named_parameters())
    assert state["blocks.1.attention.proj.weight"].shape == (128, 384, 1, 1)
    assert "blocks.0.expand.weight" not in state and state["blocks.1.expand.weight"].shape == (128, 64, 1, 1)
    assert state["fc.weight"].shape == (3, 512)
    assert _n_params(MicroAttentionNet(MicroAttentionConfig(**TINY))) == _hand_count(TINY["widths"])


def test_shapes_at_224_and_caffe_pooling():
    model = MicroAttentionNet(MicroAttentionConfig()).eval()
    seen = []
    for b in model.blocks:
        b.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape[1:])))
    with torch.no_grad():
        out = model(torch.rand(1, 1, 224, 224) * 255)
    assert out.shape == (1, 3)
    assert seen == [(64, 56, 56), (128, 28, 28), (256, 14, 14), (512, 7, 7)]  # ceil-mode pool: 112 -> 56
    with pytest.raises(ValueError, match=r"\(B, 1, 224, 224\)"):
        model(torch.zeros(1, 3, 224, 224))


def test_micro_attention_known_answer():
    unit = MicroAttention(2)
    with torch.no_grad():
        unit.proj.weight.copy_(torch.tensor([[1.0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 1, 0]]).view(2, 6, 1, 1))
    s, a, b = (torch.tensor(v).view(1, 2, 1, 1) for v in ([1.0, 2.0], [0.0, 1.0], [3.0, -1.0]))
    # concat [1, 2, 0, 1, 3, -1] -> proj (1, 4) -> channel mean 2.5 -> m = sigmoid(2.5); F = b + s = (4, 1)
    m = 1 / (1 + math.exp(-2.5))
    out = unit(s, a, b)
    torch.testing.assert_close(out.flatten(), torch.tensor([4 * (1 + m), 1 * (1 + m)]))
    torch.testing.assert_close(unit.mask(s, a, b).flatten(), torch.tensor([m]))
    assert [n for n, _ in unit.named_parameters()] == ["proj.weight"]  # the averaging conv is not trainable


def test_caffe_batchnorm_moving_average():
    bn = CaffeBatchNorm2d(1, average_fraction=0.5)
    batches = [torch.tensor([1.0, 3.0]), torch.tensor([5.0, 9.0]), torch.tensor([0.0, 2.0])]
    for x in batches:
        bn(x.view(2, 1, 1, 1))
    w = torch.tensor([0.25, 0.5, 1.0])  # f^2, f, 1; normalised by s_3 = 1.75
    means = torch.tensor([2.0, 7.0, 1.0])
    variances = torch.tensor([2.0, 8.0, 2.0])  # unbiased
    torch.testing.assert_close(bn.running_mean, (w @ means / w.sum()).view(1))
    torch.testing.assert_close(bn.running_var, (w @ variances / w.sum()).view(1))
    fresh = CaffeBatchNorm2d(1, average_fraction=0.5)
    fresh.load_state_dict(bn.state_dict())
    assert fresh._steps == 3  # the next update continues the same average


def test_iteration_schedule_in_epochs():
    cfg = MicroAttentionConfig()
    assert (cfg.epochs, cfg.lr_step_size) == (iterations_to_epochs(2500, 16), iterations_to_epochs(500, 16)) == (54, 11)
    tc = train_config(cfg, "last", "cpu")
    factors = [trainer.lr_factor(e, tc) for e in range(1, tc.epochs + 1)]
    assert sorted({round(f, 12) for f in factors}, reverse=True) == [1.0, 0.1, 0.01, 0.001, 1e-4]  # five levels
    assert factors[10] == 1.0 and factors[11] == pytest.approx(0.1) and factors[44] == pytest.approx(1e-4)
    assert (tc.optimizer, tc.momentum, tc.weight_decay, tc.batch_size, tc.batch_order) == ("sgd", 0.9, 5e-6, 16,
                                                                                           "balanced")


# ------------------------------------------------------------------------------------------ augmentation
def _tiny(**kw) -> MicroAttentionNet:
    return MicroAttentionNet(MicroAttentionConfig(**{**TINY, **kw}))


def test_augmentation_only_in_training_and_reproducible():
    model = _tiny()
    x = torch.rand(4, 1, 32, 32) * 255
    model.eval()
    torch.testing.assert_close(model(x), model(x))
    torch.manual_seed(0)
    a = model.augment(x)
    torch.manual_seed(0)
    torch.testing.assert_close(model.augment(x), a)
    assert not torch.equal(a, x)


def test_mirror_and_shift():
    x = torch.rand(6, 1, 32, 32) * 255
    torch.testing.assert_close(_tiny(augment_p=1.0, max_rotation=0, max_shift=0).augment(x), x.flip(-1))
    shifted = _tiny(augment_p=1.0, mirror=False, max_rotation=0).augment(x)
    d = x - shifted  # one integer 0..10 per image
    assert torch.all(d.amax(dim=(1, 2, 3)) - d.amin(dim=(1, 2, 3)) < 1e-3)
    k = d[:, 0, 0, 0]
    assert torch.all((k >= 0) & (k <= 10)) and torch.allclose(k, k.round(), atol=1e-3)


def test_rotation_matches_cv2_counter_clockwise():
    cv2 = pytest.importorskip("cv2")
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32)
    img = (100 + 60 * np.sin(xx / 5.0) + 40 * np.cos(yy / 7.0) + 3 * xx).astype(np.float32)
    x = torch.from_numpy(np.stack([img] * 8))[:, None]
    model = _tiny(augment_p=1.0, mirror=False, max_shift=0)
    torch.manual_seed(5)
    out = model.augment(x)
    torch.manual_seed(5)  # the same draws: (n, 3) uniforms, then the angles
    torch.rand(8, 3)
    angles = torch.randint(0, 6, (8,)).tolist()
    assert len(set(angles)) > 1
    for i, deg in enumerate(angles):  # cv2: positive angle = counter-clockwise; centre of the pixel grid
        m = cv2.getRotationMatrix2D((15.5, 15.5), deg, 1.0)
        ref = cv2.warpAffine(img, m, (32, 32), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        np.testing.assert_allclose(out[i, 0, 2:-2, 2:-2].numpy(), ref[2:-2, 2:-2], atol=0.05)


def test_random_crop_of_the_resized_frame():
    model = _tiny(input_size=32, train_resize=40, augment_p=0.0)
    x = torch.rand(3, 1, 32, 32) * 255
    big = torch.nn.functional.interpolate(x, size=(40, 40), mode="bilinear", align_corners=False)
    torch.manual_seed(1)
    out = model.augment(x)
    torch.manual_seed(1)
    offsets = torch.randint(0, 9, (3, 2)).tolist()
    for i, (r, c) in enumerate(offsets):
        torch.testing.assert_close(out[i], big[i, :, r:r + 32, c:c + 32])
    assert model.eval()(x).shape == (3, 3)  # evaluation: the 32 px input as is


def test_overfits_a_tiny_batch():
    torch.manual_seed(0)
    model = _tiny(augment_p=0.0)
    x = torch.rand(8, 1, 32, 32) * 255
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    for _ in range(60):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    assert torch.equal(model.eval()(x).argmax(1), y)  # Caffe running averages of the same batch


# ------------------------------------------------------------------------------------ balanced batch order
def test_balanced_pool_known_answer_and_seed():
    y = torch.tensor([0, 1, 0, 0, 2, 2])
    g = torch.Generator().manual_seed(4)
    pool = trainer.balanced_pool(y, g)
    g = torch.Generator().manual_seed(4)
    extra1 = torch.tensor([1])[torch.randint(1, (2,), generator=g)]
    extra2 = torch.tensor([4, 5])[torch.randint(2, (1,), generator=g)]
    assert pool.tolist() == [0, 2, 3, 1, *extra1.tolist(), 4, 5, *extra2.tolist()] and extra1.tolist() == [1, 1]
    assert torch.equal(trainer.balanced_pool(y, torch.Generator().manual_seed(4)), pool)
    assert trainer.fixed_order("balanced", y) is None
    assert trainer.TrainConfig(batch_order="balanced").batch_order == "balanced"


def test_balanced_pool_frequencies():
    y = torch.tensor([0] * 50 + [1] * 5 + [2] * 20)
    counts = torch.zeros(75)
    for seed in range(40):
        pool = trainer.balanced_pool(y, torch.Generator().manual_seed(seed))
        assert torch.bincount(y[pool]).tolist() == [50, 50, 50]  # every class at the majority count
        counts += torch.bincount(pool, minlength=75)
    per_sample = counts / 40  # class 1: 1 + 45/5 = 10 per sample on average; class 2: 1 + 30/20 = 2.5; class 0: 1
    assert torch.all(per_sample[:50] == 1)
    assert torch.allclose(per_sample[50:55], torch.full((5,), 10.0), atol=1.0)  # sd of a mean of 40: 0.42
    assert torch.allclose(per_sample[55:], torch.full((20,), 2.5), atol=0.6)  # sd 0.19


class _Recorder(nn.Module):
    """Logits from a linear layer; records the sample ids (its input) of every training batch."""

    def __init__(self) -> None:
        super().__init__()
        self.lin, self.seen = nn.Linear(1, 2), []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.seen.append(x[:, 0].long().tolist())
        return self.lin(x)


def test_train_fold_balanced_follows_the_shuffle_stream():
    y = torch.tensor([0, 0, 0, 0, 1, 0, 1])
    x = torch.arange(7, dtype=torch.float32)[:, None]
    models = []

    def factory():
        models.append(_Recorder())
        return models[-1]

    cfg = trainer.TrainConfig(epochs=2, batch_size=4, batch_order="balanced", device="cpu")
    trainer.train_fold(factory, x, y, x[:2], None, cfg, seed=11)
    g = seeded_generator(derive_seed(11, "shuffle"))
    pool = trainer.balanced_pool(y, g)
    expected = [b.tolist() for _ in range(2) for b in trainer.epoch_batches(7, 4, g, pool=pool)]
    assert models[0].seen == expected and [len(b) for b in expected] == [4, 4, 2] * 2  # 2 x 5
    assert sorted(y[sum(expected[:3], [])].tolist()) == [0] * 5 + [1] * 5


def test_fold_batched_trainer_refuses_balanced():
    cfg = trainer.TrainConfig(epochs=1, batch_size=4, batch_order="balanced", device="cpu")
    folds = [type("F", (), {"train_idx": np.arange(2, 6), "test_idx": np.arange(2)})()] * 2
    with pytest.raises(BT.FoldBatchingUnsupported, match="balanced"):
        BT.train_folds_batched(_Recorder, torch.zeros(6, 1), torch.tensor([0, 1] * 3), folds, cfg, [1, 2])


# ------------------------------------------------------------------------------------------- harness
@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Two clips of each of two subjects of synthetic-casme2 (frames: every view can be computed)."""
    with synthetic_subset(tmp_path_factory, lambda groups: groups[2:4], name="synthetic-casme2") as ds:
        yield ds.subset((ds.clips.groupby("group").cumcount() < 2).to_numpy())


def test_registration_sources_and_variants():
    assert "micro_attention" in list_methods(family="deep")
    spec = get_method("micro_attention")
    hp = hyperparameters(spec.defaults)
    assert set(hp) - {"num_classes"} <= set(spec.sources), set(hp) - set(spec.sources)
    assert spec.views == (ViewSpec.of("apex_frame", size=224, color="gray"),)
    assert spec.config("as_run").augment_p == 0.0
    assert (spec.config("ma_crop").train_resize, spec.config("ma_crop").mirror) == (240, False)
    assert "from scratch" in spec.notes


def test_views_and_one_epoch_on_synthetic(small):
    spec = get_method("micro_attention")
    cfg = spec.config(overrides=TINY)
    views, note, preferred = resolve_views(spec, cfg, small)
    assert views == (ViewSpec.of("apex_frame", size=32, color="gray"),) and note == "" and preferred
    frames = view_array(small, "apex_frame", size=32, color="gray", progress=False)
    x = spec.inputs({"apex_frame": frames}, cfg)
    assert x.shape == (len(small.clips), 1, 32, 32) and x.dtype == np.float32 and x.max() > 1
    np.testing.assert_array_equal(x[:, 0], frames)  # raw grey levels, as the authors' layer
    df = run_loso("micro_attention", small, epochs=1, folds=1, overrides={**TINY, "batch_size": 2})
    assert len(df) == 2 and set(df["views"]) == {str(views[0])}
    with pytest.raises(BT.FoldBatchingUnsupported, match="no-fold-batching"):
        run_loso("micro_attention", small, epochs=1, folds=2, overrides=TINY, fold_batching=True)


def test_views_on_public_megc(shared_data):
    from benchmarks.data.registry import load_dataset

    ds = load_dataset("megc2019-public", shared_data / "megc2019")
    spec = get_method("micro_attention")
    views, note, preferred = resolve_views(spec, spec.config(), ds)
    assert views == (ViewSpec.of("apex_frame", size=224, color="gray"),) and preferred and note == ""
    rows = [0, len(ds.clips) - 1]
    x = spec.inputs({"apex_frame": view_array(ds, "apex_frame", rows=rows, size=224, color="gray",
                                              progress=False)}, spec.config())
    assert x.shape == (2, 1, 224, 224) and 0 <= x.min() and x.max() <= 255 and x.std() > 5
    with torch.no_grad():
        assert spec.build(spec.config()).eval()(torch.from_numpy(x)).shape == (2, 3)
