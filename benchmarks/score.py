"""Score any prediction file with the harness's own metric code.

    python -m benchmarks.score FILE [--format auto|csv|megc-blocks|lists] [--subjects CSV] [--json]
                                    [--pooling pooled|fold-mean] [--n-classes N] [--n-boot N] [--seed S]

``FILE`` is a CSV with one row per clip and columns ``dataset, subject, clip, y_true, y_pred`` (other
columns are ignored), or a log as MER repositories publish it (:mod:`benchmarks.published_logs`: the
MEGC-style per-subject block log, or per-subject ``Predicted`` / ``Ground Truth`` lists, which name no
dataset: ``--subjects`` maps subjects to datasets for per-source scores); the format is told from the
content unless ``--format`` names it. Labels are integer class indices. Prints UF1, UAR, accuracy, macro-F1 and the
numbers of clips and subjects, overall and per dataset, as a Markdown table (or JSON with
``--json``), with the pooling stated and a subject-level bootstrap 95% interval for UF1 and UAR.

When ``--n-classes`` is not given it is inferred as ``max(y_true, y_pred) + 1``: classes are taken to
be ``0..max``, so a class that never occurs below the highest label still counts (for macro-F1, which
scores every class), but a highest class that never occurs is missed: pass ``--n-classes`` then.
Exit status: 0 on success, 2 on a bad file or argument (the message names the file and line).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from benchmarks import published_logs as logs
from benchmarks.cli_args import non_negative_int, positive_int
from benchmarks.metrics import BOOTSTRAP_N, BOOTSTRAP_SEED, PREDICTION_COLUMNS, MetricPooling, score
from benchmarks.published_logs import FORMATS, NO_DATASET, PredictionFileError

_INT = re.compile(r"^\s*[+-]?\d+\s*$")

__all__ = ["PredictionFileError", "infer_n_classes", "main", "read_any", "read_predictions"]


def read_predictions(path: str | Path) -> pd.DataFrame:
    """Read and check a prediction CSV; labels become int64. Errors name the file and its line
    (line 1 is the header)."""
    path = Path(path)
    if not path.is_file():
        raise PredictionFileError(f"{path}: no such file")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise PredictionFileError(f"{path}: not a readable CSV ({e})") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in PREDICTION_COLUMNS if c not in df.columns]
    if missing:
        raise PredictionFileError(f"{path}: missing column {missing[0]!r} (columns found: "
                                  f"{list(df.columns)}; required: {list(PREDICTION_COLUMNS)})")
    if len(df) == 0:
        raise PredictionFileError(f"{path}: no prediction rows")
    for c in ("dataset", "subject", "clip"):
        df[c] = df[c].str.strip()
        empty = df.index[df[c] == ""]
        if len(empty):
            raise PredictionFileError(f"{path}: line {empty[0] + 2}: empty {c}")
    for c in ("y_true", "y_pred"):
        ok = df[c].map(lambda v: bool(_INT.match(v)))
        if not ok.all():
            i = int(ok.to_numpy().argmin())
            raise PredictionFileError(f"{path}: line {i + 2}: {c} = {df[c].iloc[i]!r} "
                                      "is not an integer label")
        df[c] = df[c].astype("int64")
        neg = df.index[df[c] < 0]
        if len(neg):
            raise PredictionFileError(f"{path}: line {neg[0] + 2}: {c} = {df[c].iloc[neg[0]]} is negative")
    dup = df.duplicated(["dataset", "subject", "clip"], keep="first")
    if dup.any():
        i = int(dup.to_numpy().argmax())
        r = df.iloc[i]
        raise PredictionFileError(f"{path}: line {i + 2}: clip {r['dataset']}/{r['subject']}/{r['clip']} "
                                  "appears more than once")
    return df


def read_any(path: str | Path, fmt: str = "auto", subjects: str | Path | None = None) -> pd.DataFrame:
    """The prediction table of ``path`` in format ``fmt`` (``auto``: told from the content), with ``subjects``
    (a CSV of subject -> dataset) for a list log."""
    fmt = logs.detect_format(path) if fmt == "auto" else fmt
    if subjects is not None and fmt != "lists":
        raise PredictionFileError(f"--subjects {subjects}: only for logs that name no dataset (format lists); "
                                  f"{path} is {fmt}")
    if fmt == "csv":
        df = read_predictions(path)
        return df.assign(line=df.index + 2)
    if fmt == "megc-blocks":
        return logs.read_block_log(path)
    return logs.read_list_log(path, logs.read_subject_map(subjects) if subjects is not None else None,
                         f"--subjects {subjects}")


def infer_n_classes(df: pd.DataFrame) -> int:
    """``max(y_true, y_pred) + 1`` (classes are ``0..max``)."""
    return int(max(df["y_true"].max(), df["y_pred"].max())) + 1


def _fmt_ci(lo: float, hi: float) -> str:
    return f"[{lo:.4f}, {hi:.4f}]"


def markdown_report(table: pd.DataFrame, source: str) -> str:
    """The score table as Markdown, preceded by the pooling, class and bootstrap settings."""
    a = table.attrs
    rows = []
    for _, r in table.iterrows():
        row = {"scope": r["scope"], "UF1": f"{r['uf1']:.4f}", "UAR": f"{r['uar']:.4f}",
               "accuracy": f"{r['accuracy']:.4f}", "macro-F1": f"{r['macro_f1']:.4f}",
               "clips": int(r["n_clips"]), "subjects": int(r["n_subjects"])}
        if "uf1_lo" in table.columns:
            row["UF1 95% CI"] = _fmt_ci(r["uf1_lo"], r["uf1_hi"])
            row["UAR 95% CI"] = _fmt_ci(r["uar_lo"], r["uar_hi"])
        rows.append(row)
    pooling = ("predictions pooled over all folds (MEGC convention)" if a["pooling"] == MetricPooling.POOLED
               else "mean over folds (one fold per subject)")
    lines = [f"Scores of {source}: {a['n_classes']} classes; metrics on {pooling} [pooling: {a['pooling']}]."]
    if a["n_boot"] > 0:
        lines.append(f"Intervals: subject-level percentile bootstrap, {a['n_boot']} resamples, "
                     f"seed {a['seed']}.")
    align = ["right" if k in ("UF1", "UAR", "accuracy", "macro-F1", "clips", "subjects") else "left"
             for k in rows[0]]
    lines += ["", tabulate(rows, headers="keys", tablefmt="github", disable_numparse=True, colalign=align)]
    return "\n".join(lines)


def json_report(table: pd.DataFrame, source: str) -> str:
    a = table.attrs
    return json.dumps({"file": source, "pooling": a["pooling"], "n_classes": a["n_classes"],
                       "bootstrap": {"n_boot": a["n_boot"], "seed": a["seed"], "level": a["level"]},
                       "scores": table.to_dict(orient="records")}, indent=2)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.score",
        description="Score a prediction CSV (dataset, subject, clip, y_true, y_pred): "
                    "UF1, UAR, accuracy and macro-F1, overall and per dataset.")
    p.add_argument("file", help="CSV with columns dataset, subject, clip, y_true, y_pred, or a published log")
    p.add_argument("--format", choices=("auto", *FORMATS), default="auto",
                   help="auto (told from the content, default), csv, megc-blocks ('<dataset> <subject>' headers "
                        "and '<clip> <true> <pred>' lines) or lists ('Subject:' with Predicted / Ground Truth)")
    p.add_argument("--subjects", metavar="CSV",
                   help="for a list log: CSV with columns subject, dataset (per-source scores)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    p.add_argument("--pooling", choices=[m.value for m in MetricPooling], default=MetricPooling.POOLED.value,
                   help="pooled: predictions of all folds concatenated (MEGC, default); "
                        "fold-mean: metric per subject, then averaged")
    p.add_argument("--n-classes", type=positive_int, default=None,
                   help="number of classes (default: largest label + 1)")
    p.add_argument("--n-boot", type=non_negative_int, default=BOOTSTRAP_N,
                   help=f"subject bootstrap resamples for the 95%% interval (default {BOOTSTRAP_N}; 0: none)")
    p.add_argument("--seed", type=int, default=BOOTSTRAP_SEED,
                   help=f"bootstrap seed (default {BOOTSTRAP_SEED})")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        df = read_any(args.file, args.format, args.subjects)
        n_classes = infer_n_classes(df) if args.n_classes is None else args.n_classes
        top = infer_n_classes(df) - 1
        if top >= n_classes:
            col = "y_true" if df["y_true"].max() == top else "y_pred"
            i = int(df[col].to_numpy().argmax())
            raise PredictionFileError(f"{args.file}: line {df['line'].iloc[i]}: {col} = {top} is not below "
                                      f"--n-classes {n_classes}")
        by = None if (df["dataset"] == NO_DATASET).all() else "dataset"
        table = score(df, n_classes, pooling=args.pooling, by=by, n_boot=args.n_boot, seed=args.seed)
    except ValueError as e:  # PredictionFileError and table checks name the file or row
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json_report(table, args.file) if args.json else markdown_report(table, args.file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
