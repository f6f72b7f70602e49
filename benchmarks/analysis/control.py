"""``python -m benchmarks.analysis.control RUN CONTROL --table N``: a run against its shuffled-label control.

``RUN`` and ``CONTROL`` are run folders (or exported result sets) of the same table, the second made with
``benchmarks.run --label-control shuffled``. For every row and dataset present in both, the run's metric is
compared with the upper end of the control's subject-level bootstrap 95 % interval (``table<N>_cells.csv``):
"above" means the method scores more than the same pipeline does on permuted training labels. Prints a
Markdown table; ``--out FILE`` also writes it as CSV. Exit status 0; 2 on bad input (one line).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from benchmarks.cli_args import CliError, fail, report
from benchmarks.tablespec import table_stem

KEY = ["row", "dataset", "seed"]


def _cells(folder: Path, table: str, what: str) -> pd.DataFrame:
    path = folder / f"{table_stem(table)}_cells.csv"
    if not path.is_file():
        fail(f"{what} {folder}: no {path.name} (not a rendered run of table {table})")
    try:
        cells = pd.read_csv(path)
    except (OSError, ValueError) as e:
        fail(f"{what} {path}: unreadable ({e})")
    missing = set(KEY) - set(cells.columns)
    if missing:
        fail(f"{what} {path}: missing column(s) {sorted(missing)}")
    return cells


def compare(run: pd.DataFrame, control: pd.DataFrame, metric: str = "macro_f1") -> pd.DataFrame:
    """One row per (row, dataset, seed) in both: the run's value and interval, the control's, and whether the
    run's value lies above the control's upper 95 % bound."""
    for name, cells in (("run", run), ("control", control)):
        for col in (metric, f"{metric}_lo", f"{metric}_hi"):
            if col not in cells.columns:
                raise ValueError(f"{name} cells have no column {col!r}")
    cols = KEY + [metric, f"{metric}_lo", f"{metric}_hi"]
    both = run[cols].merge(control[cols], on=KEY, suffixes=("", "_control"))
    both["above_control"] = both[metric] > both[f"{metric}_hi_control"]
    both["margin"] = both[metric] - both[f"{metric}_hi_control"]
    return both.reset_index(drop=True)


def markdown(table: pd.DataFrame, metric: str) -> str:
    lines = [f"| row | dataset | {metric} [95 % CI] | control {metric} [95 % CI] | above control |",
             "|---|---|---|---|---|"]
    for r in table.itertuples(index=False):
        d = r._asdict()
        lines.append(f"| {d['row']} | {d['dataset']} | {d[metric]:.3f} [{d[metric + '_lo']:.3f}, "
                     f"{d[metric + '_hi']:.3f}] | {d[metric + '_control']:.3f} [{d[metric + '_lo_control']:.3f}, "
                     f"{d[metric + '_hi_control']:.3f}] | {'yes' if d['above_control'] else 'NO'} |")
    n = int(table["above_control"].sum())
    lines.append(f"\n{n} of {len(table)} cells above the upper end of their shuffled-label control's interval")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.analysis.control", description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="run folder (real labels)")
    ap.add_argument("control", type=Path, help="run folder of the same table with --label-control shuffled")
    ap.add_argument("--table", required=True, help="table number, e.g. 3")
    ap.add_argument("--metric", default="macro_f1", help="metric column of the cells (default macro_f1)")
    ap.add_argument("--out", type=Path, help="also write the comparison as CSV here")
    a = ap.parse_args(argv)
    try:
        run, control = _cells(a.run, a.table, "RUN"), _cells(a.control, a.table, "CONTROL")
        try:
            table = compare(run, control, a.metric)
        except ValueError as e:
            fail(f"--metric {a.metric}: {e}")
        if table.empty:
            fail(f"RUN {a.run} and CONTROL {a.control} share no (row, dataset, seed) cell")
    except CliError as e:
        return report(e)
    print(markdown(table, a.metric))
    if a.out:
        table.to_csv(a.out, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
