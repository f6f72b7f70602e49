"""The plain apex reference (baselines.apex_cnn, registered as apex_cnn): sizes, inputs, presets, learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines.apex_cnn import ApexCNNConfig, apex_cnn
from benchmarks.presets import PRESETS, SAME_AS_MFVAN
from benchmarks.registry import get_method
from benchmarks.trainer import TrainConfig, train_fold

pytestmark = pytest.mark.usefixtures("one_thread")


def test_parameter_count_and_shapes():
    model = apex_cnn(ApexCNNConfig(num_classes=3))
    assert sum(p.numel() for p in model.parameters()) == 317_087  # documented in baselines/apex_cnn.py
    for size in (32, 64, 128):
        assert model(torch.rand(2, 3, size, size)).shape == (2, 3)
    assert apex_cnn(ApexCNNConfig(num_classes=5))(torch.rand(1, 3, 64, 64)).shape == (1, 5)


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="arch"):
        ApexCNNConfig(arch="vit")
    with pytest.raises(ValueError, match="channels"):
        ApexCNNConfig(channels=(16, 32))


def test_reads_mfvans_apex_input_at_mfvans_size_and_budget():
    spec, mfvan = get_method("apex_cnn"), get_method("mfvan")
    frames = np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    a = spec.inputs({"apex_frame": frames}, spec.config())
    m = mfvan.inputs({"apex_frame": frames}, mfvan.config("global"))["apex"]
    np.testing.assert_array_equal(a, m)
    assert spec.input_views(spec.config()) == mfvan.input_views(mfvan.config("global"))
    for preset in PRESETS.values():
        mf, ref = preset.overrides_for("mfvan", "deep"), preset.overrides_for("apex_cnn", "deep")
        for k in SAME_AS_MFVAN:
            assert ref.get(k) == mf.get(k), (preset.name, k)


def test_overfits_a_tiny_batch():
    rng = np.random.default_rng(0)
    x = rng.random((12, 3, 32, 32), dtype=np.float32)
    y = np.arange(12) % 3
    cfg = TrainConfig(epochs=40, batch_size=12, lr=3e-3, loss="balanced_ce")
    res = train_fold(lambda: apex_cnn(ApexCNNConfig(num_classes=3, img_size=32, drop_rate=0.0)), x, y, x, None,
                     cfg, seed=0, n_classes=3)
    assert (res.y_pred == y).mean() == 1.0
    assert res.train_loss[-1] < 0.1 * res.train_loss[0]
