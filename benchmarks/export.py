"""Export a run folder as a small, committable result set: predictions as gzipped CSV, ``run.json``, and the
run's tables rendered from those predictions.

``python -m benchmarks.export RUN_DIR [RUN_DIR ...] DEST [--n-boot N] [--strip-labels]``; with several
sources (run folders or result sets of the same grid: data source, preset, seeds, pooling), their disjoint
rows are merged into one set (:func:`merge`), so that a table can grow by runs of its missing methods without
retraining the others. ``python -m benchmarks.render --table N --out DEST`` rebuilds the same tables later,
without training (``results/measured/`` holds such sets).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

import pandas as pd

from benchmarks import render
from benchmarks.atomic import atomic_write_bytes, atomic_write_json
from benchmarks.tablespec import table_id

# run.json fields that every merged source must share (the grid), and those merged as sets or sums
_SAME = ("data", "preset", "epoch_policy", "pooling", "seeds", "label_control", "epochs_override", "datasets")
_ROW_KEY = ["method", "variant", "dataset", "seed", "epoch_policy"]


def _load(folder: Path) -> tuple[pd.DataFrame, dict]:
    pred_path, meta_path = render.find_predictions(folder), folder / "run.json"
    if pred_path is None or not meta_path.exists():
        raise FileNotFoundError(f"{folder}: needs stored predictions ({', '.join(render.PREDICTION_FILES)}) "
                                "and run.json (run benchmarks.run first)")
    return render.load_predictions(pred_path), json.loads(meta_path.read_text())


def _union(lists: list[list]) -> list:
    return list(dict.fromkeys(x for xs in lists for x in xs))


def _grid(meta: dict, key: str) -> object:
    """``meta[key]`` as merged sources must share it (a dataset's root folder may differ between machines)."""
    v = meta.get(key)
    return {n: {f: x for f, x in d.items() if f != "root"} for n, d in v.items()} if key == "datasets" and v else v


def _digests(pred: pd.DataFrame) -> dict[str, str]:
    return {str(n): render.labels_digest(g) for n, g in pred.groupby("dataset")}


def _stripped(digests: dict[str, str]) -> dict:
    """``run.json``'s ``labels`` entry of a set stored without ``y_true``."""
    return {"stripped": "benchmarks.render joins y_true from each dataset and checks the digest", "sha256": digests}


def merge(sources: list[Path]) -> tuple[pd.DataFrame, dict]:
    """The predictions and ``run.json`` of several runs of one grid, as if one run had made them: every
    source must share the grid (``_SAME``) and no (method, variant, dataset, seed, epoch policy) may come
    from two sources. Sources stored without labels keep them out; their label digests must agree (the same
    clips with the same labels). ``merged_from`` records each source with its unit count and wall time."""
    loaded = [_load(s) for s in sources]
    meta0 = loaded[0][1]
    for src, (_, meta) in zip(sources[1:], loaded[1:]):
        for k in _SAME:
            if _grid(meta, k) != _grid(meta0, k):
                raise ValueError(f"{src}/run.json: {k} {meta.get(k)!r} differs from {sources[0]}'s "
                                 f"{meta0.get(k)!r}; only runs of one grid can be merged")
    seen: dict[tuple, Path] = {}
    for src, (pred, _) in zip(sources, loaded):
        for key in pred[_ROW_KEY].astype(str).drop_duplicates().itertuples(index=False):
            if tuple(key) in seen:
                raise ValueError(f"{src}: rows {'/'.join(key)} are also in {seen[tuple(key)]}; "
                                 "merged sources must be disjoint")
            seen[tuple(key)] = src
    digests: dict[str, str] = {}
    for src, (pred, meta) in zip(sources, loaded):
        own = _digests(pred) if "y_true" in pred.columns else (meta.get("labels") or {}).get("sha256", {})
        for name, d in own.items():
            if digests.setdefault(name, d) != d:
                raise ValueError(f"{src}: the labels of {name} differ from another source's (other clips or "
                                 "other annotations); only runs of one grid can be merged")
    stripped = [s for s, (p, _) in zip(sources, loaded) if "y_true" not in p.columns]
    preds = [p.drop(columns=["y_true"]) if stripped and "y_true" in p.columns else p for p, _ in loaded]
    metas = [m for _, m in loaded]
    meta = {k: meta0[k] for k in _SAME if k in meta0}
    meta.update(
        tables=_union([m["tables"] for m in metas]), added_methods=_union([m.get("added_methods", []) for m in metas]),
        trainer=_union([m.get("trainer", []) for m in metas]),
        not_runnable={k: v for m in metas for k, v in m.get("not_runnable", {}).items()},
        preset_reasons={k: v for m in metas for k, v in (m.get("preset_reasons") or {}).items()},
        n_units=sum(m.get("n_units", 0) for m in metas), n_failed=sum(m.get("n_failed", 0) for m in metas),
        wall_s=round(sum(m.get("wall_s", 0.0) for m in metas), 1), version=metas[-1].get("version"),
        merged_from=[{"source": str(s), "n_units": m.get("n_units"), "wall_s": m.get("wall_s")}
                     for s, m in zip(sources, metas)])
    if not any("preset_reasons" in m for m in metas):  # older runs: render falls back to the presets' reasons
        del meta["preset_reasons"]
    if stripped:
        meta["labels"] = _stripped(digests)
    return pd.concat(preds, ignore_index=True), meta


def export(run_dir: Path | list[Path], dest: Path, n_boot: int | None = None,
           strip_labels: bool = False) -> list[int]:
    """Write ``dest/predictions.csv.gz`` (rows sorted; gzip without name or timestamp), ``dest/run.json`` and the
    run's tables; returns the table numbers rendered. ``strip_labels`` leaves the ground truth (``y_true``) out
    of the stored predictions, for data whose annotations may not be redistributed (the public composite's
    labels live in ``../shared``): ``benchmarks.render`` joins them back from the dataset and checks them
    against a digest recorded here."""
    sources = [run_dir] if isinstance(run_dir, Path) else list(run_dir)
    pred, meta = merge(sources) if len(sources) > 1 else _load(sources[0])
    keys = [c for c in ("method", "variant", "dataset", "seed", "fold", "clip") if c in pred.columns]
    pred = pred.sort_values(keys, kind="stable").reset_index(drop=True)
    dest.mkdir(parents=True, exist_ok=True)
    if strip_labels and "y_true" in pred.columns:
        meta["labels"] = _stripped(_digests(pred))
        pred = pred.drop(columns=["y_true"])
    atomic_write_bytes(dest / "predictions.csv.gz", gzip.compress(pred.to_csv(index=False).encode(), mtime=0))
    atomic_write_json(dest / "run.json", meta)
    tables = [table_id(t) for t in meta["tables"]]
    for n in tables:
        args = ["--table", str(n), "--out", str(dest)] + ([] if n_boot is None else ["--n-boot", str(n_boot)])
        if render.main(args) != 0:
            raise RuntimeError(f"rendering table {n} from {dest} failed")
    return tables


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.export", description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path, nargs="+", help="run folder(s) or result set(s); several are merged")
    p.add_argument("dest", type=Path)
    p.add_argument("--n-boot", type=int)
    p.add_argument("--strip-labels", action="store_true", help="store predictions without y_true (see export())")
    a = p.parse_args(argv)
    try:
        tables = export(a.run_dir, a.dest, a.n_boot, a.strip_labels)
    except (FileNotFoundError, RuntimeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"exported {', '.join(map(str, a.run_dir))} -> {a.dest} (tables {', '.join(map(str, tables))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
