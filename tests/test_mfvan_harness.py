"""MFVAN in the harness: registry entry, LOSO runs through the shared trainer, pretraining hygiene, the
transductive label, NotRunnable without onset frames, determinism, and the trainer's pre_fit hook."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from benchmarks import paths
from benchmarks.data import views as V
from benchmarks.data.clips import CLIP_COLUMNS, ClipDataset, make_exclusions
from benchmarks.data.registry import load_dataset
from benchmarks.evaluate import NotRunnable, deep_inputs, method_config, resolve_views, run_loso
from benchmarks.methods import mfvan as M
from benchmarks.registry import get_method
from benchmarks.splits import loso_splits
from benchmarks.trainer import TrainConfig, train_fold
from mfvan_core import VARIANTS
from tests.conftest import synthetic_subset

TABLES = Path(__file__).resolve().parents[1] / "tables"
SUBJECTS = ("synthetic-smic/s1", "synthetic-smic/s12", "synthetic-smic/s14", "synthetic-smic/s4")  # 26 clips
TINY = {"img_size": 32, "patch_grid": 4, "pretrain_epochs": 1, "ri_epochs": 1}
RI = [n for n, c in VARIANTS.items() if c.use_ri]
NON_RI = [n for n, c in VARIANTS.items() if not c.use_ri]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> ClipDataset:
    """Four subjects of synthetic-smic (every class in each); views cached in a private folder."""
    with synthetic_subset(tmp_path_factory, lambda groups: list(SUBJECTS)) as ds:
        yield ds


def _digest(a: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(a, dtype=np.float32).tobytes()).hexdigest()


# ------------------------------------------------------------------------------------------ registry
def test_every_table_variant_is_registered_and_builds():
    spec = get_method("mfvan")
    rows = [r for t in ("table1", "table2", "table3")
            for r in tomllib.loads((TABLES / f"{t}.toml").read_text())["rows"] if r.get("method") == "mfvan"]
    table3 = {r["variant"] for r in rows if r["kind"] == "ablation"}
    assert table3 == set(VARIANTS) and len(table3) == 8
    assert {r["variant"] for r in rows} <= set(spec.variants) == set(VARIANTS) | {"full"}
    assert spec.config("full") == spec.config("global+s123+ri") == spec.defaults   # defaults = the full model
    for name, lib in VARIANTS.items():
        cfg = spec.config(name, {**TINY, "num_classes": 5})
        assert (cfg.scales, cfg.use_ri) == (lib.scales, lib.use_ri)
        assert [v.name for v in spec.input_views(cfg)] == (["apex_frame", "onset_frame"] if lib.use_ri
                                                           else ["apex_frame"])
        assert all(v.canonical()["size"] == [32, 32] and v.canonical()["color"] == "rgb"
                   for v in spec.input_views(cfg))
        torch.manual_seed(0)
        model = spec.build(cfg)
        assert (model.net.config.scales, model.net.config.use_ri) == (lib.scales, lib.use_ri)
        assert not hasattr(model.net.config, "pretrain_scope")          # the library gets its own config
        model.eval()
        assert model(torch.rand(2, 3, 32, 32))["logits"].shape == (2, 5)
    assert "10.3389/fnins.2023.1216181" in spec.citation and "Front. Neurosci. 17:1216181" in spec.citation
    for key in ("lr", "batch_size", "epochs", "pretrain_epochs", "ri_epochs", "pretrain_scope", "alpha_from_fold"):
        assert len(spec.sources[key]) > 10


def test_bad_pretrain_scope_is_refused():
    with pytest.raises(ValueError, match="pretrain_scope='test'"):
        get_method("mfvan").config("global", {"pretrain_scope": "test"})


def test_inputs_are_rgb_channels_first_in_unit_range():
    cfg = get_method("mfvan").config("global+ri", TINY)
    apex = np.full((2, 32, 32, 3), 255, np.uint8)
    apex[..., 1] = 0
    x = M.mfvan_inputs({"apex_frame": apex, "onset_frame": apex // 5}, cfg)
    assert x["apex"].shape == (2, 3, 32, 32) and x["apex"].dtype == np.float32
    assert (x["apex"][:, 0] == 1).all() and (x["apex"][:, 1] == 0).all() and (x["onset"][:, 0] == 51 / 255).all()
    assert set(M.mfvan_inputs({"apex_frame": apex}, get_method("mfvan").config("global", TINY))) == {"apex"}
    with pytest.raises(ValueError, match=r"apex_frame must be \(N, H, W, 3\)"):
        M.mfvan_inputs({"apex_frame": apex[..., 0]}, cfg)


def test_prediction_ignores_the_onset_and_training_uses_it():
    torch.manual_seed(0)
    model = M.build(get_method("mfvan").config("global+s1+ri", TINY))
    apex, onset = torch.rand(4, 3, 32, 32), torch.rand(4, 3, 32, 32)
    model.eval()
    torch.testing.assert_close(model(apex, onset)["logits"], model(apex)["logits"], rtol=0, atol=0)
    assert model(apex, onset)["onset_teacher"] is None                  # the test onset is not even read
    model.train()
    out = model(apex, onset)
    assert out["onset_teacher"] is not None and out["onset"] is onset
    total, parts = model.loss(out, torch.tensor([0, 1, 2, 0]))
    assert {"remove", "class_global", "class_scale1", "mask"} <= set(parts) and total.requires_grad


def test_focal_alpha_is_the_inverse_frequency_of_the_fold_labels():
    """alpha_c = n / (C n_c): labels [0, 0, 0, 1, 2, 2] -> (6/9, 6/3, 6/6)."""
    cfg = get_method("mfvan").config("global", TINY)
    torch.manual_seed(0)
    model = M.build(cfg)
    assert model.net.config.focal_alpha is None
    hook = M.fold_pre_fit(cfg, {"apex": np.zeros((6, 3, 32, 32), np.float32)}, None)
    hook(model, {"apex": torch.zeros(6, 3, 32, 32)}, torch.tensor([0, 0, 0, 1, 2, 2]), 0)
    np.testing.assert_allclose(model.net.config.focal_alpha, (2 / 3, 2.0, 1.0))
    off = get_method("mfvan").config("global", {**TINY, "alpha_from_fold": False})
    model = M.build(off)
    M.fold_pre_fit(off, {}, None)(model, {}, torch.tensor([0, 0, 1]), 0)
    assert model.net.config.focal_alpha is None


# ----------------------------------------------------------------------------------------------- LOSO
@pytest.mark.parametrize("variant", ["global", "global+s1+ri"])
def test_run_loso_one_row_per_clip(small, variant):
    df = run_loso("mfvan", small, variant=variant, epochs=1, folds=2, overrides=TINY)
    folds = loso_splits(small.groups())[:2]
    expected = small.clips.iloc[np.concatenate([f.test_idx for f in folds])]
    assert len(df) == len(expected) and sorted(df["clip"]) == sorted(expected["clip"])
    assert set(df["group"]) == {f.test_group for f in folds} == {"synthetic-smic/s1", "synthetic-smic/s12"}
    assert (df["protocol_note"] == "").all() and (df["chosen_epoch"] == 1).all()
    assert df["y_pred"].between(0, 2).all() and (df["variant"] == variant).all()
    views = "apex_frame(color='rgb', size=32)" + (" + onset_frame(color='rgb', size=32)" if "ri" in variant else "")
    assert (df["views"] == views).all()


def _record_pretraining(monkeypatch) -> list[np.ndarray]:
    seen: list[np.ndarray] = []
    original = M.pretrain_teacher

    def spy(net, frames, cfg, seed):
        seen.append(frames.detach().cpu().numpy())
        return original(net, frames, cfg, seed)

    monkeypatch.setattr(M, "pretrain_teacher", spy)
    return seen


def _groups_of(frames: np.ndarray, ds: ClipDataset, x: dict) -> list[str]:
    """The subject of each frame, found by its exact bytes among every clip's onset and apex frames."""
    owner = {}
    for key in ("onset", "apex"):
        for i, img in enumerate(x[key]):
            owner.setdefault(_digest(img), set()).add(ds.groups()[i])
    groups = []
    for img in frames:
        found = owner.get(_digest(img))
        assert found is not None and len(found) == 1, "a pretraining frame is not exactly one clip's key frame"
        groups.append(next(iter(found)))
    return groups


