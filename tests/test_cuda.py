"""The harness's CUDA paths (marker ``cuda``; every test skips without a CUDA device, with the reason).

Run on a GPU machine by ``python -m benchmarks.perf.gpu_check`` (``pytest -m cuda tests/test_cuda.py``): the
trainer's ``auto`` device picks CUDA; the table runner's defaults there (fold batching on, one process);
the sequential and fold-batched trainers agree on CUDA; a paper-preset MFVAN fold (128 px, full model,
stages 1, 1b and 2) trains on CUDA.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from baselines.ststnet import STSTNet
from benchmarks import batched_trainer as BT
from benchmarks.evaluate import method_config, train_config
from benchmarks.presets import get_preset
from benchmarks.registry import get_method
from benchmarks.seeding import derive_seed
from benchmarks.splits import loso_splits
from benchmarks.trainer import TrainConfig, resolve_device, train_fold, train_loso

NO_CUDA = "no CUDA device (torch.cuda.is_available() is False): the CUDA paths are checked on a GPU machine"
pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)]


def flow_like(sizes=(9, 12, 7, 10, 11, 17), seed=0):
    """(x (N, 3, 28, 28), y with every class in every subject, groups): separable, so predictions are stable."""
    rng = np.random.default_rng(seed)
    groups = np.array([f"d/s{i}" for i, n in enumerate(sizes) for _ in range(n)], dtype=object)
    y = np.concatenate([np.arange(n) % 3 for n in sizes])
    x = rng.normal(size=(len(y), 3, 28, 28)).astype(np.float32) + y[:, None, None, None].astype(np.float32)
    return x, y, groups


def test_auto_device_picks_cuda():
    assert resolve_device("auto").type == "cuda"
    assert TrainConfig().device == "auto"
    x, y, _ = flow_like(sizes=(8, 8))
    result = train_fold(lambda: nn.Sequential(nn.Flatten(), nn.Linear(3 * 28 * 28, 3)), x[:8], y[:8], x[8:], None,
                        TrainConfig(epochs=1, batch_size=4), seed=0, n_classes=3)
    assert result.device.startswith("cuda")
    assert len(result.y_pred) == 8 and np.isfinite(result.train_loss).all()


def test_runner_defaults_on_cuda():
    """With CUDA, the table runner trains deep cells fold-batched and runs one process by default."""
    from benchmarks import run
    from benchmarks.runner import batching_pays, plan
    from benchmarks.units import FOLD_BATCHED

    assert batching_pays()
    assert run.default_jobs() == 1
    a = run.parse_args(["--table", "2"])
    assert a.jobs == 1 and a.fold_batching is None and a.device == "auto"
    p = plan([("ststnet", "", "synthetic-smic")], [0], get_preset("smoke"), "last")
    assert p.units and {u.trainer for u in p.units} == {FOLD_BATCHED}


def test_sequential_and_fold_batched_agree_on_cuda():
    """STSTNet on six folds of different sizes: every fold vmapped in one chunk on CUDA (the default there)
    against the sequential trainer on CUDA. Rounding differs (batched kernels, TF32 convolutions where cuDNN
    uses them), so losses agree to a tolerance and classes on nearly every clip."""
    x, y, groups = flow_like()
    folds = loso_splits(groups)
    cfg = TrainConfig(epochs=3, batch_size=8, lr=5e-3, device="cuda")
    seq = train_loso(STSTNet, x, y, folds, cfg, unit_key="cell", groups=groups, n_classes=3)
    timings: dict[str, float] = {}
    bat = BT.train_folds_batched(STSTNet, x, y, folds, cfg, [derive_seed("cell", k) for k in range(len(folds))],
                                 groups=groups, n_classes=3, timings=timings)
    assert timings["folds per chunk"] == len(folds)  # CUDA policy: all folds that fit in one vmapped chunk
    assert all(r.device.startswith("cuda") for r in seq + bat)
    for a, b in zip(seq, bat, strict=True):
        np.testing.assert_array_equal(a.test_idx, b.test_idx)
        np.testing.assert_allclose(b.train_loss[0], a.train_loss[0], rtol=1e-3)
        np.testing.assert_allclose(b.train_loss, a.train_loss, rtol=5e-2)
        np.testing.assert_allclose(b.proba, a.proba, atol=5e-2)
    same = np.mean(np.concatenate([a.y_pred for a in seq]) == np.concatenate([b.y_pred for b in bat]))
    assert same >= 0.95


def test_paper_preset_mfvan_fold_trains_on_cuda():
    """The full MFVAN at the paper preset (128 px, 8 x 8 patches, every scale, RI): one fold of stages 1,
    1b and 2 (one epoch each) through the shared trainer on CUDA."""
    spec = get_method("mfvan")
    paper = get_preset("paper").overrides_for("mfvan", "deep")
    cfg = method_config(spec, SimpleNamespace(n_classes=3), "full",
                        {**paper, "pretrain_epochs": 1, "ri_epochs": 1}, 1)
    assert (cfg.img_size, cfg.patch_grid, cfg.scales, cfg.use_ri) == (128, 8, (1, 2, 3), True)
    rng = np.random.default_rng(0)
    n = 20
    x = {k: rng.random((n, 3, 128, 128), dtype=np.float32) for k in ("apex", "onset")}
    y = np.arange(n) % 3
    fold = SimpleNamespace(k=0, train_idx=np.arange(16), test_idx=np.arange(16, n))
    torch.cuda.reset_peak_memory_stats()
    result = train_fold(lambda: spec.build(cfg), {k: v[:16] for k, v in x.items()}, y[:16],
                        {k: v[16:] for k, v in x.items()}, None, train_config(cfg, "last", "auto"), seed=1,
                        n_classes=3, pre_fit=spec.pre_fit(cfg, x, fold))
    assert result.device.startswith("cuda") and result.loss_name == "model.loss"
    assert np.isfinite(result.train_loss).all() and result.proba.shape == (4, 3)
    assert {"remove", "mask"} <= set(result.loss_parts[0])
    assert torch.cuda.max_memory_allocated() > 0
