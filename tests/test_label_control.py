"""The shuffled-label control (``benchmarks.evaluate.training_labels``): a null model of the same pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import evaluate
from benchmarks.splits import loso_splits


@pytest.mark.parametrize("control", ["shuffled"])
def test_shuffled_labels_keep_the_class_counts_of_each_training_fold(control):
    groups = np.repeat(np.array(["d/a", "d/b", "d/c", "d/d"]), 5)
    y = np.tile(np.array([0, 1, 2, 0, 1]), 4)
    for fold in loso_splits(groups):
        shuffled = evaluate.training_labels(y, fold, control, "key")
        assert sorted(shuffled) == sorted(y[fold.train_idx])
        np.testing.assert_array_equal(shuffled, evaluate.training_labels(y, fold, control, "key"))
    assert not all((evaluate.training_labels(y, f, control, "key") == y[f.train_idx]).all()
                   for f in loso_splits(groups))
    with pytest.raises(ValueError, match="label control"):
        evaluate.training_labels(y, loso_splits(groups)[0], "inverted", "key")


def test_a_shuffled_control_run_is_labelled_and_leaves_test_labels_alone(tmp_path_factory):
    from tests.conftest import synthetic_subset

    with synthetic_subset(tmp_path_factory, lambda g: g[:3]) as ds:
        real = evaluate.run_loso("biwoof", ds, folds=3)
        null = evaluate.run_loso("biwoof", ds, folds=3, label_control="shuffled")
    np.testing.assert_array_equal(real["y_true"], null["y_true"])
    assert (null["protocol_note"].str.contains("shuffled-label control")).all()
    assert not real["protocol_note"].str.contains("shuffled").any()
    assert (real["y_pred"] != null["y_pred"]).any()
