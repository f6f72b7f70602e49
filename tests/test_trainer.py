"""Tests of the shared trainer (benchmarks/trainer.py) and the seeding helpers (benchmarks/seeding.py)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks import trainer
from benchmarks.seeding import derive_seed, forked_global_rng
from benchmarks.trainer import (
    ORACLE_LABEL,
    TrainConfig,
    balanced_class_weights,
    epoch_batches,
    fixed_class_f1,
    focal_loss,
    lr_factor,
    resolve_device,
    split_validation_groups,
    train_fold,
    train_loso,
)

CPU = dict(device="cpu")


pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------------------------------ toy problems
def blobs(n_per_class: int = 20, n_classes: int = 3, dim: int = 4, seed: int = 0, spread: float = 0.3):
    """Well separated Gaussian blobs: class c centred at 3 * e_c."""
    g = np.random.default_rng(seed)
    x = np.concatenate([g.normal(0, spread, (n_per_class, dim)) + 3 * np.eye(dim)[c] for c in range(n_classes)])
    y = np.repeat(np.arange(n_classes), n_per_class)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


class MLP(nn.Module):
    def __init__(self, dim: int = 4, n_classes: int = 3, dropout: float = 0.3):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, n_classes)
        )

    def forward(self, x):
        return self.net(x)


class TwoStream(nn.Module):
    """Two inputs fused late, returning a dict with logits (like two-stream nets and MFVAN)."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.head = nn.Linear(4, 8), nn.Linear(2, 8), nn.Linear(16, 3)

    def forward(self, apex, onset):
        return {"logits": self.head(torch.cat([self.a(apex).relu(), self.b(onset).relu()], dim=1))}


class ScriptedModel(nn.Module):
    """Predictions scripted by epoch. Feature 0 carries the true label; one full batch per epoch.

    The ``epochs_done`` buffer counts training forwards (= epochs with a full batch) and is part of the
    state dict, so restoring a saved state restores the predictions of that epoch. At evaluation, epochs in
    ``good`` predict the true label, every other epoch predicts (label + 1) mod 3.
    """

    def __init__(self, good: set[int]):
        super().__init__()
        self.good = good
        self.w = nn.Parameter(torch.zeros(()))
        self.register_buffer("epochs_done", torch.zeros((), dtype=torch.long))

    def forward(self, x):
        label = x[:, 0].long()
        if self.training:
            self.epochs_done += 1
        shift = 0 if int(self.epochs_done) in self.good else 1
        return F.one_hot((label + shift) % 3, 3).float() * 5 + self.w * x[:, :1]


def scripted_data(n_subjects: int = 6, per_subject: int = 3):
    y = torch.arange(n_subjects * per_subject) % 3
    x = torch.stack([y.float(), torch.arange(len(y)).float()], dim=1)
    groups = np.repeat([f"s{i:02d}" for i in range(n_subjects)], per_subject)
    return x, y, groups


# ----------------------------------------------------------------------------------------------- seeding
def test_derive_seed_is_stable_and_distinct():
    assert derive_seed("casme2/stst", 0) == derive_seed("casme2/stst", 0)
    assert derive_seed(("a", 1), 2) == derive_seed(["a", 1], 2)  # tuples are written as lists
    seeds = {derive_seed("unit", k) for k in range(100)}
    assert len(seeds) == 100 and all(0 <= s < 2**63 for s in seeds)
    assert derive_seed("unit", 1) != derive_seed("unit", "1")
    # pinned value: the derivation must never change (sha256 of canonical JSON '["unit",0]', top 63 bits)
    assert (
        derive_seed("unit", 0) == int.from_bytes(__import__("hashlib").sha256(b'["unit",0]').digest()[:8], "big") >> 1
    )
    with pytest.raises(ValueError, match="JSON"):
        derive_seed(object())


def test_forked_global_rng_restores_state():
    before = torch.get_rng_state()
    with forked_global_rng(5):
        a = torch.rand(3)
    with forked_global_rng(5):
        b = torch.rand(3)
    assert torch.equal(a, b)
    assert torch.equal(torch.get_rng_state(), before)


def test_epoch_batches_cover_each_sample_once_and_merge_singleton():
    g = torch.Generator().manual_seed(0)
    batches = epoch_batches(9, 4, g)
    assert [len(b) for b in batches] == [4, 5]  # 4, 4, 1 -> the trailing single sample joins the last batch
    assert sorted(torch.cat(batches).tolist()) == list(range(9))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(torch.cat(epoch_batches(10, 3, g1)), torch.randperm(10, generator=g2))


