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
import json
import multiprocessing
import os
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from benchmarks import evaluate
from benchmarks.batched_trainer import unsupported_reason
from benchmarks.data.clips import ClipDataset
from benchmarks.data.registry import load_dataset
from benchmarks.data.views import ViewSpec, cache_path, get_view
from benchmarks.presets import Preset
from benchmarks.registry import get_method, hyperparameters
from benchmarks.splits import loso_splits
from benchmarks.tablespec import TableSpec
from benchmarks.units import FOLD_BATCHED, NO_TRAINER, SEQUENTIAL, Unit, UnitClaim, UnitStore, code_version


@dataclass(frozen=True)
class Cell:
    method: str
    variant: str
    dataset: str
    seed: int
    epoch_policy: str = ""


@dataclass
class Plan:
    """What a sweep will do: runnable units, and the cells that cannot run (with reasons)."""

    units: list[Unit] = field(default_factory=list)
    not_runnable: dict[tuple[str, str, str], str] = field(default_factory=dict)   # (method, variant, dataset)
    notes: dict[tuple[str, str, str], str] = field(default_factory=dict)          # protocol notes per cell
    datasets: dict[str, ClipDataset] = field(default_factory=dict)
    views: dict[str, set[tuple[int, ViewSpec]]] = field(default_factory=dict)   # dataset -> (clip row, view)

    def cells(self) -> list[Cell]:
        return sorted({Cell(u.method, u.variant, u.dataset, u.seed, u.epoch_policy) for u in self.units},
                      key=lambda c: (c.method, c.variant, c.dataset, c.seed, c.epoch_policy))


@dataclass
class Failure:
    unit: Unit
    error: str
    trace: str


def table_cells(specs: Sequence[TableSpec], data: str, methods: Sequence[str] | None = None,
                datasets: Sequence[str] | None = None) -> list[tuple]:
    """(method, variant, dataset) triples the tables need from data source ``data``, filtered by globs; a row
    with its own ``epoch_policy`` gives (method, variant, dataset, policy) (:func:`plan` takes both)."""
    out: dict[tuple, None] = {}
    for spec in specs:
        names = []
        for g in spec.groups:
            ref = g.sources.get(data)
            if ref is not None:
                names.append(ref.dataset)
        for row in spec.rows:
            if not row.implemented:
                continue
            if methods and not any(m in (row.method, _row_name(row)) or fnmatch.fnmatch(row.method, m)
                                   or fnmatch.fnmatch(_row_name(row), m) for m in methods):
                continue
            for d in dict.fromkeys(names):
                if datasets and not any(fnmatch.fnmatch(d, p) for p in datasets):
                    continue
                cell = (row.method, row.variant or "", d)
                out[(*cell, row.epoch_policy) if row.epoch_policy else cell] = None
    return list(out)


def _row_name(row) -> str:
    return f"{row.method}[{row.variant}]" if row.variant else row.method


