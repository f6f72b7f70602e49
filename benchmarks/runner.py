"""Plan and execute a sweep: table spec x data source -> cells -> units (LOSO folds), cached.

A *cell* is (method, variant, dataset, seed); its units are its LOSO folds (:mod:`benchmarks.units`).
Planning loads each dataset once, resolves each method's config (registered defaults, then the
preset's overrides, then the user's) and asks whether the data source can feed the method
(:class:`benchmarks.evaluate.NotRunnable` -> the cell is reported as not runnable, with the reason).
Execution skips units already in the store, runs the rest (in this process or ``jobs`` worker
processes), writes each finished unit atomically, never caches a failure, and collects failures.
"""

from __future__ import annotations

import fnmatch
import os
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from benchmarks import evaluate
from benchmarks.data.clips import ClipDataset
from benchmarks.data.registry import load_dataset
from benchmarks.presets import Preset
from benchmarks.registry import get_method, hyperparameters
from benchmarks.splits import loso_splits
from benchmarks.tablespec import TableSpec
from benchmarks.units import Unit, UnitStore, code_version


@dataclass(frozen=True)
class Cell:
    method: str
    variant: str
    dataset: str
    seed: int


@dataclass
class Plan:
    """What a sweep will do: runnable units, and the cells that cannot run (with reasons)."""

    units: list[Unit] = field(default_factory=list)
    not_runnable: dict[tuple[str, str, str], str] = field(default_factory=dict)   # (method, variant, dataset)
    notes: dict[tuple[str, str, str], str] = field(default_factory=dict)          # protocol notes per cell
    datasets: dict[str, ClipDataset] = field(default_factory=dict)

    def cells(self) -> list[Cell]:
        return sorted({Cell(u.method, u.variant, u.dataset, u.seed) for u in self.units},
                      key=lambda c: (c.method, c.variant, c.dataset, c.seed))


@dataclass
class Failure:
    unit: Unit
    error: str
    trace: str


def table_cells(specs: Sequence[TableSpec], data: str, methods: Sequence[str] | None = None,
                datasets: Sequence[str] | None = None) -> list[tuple[str, str, str]]:
    """(method, variant, dataset) triples the tables need from data source ``data``, filtered by globs."""
    out: dict[tuple[str, str, str], None] = {}
    for spec in specs:
        names = []
        for g in spec.groups:
            ref = g.sources.get(data)
            if ref is not None:
                names.append(ref.dataset)
        for row in spec.rows:
            if not row.implemented:
                continue
            if methods and not any(fnmatch.fnmatch(row.method, m) or fnmatch.fnmatch(_row_name(row), m)
                                   for m in methods):
                continue
            for d in dict.fromkeys(names):
                if datasets and not any(fnmatch.fnmatch(d, p) for p in datasets):
                    continue
                out[(row.method, row.variant or "", d)] = None
    return list(out)


def _row_name(row) -> str:
    return f"{row.method}[{row.variant}]" if row.variant else row.method


def plan(triples: Iterable[tuple[str, str, str]], seeds: Sequence[int], preset: Preset, epoch_policy: str,
         data_root: str | Path | None = None, epochs: int | None = None,
         dataset_loader: Callable[[str], ClipDataset] | None = None) -> Plan:
    p = Plan()
    loader = dataset_loader or (lambda name: load_dataset(name, data_root))
    for method, variant, dname in triples:
        spec = get_method(method)
        if dname not in p.datasets:
            p.datasets[dname] = loader(dname)
        ds = p.datasets[dname]
        overrides = preset.overrides_for(method, spec.family)
        if epochs is not None and spec.family == "deep":
            overrides["epochs"] = int(epochs)
        cfg = evaluate.method_config(spec, ds, variant or None, overrides, None)
        try:
            _, note, _ = evaluate.resolve_views(spec, cfg, ds)
        except evaluate.NotRunnable as e:
            p.not_runnable[(method, variant, dname)] = e.reason
            continue
        p.notes[(method, variant, dname)] = note
        folds = loso_splits(ds.groups())
        if preset.max_folds is not None:
            folds = folds[: preset.max_folds]
        policy = epoch_policy if spec.family == "deep" else evaluate.NO_EPOCHS
        config = _jsonable(hyperparameters(cfg))
        code = code_version(method)
        for seed in seeds:
            for f in folds:
                p.units.append(Unit(method, variant, dname, ds.manifest_hash(), f.k, f.test_group, int(seed), policy,
                                    config, overrides, code))
    return p