def test_pretraining_sees_only_the_training_subjects(small, monkeypatch):
    seen = _record_pretraining(monkeypatch)
    df = run_loso("mfvan", small, variant="global+ri", epochs=1, folds=2, overrides=TINY)
    assert (df["protocol_note"] == "").all()
    cfg = method_config(get_method("mfvan"), small, "global+ri", TINY, 1)
    x = deep_inputs(get_method("mfvan"), cfg, small, resolve_views(get_method("mfvan"), cfg, small)[0])
    folds = loso_splits(small.groups())[:2]
    assert len(seen) == 2
    for frames, f in zip(seen, folds, strict=True):
        groups = _groups_of(frames, small, x)
        assert f.test_group not in groups
        assert sorted(groups) == sorted(2 * list(small.groups()[f.train_idx]))   # onset + apex of each clip


def test_val_policy_pretrains_without_the_held_out_subject(small, monkeypatch):
    seen = _record_pretraining(monkeypatch)
    run_loso("mfvan", small, variant="global+ri", epochs=1, folds=1, overrides=TINY, epoch_policy="val")
    cfg = method_config(get_method("mfvan"), small, "global+ri", TINY, 1)
    x = deep_inputs(get_method("mfvan"), cfg, small, resolve_views(get_method("mfvan"), cfg, small)[0])
    fold = loso_splits(small.groups())[0]
    groups = set(_groups_of(seen[0], small, x))
    assert len(groups) == 2 and groups < set(small.groups()[fold.train_idx])   # 3 training subjects, 1 held out