def plan(triples: Iterable[tuple], seeds: Sequence[int], preset: Preset, epoch_policy: str,
         data_root: str | Path | None = None, epochs: int | None = None,
         dataset_loader: Callable[[str], ClipDataset] | None = None, fold_batching: bool | None = None,
         init_weights: Mapping[str, str] | None = None, label_control: str | None = None) -> Plan:
    """The units of ``triples`` x ``seeds`` under ``preset``; a triple's optional fourth item is its epoch policy
    (else ``epoch_policy``). Deep methods' units are trained fold-batched (all
    pending folds of a cell in one work item, one batched computation) when ``fold_batching`` is True, fold
    after fold when False; None (auto) batches where it pays: when CUDA is present (:func:`batching_pays`).
    ``init_weights``: method name -> a local weights file its models start from (default: from scratch).
    ``label_control="shuffled"``: every unit is the shuffled-label control (training labels permuted within each
    fold, :func:`benchmarks.evaluate.training_labels`); its units have keys of their own."""
    if label_control is not None and label_control not in evaluate.LABEL_CONTROLS:
        raise ValueError(f"label control {label_control!r}: choose one of {evaluate.LABEL_CONTROLS}")
    weights: dict[str, tuple[str, str]] = {}  # method -> (sha256, path)
    for m, path in (init_weights or {}).items():
        try:
            family = get_method(m).family
        except KeyError as e:
            raise ValueError(f"--init-weights {m}={path}: {e.args[0]}") from None
        if family != "deep":
            raise ValueError(f"--init-weights {m}={path}: {m} is not a deep method (no model weights)")
        if not Path(path).is_file():
            raise ValueError(f"--init-weights {m}={path}: no such file")
        weights[m] = (evaluate.file_sha256(path), str(Path(path).resolve()))
    fitted: set[tuple[str, str]] = set()
    if fold_batching is None:
        fold_batching = batching_pays()
    if label_control is not None:
        fold_batching = False  # a control's training labels differ per fold: trained fold after fold
    p = Plan()
    loader = dataset_loader or (lambda name: load_dataset(name, data_root))
    for method, variant, dname, *own_policy in triples:
        spec = get_method(method)
        if dname not in p.datasets:
            p.datasets[dname] = loader(dname)
        ds = p.datasets[dname]
        overrides = preset.overrides_for(method, spec.family)
        if epochs is not None and spec.family == "deep":
            overrides["epochs"] = int(epochs)
        cfg = evaluate.method_config(spec, ds, variant or None, overrides, None)
        try:
            views, note, preferred = evaluate.resolve_views(spec, cfg, ds)
        except evaluate.NotRunnable as e:
            p.not_runnable[(method, variant, dname)] = e.reason
            continue
        needed = p.views.setdefault(dname, set())
        for i in range(len(ds.clips)):
            needed.update((i, v) for v in (spec.input_views(cfg, ds, i) if preferred else views))
        p.notes[(method, variant, dname)] = note
        folds = loso_splits(ds.groups())
        if preset.max_folds is not None:
            folds = folds[: preset.max_folds]
        policy = (own_policy[0] if own_policy else epoch_policy) if spec.family == "deep" else evaluate.NO_EPOCHS
        trainer = NO_TRAINER
        if spec.family == "deep":  # a configuration the batched trainer refuses trains fold after fold
            batchable = fold_batching and unsupported_reason(evaluate.train_config(cfg, "last", "cpu")) is None
            trainer = FOLD_BATCHED if batchable else SEQUENTIAL
        config = _jsonable(hyperparameters(cfg))
        if method in weights and (method, repr(config)) not in fitted:
            check_weights_fit(spec, cfg, weights[method][1], f"--init-weights {method}={init_weights[method]}")
            fitted.add((method, repr(config)))
        code = code_version(method)
        for seed in seeds:
            for f in folds:
                p.units.append(Unit(method, variant, dname, ds.manifest_hash(), f.k, f.test_group, int(seed), policy,
                                    config, overrides, code, trainer, *weights.get(method, ("", "")),
                                    label_control or ""))
    p.units = list(dict.fromkeys(p.units))  # a handcrafted method listed under several policies runs once
    return p


def check_weights_fit(spec, cfg, path: str, what: str) -> None:
    """Raise ValueError (one line, starting with ``what``) unless ``path`` is a state dict that the model
    ``spec.build(cfg)`` loads with ``strict=True``: a truncated or foreign file fails at planning, not in
    every unit."""
    try:
        state = evaluate.load_weights(path)
    except (OSError, ValueError) as e:
        raise ValueError(f"{what}: {_one_line(str(e))}") from None
    try:
        spec.build(cfg).load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{what}: does not fit {spec.name} as configured here ({_one_line(str(e))})") from None


def _one_line(text: str, limit: int = 300) -> str:
    line = "; ".join(part.strip() for part in text.splitlines() if part.strip())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def batching_pays() -> bool:
    """Whether fold batching is the faster trainer here: on CUDA (launch-bound steps) yes; on the CPU no
    (``python -m benchmarks.bench_folds``: 1.00x STSTNet, 1.20x OFF-ApexNet, 0.97x MFVAN on 2 cores, and
    per-fold work items keep every worker process busy and every finished fold cached)."""
    import torch

    return torch.cuda.is_available()