# ------------------------------------------------------------------------------------------------ losses
def test_focal_loss_gamma0_equals_cross_entropy():
    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(7, 4, generator=g), torch.randint(0, 4, (7,), generator=g)
    assert torch.allclose(focal_loss(logits, target, gamma=0.0, alpha=None), F.cross_entropy(logits, target))


def test_focal_loss_hand_computed():
    logits = torch.tensor([[0.0, math.log(3.0)]])  # p = [0.25, 0.75]
    target = torch.tensor([1])
    expected = -(0.25**2) * math.log(0.75)
    assert focal_loss(logits, target, gamma=2.0).item() == pytest.approx(expected, rel=1e-6)
    alpha = torch.tensor([1.0, 0.4])
    assert focal_loss(logits, target, 2.0, alpha).item() == pytest.approx(0.4 * expected, rel=1e-6)


def test_balanced_class_weights_hand_computed():
    # counts [3, 1] -> 1/n = [1/3, 1], mean 2/3 -> [0.5, 1.5]
    assert balanced_class_weights(np.array([0, 0, 0, 1]), 2).tolist() == pytest.approx([0.5, 1.5])
    # an absent class gets weight 0 and does not enter the normalisation
    assert balanced_class_weights(np.array([0, 0, 0, 1]), 3).tolist() == pytest.approx([0.5, 1.5, 0.0])
    # counts [2, 4, 4] -> [1/2, 1/4, 1/4], mean 1/3 -> [1.5, 0.75, 0.75]
    w = balanced_class_weights(np.array([0, 0, 1, 1, 1, 1, 2, 2, 2, 2]), 3)
    assert w.tolist() == pytest.approx([1.5, 0.75, 0.75])


def test_make_loss_balanced_ce_uses_training_weights():
    y = torch.tensor([0, 0, 0, 1])
    logits = torch.randn(4, 2, generator=torch.Generator().manual_seed(1))
    loss = trainer.make_loss(TrainConfig(loss="balanced_ce"), y, 2)(logits, y)
    assert torch.allclose(loss, F.cross_entropy(logits, y, weight=torch.tensor([0.5, 1.5])))
    focal = trainer.make_loss(TrainConfig(loss="focal", focal_gamma=0.0, focal_alpha="balanced"), y, 2)
    per_sample = F.cross_entropy(logits, y, reduction="none") * torch.tensor([0.5, 0.5, 0.5, 1.5])
    assert torch.allclose(focal(logits, y), per_sample.mean())


def test_fixed_class_f1_hand_computed():
    # class 0: tp 1, fp 1, fn 1 -> 0.5; class 1: tp 1, fp 0, fn 1 -> 2/3; class 2: tp 0, fp 1, fn 0 -> 0
    # class 3 absent from truth and prediction -> 0 over the fixed list
    y_true, y_pred = np.array([0, 0, 1, 1]), np.array([0, 2, 1, 0])
    assert fixed_class_f1(y_true, y_pred, 3) == pytest.approx((0.5 + 2 / 3 + 0) / 3)
    assert fixed_class_f1(y_true, y_pred, 4) == pytest.approx((0.5 + 2 / 3) / 4)
    from sklearn.metrics import f1_score

    g = np.random.default_rng(0)
    for _ in range(5):
        a, b = g.integers(0, 4, 9), g.integers(0, 4, 9)
        ref = f1_score(a, b, labels=range(5), average="macro", zero_division=0)
        assert fixed_class_f1(a, b, 5) == pytest.approx(ref)


# ----------------------------------------------------------------------------------------- configuration
def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="epoch_policy"):
        TrainConfig(epoch_policy="best")
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="rmsprop")
    with pytest.raises(ValueError, match="focal_alpha"):
        TrainConfig(focal_alpha="inverse")
    assert TrainConfig().epoch_policy == "last"
    assert TrainConfig(focal_alpha=[1, 2]).focal_alpha == (1.0, 2.0)


def test_resolve_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="cuda"):
        resolve_device("cuda")


