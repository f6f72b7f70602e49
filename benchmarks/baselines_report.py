"""Run the baselines x data sources under LOSO and print their scores beside the published numbers.

    python -m benchmarks.baselines_report [--datasets ...] [--methods ...] [--epochs N] [--out DIR]

Predictions go to ``<out>/predictions/<method>__<dataset>__<tag>.parquet`` (and ``.csv``), written fold
chunk by fold chunk (``--chunk``) so an interrupted run keeps its finished folds and ``--reuse`` resumes
it (fold ``k`` is seeded from the unit of work and ``k``, so chunks reproduce a full run exactly). The
table (``<out>/summary.csv``) has UF1/UAR (pooled over all folds, MEGC convention, also per source) for
the 3-class composites and accuracy / macro-F1 for the per-dataset presets, wall times, and the
published MEGC2019-composite numbers. A method that cannot run on a source is listed as not runnable.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from benchmarks.data.registry import load_dataset
from benchmarks.evaluate import NotRunnable, run_loso
from benchmarks.metrics import score
from benchmarks.registry import get_method, list_methods
from benchmarks.splits import loso_splits

DEFAULT_DATASETS = ("megc2019-public", "synthetic-smic", "synthetic-casme2", "synthetic-samm", "synthetic-megc2019")
COMPOSITES = ("megc2019-public", "megc2019", "synthetic-megc2019")
# MEGC2019 full composite, UF1 / UAR, LOSO pooled over 68 folds
PUBLISHED = {
    "ststnet": "0.7353 / 0.7605 (paper); 0.7209 / 0.7250 (authors' port, last epoch)",
    "off_apexnet": "0.7196 / 0.7096",
    "biwoof": "0.6296 / 0.6227",
    "lbptop": "0.5882 / 0.5785",
    "dssn": "-",
}


def _tag(method: str, epochs: int | None, policy: str, seed: int) -> str:
    fam = get_method(method).family
    ep = f"e{epochs if epochs is not None else 'default'}" if fam == "deep" else "svm"
    return f"{ep}_{policy}_s{seed}" if fam == "deep" else f"{ep}_s{seed}"


def run_one(method: str, dataset: str, epochs: int | None, policy: str, seed: int, out: Path, chunk: int,
            reuse: bool) -> tuple[pd.DataFrame, float, str]:
    """Predictions (all folds), wall seconds of this invocation's work, and the file stem."""
    stem = f"{method}__{dataset}__{_tag(method, epochs, policy, seed)}"
    pred_dir = out / "predictions"
    pred_dir.mkdir(parents=True, exist_ok=True)
    final = pred_dir / f"{stem}.parquet"
    if reuse and final.exists():
        df = pd.read_parquet(final)
        return df, float(df["wall_s"].iloc[0]), stem
    ds = load_dataset(dataset)
    n_folds = len(loso_splits(ds.groups()))
    family = get_method(method).family
    step = n_folds if family == "handcrafted" else max(1, chunk)
    parts, wall = [], 0.0
    for start in range(0, n_folds, step):
        ks = list(range(start, min(n_folds, start + step)))
        part_path = pred_dir / f"{stem}.part{start:03d}-{ks[-1]:03d}.parquet"
        if reuse and part_path.exists():
            part = pd.read_parquet(part_path)
        else:
            t0 = time.perf_counter()
            part = run_loso(method, ds, seed=seed, epoch_policy=policy, epochs=epochs if family == "deep" else None,
                            folds=ks)
            part["wall_s"] = time.perf_counter() - t0
            part.to_parquet(part_path)
        wall += float(part["wall_s"].iloc[0])
        parts.append(part)
        print(f"  {stem}: folds {ks[0]}..{ks[-1]} of {n_folds} done ({wall:.0f} s so far)", flush=True)
    df = pd.concat(parts, ignore_index=True)
    df["wall_s"] = wall
    df.to_parquet(final)
    df.to_csv(pred_dir / f"{stem}.csv", index=False)
    for p in pred_dir.glob(f"{stem}.part*.parquet"):
        p.unlink()
    return df, wall, stem


