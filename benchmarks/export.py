"""Export a run folder as a small, committable result set: predictions as gzipped CSV, ``run.json``, and the
run's tables rendered from those predictions.

``python -m benchmarks.export RUN_DIR DEST [--n-boot N] [--strip-labels]``;
``python -m benchmarks.render --table N --out DEST`` rebuilds the same tables later, without training
(``results/measured/`` holds such sets).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

from benchmarks import render
from benchmarks.atomic import atomic_write_bytes, atomic_write_json
from benchmarks.tablespec import table_id


def export(run_dir: Path, dest: Path, n_boot: int | None = None, strip_labels: bool = False) -> list[int]:
    """Write ``dest/predictions.csv.gz`` (rows sorted; gzip without name or timestamp), ``dest/run.json`` and the
    run's tables; returns the table numbers rendered. ``strip_labels`` leaves the ground truth (``y_true``) out
    of the stored predictions, for data whose annotations may not be redistributed (the public composite's
    labels live in ``../shared``): ``benchmarks.render`` joins them back from the dataset and checks them
    against a digest recorded here."""
    pred_path, meta_path = render.find_predictions(run_dir), run_dir / "run.json"
    if pred_path is None or not meta_path.exists():
        raise FileNotFoundError(f"{run_dir}: needs stored predictions ({', '.join(render.PREDICTION_FILES)}) "
                                "and run.json (run benchmarks.run first)")
    pred = render.load_predictions(pred_path)
    keys = [c for c in ("method", "variant", "dataset", "seed", "fold", "clip") if c in pred.columns]
    pred = pred.sort_values(keys, kind="stable").reset_index(drop=True)
    meta = json.loads(meta_path.read_text())
    dest.mkdir(parents=True, exist_ok=True)
    if strip_labels:
        meta["labels"] = {"stripped": "benchmarks.render joins y_true from each dataset and checks the digest",
                          "sha256": {str(n): render.labels_digest(g) for n, g in pred.groupby("dataset")}}
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
    p.add_argument("run_dir", type=Path)
    p.add_argument("dest", type=Path)
    p.add_argument("--n-boot", type=int)
    p.add_argument("--strip-labels", action="store_true", help="store predictions without y_true (see export())")
    a = p.parse_args(argv)
    try:
        tables = export(a.run_dir, a.dest, a.n_boot, a.strip_labels)
    except (FileNotFoundError, RuntimeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"exported {a.run_dir} -> {a.dest} (tables {', '.join(map(str, tables))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
