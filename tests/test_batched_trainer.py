"""Fold-batched training against the sequential trainer: same data order, seeds, policies and predictions.

The batched trainer (``benchmarks.batched_trainer``) runs several folds as one vmapped computation (the CUDA
policy) or one fold at a time with the sequential kernels (the CPU policy); both are compared with
``benchmarks.trainer`` fold by fold, on folds of different training-set sizes (different numbers of batches,
last-batch sizes, a merged one-sample tail), with dropout and BatchNorm, for the policies last, val (with
patience: folds stop at different epochs) and oracle, and for MFVAN (pre_fit stages, dict inputs, its own
loss, a per-fold focal alpha).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import vmap

from baselines.ststnet import STSTNet
from benchmarks import batched_trainer as BT
from benchmarks.data.clips import ClipDataset
from benchmarks.data.registry import load_dataset
from benchmarks.evaluate import deep_inputs, method_config, resolve_views, run_loso, train_config, unit_key
from benchmarks.registry import get_method
from benchmarks.seeding import derive_seed, forked_global_rng
from benchmarks.splits import loso_splits
from benchmarks.trainer import TrainConfig, make_optimizer, train_fold, train_loso
from tests.conftest import synthetic_subset

CPU = {"device": "cpu"}
SIZES = (9, 12, 7, 10, 11, 17)  # subjects' clips: 66 samples; training folds 49..59, batches of 8 (49, 57: 8+1)
MFVAN_TINY = {"img_size": 32, "patch_grid": 4, "pretrain_epochs": 1, "ri_epochs": 1, "batch_size": 8}
SUBJECTS = ("synthetic-smic/s1", "synthetic-smic/s12", "synthetic-smic/s14", "synthetic-smic/s4")  # 26 clips


pytestmark = pytest.mark.usefixtures("one_thread")


def flow_like(sizes=SIZES, seed=0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x (N, 3, 28, 28), y with every class in every subject, groups 'd/s<i>')."""
    rng = np.random.default_rng(seed)
    groups = np.array([f"d/s{i}" for i, n in enumerate(sizes) for _ in range(n)], dtype=object)
    y = np.concatenate([np.arange(n) % 3 for n in sizes])
    x = rng.normal(size=(len(y), 3, 28, 28)).astype(np.float32) + y[:, None, None, None].astype(np.float32)
    return x, y, groups


def assert_same_folds(seq, bat, rtol: float = 1e-4, atol: float = 1e-4, exact: bool = False) -> None:
    """Fold by fold: loss histories, predictions and every policy field of the two trainers."""
    assert len(seq) == len(bat)
    for a, b in zip(seq, bat, strict=True):
        assert (a.fold, a.seed, a.epoch_policy, a.policy_label, a.score_name) == \
            (b.fold, b.seed, b.epoch_policy, b.policy_label, b.score_name)
        assert (a.loss_name, a.val_groups, a.device) == (b.loss_name, b.val_groups, b.device)
        np.testing.assert_array_equal(a.test_idx, b.test_idx)
        assert len(a.train_loss) == len(b.train_loss) == a.epochs_run == b.epochs_run
        if exact:
            assert a.train_loss == b.train_loss and a.loss_parts == b.loss_parts
            np.testing.assert_array_equal(a.proba, b.proba)
        else:
            np.testing.assert_allclose(b.train_loss, a.train_loss, rtol=rtol)
            np.testing.assert_allclose(b.proba, a.proba, atol=atol, rtol=0)
            assert [sorted(p) for p in a.loss_parts] == [sorted(p) for p in b.loss_parts]
            for pa, pb in zip(a.loss_parts, b.loss_parts, strict=True):
                np.testing.assert_allclose([pb[k] for k in sorted(pb)], [pa[k] for k in sorted(pa)], rtol=10 * rtol,
                                           atol=1e-6)
        np.testing.assert_array_equal(a.y_pred, b.y_pred)
        assert a.chosen_epoch == b.chosen_epoch and a.scores == b.scores