def summarise(method: str, dataset: str, df: pd.DataFrame, wall: float, epochs: int | None) -> list[dict]:
    sc = score(df.rename(columns={"dataset": "harness_dataset", "source": "dataset"}), load_classes(dataset), n_boot=0)
    rows = []
    for r in sc.to_dict("records"):
        rows.append({
            "method": method, "dataset": dataset, "scope": r["scope"], "clips": r["n_clips"],
            "subjects": r["n_subjects"], "uf1": r["uf1"], "uar": r["uar"], "accuracy": r["accuracy"],
            "macro_f1": r["macro_f1"], "epochs": epochs if get_method(method).family == "deep" else "-",
            "policy": df["epoch_policy"].iloc[0], "wall_s": round(wall, 1),
            "published_uf1_uar": PUBLISHED.get(method, "-") if dataset == "megc2019-public" and r["scope"] == "all"
            else "", "note": df["protocol_note"].iloc[0],
        })
    return rows


_CLASSES: dict[str, int] = {}


def load_classes(dataset: str) -> int:
    if dataset not in _CLASSES:
        from benchmarks.data.registry import dataset_spec
        _CLASSES[dataset] = len(dataset_spec(dataset).classes)
    return _CLASSES[dataset]


def summarise_existing(out: Path) -> list[dict]:
    """Rows for every finished prediction file under ``out``, and for runs with only some chunks done."""
    rows: list[dict] = []
    pred_dir = out / "predictions"
    finished = sorted(p for p in pred_dir.glob("*.parquet") if ".part" not in p.name)
    for p in finished:
        df = pd.read_parquet(p)
        method, dataset, tag = p.stem.split("__")
        epochs = int(tag.split("_")[0][1:]) if tag.startswith("e") and tag[1].isdigit() else None
        rows += [{**r, "run": tag} for r in summarise(method, dataset, df, float(df["wall_s"].iloc[0]), epochs)]
    stems = {p.name.split(".part")[0] for p in pred_dir.glob("*.part*.parquet")} - {p.stem for p in finished}
    for stem in sorted(stems):
        parts = sorted(pred_dir.glob(f"{stem}.part*.parquet"))
        df = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
        method, dataset, tag = stem.split("__")
        epochs = int(tag.split("_")[0][1:]) if tag.startswith("e") and tag[1].isdigit() else None
        wall = float(sum(pd.read_parquet(p)["wall_s"].iloc[0] for p in parts))
        for r in summarise(method, dataset, df, wall, epochs):
            rows.append({**r, "run": tag, "note": f"PARTIAL: {df['fold'].nunique()} folds done. " + r["note"]})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", default=list(DEFAULT_DATASETS))
    ap.add_argument("--methods", nargs="+", default=None, help="default: every registered method")
    ap.add_argument("--epochs", type=int, default=None, help="epochs for the deep methods (default: each paper's)")
    ap.add_argument("--epoch-policy", default="last", choices=("last", "val", "oracle"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chunk", type=int, default=17, help="folds per saved chunk of a deep run")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for these small models)")
    ap.add_argument("--reuse", action="store_true", help="reuse finished predictions / chunks under --out")
    ap.add_argument("--out", type=Path, default=Path("results/baselines"))
    ap.add_argument("--summarise-only", action="store_true",
                    help="run nothing: summarise every prediction file (and unfinished chunks) under --out")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    methods = args.methods or list_methods()
    rows = summarise_existing(args.out) if args.summarise_only else []
    for dataset in [] if args.summarise_only else args.datasets:
        for method in methods:
            print(f"{method} on {dataset} ...", flush=True)
            try:
                df, wall, stem = run_one(method, dataset, args.epochs, args.epoch_policy, args.seed, args.out,
                                         args.chunk, args.reuse)
            except NotRunnable as e:
                print(f"  not runnable: {e.reason}", flush=True)
                rows.append({"method": method, "dataset": dataset, "scope": "all", "note": f"not runnable: {e.reason}",
                             "published_uf1_uar": PUBLISHED.get(method, "-") if dataset == "megc2019-public" else ""})
                continue
            rows += summarise(method, dataset, df, wall, args.epochs)
    table = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "summary.csv", index=False)
    with pd.option_context("display.max_rows", None, "display.width", 250, "display.max_colwidth", 60):
        print(table.drop(columns=["note"]).round(4).to_string(index=False))
        notes = table[table["note"].astype(str) != ""][["method", "dataset", "note"]].drop_duplicates()
        if len(notes):
            print("\nNotes:")
            for r in notes.itertuples(index=False):
                print(f"  {r.method} on {r.dataset}: {r.note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