# ------------------------------------------------------------------------------------------ determinism
def test_same_seed_identical_different_seed_different():
    x, y = blobs(spread=1.5)
    cfg = TrainConfig(epochs=5, batch_size=8, lr=1e-2, **CPU)
    torch.manual_seed(123)  # the global RNG state must not matter ...
    a = train_fold(MLP, x[::2], y[::2], x[1::2], None, cfg, seed=7)
    torch.manual_seed(999)
    state = torch.get_rng_state()
    b = train_fold(MLP, x[::2], y[::2], x[1::2], None, cfg, seed=7)
    assert torch.equal(torch.get_rng_state(), state)  # ... and is left untouched
    assert a.train_loss == b.train_loss  # bitwise
    assert np.array_equal(a.proba, b.proba) and np.array_equal(a.y_pred, b.y_pred)
    c = train_fold(MLP, x[::2], y[::2], x[1::2], None, cfg, seed=8)
    assert c.train_loss != a.train_loss and not np.array_equal(c.proba, a.proba)
    assert not torch.are_deterministic_algorithms_enabled()  # restored after the fold


def test_init_depends_on_seed_only():
    m1, m2 = trainer.init_model(MLP, 3), trainer.init_model(MLP, 3)
    assert all(torch.equal(p, q) for p, q in zip(m1.state_dict().values(), m2.state_dict().values(), strict=True))
    m3 = trainer.init_model(MLP, 4)
    assert not torch.equal(m1.net[0].weight, m3.net[0].weight)


# ------------------------------------------------------------------------------------------------ policies
def test_last_separates_toy_problem():
    x, y = blobs(seed=1)
    xt, yt = blobs(n_per_class=10, seed=2)
    res = train_fold(MLP, x, y, xt, yt, TrainConfig(epochs=30, batch_size=16, lr=1e-2, **CPU), seed=0)
    assert np.mean(res.y_pred == yt.numpy()) == 1.0
    assert res.epoch_policy == "last" and res.policy_label == "last"
    assert res.chosen_epoch == res.epochs_run == 30 and len(res.train_loss) == 30
    assert res.train_loss[-1] < res.train_loss[0]
    assert res.proba.shape == (30, 3) and np.allclose(res.proba.sum(1), 1, atol=1e-5)
    assert res.scores == {} and res.score_name is None and res.device == "cpu"


@pytest.mark.parametrize("loss", ["balanced_ce", "focal"])
def test_other_losses_train(loss):
    x, y = blobs(seed=1)
    x, y = x[5:], y[5:]  # imbalance the classes
    cfg = TrainConfig(epochs=30, batch_size=16, lr=1e-2, loss=loss, focal_alpha="balanced", **CPU)
    res = train_fold(MLP, x, y, *blobs(n_per_class=5, seed=2)[:1], None, cfg, seed=0)
    assert res.loss_name == loss and res.train_loss[-1] < res.train_loss[0]
    assert np.array_equal(res.y_pred, np.repeat(np.arange(3), 5))


def test_val_picks_best_validation_epoch_and_restores_its_weights():
    x, y, groups = scripted_data()
    xt = torch.tensor([[0.0, 100.0], [1.0, 101.0], [2.0, 102.0]])
    yt = np.array([0, 1, 2])
    cfg = TrainConfig(epochs=6, batch_size=64, epoch_policy="val", val_subjects=2, **CPU)
    res = train_fold(lambda: ScriptedModel(good={3, 5}), x, y, xt, None, cfg, seed=11, groups_train=groups)
    assert res.scores == {1: 0.0, 2: 0.0, 3: 1.0, 4: 0.0, 5: 1.0, 6: 0.0}
    assert res.chosen_epoch == 3  # arg-max, ties -> earliest
    assert np.array_equal(res.y_pred, yt)  # epoch 3's state (epoch 6 would predict label + 1)
    assert res.score_name == "val_macro_f1" and res.policy_label.startswith("val")
    assert len(res.val_groups) == 2 and set(res.val_groups) <= set(groups)


def test_val_real_training_choice_is_argmax_and_patience_stops():
    x, y = blobs(n_per_class=24, spread=2.0)
    groups = np.tile(np.repeat(np.arange(6), 4), 3)
    cfg = TrainConfig(epochs=12, batch_size=16, lr=5e-3, epoch_policy="val", eval_every=2, **CPU)
    res = train_fold(MLP, x, y, x[:5], None, cfg, seed=0, groups_train=groups)
    assert sorted(res.scores) == [2, 4, 6, 8, 10, 12]
    best = max(res.scores.values())
    assert res.chosen_epoch == min(e for e, s in res.scores.items() if s == best)
    x2, y2, g2 = scripted_data()
    cfg = TrainConfig(epochs=10, batch_size=64, epoch_policy="val", patience=2, **CPU)
    res = train_fold(lambda: ScriptedModel(good={1}), x2, y2, x2[:2], None, cfg, seed=0, groups_train=g2)
    assert res.epochs_run == 3 and res.chosen_epoch == 1 and len(res.train_loss) == 3


