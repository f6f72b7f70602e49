"""Run the baselines x data sources under LOSO and print their scores beside the published numbers.

    python -m benchmarks.baselines_report [--datasets ...] [--methods ...] [--preset default|paper|smoke]
                                          [--epochs N] [--epoch-policy last] [--jobs N] [--out DIR]

The sweep is the table runner's (:mod:`benchmarks.runner`): one cached unit per LOSO fold under
``<out>/units`` (a rerun reuses finished units; a failing unit is reported and not cached), deep methods
fold-batched where that pays (CUDA; ``--fold-batching`` / ``--no-fold-batching`` force it). Writes
``<out>/predictions.parquet`` and ``<out>/summary.csv``:
UF1/UAR (pooled over all folds, MEGC convention; also per source) for the 3-class composites and accuracy /
macro-F1 for the per-dataset presets, the summed unit wall times, the epochs trained and the published
MEGC2019-composite numbers. A method that cannot run on a source is listed as not runnable, with the reason.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from benchmarks.metrics import score
from benchmarks.presets import PRESETS, get_preset
from benchmarks.registry import get_method, list_methods
from benchmarks.run import default_jobs
from benchmarks.runner import collect, execute, plan, prepare_views
from benchmarks.units import UnitStore

DEFAULT_DATASETS = ("megc2019-public", "synthetic-smic", "synthetic-casme2", "synthetic-samm", "synthetic-megc2019")
BASELINES = ("lbptop", "biwoof", "off_apexnet", "dssn", "ststnet")
# MEGC2019 full composite, UF1 / UAR, LOSO pooled over 68 folds
PUBLISHED = {
    "ststnet": "0.7353 / 0.7605 (paper); 0.7209 / 0.7250 (authors' port, last epoch)",
    "off_apexnet": "0.7196 / 0.7096",
    "biwoof": "0.6296 / 0.6227",
    "lbptop": "0.5882 / 0.5785",
    "dssn": "-",
}


def summarise(pred: pd.DataFrame, n_classes: dict[str, int], walls: dict[tuple[str, str], float],
              epochs: dict[tuple[str, str], object]) -> pd.DataFrame:
    """One row per (method, dataset, scope): the metrics, clip/subject counts, wall seconds, epochs."""
    rows = []
    for (method, dataset), df in pred.groupby(["method", "dataset"], sort=True):
        sc = score(df.rename(columns={"dataset": "harness_dataset", "source": "dataset"}), n_classes[dataset],
                   n_boot=0)
        composite = df["source"].nunique() > 1
        for r in sc.to_dict("records"):
            if not composite and r["scope"] != "all":
                continue
            rows.append({"method": method, "dataset": dataset, "scope": r["scope"], "clips": r["n_clips"],
                         "subjects": r["n_subjects"], "uf1": r["uf1"], "uar": r["uar"], "accuracy": r["accuracy"],
                         "macro_f1": r["macro_f1"], "epochs": epochs[(method, dataset)],
                         "policy": df["epoch_policy"].iloc[0], "trainer": df["trainer"].iloc[0],
                         "wall_s": round(walls[(method, dataset)], 1),
                         "published_uf1_uar": PUBLISHED.get(method, "-")
                         if dataset == "megc2019-public" and r["scope"] == "all" else "",
                         "note": df["protocol_note"].iloc[0]})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", default=list(DEFAULT_DATASETS))
    ap.add_argument("--methods", nargs="+", default=list(BASELINES))
    ap.add_argument("--preset", choices=list(PRESETS), default="default")
    ap.add_argument("--epochs", type=int, default=None, help="epochs of every deep method (default: the preset's)")
    ap.add_argument("--epoch-policy", default="last", choices=("last", "val", "oracle"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=default_jobs())
    batching = ap.add_mutually_exclusive_group()
    batching.add_argument("--fold-batching", dest="fold_batching", action="store_true", default=None)
    batching.add_argument("--no-fold-batching", dest="fold_batching", action="store_false")
    ap.add_argument("--out", type=Path, default=Path("runs/baselines"))
    args = ap.parse_args(argv)
    t0 = time.time()
    unknown = sorted(set(args.methods) - set(list_methods()))
    if unknown:
        ap.error(f"unknown method(s) {unknown}; known: {', '.join(list_methods())}")
    triples = [(m, "", d) for d in args.datasets for m in args.methods]
    p = plan(triples, [args.seed], get_preset(args.preset), args.epoch_policy, epochs=args.epochs,
             fold_batching=args.fold_batching)
    store = UnitStore(args.out / "units")
    if args.jobs > 1:
        prepare_views(p, args.jobs)
    failures = execute(p.units, store, jobs=args.jobs, datasets=p.datasets,
                       progress=lambda u, n, total, wall: wall is not None and print(
                           f"  [{n}/{total}] {u.label}: {wall:.1f} s", flush=True))
    pred = collect(p.units, store)
    walls: dict[tuple[str, str], float] = {}
    epochs: dict[tuple[str, str], object] = {}
    for u in p.units:
        if store.is_done(u):
            walls[(u.method, u.dataset)] = walls.get((u.method, u.dataset), 0.0) + float(store.meta(u)["wall_s"])
        epochs[(u.method, u.dataset)] = u.config.get("epochs", "-") if get_method(u.method).family == "deep" else "-"
    table = summarise(pred, {n: d.n_classes for n, d in p.datasets.items()}, walls, epochs) if len(pred) \
        else pd.DataFrame()
    rows = [{"method": m, "dataset": d, "scope": "all", "note": f"not runnable: {reason}",
             "published_uf1_uar": PUBLISHED.get(m, "-") if d == "megc2019-public" else ""}
            for (m, _, d), reason in p.not_runnable.items()]
    table = pd.concat([table, pd.DataFrame(rows)], ignore_index=True)
    args.out.mkdir(parents=True, exist_ok=True)
    if len(pred):
        pred.to_parquet(args.out / "predictions.parquet", index=False)
    table.to_csv(args.out / "summary.csv", index=False)
    (args.out / "summary.json").write_text(json.dumps({"preset": args.preset, "epochs": args.epochs,
                                                       "policy": args.epoch_policy, "seed": args.seed,
                                                       "failures": [f.unit.label for f in failures],
                                                       "wall_s": round(time.time() - t0, 1)}, indent=2))
    with pd.option_context("display.max_rows", None, "display.width", 250, "display.max_colwidth", 60):
        print(table.drop(columns=["note"]).round(4).to_string(index=False))
        notes = table[table["note"].astype(str) != ""][["method", "dataset", "note"]].drop_duplicates()
        if len(notes):
            print("\nNotes:")
            for r in notes.itertuples(index=False):
                print(f"  {r.method} on {r.dataset}: {r.note}")
    for f in failures:
        print(f"FAILED {f.unit.label}: {f.error}")
    print(f"preset {args.preset}, policy {args.epoch_policy}, seed {args.seed}: {time.time() - t0:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