def test_transductive_pretraining_is_labelled(small, monkeypatch):
    seen = _record_pretraining(monkeypatch)
    df = run_loso("mfvan", small, variant="global+ri", epochs=1, folds=1, overrides={**TINY, "pretrain_scope": "all"})
    assert (df["protocol_note"] == M.TRANSDUCTIVE_NOTE).all() and "transductive" in M.TRANSDUCTIVE_NOTE
    assert len(seen) == 1 and len(seen[0]) == 2 * len(small.clips)                 # the test subject's included
    # a non-RI variant has no teacher to pretrain: nothing transductive, no label
    df = run_loso("mfvan", small, variant="global", epochs=1, folds=1, overrides={**TINY, "pretrain_scope": "all"})
    assert (df["protocol_note"] == "").all()


def test_same_seed_same_predictions(small):
    kw = dict(variant="global+ri", epochs=2, folds=[1], overrides={**TINY, "epochs": 2})
    a, b = run_loso("mfvan", small, **kw), run_loso("mfvan", small, **kw)
    pd.testing.assert_frame_equal(a, b)
    # the fold's probabilities, bitwise; another seed gives other weights
    spec = get_method("mfvan")
    cfg = method_config(spec, small, "global+ri", TINY, 1)
    x = deep_inputs(spec, cfg, small, resolve_views(spec, cfg, small)[0])
    f = loso_splits(small.groups())[1]
    tr, te = f.train_idx, f.test_idx
    y = small.labels()

    def fold(seed: int):
        return train_fold(lambda: spec.build(cfg), {k: v[tr] for k, v in x.items()}, y[tr],
                          {k: v[te] for k, v in x.items()}, None, TrainConfig(epochs=1, lr=cfg.lr, device="cpu"),
                          seed, pre_fit=spec.pre_fit(cfg, x, f), n_classes=3)

    r1, r2, r3 = fold(5), fold(5), fold(6)
    np.testing.assert_array_equal(r1.proba, r2.proba)
    assert r1.train_loss == r2.train_loss and r1.loss_parts == r2.loss_parts
    assert not np.array_equal(r1.proba, r3.proba)