def test_val_holds_out_subjects_and_never_sees_test_fold():
    calls = []

    class Recorder(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 3)

        def forward(self, x):
            calls.append(("train" if self.training else "eval", set(x[:, 1].long().tolist())))
            return self.lin(x)

    x, y, groups = scripted_data(n_subjects=8)
    x_test = torch.tensor([[0.0, 1000.0], [1.0, 1001.0]])
    cfg = TrainConfig(epochs=4, batch_size=5, epoch_policy="val", val_subjects=3, **CPU)
    res = train_fold(Recorder, x, y, x_test, None, cfg, seed=5, groups_train=groups)
    assert len(res.val_groups) == 3
    val_ids = set(np.flatnonzero(np.isin(groups, res.val_groups)).tolist())
    assert len(val_ids) == 9
    seen_train = set().union(*(ids for mode, ids in calls if mode == "train"))
    assert seen_train == set(range(len(y))) - val_ids
    test_calls = [i for i, (_, ids) in enumerate(calls) if ids & {1000, 1001}]
    assert test_calls == [len(calls) - 1]  # the test fold is read once, after training, in eval mode
    assert calls[-1] == ("eval", {1000, 1001})
    assert all(ids == val_ids for mode, ids in calls[:-1] if mode == "eval")
    # the held-out subjects are a function of the seed
    assert split_validation_groups(groups, 3, 5)[1] == res.val_groups
    with pytest.raises(ValueError, match="groups_train"):
        train_fold(Recorder, x, y, x_test, None, cfg, seed=5)


def test_oracle_picks_best_test_epoch_and_is_labelled():
    x, y, _ = scripted_data()
    xt, yt = x[:6], y[:6]
    cfg = TrainConfig(epochs=5, batch_size=64, epoch_policy="oracle", **CPU)
    res = train_fold(lambda: ScriptedModel(good={2, 4}), x, y, xt, yt, cfg, seed=0)
    assert res.scores == {1: 0.0, 2: 1.0, 3: 0.0, 4: 1.0, 5: 0.0}
    assert res.chosen_epoch == 2 and np.array_equal(res.y_pred, yt.numpy())
    assert res.policy_label == ORACLE_LABEL and "optimistic" in res.policy_label
    assert res.score_name == "test_acc" and res.epochs_run == 5
    with pytest.raises(ValueError, match="y_test"):
        train_fold(lambda: ScriptedModel(good={2}), x, y, xt, None, cfg, seed=0)


# ------------------------------------------------------------------------------------- inputs and losses
def test_dict_and_tuple_inputs():
    x, y = blobs(seed=3)
    onset = x[:, :2] * 0.5
    cfg = TrainConfig(epochs=25, batch_size=16, lr=1e-2, **CPU)
    res = train_fold(TwoStream, {"apex": x, "onset": onset}, y, {"apex": x, "onset": onset}, None, cfg, seed=1)
    assert np.mean(res.y_pred == y.numpy()) == 1.0

    class Tup(TwoStream):
        def forward(self, a, b):  # positional
            return super().forward(a, b)["logits"]

    res_t = train_fold(Tup, (x, onset), y, (x, onset), None, cfg, seed=1)
    assert res_t.train_loss == res.train_loss  # same seed, same data order -> same numbers
    with pytest.raises(ValueError, match="first dimension"):
        train_fold(TwoStream, {"apex": x, "onset": onset[:-1]}, y, {"apex": x, "onset": onset}, None, cfg, seed=1)


def test_model_own_loss_is_used():
    calls = []

    class WithLoss(MLP):
        def loss(self, outputs, y):
            calls.append(len(y))
            ce = F.cross_entropy(outputs, y)
            return ce + 5.0, {"ce": ce, "const": 5.0}

    x, y = blobs()
    cfg = TrainConfig(epochs=3, batch_size=20, lr=1e-2, loss="focal", **CPU)
    res = train_fold(WithLoss, x, y, x[:4], None, cfg, seed=0)
    assert res.loss_name == "model.loss" and sum(calls) == 3 * len(y)
    assert all(v > 5.0 for v in res.train_loss)
    assert len(res.loss_parts) == 3 and all(p["const"] == pytest.approx(5.0) for p in res.loss_parts)
    assert [p["ce"] + 5.0 for p in res.loss_parts] == pytest.approx(list(res.train_loss))
    with pytest.raises(ValueError, match="own loss"):
        train_fold(WithLoss, x, y, x[:4], None, cfg, seed=0, loss_fn=F.cross_entropy)