def _jsonable(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, tuple):
            v = list(v)
        elif not isinstance(v, str | int | float | bool | list | dict | type(None)):
            v = repr(v)
        out[k] = v
    return out


# ------------------------------------------------------------------------------------------ execution
def run_unit(unit: Unit, data_root: str | Path | None, device: str = "auto",
             ds: ClipDataset | None = None) -> tuple[pd.DataFrame, float]:
    """Compute one unit (one fold); returns its prediction rows and wall seconds."""
    t0 = time.perf_counter()
    ds = ds if ds is not None else load_dataset(unit.dataset, data_root)
    if ds.manifest_hash() != unit.manifest:
        raise RuntimeError(f"dataset {unit.dataset} changed since planning (manifest {ds.manifest_hash()} "
                           f"!= {unit.manifest})")
    policy = unit.epoch_policy if unit.epoch_policy != evaluate.NO_EPOCHS else "last"
    df = evaluate.run_loso(unit.method, ds, variant=unit.variant or None, seed=unit.seed,
                           overrides=unit.overrides, epoch_policy=policy, folds=[unit.fold], device=device)
    df["preset_overrides"] = repr(dict(sorted(unit.overrides.items())))
    df["code_version"] = unit.code
    df["unit_key"] = unit.key
    return df, time.perf_counter() - t0


def _worker(unit: Unit, data_root, device, store_root) -> tuple[str, float | None, str | None, str | None]:
    # Runs in a worker process: computes and stores the unit; never touches MLflow.
    try:
        df, wall = run_unit(unit, data_root, device)
        UnitStore(store_root).save(unit, df, wall_s=wall, pid=os.getpid())
        return unit.key, wall, None, None
    except Exception as e:  # noqa: BLE001 - reported, not cached
        return unit.key, None, f"{type(e).__name__}: {e}", traceback.format_exc()


def execute(units: Sequence[Unit], store: UnitStore, data_root: str | Path | None = None, jobs: int = 1,
            device: str = "auto", progress: Callable[[Unit, int, int, float | None], None] | None = None,
            datasets: dict[str, ClipDataset] | None = None) -> list[Failure]:
    """Run the units not yet in ``store``; returns the failures (the rest are stored)."""
    todo = [u for u in units if not store.is_done(u)]
    failures: list[Failure] = []
    done = 0
    if jobs <= 1:
        for u in todo:
            if progress:
                progress(u, done, len(todo), None)
            try:
                df, wall = run_unit(u, data_root, device, (datasets or {}).get(u.dataset))
                store.save(u, df, wall_s=wall, pid=os.getpid())
            except KeyboardInterrupt:
                raise
            except Exception as e:  # noqa: BLE001 - reported, not cached
                wall = None
                failures.append(Failure(u, f"{type(e).__name__}: {e}", traceback.format_exc()))
            done += 1
            if progress:
                progress(u, done, len(todo), wall)
        return failures
    by_key = {u.key: u for u in todo}
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        pending = {pool.submit(_worker, u, data_root, device, str(store.root)) for u in todo}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                key, wall, err, trace = fut.result()
                if err is not None:
                    failures.append(Failure(by_key[key], err, trace or ""))
                done += 1
                if progress:
                    progress(by_key[key], done, len(todo), wall)
    return failures


def collect(units: Sequence[Unit], store: UnitStore) -> pd.DataFrame:
    """The stored predictions of ``units`` (those done), one frame."""
    frames = [df for u in units if (df := store.load(u)) is not None]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