def _compute_views(ds: ClipDataset, todo: list[tuple[int, ViewSpec]]) -> int:
    for i, v in todo:
        get_view(ds, i, v)
    return len(todo)


def prepare_views(p: Plan, jobs: int, chunk: int = 16) -> int:
    """Compute, over ``jobs`` worker processes, the clip views that the plan's units read and the view cache
    lacks (e.g. TV-L1 flow on a first run), so that the units only read them; returns how many."""
    tasks = [(ds, [(i, v) for i, v in sorted(needed, key=lambda t: (t[0], str(t[1])))
                   if not cache_path(ds, i, v).exists()])
             for ds, needed in ((p.datasets[d], n) for d, n in p.views.items())]
    chunks = [(ds, todo[k:k + chunk]) for ds, todo in tasks for k in range(0, len(todo), chunk)]
    if not chunks:
        return 0
    if jobs <= 1:
        return sum(_compute_views(ds, todo) for ds, todo in chunks)
    pool = _worker_pool(jobs)
    try:
        n = sum(pool.map(_compute_views, *zip(*chunks)))
    except BaseException:
        _stop_workers(pool)
        raise
    pool.shutdown()
    return n


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
SHARED_POLICIES = frozenset({"last", "oracle"})
"""Policies one sequential training serves at once: ``oracle`` only reads the test set, so the last epoch of its
run is exactly the ``last`` policy's model (:func:`benchmarks.evaluate.run_loso` ``with_last``)."""


def work_items(units: Sequence[Unit]) -> list[list[Unit]]:
    """Group units into work items: all units of a cell trained fold-batched form one item (one batched
    computation); a fold trained sequentially under ``last`` and under ``oracle`` (same cell, config and code)
    forms one item, trained once; every other unit is an item of its own. Order follows ``units``."""
    items: dict[tuple, list[Unit]] = {}
    for u in units:
        config = json.dumps(u.config, sort_keys=True)
        if u.trainer == FOLD_BATCHED:
            key = (u.cell, u.epoch_policy, u.code, config, u.label_control)
        elif u.trainer == SEQUENTIAL and u.epoch_policy in SHARED_POLICIES and not u.label_control:
            key = (u.cell, u.fold, u.code, config, u.weights, "last+oracle")
        else:
            key = (u.key,)
        items.setdefault(key, []).append(u)
    return list(items.values())


def run_units(units: Sequence[Unit], data_root: str | Path | None, device: str = "auto",
              ds: ClipDataset | None = None) -> list[tuple[Unit, pd.DataFrame, float]]:
    """Compute the units of one work item (folds of one cell) in one LOSO call; returns, per unit, its
    prediction rows and its share of the wall seconds."""
    t0 = time.perf_counter()
    u0 = units[0]
    ds = ds if ds is not None else load_dataset(u0.dataset, data_root)
    if ds.manifest_hash() != u0.manifest:
        raise RuntimeError(f"dataset {u0.dataset} changed since planning (manifest {ds.manifest_hash()} "
                           f"!= {u0.manifest})")
    shared = {u.epoch_policy for u in units} == SHARED_POLICIES  # one training gives both (work_items)
    policy = "oracle" if shared else u0.epoch_policy if u0.epoch_policy != evaluate.NO_EPOCHS else "last"
    df = evaluate.run_loso(u0.method, ds, variant=u0.variant or None, seed=u0.seed, overrides=u0.overrides,
                           epoch_policy=policy, folds=list(dict.fromkeys(u.fold for u in units)), device=device,
                           fold_batching=u0.trainer == FOLD_BATCHED, init_weights=u0.weights_path or None,
                           label_control=u0.label_control or None, with_last=shared)
    wall = (time.perf_counter() - t0) / len(units)
    out = []
    for u in units:
        mask = df["fold"] == u.fold
        if shared:
            mask &= df["epoch_policy"] == u.epoch_policy
        part = df.loc[mask].reset_index(drop=True)
        part["trainer"] = u.trainer
        part["preset_overrides"] = repr(dict(sorted(u.overrides.items())))
        part["code_version"] = u.code
        part["unit_key"] = u.key
        out.append((u, part, wall))
    return out


