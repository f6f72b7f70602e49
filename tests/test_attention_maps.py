"""Attention figures retrain fold 0 of an MFVAN cell: the model is the one whose predictions the unit stores."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks.attention_maps import attention_figures, attention_for, trained_fold_model
from benchmarks.evaluate import run_loso
from tests.conftest import synthetic_subset

TINY = {"img_size": 32, "patch_grid": 4, "embed_dim": 16, "num_heads": 2, "epochs": 2, "pretrain_epochs": 1,
        "ri_epochs": 1}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    with synthetic_subset(tmp_path_factory, lambda groups: groups[:3]) as ds:
        yield ds


def test_retrained_fold_model_predicts_what_the_unit_stored(small):
    model, fold, cfg, x = trained_fold_model(small, "global+s123+ri", seed=3, overrides=TINY)
    stored = run_loso("mfvan", small, variant="global+s123+ri", seed=3, overrides=TINY, folds=[0])
    with torch.inference_mode():
        logits = model(torch.as_tensor(x["apex"][fold.test_idx]))["logits"]
    np.testing.assert_array_equal(logits.argmax(-1).numpy(), stored["y_pred"].to_numpy())
    att = attention_for(model, x["apex"][fold.test_idx[:2]], "cpu")
    assert sorted(att) == [1, 2, 3] and all(a.shape == (2, 4, 4) for a in att.values())
    np.testing.assert_allclose([a.sum(axis=(1, 2)) for a in att.values()], 1.0, rtol=1e-5)  # f_c sums to 1


def test_figures_for_variants_with_scales_only(small, tmp_path):
    out = attention_figures(small, ["global", "global+s123"], tmp_path, overrides=TINY, n_images=2)
    assert [p.name for p in out] == ["attention_mfvan_global-s123_synthetic-smic.png"]
    with Image.open(out[0]) as im:
        assert im.size[0] > im.size[1] > 100  # 2 rows x 4 columns