# ------------------------------------------------------------------------------------------------ optimiser
@pytest.mark.parametrize("impl", BT.StackedOptimizer.IMPLS)
@pytest.mark.parametrize("optimizer,weight_decay", [("adam", 0.0), ("adam", 0.1), ("adamw", 0.1), ("sgd", 0.1)])
def test_stacked_optimizer_is_torch_optim_per_fold(optimizer, weight_decay, impl):
    """Each fold's slice follows its own torch.optim optimiser: own state, own step count (folds 1..2 take
    extra steps), and a tensor without a gradient is skipped."""
    torch.manual_seed(0)
    cfg = TrainConfig(optimizer=optimizer, lr=1e-2, weight_decay=weight_decay, **CPU)
    stacked = {"w": torch.randn(3, 5, 4), "b": torch.randn(3, 4)}
    refs = [nn.ParameterDict({k: nn.Parameter(v[f].clone()) for k, v in stacked.items()}) for f in range(3)]
    ref_opts = [make_optimizer(r, cfg) for r in refs]
    opt = BT.StackedOptimizer(stacked, cfg, impl)
    for step in range(6):
        a = 0 if step % 2 == 0 else 1
        grads = {k: torch.randn(3 - a, *v.shape[1:]) for k, v in stacked.items()}
        if step == 4:
            grads["b"] = None
        opt.step(a, 3, grads)
        for f in range(a, 3):
            for k in stacked:
                refs[f][k].grad = None if grads[k] is None else grads[k][f - a].clone()
            ref_opts[f].step()
    for f in range(3):
        for k in stacked:
            if impl == "fused":
                torch.testing.assert_close(stacked[k][f], refs[f][k].detach(), rtol=1e-6, atol=1e-7)
            else:  # torch's own single-tensor / foreach code on the slice: bitwise
                assert torch.equal(stacked[k][f], refs[f][k].detach())
    assert [opt.step_count("b", f) for f in range(3)] == [2, 5, 5]
    assert [opt.step_count("w", f) for f in range(3)] == [3, 6, 6]


# -------------------------------------------------------------------------------------------------- dropout
class TwoDropouts(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Dropout(0.5), nn.Dropout(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x).sum(-1)) + self.a(x[:, :2]).sum(-1)


@pytest.mark.parametrize("mode", ["generator", "global"])
def test_fold_dropout_draws_each_folds_sequential_masks(mode):
    """Under vmap, each fold's masks are bitwise those F.dropout draws from the fold's own seeded global
    generator, call after call, in forward order (two steps)."""
    seeds = [11, 12, 13]
    x = torch.randn(3, 4, 6)
    template = TwoDropouts()
    streams = BT._FoldStreams(seeds, torch.device("cpu"), mode)
    BT._swap_dropout(template, streams)
    assert isinstance(template.a, BT.FoldDropout) and isinstance(template.b, BT.FoldDropout)

    def one(xf, pos):
        streams.pos = pos
        return template(xf)

    streams.active = range(3)
    batched = [vmap(one, randomness="same")(x, torch.arange(3)) for _ in range(2)]
    streams.active = None
    reference = TwoDropouts()
    for f, s in enumerate(seeds):
        with forked_global_rng(s):
            for step in range(2):
                assert torch.equal(batched[step][f], reference(x[f]))
    assert torch.equal(template.eval()(x[0]), TwoDropouts().eval()(x[0]))  # eval: no mask


# ------------------------------------------------------------------------------------------------- STSTNet
@pytest.mark.parametrize("policy,loss,extra", [
    ("last", "ce", {}),
    ("val", "balanced_ce", {"patience": 1}),
    ("oracle", "focal", {"focal_alpha": "balanced"}),
    ("last", "ce", {"batch_order": "by_label"}),
])
def test_ststnet_folds_match_the_sequential_trainer(policy, loss, extra):
    """STSTNet (BatchNorm, dropout) on six folds of different sizes: vmapped over all folds, and one fold at a
    time (bitwise the sequential trainer with torch's single-tensor optimiser)."""
    x, y, groups = flow_like()
    folds = loso_splits(groups)
    cfg = TrainConfig(epochs=3, batch_size=8, lr=5e-3, epoch_policy=policy, loss=loss, **extra, **CPU)
    seq = train_loso(STSTNet, x, y, folds, cfg, unit_key="cell", groups=groups, n_classes=3)
    seeds = [derive_seed("cell", k) for k in range(len(folds))]
    vmapped = BT.train_folds_batched(STSTNet, x, y, folds, cfg, seeds, groups=groups, n_classes=3,
                                     max_folds_per_chunk=len(folds))
    assert_same_folds(seq, vmapped, rtol=1e-3)  # Adam turns rounding in near-zero gradients into ~lr steps
    one_by_one = BT.train_folds_batched(STSTNet, x, y, folds, cfg, seeds, groups=groups, n_classes=3,
                                        max_folds_per_chunk=1, optimizer_impl="single")
    assert_same_folds(seq, one_by_one, exact=True)
    if policy == "val":  # patience 1: some folds stop before the last epoch, and stop updating there
        assert len({r.epochs_run for r in seq}) > 1