# -------------------------------------------------------------------------------------- trainer hook
def test_noop_pre_fit_changes_nothing_and_sees_the_fit_data():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 4)).astype(np.float32), np.arange(30) % 3
    groups = np.repeat(["a", "b", "c"], 10)
    calls = []

    def hook(model, x_fit, y_fit, seed):
        calls.append((x_fit.shape[0], y_fit.tolist(), seed))
        torch.rand(3)  # draws from the hook's own (forked) stream only

    cfg = TrainConfig(epochs=2, batch_size=8, lr=1e-2, device="cpu", epoch_policy="val")

    def run(pre_fit=None):
        return train_fold(lambda: torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.5),
                                                      torch.nn.Linear(8, 3)),
                          x, y, x[:5], None, cfg, 11, groups_train=groups, pre_fit=pre_fit)

    plain, hooked = run(), run(hook)
    np.testing.assert_array_equal(plain.proba, hooked.proba)
    assert plain.train_loss == hooked.train_loss
    assert len(calls) == 1 and calls[0][0] == 20 and calls[0][1] == [int(v) for v in y[groups != hooked.val_groups[0]]]


# ------------------------------------------------------------------------------------ no onset frames
def _public_like(tmp_path: Path) -> ClipDataset:
    """A frameless dataset publishing only 224 px apex crops (the shape of megc2019-public)."""
    rows = []
    for s in ("a", "b", "c"):
        for k in range(3):
            img = np.random.default_rng(len(rows)).integers(0, 256, (224, 224, 3), dtype=np.uint8)
            path = tmp_path / f"{s}_{k}.jpg"
            cv2.imwrite(str(path), img)
            rows.append({"dataset": "fake", "subject": s, "clip": f"c{k}", "emotion": "x", "label": k % 3,
                         "onset": -1, "apex": -1, "offset": -1, "apex_source": "none", "frames": "",
                         "apex_path": str(path)})
    clips = pd.DataFrame(rows)[CLIP_COLUMNS + ["apex_path"]]
    return ClipDataset("fake-public", "apex crops only", ("x", "y", "z"), clips, make_exclusions([]), "public",
                       stored_views={"apex_224": "apex_path"})


def test_ri_variants_not_runnable_without_onset_frames(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.CACHE_ENV, str(tmp_path / "cache"))
    V.set_cache_dir(None)
    ds = _public_like(tmp_path)
    for variant in RI + ["full"]:
        with pytest.raises(NotRunnable) as e:
            run_loso("mfvan", ds, variant=variant, overrides=TINY)
        assert e.value.method == "mfvan" and "onset_frame needs the onset frame" in e.value.reason
    df = run_loso("mfvan", ds, variant="global+s1", epochs=1, folds=2, overrides=TINY)
    assert len(df) == 6 and (df["views"] == "apex_frame(color='rgb', size=32)").all()
    assert (df["protocol_note"] == "").all() and (df["data_source"] == "public").all()


def test_public_megc(shared_data):
    ds = load_dataset("megc2019-public", shared_data / "megc2019")
    spec = get_method("mfvan")
    for variant in RI:
        with pytest.raises(NotRunnable, match="onset frame"):
            resolve_views(spec, method_config(spec, ds, variant, None, None), ds)
    for variant in NON_RI:
        views, note, preferred = resolve_views(spec, method_config(spec, ds, variant, None, None), ds)
        assert [str(v) for v in views] == ["apex_frame(color='rgb', size=128)"] and note == "" and preferred
