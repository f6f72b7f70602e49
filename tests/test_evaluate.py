"""run_loso: one row per clip, every clip tested once, determinism, protocol labels and NotRunnable."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.neighbors import NearestCentroid

from benchmarks.data.clips import CLIP_COLUMNS, ClipDataset, make_exclusions
from benchmarks.data.flow import minmax_scale
from benchmarks.data.registry import load_dataset
from benchmarks.data.views import ViewSpec, view_array
from benchmarks.evaluate import PREDICTION_COLUMNS, NotRunnable, deep_inputs, run_loso, select_folds
from benchmarks.methods.dssn import dssn_inputs
from benchmarks.registry import MethodSpec, get_method, register_method, unregister_method
from benchmarks.splits import loso_splits
from tests.conftest import synthetic_subset

SUBJECTS = 2  # subjects of the synthetic SMIC-like set kept for the light tests


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> ClipDataset:
    """The first SUBJECTS subjects of synthetic-smic; views and features cached in a private folder."""
    with synthetic_subset(tmp_path_factory, lambda groups: groups[:SUBJECTS]) as ds:
        yield ds


def frameless(stored: dict | None = None) -> ClipDataset:
    rows = [{"dataset": "fake", "subject": s, "clip": f"c{k}", "emotion": "x", "label": k % 2, "onset": -1,
             "apex": -1, "offset": -1, "apex_source": "none", "frames": ""} for s in ("a", "b") for k in range(2)]
    return ClipDataset("fake-frameless", "no frames", ("x", "y"), pd.DataFrame(rows)[CLIP_COLUMNS],
                       make_exclusions([]), "public", stored_views=dict(stored or {}))


def test_not_runnable_on_a_frameless_dataset():
    ds = frameless()
    for method in ("lbptop", "biwoof", "ststnet", "off_apexnet", "dssn"):
        with pytest.raises(NotRunnable) as e:
            run_loso(method, ds)
        assert e.value.method == method and e.value.dataset == "fake-frameless"
        assert "no frames" in e.value.reason
    with pytest.raises(NotRunnable, match="tim_sequence needs the frame sequence"):
        run_loso("lbptop", ds)


def test_lbptop_not_runnable_on_public_megc(shared_data):
    ds = load_dataset("megc2019-public", shared_data / "megc2019")
    with pytest.raises(NotRunnable) as e:
        run_loso("lbptop", ds)
    assert e.value.dataset == "megc2019-public" and "frame sequence" in e.value.reason


def test_biwoof_on_public_megc_is_labelled_approximation(shared_data):
    ds = load_dataset("megc2019-public", shared_data / "megc2019")
    df = run_loso("biwoof", ds, folds=["casme2/sub01"], overrides={"svm_c": 1.0})  # C only changes speed here
    assert len(df) == (ds.clips["group"] == "casme2/sub01").sum() > 0
    from benchmarks.methods.biwoof import STORED_NOTE

    assert STORED_NOTE.startswith("approximation (stored 28x28 flow, min-max scaled per clip")
    assert (df["protocol_note"] == STORED_NOTE).all()
    assert (df["views"] == "flow_uvs(scale='minmax', size=28)").all()
    assert (df["data_source"] == "public").all() and (df["chosen_epoch"] == -1).all()


def test_handcrafted_every_clip_tested_once(small):
    df = run_loso("biwoof", small)
    assert list(df.columns) == PREDICTION_COLUMNS
    assert len(df) == len(small.clips)
    key = ["source", "subject", "clip"]
    assert not df.duplicated(key).any()
    expected = small.clips[["dataset", "subject", "clip"]].to_numpy()
    assert set(map(tuple, df[key].to_numpy())) == set(map(tuple, expected))
    # each fold tests exactly its held-out subject
    folds = loso_splits(small.groups())
    assert df.groupby("fold")["group"].nunique().eq(1).all()
    assert {f.k: f.test_group for f in folds} == df.groupby("fold")["group"].first().to_dict()
    assert (df["protocol_note"] == "").all() and df["views"].str.contains("flow").all()
    assert df["y_pred"].between(0, small.n_classes - 1).all()
    again = run_loso("biwoof", small)
    pd.testing.assert_frame_equal(df, again)


def test_deep_determinism_and_fold_subsets(small):
    a = run_loso("ststnet", small, epochs=2, seed=3)
    b = run_loso("ststnet", small, epochs=2, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == len(small.clips) and not a.duplicated(["source", "subject", "clip"]).any()
    assert (a["chosen_epoch"] == 2).all() and (a["epoch_policy"] == "last").all()
    assert (a["views"] == "flow_uvs(scale='minmax', size=28)").all() and (a["data_source"] == "synthetic").all()
    # a subset of folds reproduces the same folds of the full run (seeds derive from the fold index)
    part = run_loso("ststnet", small, epochs=2, seed=3, folds=[1])
    pd.testing.assert_frame_equal(part.reset_index(drop=True), a[a["fold"] == 1].reset_index(drop=True))


def test_off_apexnet_takes_u_and_v(small):
    """The model input is (u, v) of the onset->apex flow, each min-max scaled per clip; not the strain."""
    spec = get_method("off_apexnet")
    x = deep_inputs(spec, spec.config(), small, spec.views)
    uv = view_array(small, "flow", size=28, progress=False)            # (n, 2, 28, 28) absolute u, v
    strain = view_array(small, "strain", size=28, progress=False)      # (n, 28, 28)
    assert x.shape == (len(small.clips), 2, 28, 28)
    for i in range(len(small.clips)):
        np.testing.assert_allclose(x[i], minmax_scale(uv[i]), atol=1e-6)
        assert not np.allclose(x[i, 1], minmax_scale(strain[i][None])[0], atol=1e-3)  # (v, strain) would show
    assert not np.allclose(x[:, 0], x[:, 1], atol=1e-3)                                # (u, u) would show
    df = run_loso("off_apexnet", small, epochs=1, folds=1)
    assert len(df) == (small.clips["group"] == sorted(small.clips["group"].unique())[0]).sum()


def test_select_folds():
    folds = loso_splits(np.array(["d/a", "d/b", "d/b", "d/c"]))
    assert [f.k for f in select_folds(folds, 2)] == [0, 1]
    assert [f.k for f in select_folds(folds, ["d/c", 0])] == [0, 2]
    with pytest.raises(ValueError, match="no subject 'd/z'"):
        select_folds(folds, ["d/z"])
    with pytest.raises(ValueError, match="out of range"):
        select_folds(folds, [5])


def test_dssn_inputs_from_stored_flow():
    """Two 3-channel streams (u, v, strain), (u, v, relative magnitude), each channel in [0, 1]."""
    rng = np.random.default_rng(0)
    uvs = rng.uniform(0, 1, (2, 3, 28, 28)).astype(np.float32)
    uvs[:, :2] = 0.5
    uvs[0, 0, 3, 4] = 1.0  # one moving pixel: the relative magnitude peaks there and is 0 at the median
    cfg = type("C", (), {"input_size": 28})()
    x = dssn_inputs({"flow_uvs": uvs}, cfg)
    assert x.shape == (2, 6, 28, 28) and x.min() >= 0 and x.max() <= 1
    np.testing.assert_allclose(x[0, 5].max(), 1.0)
    assert np.unravel_index(x[0, 5].argmax(), (28, 28)) == (3, 4) and x[0, 5, 0, 0] == 0
    np.testing.assert_allclose(x[:, 3:5], x[:, 0:2])
    big = dssn_inputs({"flow_uvs": uvs}, type("C", (), {"input_size": 67})())
    assert big.shape == (2, 6, 67, 67)


def test_a_new_method_in_one_registration(small):
    """The README's example: a nearest-centroid classifier of the mean flow, registered and run."""
    spec = register_method(MethodSpec(
        name="mean_flow_centroid", family="handcrafted", views=(ViewSpec.of("flow_uvs", size=8),),
        defaults={"size": 8}, build=lambda cfg: (lambda v: v["flow_uvs"].reshape(3, -1).mean(axis=1)),
        classifier=lambda cfg: NearestCentroid(), citation="test", paper="test", sources={"size": "test"}))
    try:
        df = run_loso(spec.name, small)
        assert len(df) == len(small.clips) and (df["method"] == "mean_flow_centroid").all()
    finally:
        unregister_method(spec.name)
