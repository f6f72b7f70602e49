"""``python -m benchmarks.run --table 3``: regenerate the MFVAN paper's tables next to its numbers.

Sweeps methods x datasets x variants x seeds of the requested tables over LOSO folds (one cached unit
per fold), then writes ``<out>/predictions.parquet`` (one row per clip per unit),
``<out>/results.parquet`` (one row per cell and fold), ``<out>/table<N>.{md,tex,csv}`` and
``<out>/run.json``. Finished units are reused on rerun; a failing unit is reported, not cached, and
makes the exit code non-zero.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
import time
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from benchmarks import __version__, tracking
from benchmarks.atomic import atomic_write, atomic_write_json
from benchmarks.data.errors import DataError
from benchmarks.presets import PRESETS, get_preset
from benchmarks.registry import get_method
from benchmarks.render import RenderContext, fold_results, render_with_tests
from benchmarks.runner import EXECUTORS, collect, execute, plan, prepare_views, table_cells
from benchmarks.tablespec import list_tables, load_table_spec, with_added_methods
from benchmarks.trainer import EPOCH_POLICIES
from benchmarks.units import NO_TRAINER, UnitStore

DATA_SOURCES = ("synthetic", "megc2019-public", "raw")


def _csv(s: str | None) -> list[str] | None:
    return [x.strip() for x in s.split(",") if x.strip()] if s else None


def default_jobs() -> int:
    """One worker process per CPU core (at most 8) on a CPU machine; one process when CUDA is present."""
    import os

    import torch

    return 1 if torch.cuda.is_available() else max(1, min(8, os.cpu_count() or 1))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    p.add_argument("--table", required=True, help="1, 2, 3 or all")
    p.add_argument("--data", choices=DATA_SOURCES, default="synthetic",
                   help="synthetic (embedded default), megc2019-public (published composite) or raw (licensed)")
    p.add_argument("--data-root", help="folder of the licensed releases (raw) or of the published files")
    p.add_argument("--methods", help="comma-separated globs over method names (e.g. 'mfvan,ststnet')")
    p.add_argument("--datasets", help="comma-separated globs over dataset names")
    p.add_argument("--add-methods", metavar="NAME[VARIANT],...",
                   help="registered methods to run as extra rows of every requested table (not in the paper)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    p.add_argument("--preset", choices=list(PRESETS), default="default")
    p.add_argument("--epochs", type=int, help="override every deep method's epoch count")
    p.add_argument("--epoch-policy", choices=EPOCH_POLICIES, default="last")
    p.add_argument("--jobs", type=int, default=default_jobs(),
                   help="worker processes for independent work items, or local Dask workers (default: the "
                        "number of CPU cores, at most 8, without CUDA; 1 with CUDA)")
    p.add_argument("--executor", choices=EXECUTORS, default=None,
                   help="local (default for --jobs 1), process (default for --jobs > 1) or dask")
    p.add_argument("--address", help="Dask scheduler address for --executor dask (default: a local cluster)")
    batching = p.add_mutually_exclusive_group()
    batching.add_argument("--fold-batching", dest="fold_batching", action="store_true", default=None,
                          help="train a deep cell's pending LOSO folds at once, batched (default where it pays: "
                               "with CUDA)")
    batching.add_argument("--no-fold-batching", dest="fold_batching", action="store_false",
                          help="train a deep cell's LOSO folds one after another (default on a CPU)")
    p.add_argument("--init-weights", metavar="METHOD=PATH", action="append", default=[],
                   help="start METHOD's models from the weights in local file PATH (default: every model from "
                        "scratch; nothing is downloaded); repeatable")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--out", default="runs/latest", help="output folder (default runs/latest)")
    p.add_argument("--dry-run", action="store_true", help="print the grid and which units are done; run nothing")
    p.add_argument("--force", metavar="PATTERN", help="recompute units whose 'method[variant] dataset' matches")
    p.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    p.add_argument("--figures", action="store_true", help="also write confusion matrices and attention maps")
    a = p.parse_args(argv)
    a.tables = list_tables() if a.table == "all" else [int(a.table)]
    a.seed_list = [int(s) for s in a.seeds.split(",")]
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    t0 = time.time()
    out = Path(a.out)
    added = _csv(a.add_methods) or []
    try:
        for m in added:
            spec = get_method(m.partition("[")[0])
            variant = m.partition("[")[2].rstrip("]")
            if variant:
                spec.config(variant)
    except KeyError as e:
        print(f"error: --add-methods: {e.args[0]}", file=sys.stderr)
        return 2
    specs = [with_added_methods(load_table_spec(n), added) for n in a.tables]
    init_weights = {}
    for item in a.init_weights:
        method, sep, path = item.partition("=")
        if not sep or not method or not path:
            print(f"error: --init-weights {item!r}: expected METHOD=PATH", file=sys.stderr)
            return 2
        init_weights[method] = path
    triples = table_cells(specs, a.data, _csv(a.methods), _csv(a.datasets))
    if not triples:
        print(f"error: no cell of table(s) {a.tables} matches --data {a.data} --methods {a.methods} "
              f"--datasets {a.datasets}", file=sys.stderr)
        return 2
    preset = get_preset(a.preset)
    try:
        p = plan(triples, a.seed_list, preset, a.epoch_policy, a.data_root, a.epochs,
                 fold_batching=a.fold_batching, init_weights=init_weights)
    except (DataError, KeyError, ValueError) as e:
        print(f"error: {e.args[0] if e.args else e}", file=sys.stderr)
        return 2
    store = UnitStore(out / "units")
    if a.force:
        forced = [u for u in p.units if fnmatch.fnmatch(f"{u.method}[{u.variant}] {u.dataset}", a.force)
                  or fnmatch.fnmatch(u.method, a.force)]
        for u in forced:
            store.forget(u)
        print(f"--force {a.force}: {len(forced)} unit(s) will be recomputed")
    done = sum(store.is_done(u) for u in p.units)
    print(_grid_text(p, store, a))
    if a.dry_run:
        return 0
    if a.jobs > 1 and a.executor != "dask" and done < len(p.units):
        t_views = time.time()
        n_views = prepare_views(p, a.jobs)
        if n_views:
            print(f"views: computed {n_views} missing clip views in {time.time() - t_views:.0f} s "
                  f"({a.jobs} processes)", file=sys.stderr)
    progress = Progress(len(p.units) - done)
    failures = execute(p.units, store, a.data_root, a.jobs, a.device, progress, p.datasets, a.executor, a.address)
    progress.close()
    pred = collect(p.units, store)
    not_runnable = {"|".join(k): v for k, v in p.not_runnable.items()}
    meta = {"tables": a.tables, "data": a.data, "preset": a.preset, "epoch_policy": a.epoch_policy,
            "pooling": "pooled", "seeds": a.seed_list, "epochs_override": a.epochs, "added_methods": added,
            "trainer": sorted({u.trainer for u in p.units} - {NO_TRAINER}), "version": __version__,
            "not_runnable": not_runnable, "n_units": len(p.units), "n_failed": len(failures),
            "datasets": {n: {"manifest": d.manifest_hash(), "kind": d.kind, "root": d.root}
                         for n, d in p.datasets.items()},
            "wall_s": round(time.time() - t0, 1)}
    out.mkdir(parents=True, exist_ok=True)
    res = pd.DataFrame()
    if len(pred):
        atomic_write(out / "predictions.parquet", lambda t: pred.to_parquet(t, index=False))
        n_classes = {n: d.n_classes for n, d in p.datasets.items()}
        res = fold_results(pred, n_classes)
        atomic_write(out / "results.parquet", lambda t: res.to_parquet(t, index=False))
    atomic_write_json(out / "run.json", meta)
    table_paths, figure_paths = [], []
    for spec in specs:
        paths = render_with_tests(spec, pred, out, RenderContext(a.data, a.preset, a.epoch_policy, "pooled",
                                                                  tuple(a.seed_list), not_runnable))
        table_paths += [*paths.values(), *sorted(out.glob(f"table{spec.number}_cells.csv"))]
        print(paths["md"].read_text())
    if a.figures and len(pred):
        from benchmarks.figures import confusion_figures

        figure_paths = confusion_figures(pred, {n: list(d.classes) for n, d in p.datasets.items()}, out / "figures")
        print(f"figures: {len(figure_paths)} confusion matrices in {out / 'figures'}")
        attention = mfvan_attention_figures(p, a, out / "figures")
        figure_paths += attention
        print(f"figures: {len(attention)} MFVAN attention maps (fold 0 retrained per figure) in {out / 'figures'}")
    if not a.no_mlflow:
        run_id = tracking.log_sweep(out, meta, pred, res, table_paths, figure_paths,
                                    n_classes={n: d.n_classes for n, d in p.datasets.items()},
                                    configs={(u.method, u.variant, u.dataset): u.config for u in p.units})
        if run_id:
            print(f"MLflow: run {run_id} in {tracking.tracking_uri(out)}")
    if failures:
        print(f"\n{len(failures)} unit(s) FAILED (not cached; rerun to retry):", file=sys.stderr)
        for f in failures:
            print(f"  {f.unit.label}: {f.error}", file=sys.stderr)
        atomic_write_json(out / "failures.json", [{"unit": f.unit.label, "key": f.unit.key, "error": f.error,
                                                   "trace": f.trace} for f in failures])
        return 1
    print(f"done: {len(p.units)} units ({done} reused) in {time.time() - t0:.0f} s; outputs in {out}")
    return 0


FIGURE_VARIANTS = ("global+s123", "global+s123+ri", "full")  # three scales, as the paper's Figure 6


def mfvan_attention_figures(p, a, out: Path) -> list[Path]:
    """Attention maps of the MFVAN cells with all three scales, one figure per (variant, dataset)."""
    from benchmarks.attention_maps import attention_figures

    cells = {(u.dataset, u.variant): u.overrides for u in p.units
             if u.method == "mfvan" and u.variant in FIGURE_VARIANTS and u.seed == a.seed_list[0]}
    paths: list[Path] = []
    for (dname, variant), overrides in sorted(cells.items()):
        paths += attention_figures(p.datasets[dname], [variant], out, seed=a.seed_list[0], overrides=overrides,
                                   epoch_policy=a.epoch_policy, device=a.device)
    return paths


class Progress:
    """Units done, the current work item and an ETA: a tqdm bar on a terminal, else one line per finished
    unit (logs and CI)."""

    def __init__(self, total: int) -> None:
        self.total, self.t0, self.n = total, time.time(), 0
        self.tty = sys.stderr.isatty()
        self.bar = tqdm(total=total, unit="unit", dynamic_ncols=True) if self.tty and total else None
        self.current = ""

    def __call__(self, unit, n_done: int, n_total: int, wall: float | None) -> None:
        if wall is None and n_done < n_total and n_done == self.n:  # a work item starts
            self.current = unit.label
            if self.bar is not None:
                self.bar.set_postfix_str(self.current, refresh=True)
            return
        self.n = n_done
        if self.bar is not None:
            self.bar.update(1)
            return
        elapsed = time.time() - self.t0
        eta = elapsed / n_done * (n_total - n_done) if n_done else float("nan")
        print(f"[{n_done}/{n_total} units, {elapsed:.0f} s, ETA {eta:.0f} s] done: {unit.label}",
              file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _grid_text(p, store: UnitStore, a) -> str:
    rows = []
    for c in p.cells():
        us = [u for u in p.units if (u.method, u.variant, u.dataset, u.seed) == (c.method, c.variant, c.dataset,
                                                                                   c.seed)]
        rows.append([c.method, c.variant or "-", c.dataset, c.seed, len(us), sum(store.is_done(u) for u in us)])
    df = pd.DataFrame(rows, columns=["method", "variant", "dataset", "seed", "units", "done"])
    head = (f"Grid: tables {a.tables}, data {a.data}, preset {a.preset}, epoch policy {a.epoch_policy}, "
            f"seeds {a.seed_list}: {len(p.units)} units, {sum(store.is_done(u) for u in p.units)} done")
    lines = [head, df.to_string(index=False) if len(df) else "(no runnable cell)"]
    lines += [f"not runnable: {m}{f'[{v}]' if v else ''} on {d}: {r}" for (m, v, d), r in p.not_runnable.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