def run_unit(unit: Unit, data_root: str | Path | None, device: str = "auto",
             ds: ClipDataset | None = None) -> tuple[pd.DataFrame, float]:
    """Compute one unit (one fold); returns its prediction rows and wall seconds."""
    (_, df, wall), = run_units([unit], data_root, device, ds)
    return df, wall


def compute_item(units: list[Unit], data_root, device: str, threads: int | None = None,
                 ds: ClipDataset | None = None
                 ) -> tuple[list[str], list[tuple[pd.DataFrame, float]] | None, str | None, str | None]:
    """A work item in a worker process or on a cluster worker: (unit keys, per-unit (rows, wall) or None,
    error, traceback). The driver stores the results, so workers need no shared file system; they never
    touch MLflow. ``threads`` pins torch's intra-op threads of the worker; ``ds`` is the planned dataset
    (its clip table; the frames it points to must be readable by the worker), else loaded by name."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    try:
        rows = run_units(units, data_root, device, ds)
        return [u.key for u in units], [(df, wall) for _, df, wall in rows], None, None
    except Exception as e:  # noqa: BLE001 - reported, not cached
        return [u.key for u in units], None, f"{type(e).__name__}: {e}", traceback.format_exc()


Progress = Callable[[Unit, int, int, float | None], None]
_SPAWN = multiprocessing.get_context("spawn")  # fresh workers: no forked OpenMP/CUDA state
EXECUTORS = ("local", "process", "dask")


def execute(units: Sequence[Unit], store: UnitStore, data_root: str | Path | None = None, jobs: int = 1,
            device: str = "auto", progress: Progress | None = None,
            datasets: dict[str, ClipDataset] | None = None, executor: str | None = None,
            address: str | None = None, threads: int | None = None) -> list[Failure]:
    """Run the units not yet in ``store``; returns the failures (the rest are stored).

    Work items (:func:`work_items`) run in this process (``executor="local"``, the default for
    ``jobs <= 1``), in ``jobs`` worker processes (``"process"``, the default for ``jobs > 1``; one torch
    thread per core share each), or on a Dask cluster (``"dask"``: the scheduler at ``address``, or a
    local cluster of ``jobs`` single-threaded worker processes when ``address`` is None). Whatever the
    executor, this process writes every finished unit to ``store`` as its result arrives.

    Another invocation may share ``store``: a work item runs only once its units are claimed
    (:meth:`UnitStore.claim`); items another process holds wait until it lets go, and are then taken from
    the store (or computed here, if it failed or was stopped). ``threads``: torch's intra-op threads per
    computation (default: as set for ``local``, cores / ``jobs`` per worker process); training is bitwise
    reproducible for a given thread count only, so a sweep compared with goldens pins it.
    ``progress(unit, n_done, n_total, wall)`` is
    called with ``wall=None`` when a work item starts in this process, once per finished or failed unit,
    and with a fifth argument True for a unit that another invocation computed.
    """
    executor = executor or ("local" if jobs <= 1 else "process")
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    todo = []
    for u in {u.key: u for u in units}.values():  # one per computation
        if store.is_done(u):
            store.tidy(u)
        else:
            todo.append(u)
    failures: list[Failure] = []
    done = 0
    claims: dict[str, tuple[UnitClaim, list[Unit]]] = {}

    def finished(keys: list[str], results, err: str | None, trace: str | None) -> None:
        nonlocal done
        item = [by_key[k] for k in keys]
        for i, u in enumerate(item):
            wall = None
            if err is None:
                df, wall = results[i]
                store.save(u, df, wall_s=wall, pid=os.getpid())
            else:
                failures.append(Failure(u, err, trace or ""))
            done += 1
            if progress:
                progress(u, done, len(todo), wall)
        claim, claimed = claims.pop(keys[0])
        claim.release(store, claimed)

    def n_done() -> int:
        return done

    by_key = {u.key: u for u in todo}
    pending = work_items(todo)
    try:
        while pending:
            runnable, waiting = [], []
            for item in pending:
                claim = store.claim(item)
                if claim is None:
                    waiting.append(item)
                    continue
                left = [u for u in item if not store.is_done(u)]
                for u in item:
                    if u not in left:  # another invocation finished it meanwhile
                        done += 1
                        if progress:
                            progress(u, done, len(todo), None, True)
                if not left:
                    claim.release(store, item)
                    continue
                claims[left[0].key] = (claim, item)
                runnable.append(left)
            _run_items(runnable, finished, progress, n_done, len(todo), data_root, device, jobs, datasets,
                       executor, address, threads)
            if waiting:  # held by another invocation: wait for the first to be let go, then look again
                store.claim(waiting[0], blocking=True).release()
            pending = waiting
    finally:
        for claim, item in claims.values():
            claim.release(store, item)
    return failures


def _ignore_sigint() -> None:
    """Worker-process initializer: Ctrl-C is the driver's to handle (it stops the workers)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and terminate the worker processes now (on Ctrl-C or an error)."""
    processes = list(getattr(pool, "_processes", {}).values())  # no public API before Python 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        proc.terminate()
    for proc in processes:
        proc.join(timeout=10)
    pool.shutdown(wait=True)  # joins the pool's manager thread, which closes its queues