def test_chunks_keep_the_callers_fold_order_and_numbers():
    x, y, groups = flow_like(sizes=(9, 12, 7, 10, 11))
    folds = loso_splits(groups)
    cfg = TrainConfig(epochs=2, batch_size=8, lr=5e-3, **CPU)
    seeds = [derive_seed("u", k) for k in range(len(folds))]
    whole = BT.train_folds_batched(STSTNet, x, y, folds, cfg, seeds, max_folds_per_chunk=len(folds))
    timings: dict[str, float] = {}
    parts = BT.train_folds_batched(STSTNet, x, y, folds, cfg, seeds, max_folds_per_chunk=2, timings=timings)
    assert [r.fold for r in parts] == list(range(len(folds)))
    assert_same_folds(whole, parts)
    assert timings["folds per chunk"] == 2 and timings["train steps"] > 0 and "evaluate" in timings
    assert BT.chunk_size(100, 10, torch.device("cpu"), budget=350) == 3
    assert BT.chunk_size(100, 10, torch.device("cpu"), budget=50) == 1
    assert BT.chunk_size(100, 2, torch.device("cpu"), budget=10_000) == 2
    assert BT.chunk_size(100, 10, torch.device("cpu"), budget=10_000, max_folds=4) == 4


# --------------------------------------------------------------------------------------------------- MFVAN
@pytest.fixture(scope="module")
def small(tmp_path_factory) -> ClipDataset:
    """Four subjects of synthetic-smic (every class in each); views cached in a private folder."""
    with synthetic_subset(tmp_path_factory, lambda groups: list(SUBJECTS)) as ds:
        yield ds


def test_mfvan_folds_match_the_sequential_trainer(small):
    """MFVAN with RI (pre_fit stages 1 and 1b per fold, dict inputs, its own loss with parts, the per-fold
    focal alpha), all four folds vmapped, against the sequential trainer."""
    spec = get_method("mfvan")
    cfg = method_config(spec, small, "global+s1+ri", MFVAN_TINY, 2)
    x = deep_inputs(spec, cfg, small, resolve_views(spec, cfg, small)[0])
    y, groups = small.labels(), small.groups()
    tcfg = train_config(cfg, "last", "cpu")
    key = unit_key(spec, cfg, small, 0)
    folds = loso_splits(groups)
    seq = [dataclasses.replace(  # what evaluate._run_deep runs per fold, labelled as train_loso labels it
        train_fold(lambda: spec.build(cfg), {k: v[f.train_idx] for k, v in x.items()}, y[f.train_idx],
                   {k: v[f.test_idx] for k, v in x.items()}, None, tcfg, derive_seed(key, f.k),
                   groups_train=groups[f.train_idx], n_classes=3, pre_fit=spec.pre_fit(cfg, x, f)),
        fold=f.k, test_idx=f.test_idx) for f in folds]
    bat = BT.train_folds_batched(lambda: spec.build(cfg), x, y, folds, tcfg, [derive_seed(key, f.k) for f in folds],
                                 groups=groups, n_classes=3, pre_fit_hooks=[spec.pre_fit(cfg, x, f) for f in folds],
                                 max_folds_per_chunk=len(folds))
    assert all(s.loss_name == "model.loss" and {"remove", "mask", "class_global"} <= set(s.loss_parts[0])
               for s in seq)
    # the first epoch agrees tightly; later epochs drift at rounding level through Adam and the theta mask
    np.testing.assert_allclose([b.train_loss[0] for b in bat], [s.train_loss[0] for s in seq], rtol=1e-5)
    assert_same_folds(seq, bat, rtol=2e-3, atol=2e-3)


def test_mfvan_fold_alpha_lives_in_a_buffer():
    spec = get_method("mfvan")
    model = spec.build(spec.config("global", {"img_size": 32, "patch_grid": 4}))
    assert torch.equal(model.focal_alpha, torch.ones(3))
    assert "focal_alpha" not in model.state_dict()  # checkpoints unchanged
    model.set_focal_alpha((0.5, 2.0, 1.0))
    assert torch.equal(model.focal_alpha, torch.tensor([0.5, 2.0, 1.0]))
    assert model.net.config.focal_alpha == (0.5, 2.0, 1.0)


