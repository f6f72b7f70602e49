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
import os
import signal
import sys
import time
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from benchmarks import __version__, tracking
from benchmarks.atomic import atomic_write, atomic_write_json, remove_stale_temps
from benchmarks.cli_args import CliError, fail, positive_int, report, seed_list, table_choice, writable_folder
from benchmarks.data.errors import DataError
from benchmarks.locks import FileLock
from benchmarks.presets import PRESETS, get_preset
from benchmarks.registry import get_method
from benchmarks.render import RenderContext, data_notes, fold_results, render_with_tests
from benchmarks.runner import EXECUTORS, collect, execute, plan, prepare_views, table_cells
from benchmarks.tablespec import load_table_spec, with_added_methods
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


def device_choice(text: str) -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``; an explicit CUDA device must be present."""
    import torch

    from benchmarks.trainer import resolve_device

    if not (text in ("auto", "cpu") or text == "cuda" or (text.startswith("cuda:") and text[5:].isdigit())):
        raise argparse.ArgumentTypeError(f"{text!r} is not one of auto, cpu, cuda, cuda:N")
    if text.startswith("cuda"):
        try:
            resolve_device(text)
        except (ValueError, RuntimeError):
            raise argparse.ArgumentTypeError(f"{text} requested but no CUDA device is available "
                                             f"(torch {torch.__version__}); use --device cpu or auto") from None
    return text


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    p.add_argument("--table", required=True, type=table_choice, dest="tables", metavar="TABLE",
                   help="1, 2, 3, leaderboard (a table spec under tables/) or all")
    p.add_argument("--data", choices=DATA_SOURCES, default="synthetic",
                   help="synthetic (embedded default), megc2019-public (published composite) or raw (licensed)")
    p.add_argument("--data-root", help="folder of the licensed releases (raw) or of the published files")
    p.add_argument("--methods", help="comma-separated names or globs over method names (e.g. 'mfvan,ststnet')")
    p.add_argument("--datasets", help="comma-separated globs over dataset names")
    p.add_argument("--add-methods", metavar="NAME[VARIANT],...",
                   help="registered methods to run as extra rows of every requested table (not in the paper)")
    p.add_argument("--seeds", type=seed_list, default="0", help="comma-separated seeds (default 0)")
    p.add_argument("--preset", choices=list(PRESETS), default="default")
    p.add_argument("--epochs", type=positive_int, help="override every deep method's epoch count")
    p.add_argument("--epoch-policy", choices=EPOCH_POLICIES, default="last")
    p.add_argument("--jobs", type=positive_int, default=default_jobs(),
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
    p.add_argument("--device", type=device_choice, default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--out", default="runs/latest", help="output folder (default runs/latest)")
    p.add_argument("--dry-run", action="store_true", help="print the grid and which units are done; run nothing")
    p.add_argument("--force", metavar="PATTERN", help="recompute units whose 'method[variant] dataset' matches")
    p.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    p.add_argument("--figures", action="store_true", help="also write confusion matrices and attention maps")
    p.add_argument("--label-control", choices=("none", "shuffled"), default="none",
                   help="shuffled: the shuffled-label control, the same pipeline with training labels permuted "
                        "within each LOSO fold (a null model; units cached apart, tables labelled)")
    a = p.parse_args(argv)
    a.seed_list = a.seeds
    if a.address and a.executor != "dask":
        p.error("argument --address: only with --executor dask")
    return a


def _check_paths(a: argparse.Namespace) -> None:
    """``--data-root`` and ``--out`` before anything is computed; CliError naming the argument."""
    if a.data_root is not None:
        root = Path(a.data_root).expanduser()
        if root.exists() and not root.is_dir():
            fail(f"--data-root {root}: is a file, not a folder")
        if not root.exists() and a.data != "synthetic":
            fail(f"--data-root {root}: no such folder")
    out = Path(a.out)
    if a.dry_run:  # nothing is written; only say now what a real run would fail on
        if out.exists() and not out.is_dir():
            fail(f"--out {out}: is a file, not a folder")
    else:
        writable_folder(out, "--out")


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    state: dict = {}
    previous = _sigterm_as_interrupt()
    try:
        return _run(a, state)
    except CliError as e:
        return report(e)
    except KeyboardInterrupt:
        return _interrupted(state)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if "lock" in state:
            state["lock"].release()


def _sigterm_as_interrupt():
    """SIGTERM (``kill``, a batch scheduler's stop) ends a run as Ctrl-C does; returns the previous handler."""
    def handler(signum, frame):
        raise KeyboardInterrupt
    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        return None


def _interrupted(state: dict) -> int:
    if "progress" in state:
        state["progress"].close()
    store, units = state.get("store"), state.get("units")
    if store is None:
        print("interrupted: no unit had started; nothing to keep", file=sys.stderr)
    else:
        n = sum(store.is_done(u) for u in units)
        print(f"interrupted: {n} of {len(units)} units finished and cached in {store.root}; rerun the same "
              "command to continue", file=sys.stderr)
    return 130


def _outputs_folder(out: Path, state: dict) -> Path:
    """``out`` when this invocation holds its lock; else (another run writes there now) a folder of its own,
    ``<out>/concurrent/<time>-<pid>``, so that neither overwrites the other's tables and predictions."""
    lock = FileLock(out / ".run.lock")
    if lock.acquire():
        lock.write_owner(argv=sys.argv)
        state["lock"] = lock
        return out
    owner = lock.owner()
    dest = out / "concurrent" / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    print(f"note: {out} is in use by another run (pid {owner.get('pid', '?')}, started "
          f"{owner.get('started', '?')}); units are shared, this run's tables and predictions go to {dest}",
          file=sys.stderr)
    return dest


def _run(a: argparse.Namespace, state: dict) -> int:
    t0 = time.time()
    out = Path(a.out)
    _check_paths(a)
    added = _csv(a.add_methods) or []
    try:
        for m in added:
            spec = get_method(m.partition("[")[0])
            variant = m.partition("[")[2].rstrip("]")
            if variant:
                spec.config(variant)
    except KeyError as e:
        fail(f"--add-methods: {e.args[0]}")
    specs = [with_added_methods(load_table_spec(n), added) for n in a.tables]
    init_weights = {}
    for item in a.init_weights:
        method, sep, path = item.partition("=")
        if not sep or not method or not path:
            fail(f"--init-weights {item!r}: expected METHOD=PATH")
        init_weights[method] = path
    triples = table_cells(specs, a.data, _csv(a.methods), _csv(a.datasets))
    if not triples:
        fail(f"no cell of table(s) {a.tables} matches --data {a.data} --methods {a.methods} "
             f"--datasets {a.datasets}")
    preset = get_preset(a.preset)
    try:
        p = plan(triples, a.seed_list, preset, a.epoch_policy, a.data_root, a.epochs,
                 fold_batching=a.fold_batching, init_weights=init_weights,
                 label_control=None if a.label_control == "none" else a.label_control)
    except (DataError, KeyError, ValueError) as e:
        fail(str(e.args[0] if e.args else e))
    store = UnitStore(out / "units")
    state.update(store=store, units=p.units)
    if not a.dry_run:
        remove_stale_temps(out)
    if a.force:
        forced = [u for u in p.units if fnmatch.fnmatch(f"{u.method}[{u.variant}] {u.dataset}", a.force)
                  or fnmatch.fnmatch(u.method, a.force)]
        busy = 0
        for u in [] if a.dry_run else forced:
            claim = store.claim([u])
            if claim is None:  # another run is computing it now: its result will be fresh
                busy += 1
                continue
            store.forget(u)
            claim.release()
        print(f"--force {a.force}: {len(forced)} unit(s) will be recomputed"
              + (f" ({busy} being computed by another run now)" if busy else ""))
    done = sum(store.is_done(u) for u in p.units)
    print(_grid_text(p, store, a))
    if a.dry_run:
        return 0
    dest = _outputs_folder(out, state)
    if a.jobs > 1 and a.executor != "dask" and done < len(p.units):
        t_views = time.time()
        n_views = prepare_views(p, a.jobs)
        if n_views:
            print(f"views: computed {n_views} missing clip views in {time.time() - t_views:.0f} s "
                  f"({a.jobs} processes)", file=sys.stderr)
    progress = state["progress"] = Progress(len(p.units) - done)
    failures = execute(p.units, store, a.data_root, a.jobs, a.device, progress, p.datasets, a.executor, a.address)
    progress.close()
    pred = collect(p.units, store)
    not_runnable = {"|".join(k): v for k, v in p.not_runnable.items()}
    meta = {"tables": a.tables, "data": a.data, "preset": a.preset, "epoch_policy": a.epoch_policy,
            "pooling": "pooled", "seeds": a.seed_list, "label_control": a.label_control,
            "epochs_override": a.epochs, "added_methods": added, "preset_reasons": dict(preset.reasons),
            "trainer": sorted({u.trainer for u in p.units} - {NO_TRAINER}), "version": __version__,
            "not_runnable": not_runnable, "n_units": len(p.units), "n_failed": len(failures),
            "units": str(store.root),
            "datasets": {n: {"manifest": d.manifest_hash(), "kind": d.kind, "root": d.root,
                             **({"note": d.notes[0]} if d.kind == "synthetic" and d.notes else {})}
                         for n, d in p.datasets.items()},
            "wall_s": round(time.time() - t0, 1)}
    dest.mkdir(parents=True, exist_ok=True)
    res = pd.DataFrame()
    if len(pred):
        atomic_write(dest / "predictions.parquet", lambda t: pred.to_parquet(t, index=False))
        n_classes = {n: d.n_classes for n, d in p.datasets.items()}
        res = fold_results(pred, n_classes)
        atomic_write(dest / "results.parquet", lambda t: res.to_parquet(t, index=False))
    atomic_write_json(dest / "run.json", meta)
    table_paths, figure_paths = [], []
    for spec in specs:
        paths = render_with_tests(spec, pred, dest, RenderContext(a.data, a.preset, a.epoch_policy, "pooled",
                                                                   tuple(a.seed_list), not_runnable, [],
                                                                   data_notes(meta), meta["preset_reasons"]))
        table_paths += [*paths.values(), *sorted(dest.glob(f"{spec.stem}_cells.csv"))]
        print(paths["md"].read_text())
    if a.figures and len(pred):
        from benchmarks.figures import confusion_figures

        figure_paths = confusion_figures(pred, {n: list(d.classes) for n, d in p.datasets.items()}, dest / "figures")
        print(f"figures: {len(figure_paths)} confusion matrices in {dest / 'figures'}")
        attention = mfvan_attention_figures(p, a, dest / "figures")
        figure_paths += attention
        print(f"figures: {len(attention)} MFVAN attention maps (fold 0 retrained per figure) in {dest / 'figures'}")
    if not a.no_mlflow:
        run_id = tracking.log_sweep(dest, meta, pred, res, table_paths, figure_paths,
                                    n_classes={n: d.n_classes for n, d in p.datasets.items()},
                                    configs={(u.method, u.variant, u.dataset): u.config for u in p.units})
        if run_id:
            print(f"MLflow: run {run_id} in {tracking.tracking_uri(dest)}")
    if failures:
        print(f"\n{len(failures)} unit(s) FAILED (not cached; rerun to retry):", file=sys.stderr)
        for f in failures:
            print(f"  {f.unit.label}: {f.error}", file=sys.stderr)
        atomic_write_json(dest / "failures.json", [{"unit": f.unit.label, "key": f.unit.key, "error": f.error,
                                                    "trace": f.trace} for f in failures])
        return 1
    (dest / "failures.json").unlink(missing_ok=True)  # from an earlier run of this folder
    print(f"done: {len(p.units)} units ({done} reused) in {time.time() - t0:.0f} s; outputs in {dest}")
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

    def __call__(self, unit, n_done: int, n_total: int, wall: float | None, by_other: bool = False) -> None:
        if wall is None and not by_other and n_done < n_total and n_done == self.n:  # a work item starts
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
        what = "done by another run" if by_other else "done"
        print(f"[{n_done}/{n_total} units, {elapsed:.0f} s, ETA {eta:.0f} s] {what}: {unit.label}",
              file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _grid_text(p, store: UnitStore, a) -> str:
    rows = []
    for c in p.cells():
        us = [u for u in p.units if (u.method, u.variant, u.dataset, u.seed, u.epoch_policy)
              == (c.method, c.variant, c.dataset, c.seed, c.epoch_policy)]
        rows.append([c.method, c.variant or "-", c.dataset, c.seed, c.epoch_policy, len(us),
                     sum(store.is_done(u) for u in us)])
    df = pd.DataFrame(rows, columns=["method", "variant", "dataset", "seed", "epochs", "units", "done"])
    head = (f"Grid: tables {a.tables}, data {a.data}, preset {a.preset}, epoch policy {a.epoch_policy}, "
            f"seeds {a.seed_list}{', SHUFFLED-LABEL CONTROL' if a.label_control != 'none' else ''}: "
            f"{len(p.units)} units, {sum(store.is_done(u) for u in p.units)} done")
    lines = [head, df.to_string(index=False) if len(df) else "(no runnable cell)"]
    lines += [f"not runnable: {m}{f'[{v}]' if v else ''} on {d}: {r}" for (m, v, d), r in p.not_runnable.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