def _worker_pool(jobs: int) -> ProcessPoolExecutor:
    """``jobs`` spawned worker processes that leave Ctrl-C to this process (:func:`_stop_workers`)."""
    # Workers stopped mid-item leave semaphores that multiprocessing's resource tracker then removes, with a
    # warning per run that says nothing the "interrupted" line does not.
    os.environ.setdefault("PYTHONWARNINGS", "ignore:resource_tracker:UserWarning")
    return ProcessPoolExecutor(max_workers=jobs, mp_context=_SPAWN, initializer=_ignore_sigint)


def _run_items(items: list[list[Unit]], finished, progress, n_done, n_total: int, data_root, device: str,
               jobs: int, datasets, executor: str, address: str | None, threads: int | None = None) -> None:
    """Compute ``items`` with ``executor``, passing each result to ``finished(keys, results, err, trace)``."""
    if not items:
        return
    if executor == "local":
        import torch

        before = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        try:
            for item in items:
                if progress:
                    progress(item[0], n_done(), n_total, None)
                try:
                    rows = run_units(item, data_root, device, (datasets or {}).get(item[0].dataset))
                    finished([u.key for u in item], [(df, wall) for _, df, wall in rows], None, None)
                except KeyboardInterrupt:
                    raise
                except Exception as e:  # noqa: BLE001 - reported, not cached
                    finished([u.key for u in item], None, f"{type(e).__name__}: {e}", traceback.format_exc())
        finally:
            torch.set_num_threads(before)
    elif executor == "process":
        threads = threads or max(1, (os.cpu_count() or 1) // jobs)
        pool = _worker_pool(jobs)
        try:
            pending = {pool.submit(compute_item, item, data_root, device, threads,
                                   (datasets or {}).get(item[0].dataset)) for item in items}
            while pending:
                ready, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in ready:
                    finished(*fut.result())
        except BaseException:
            _stop_workers(pool)
            raise
        pool.shutdown()
    else:
        from benchmarks.cluster import dask_results

        for result in dask_results(compute_item, items, data_root, device, address, jobs, datasets or {}):
            finished(*result)


def collect(units: Sequence[Unit], store: UnitStore) -> pd.DataFrame:
    """The stored predictions of ``units`` (those done), one frame, each labelled with its unit's variant
    (units of one computation under two variant names share their stored rows)."""
    frames = [df.assign(variant=u.variant) for u in units if (df := store.load(u)) is not None]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