def test_logit_count_mismatch_is_reported():
    x, y = blobs(n_classes=2)
    with pytest.raises(ValueError, match="3 logits but there are 2 classes"):
        train_fold(MLP, x, y, x, None, TrainConfig(epochs=1, **CPU), seed=0)
    res = train_fold(MLP, x, y, x, None, TrainConfig(epochs=1, **CPU), seed=0, n_classes=3)
    assert res.proba.shape == (len(y), 3)


# ------------------------------------------------------------------------------------------------- LOSO
def test_train_loso_seeds_folds_from_unit_key():
    x, y = blobs(n_per_class=8)
    groups = np.tile(np.repeat(np.arange(4), 2), 3)
    folds = [
        SimpleNamespace(train_idx=np.flatnonzero(groups != s), test_idx=np.flatnonzero(groups == s)) for s in range(4)
    ]
    cfg = TrainConfig(epochs=3, batch_size=8, lr=1e-2, **CPU)
    results = train_loso(MLP, x, y, folds, cfg, unit_key="toy/mlp", groups=groups)
    assert [r.fold for r in results] == [0, 1, 2, 3]
    assert [r.seed for r in results] == [derive_seed("toy/mlp", k) for k in range(4)]
    assert all(np.array_equal(r.test_idx, f.test_idx) for r, f in zip(results, folds, strict=True))
    # fold 2 alone, seeded from (unit key, fold index), gives the same numbers as inside the loop
    f = folds[2]
    alone = train_fold(
        MLP, x[f.train_idx], y[f.train_idx], x[f.test_idx], None, cfg, derive_seed("toy/mlp", 2), n_classes=3
    )
    assert alone.train_loss == results[2].train_loss and np.array_equal(alone.proba, results[2].proba)
    bad = [SimpleNamespace(train_idx=np.arange(10), test_idx=np.arange(9, 12))]
    with pytest.raises(ValueError, match="fold 0: train_idx and test_idx overlap"):
        train_loso(MLP, x, y, bad, cfg, unit_key="toy/mlp")


def test_fixed_batch_orders_draw_nothing_and_repeat():
    y = torch.tensor([2, 0, 1, 0, 2, 1, 0])
    assert trainer.fixed_order("shuffle", y) is None
    assert trainer.fixed_order("fixed", y).tolist() == list(range(7))
    assert trainer.fixed_order("by_label", y).tolist() == [1, 3, 6, 2, 5, 0, 4]  # stable: class folder by folder
    g = torch.Generator().manual_seed(3)
    state = g.get_state()
    first = trainer.epoch_batches(7, 3, g, order=trainer.fixed_order("by_label", y))
    assert torch.equal(g.get_state(), state)  # no draw from the shuffle stream
    assert [b.tolist() for b in first] == [[1, 3, 6], [2, 5, 0, 4]]  # trailing single sample merged
    with pytest.raises(ValueError, match="batch_order"):
        trainer.TrainConfig(batch_order="random")



def test_lr_factor_schedules_known_answers():
    """Hand-computed multipliers: StepLR(step 2, gamma 0.5) after one warm-up epoch, cosine over 5 epochs."""
    step = TrainConfig(epochs=7, lr_schedule="step", lr_step_size=2, lr_gamma=0.5, warmup_epochs=1)
    assert [lr_factor(e, step) for e in range(1, 8)] == [1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    no_warm = TrainConfig(epochs=4, lr_schedule="step", lr_step_size=1, lr_gamma=0.1)
    assert [lr_factor(e, no_warm) for e in range(1, 5)] == pytest.approx([1.0, 0.1, 0.01, 0.001])
    cos = TrainConfig(epochs=5, lr_schedule="cosine")
    assert [lr_factor(e, cos) for e in range(1, 6)] == pytest.approx(
        [1.0, (1 + math.cos(math.pi / 5)) / 2, (1 + math.cos(2 * math.pi / 5)) / 2,
         (1 + math.cos(3 * math.pi / 5)) / 2, (1 + math.cos(4 * math.pi / 5)) / 2])
    with pytest.raises(ValueError, match="lr_gamma"):
        TrainConfig(lr_schedule="step", lr_gamma=0.0)
    with pytest.raises(ValueError, match="lr_step_size"):
        TrainConfig(lr_schedule="step", lr_step_size=0)
