"""Work items give the same predictions and the same cache in this process, in worker processes and on a
Dask cluster that the test starts and stops; failures are reported from every executor."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from benchmarks.presets import Preset
from benchmarks.runner import collect, execute, plan, work_items
from benchmarks.units import FOLD_BATCHED, SEQUENTIAL, UnitStore
from tests.test_runner import tiny_dataset

PRESET = Preset("test", "test", overrides={"ststnet": {"epochs": 2, "batch_size": 8}})


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    monkeypatch.setenv("MER_CACHE_DIR", str(tmp_path / "cache"))  # inherited by the worker processes
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers run one thread each: same arithmetic here
    yield tiny_dataset(tmp_path)
    torch.set_num_threads(threads)


def _plan(ds, fold_batching=True):
    return plan([("ststnet", "", "tiny")], [0], PRESET, "last", dataset_loader=lambda name: ds,
                fold_batching=fold_batching)


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["fold", "clip"]).reset_index(drop=True)


def test_work_items_group_a_batched_cell_and_keep_sequential_units_apart(tiny):
    batched, sequential = _plan(tiny).units, _plan(tiny, fold_batching=False).units
    assert {u.trainer for u in batched} == {FOLD_BATCHED} and {u.trainer for u in sequential} == {SEQUENTIAL}
    assert [len(i) for i in work_items(batched)] == [4] and [len(i) for i in work_items(sequential)] == [1] * 4
    assert {u.key for u in batched}.isdisjoint(u.key for u in sequential)  # cached apart


def test_local_process_and_dask_executors_agree(tiny, tmp_path):
    from distributed import LocalCluster

    p = _plan(tiny)
    results = {}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        for name, kwargs in (("local", {}), ("process", {"jobs": 2}),
                             ("dask", {"address": cluster.scheduler_address})):
            store = UnitStore(tmp_path / name)
            assert execute(p.units, store, datasets=p.datasets, executor=name, **kwargs) == []
            assert all(store.is_done(u) for u in p.units)
            results[name] = (_sorted(collect(p.units, store)),
                             sorted(f.name for f in store.root.rglob("*.parquet")))
    ref, ref_files = results["local"]
    assert len(ref) == len(tiny.clips) and len(ref_files) == 4
    for name in ("process", "dask"):
        df, files = results[name]
        assert files == ref_files  # same unit keys: the same cache
        pd.testing.assert_frame_equal(df, ref)


def test_dask_failure_is_reported_and_not_cached(tiny, tmp_path):
    p = _plan(tiny)
    broken = tiny.subset(tiny.clips["subject"] != "s3")  # planned dataset changed under the units
    store = UnitStore(tmp_path / "units")
    failures = execute(p.units, store, datasets={"tiny": broken}, executor="dask", jobs=1)
    assert len(failures) == 4 and "changed since planning" in failures[0].error
    assert not list(store.root.rglob("*.json"))


def test_prepare_views_fills_the_cache_once(tiny):
    from benchmarks.data.views import cache_path
    from benchmarks.runner import prepare_views

    p = _plan(tiny)
    assert {v.name for _, v in p.views["tiny"]} == {"flow_uvs"} and len(p.views["tiny"]) == len(tiny.clips)
    assert prepare_views(p, jobs=2) == len(tiny.clips)
    assert all(cache_path(tiny, i, v).exists() for i, v in p.views["tiny"])
    assert prepare_views(p, jobs=2) == 0  # nothing left to compute
