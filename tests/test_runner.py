"""The sweep runner: units cached atomically and reused, failures reported and never cached,
tables rendered from stored predictions only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from benchmarks import registry
from benchmarks.data.clips import ClipDataset, make_exclusions
from benchmarks.data.views import ViewSpec
from benchmarks.presets import PRESETS, Preset
from benchmarks.render import RenderContext, render
from benchmarks.runner import collect, execute, plan
from benchmarks.units import Unit, UnitStore

CLASSES = ("a", "b", "c")


def tiny_dataset(root: Path, n_subjects: int = 4, per_class: int = 2) -> ClipDataset:
    """Clips whose apex brightness encodes the class (a method can learn it), frames as .npy stacks."""
    rng = np.random.default_rng(0)
    rows = []
    for s in range(n_subjects):
        for k in range(len(CLASSES)):
            for j in range(per_class):
                stack = rng.integers(0, 40, (3, 16, 16, 3), dtype=np.uint8)
                stack[1] += np.uint8(60 * k)
                path = root / f"s{s}_{k}_{j}.npy"
                np.save(path, stack)
                rows.append({"dataset": "tiny", "subject": f"s{s}", "clip": f"c{k}{j}", "emotion": CLASSES[k],
                             "label": k, "onset": 0, "apex": 1, "offset": 2, "apex_source": "test",
                             "frames": str(path)})
    return ClipDataset("tiny", "tiny test set", CLASSES, pd.DataFrame(rows), make_exclusions([]), "synthetic",
                       str(root))


def _features(cfg):
    def f(views):
        if cfg["fail_on_dark"] and views["apex_frame"].mean() < 30:
            raise RuntimeError("boom on a dark clip")
        return views["apex_frame"].astype(float).ravel()
    return f


@pytest.fixture
def tiny_method(monkeypatch, tmp_path):
    monkeypatch.setenv("MER_CACHE_DIR", str(tmp_path / "cache"))
    spec = registry.MethodSpec(
        name="tiny_mean", family="handcrafted", views=(ViewSpec.of("apex_frame", size=4, color="gray"),),
        defaults={"c": 1.0, "fail_on_dark": False}, build=_features,
        classifier=lambda cfg: LogisticRegression(C=cfg["c"], max_iter=500),
        citation="test", paper="test", sources={"c": "test"})
    registry._ensure_loaded()
    registry.register_method(spec)
    yield spec
    registry.unregister_method("tiny_mean")


def _plan(ds, overrides=None, seeds=(0,)):
    preset = Preset("test", "test", overrides={"tiny_mean": overrides or {}})
    return plan([("tiny_mean", "", "tiny")], list(seeds), preset, "last", dataset_loader=lambda name: ds)


def test_units_run_cache_and_resume(tiny_method, tmp_path):
    ds = tiny_dataset(tmp_path)
    p = _plan(ds)
    assert len(p.units) == 4 and {u.test_group for u in p.units} == {f"tiny/s{i}" for i in range(4)}
    store = UnitStore(tmp_path / "units")
    assert execute(p.units, store, datasets=p.datasets) == []
    pred = collect(p.units, store)
    assert len(pred) == len(ds.clips) and pred["clip"].is_unique is False  # clip ids repeat across subjects
    assert (pred.groupby("group").size() == 6).all() and (pred["y_pred"] == pred["y_true"]).mean() > 0.9
    # a rerun computes nothing
    calls = []
    assert execute(p.units, store, datasets=p.datasets, progress=lambda *a: calls.append(a)) == []
    assert calls == []
    # same inputs -> same unit keys (seeds and folds derived from the unit of work)
    assert [u.key for u in _plan(ds).units] == [u.key for u in p.units]


def test_half_written_unit_is_not_done_and_is_recomputed(tiny_method, tmp_path):
    ds = tiny_dataset(tmp_path)
    p = _plan(ds)
    store = UnitStore(tmp_path / "units")
    execute(p.units, store, datasets=p.datasets)
    u = p.units[0]
    data = next((tmp_path / "units").rglob(f"{u.key}.parquet"))
    data.write_bytes(data.read_bytes()[:20])          # a crash mid-write of the data file
    assert not store.is_done(u) and all(store.is_done(v) for v in p.units[1:])
    (data.with_suffix(".json")).unlink()              # a crash before the marker
    assert not store.is_done(u)
    assert execute(p.units, store, datasets=p.datasets) == [] and store.is_done(u)


def test_failure_is_reported_not_cached_and_others_finish(tiny_method, tmp_path):
    ds = tiny_dataset(tmp_path)
    dark = np.load(ds.clips["frames"].iloc[0])
    dark[1] = 0
    np.save(ds.clips["frames"].iloc[0], dark)          # subject s0's first clip is now dark
    p = _plan(ds, {"fail_on_dark": True})
    store = UnitStore(tmp_path / "units")
    failures = execute(p.units, store, datasets=p.datasets)
    assert len(failures) == 4  # features are computed for every clip, so every fold fails
    assert "boom on a dark clip" in failures[0].error
    assert not any(store.is_done(u) for u in p.units)
    assert not list((tmp_path / "units").rglob("*.json"))


def test_unit_key_depends_on_config_seed_and_code(tiny_method, tmp_path):
    ds = tiny_dataset(tmp_path)
    a, b = _plan(ds).units[0], _plan(ds, {"c": 2.0}).units[0]
    assert a.key != b.key
    c = _plan(ds, seeds=(1,)).units[0]
    assert c.key != a.key
    d = Unit(**{**a.__dict__, "code": "other"})
    assert d.key != a.key


def test_render_from_predictions_only(tiny_method, tmp_path):
    from benchmarks.tablespec import load_table_spec

    spec = load_table_spec(3)
    rows = []
    for row in spec.rows:
        for name, n in (("synthetic-smic", 3), ("synthetic-casme2", 5), ("synthetic-samm", 5)):
            perfect = row.variant == "global" and name == "synthetic-smic"  # one cell all right, others half
            for s in range(4):
                for j in range(n * 2):
                    y = j % n
                    rows.append({"method": row.method, "variant": row.variant or "", "dataset": name,
                                 "source": name, "subject": f"s{s}", "group": f"{name}/s{s}", "clip": f"c{j}",
                                 "fold": s, "seed": 0, "y_true": y,
                                 "y_pred": y if j < n or perfect else (y + 1) % n,
                                 "epoch_policy": "last", "chosen_epoch": 1, "policy_label": "last",
                                 "protocol_note": "", "code_version": "abc"})
    pred = pd.DataFrame(rows)
    ctx = RenderContext("synthetic", "default", "last", "pooled", (0,))
    paths = render(spec, pred, ctx, tmp_path / "out", n_boot=50)
    md = paths["md"].read_text()
    cells = {(c := [x.strip() for x in line.strip().strip("|").split("|")])[0]: c[1:]
             for line in md.splitlines() if line.startswith("| Global")}
    assert len(cells) == 8  # the ablation rows (the plain reference's label does not start with "Global")
    # every subject half right: 50% and F1 0.5, with a degenerate interval; the paper's value beside it
    assert cells["Global"][:4] == ["100.00 [100.00, 100.00]", "59.88", "1.0000 [1.0000, 1.0000]", "0.5964"]
    assert cells["Global+RI"][:4] == ["50.00 [50.00, 50.00]", "62.67", "0.5000 [0.5000, 0.5000]", "0.6274"]
    assert cells["Global+scale1,2,3 + RI"][-2:] == ["0.5000 [0.5000, 0.5000]", "0.7325"]
    assert "Data source: synthetic" in md and "Epoch policy: last" in md and "Seeds: 0" in md
    csv = pd.read_csv(paths["csv"], dtype=str, keep_default_na=False).set_index("method")
    assert list(csv.columns) == [f"{g}.{m}|{w}" for g in ("smic", "casme2", "samm")
                                 for m in ("accuracy", "macro_f1") for w in ("ours", "paper")]
    assert csv.loc["Global"].tolist() == cells["Global"]
    assert len(csv) == len(spec.rows) == 9  # the 8 ablation rows and the plain apex reference


def test_presets_name_real_methods_and_hyperparameters():
    for preset in PRESETS.values():
        for method, over in preset.overrides.items():
            spec = registry.get_method(method)
            assert set(over) <= set(registry.hyperparameters(spec.defaults)), (preset.name, method)


def test_two_names_of_one_configuration_share_their_units(tmp_path):
    ds = tiny_dataset(tmp_path)
    preset = Preset("test", "test", overrides={"mfvan": {"img_size": 32, "patch_grid": 4}})
    p = plan([("mfvan", "full", "tiny"), ("mfvan", "global+s123+ri", "tiny"), ("mfvan", "global+s123", "tiny")],
             [0], preset, "last", dataset_loader=lambda name: ds)
    by = {v: [u.key for u in p.units if u.variant == v] for v in ("full", "global+s123+ri", "global+s123")}
    assert by["full"] == by["global+s123+ri"] and not set(by["full"]) & set(by["global+s123"])
    store = UnitStore(tmp_path / "units")
    full = next(u for u in p.units if u.variant == "full")
    alias = next(u for u in p.units if u.variant == "global+s123+ri" and u.fold == full.fold)
    store.save(full, pd.DataFrame({"variant": ["full"], "y_pred": [1]}))
    assert collect([full, alias], store)["variant"].tolist() == ["full", "global+s123+ri"]


def test_shuffled_label_control_units_are_their_own_and_score_near_chance(tiny_method, tmp_path):
    ds = tiny_dataset(tmp_path)
    preset = Preset("test", "test")
    real = plan([("tiny_mean", "", "tiny")], [0], preset, "last", dataset_loader=lambda name: ds)
    null = plan([("tiny_mean", "", "tiny")], [0], preset, "last", dataset_loader=lambda name: ds,
                label_control="shuffled")
    assert {u.label_control for u in null.units} == {"shuffled"}
    assert not {u.key for u in real.units} & {u.key for u in null.units}  # cached apart from the real units
    store = UnitStore(tmp_path / "units")
    assert execute(real.units + null.units, store, datasets=real.datasets) == []
    r, n = collect(real.units, store), collect(null.units, store)
    np.testing.assert_array_equal(r["y_true"].to_numpy(), n["y_true"].to_numpy())  # test labels untouched
    assert n["protocol_note"].str.contains("shuffled-label control").all()
    assert (r["y_pred"] == r["y_true"]).mean() > 0.9 > (n["y_pred"] == n["y_true"]).mean()
    with pytest.raises(ValueError, match="label control"):
        plan([("tiny_mean", "", "tiny")], [0], preset, "last", dataset_loader=lambda name: ds, label_control="x")