def test_run_loso_fold_batching_agrees_with_sequential(small, monkeypatch):
    kw = dict(variant="global", epochs=2, overrides=MFVAN_TINY, seed=1)
    seq = run_loso("mfvan", small, **kw)
    per_fold = run_loso("mfvan", small, fold_batching=True, **kw)  # CPU policy: one fold at a time
    monkeypatch.setitem(BT.DEFAULT_FOLDS_PER_CHUNK, "cpu", None)  # the CUDA policy: every fold in one vmap
    vmapped = run_loso("mfvan", small, fold_batching=True, **kw)
    for df in (per_fold, vmapped):
        pd.testing.assert_frame_equal(df, seq)


# ----------------------------------------------------------------------------------------------- refusals
class NoisyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * 28 * 28, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        return self.fc(x + 0.1 * torch.randn_like(x) if self.training else x)


class Dropout2dNet(NoisyNet):
    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout2d(0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(x).flatten(1))


@pytest.mark.parametrize("chunk", [1, 3])
def test_other_in_forward_randomness_is_refused(chunk):
    x, y, groups = flow_like(sizes=(9, 12, 7))
    folds = loso_splits(groups)
    cfg = TrainConfig(epochs=1, batch_size=8, **CPU)
    with pytest.raises(BT.FoldBatchingUnsupported, match="global generator"):
        BT.train_folds_batched(NoisyNet, x, y, folds, cfg, [1, 2, 3], max_folds_per_chunk=chunk)
    with pytest.raises(BT.FoldBatchingUnsupported, match="Dropout2d"):
        BT.train_folds_batched(Dropout2dNet, x, y, folds, cfg, [1, 2, 3], max_folds_per_chunk=chunk)


def test_inputs_are_checked_and_global_rng_is_left_alone():
    x, y, groups = flow_like(sizes=(9, 12, 7))
    folds = loso_splits(groups)
    cfg = TrainConfig(epochs=1, batch_size=8, **CPU)
    with pytest.raises(ValueError, match="fold seeds"):
        BT.train_folds_batched(STSTNet, x, y, folds, cfg, [1, 2])
    with pytest.raises(ValueError, match="pre_fit hooks"):
        BT.train_folds_batched(STSTNet, x, y, folds, cfg, [1, 2, 3], pre_fit_hooks=[None])
    with pytest.raises(ValueError, match="needs groups"):
        BT.train_folds_batched(STSTNet, x, y, folds, TrainConfig(epochs=1, epoch_policy="val", **CPU), [1, 2, 3])
    bad = [type("F", (), {"train_idx": np.arange(5), "test_idx": np.arange(4, 8)})()]
    with pytest.raises(ValueError, match="overlap"):
        BT.train_folds_batched(STSTNet, x, y, bad, cfg, [1])
    torch.manual_seed(123)
    before = torch.get_rng_state()
    BT.train_folds_batched(STSTNet, x, y, folds, cfg, [1, 2, 3], max_folds_per_chunk=3)
    assert torch.equal(before, torch.get_rng_state())


# ---------------------------------------------------------------------------------------------- real data
@pytest.mark.slow
@pytest.mark.shared
@pytest.mark.parametrize("method", ["ststnet", "off_apexnet"])
def test_megc2019_public_folds_match(shared_data, method):
    """Eight real folds of the public composite, two epochs, all vmapped: the sequential predictions."""
    ds = load_dataset("megc2019-public")
    spec = get_method(method)
    cfg = method_config(spec, ds, None, None, 2)
    x = deep_inputs(spec, cfg, ds, resolve_views(spec, cfg, ds)[0])
    y = np.array(ds.labels())
    folds = loso_splits(ds.groups())[:8]
    tcfg = train_config(cfg, "last", "cpu")
    key = unit_key(spec, cfg, ds, 0)
    seq = [train_fold(lambda: spec.build(cfg), x[f.train_idx], y[f.train_idx], x[f.test_idx], None, tcfg,
                      derive_seed(key, f.k), n_classes=3) for f in folds]
    bat = BT.train_folds_batched(lambda: spec.build(cfg), x, y, folds, tcfg, [derive_seed(key, f.k) for f in folds],
                                 n_classes=3, max_folds_per_chunk=8)
    for s, b in zip(seq, bat, strict=True):
        np.testing.assert_allclose(b.train_loss, s.train_loss, rtol=1e-4)
        np.testing.assert_array_equal(b.y_pred, s.y_pred)
        assert F.l1_loss(torch.from_numpy(b.proba), torch.from_numpy(s.proba)) < 1e-4
