"""Render the paper's tables from stored predictions, next to the values the paper reports.

Every number comes from the prediction rows (:func:`benchmarks.runner.collect`): nothing is typed in.
A cell is (table row = method/variant) x (column = dataset group x metric). With several seeds the cell
shows mean +/- standard deviation over seeds; with one seed, the point value and its subject-level
bootstrap 95% interval. The paper's value stands beside it (in the paper's units). Cells a data
source cannot fill, rows the harness does not implement ("reported only") and cells whose method
cannot run on the data source ("not runnable") are marked, and the footer names the data source,
preset, epoch policy, metric pooling, seeds and code versions.

``python -m benchmarks.render --table N --out DIR`` rebuilds the tables from ``DIR/predictions.parquet``
without training.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

from benchmarks import metrics as M
from benchmarks.cli_args import CliError, fail, non_negative_int, report, table_choice, writable_folder
from benchmarks.tablespec import TableSpec, load_table_spec, with_added_methods

NOT_RUNNABLE, REPORTED_ONLY, NO_DATA = "not runnable", "reported only", "n/a"
NO_EPOCHS_POLICY = "n/a"  # benchmarks.evaluate.NO_EPOCHS: the policy column of a handcrafted method


@dataclass
class RenderContext:
    """Protocol labels printed under a table (all of them come from the run, not from code)."""

    data: str
    preset: str
    epoch_policy: str
    pooling: str = "pooled"
    seeds: tuple[int, ...] = (0,)
    not_runnable: dict[str, str] = field(default_factory=dict)   # "method|variant|dataset" -> reason
    extra: list[str] = field(default_factory=list)
    data_notes: dict[str, str] = field(default_factory=dict)     # dataset -> what it is (e.g. generator version)
    reasons: dict[str, str] | None = None  # method -> why the preset overrides it, as the run recorded it


def _cell_frame(pred: pd.DataFrame, method: str, variant: str, dataset: str, scope: str,
                epoch_policy: str | None = None) -> pd.DataFrame:
    m = (pred["method"] == method) & (pred["variant"] == variant) & (pred["dataset"] == dataset)
    if scope != "all":
        m &= pred["source"] == scope
    if epoch_policy is not None:  # a row run under its own policy; a method without epochs has "n/a"
        m &= pred["epoch_policy"].isin((epoch_policy, NO_EPOCHS_POLICY))
    return pred.loc[m]


def cell_scores(pred: pd.DataFrame, spec: TableSpec, data: str, pooling: str = "pooled",
                n_boot: int = M.BOOTSTRAP_N) -> pd.DataFrame:
    """Long table: one row per (table row, column group, seed) with every metric and its interval."""
    out = []
    for row in spec.rows:
        if not row.implemented:
            continue
        for g in spec.groups:
            ref = g.sources.get(data)
            if ref is None:
                continue
            df = _cell_frame(pred, row.method, row.variant or "", ref.dataset, ref.scope, row.epoch_policy)
            for seed, d in df.groupby("seed"):
                y_true, y_pred = d["y_true"].to_numpy(), d["y_pred"].to_numpy()
                groups = d["group"].to_numpy()
                if pooling == "pooled":
                    vals = M.compute_metrics(y_true, y_pred, g.n_classes)
                else:
                    vals = M.pooled_metrics(y_true, y_pred, groups, g.n_classes, pooling=pooling)
                ci = M.bootstrap_interval(y_true, y_pred, groups, g.n_classes, pooling=pooling, n_boot=n_boot)
                rec = {"row": row.id, "method": row.method, "variant": row.variant or "", "group": g.id,
                       "dataset": ref.dataset, "scope": ref.scope, "seed": int(seed), "pooling": pooling,
                       "n_clips": len(d), "n_subjects": d["group"].nunique(),
                       "n_folds": d["fold"].nunique()}
                for k in M.METRICS:
                    rec[k] = float(vals[k])
                    rec[f"{k}_lo"], rec[f"{k}_hi"] = map(float, ci[k])
                out.append(rec)
    return pd.DataFrame(out)


def fold_results(pred: pd.DataFrame, n_classes: dict[str, int]) -> pd.DataFrame:
    """One row per (method, variant, dataset, seed, fold) with the fold's metrics (``results.parquet``)."""
    rows = []
    keys = ["method", "variant", "dataset", "seed", "fold", "epoch_policy"]
    for key, d in pred.groupby(keys, sort=True):
        vals = M.compute_metrics(d["y_true"].to_numpy(), d["y_pred"].to_numpy(), n_classes[key[2]])
        rows.append({**dict(zip(keys, key)), "test_group": d["group"].iloc[0], "n_clips": len(d),
                     "chosen_epoch": int(d["chosen_epoch"].iloc[0]),
                     **{k: float(v) for k, v in vals.items()}})
    return pd.DataFrame(rows)


def _fmt(v: float, unit: str) -> str:
    return f"{v * 100:.2f}" if unit == "percent" else f"{v:.4f}"


def _summary(s: pd.DataFrame, metric: str, unit: str) -> str:
    vals = s[metric].to_numpy()
    if len(vals) > 1:
        sd = float(np.std(vals, ddof=1))
        return f"{_fmt(float(vals.mean()), unit)} ± {_fmt(sd, unit)}"
    lo, hi = s[f"{metric}_lo"].iloc[0], s[f"{metric}_hi"].iloc[0]
    return f"{_fmt(float(vals[0]), unit)} [{_fmt(lo, unit)}, {_fmt(hi, unit)}]"


def table_frame(spec: TableSpec, scores: pd.DataFrame, ctx: RenderContext,
                marks: dict[tuple[str, str, str], str] | None = None) -> pd.DataFrame:
    """The rendered table as strings: one row per spec row; per column 'reproduced' and 'paper'."""
    marks = marks or {}
    records = []
    per_row = _per_row_columns(spec)
    for row in spec.rows:
        rec = {"method": row.label + ("" if row.in_paper else " (not in paper)")}
        if "epochs" in per_row:
            rec["epochs"] = _row_policy(row, ctx.epoch_policy)
        if "selection" in per_row:
            rec["selection"] = row.selection or "-"
        reported = {c.column: c.reported for c in row.cells}
        for col in spec.columns:
            cid = f"{col.group}.{col.metric}"
            group = next(g for g in spec.groups if g.id == col.group)
            ref = group.sources.get(ctx.data)
            rep = reported.get(cid)
            if not row.implemented:
                rec[f"{cid}|ours"] = REPORTED_ONLY
            elif ref is None:
                rec[f"{cid}|ours"] = NO_DATA
            elif f"{row.method}|{row.variant or ''}|{ref.dataset}" in ctx.not_runnable:
                rec[f"{cid}|ours"] = NOT_RUNNABLE
            else:
                s = scores[(scores["row"] == row.id) & (scores["group"] == col.group)] if len(scores) else scores
                rec[f"{cid}|ours"] = _summary(s, col.metric, col.unit) if len(s) else "not run"
                rec[f"{cid}|ours"] += marks.get((row.id, col.group, col.metric), "")
            rec[f"{cid}|paper"] = "-" if rep is None else (f"{rep:.2f}" if col.unit == "percent" else f"{rep:.4f}")
        records.append(rec)
    return pd.DataFrame(records)


def _row_policy(row, run_policy: str) -> str:
    """The epoch policy a row ran under: its own, else the run's; "n/a" for a method without epochs."""
    from benchmarks.registry import get_method

    if not row.implemented:
        return "-"
    try:
        if get_method(row.method).family != "deep":
            return NO_EPOCHS_POLICY
    except KeyError:
        pass
    return row.epoch_policy or run_policy


def _per_row_columns(spec: TableSpec) -> list[str]:
    """The optional columns after the method: the epoch policy each row ran under (when rows set their own),
    and the epoch-selection rule of the reported values (when rows give one)."""
    return [c for c, present in (("epochs", any(r.epoch_policy for r in spec.rows)),
                                 ("selection", any(r.selection for r in spec.rows))) if present]


def _headers(spec: TableSpec) -> list[str]:
    hs = ["Method"] + [{"epochs": "Epoch policy (ours)", "selection": f"Epoch rule ({spec.reported_header})"}[c]
                       for c in _per_row_columns(spec)]
    for col in spec.columns:
        name = {"accuracy": "Acc", "macro_f1": "F1", "uf1": "UF1", "uar": "UAR"}.get(col.metric, col.metric)
        unit = " (%)" if col.unit == "percent" else ""
        hs += [f"{_SHORT.get(col.group, col.group)} {name}{unit}", spec.reported_header]
    return hs


_SHORT = {"smic": "SMIC", "casme2": "CASME II", "samm": "SAMM", "composite": "Composite"}


def footer(spec: TableSpec, ctx: RenderContext, pred: pd.DataFrame, scored: set[str] = frozenset()) -> list[str]:
    if len(pred):
        pred = pred[pred["method"].isin({r.method for r in spec.rows if r.implemented})]
    datasets = sorted({g.sources[ctx.data].dataset for g in spec.groups if ctx.data in g.sources})
    policy = "per row (column Epoch policy)" if _per_row_columns(spec)[:1] == ["epochs"] else ctx.epoch_policy
    lines = [
        f"Data source: {ctx.data} ({', '.join(datasets) or 'none'}). Preset: {ctx.preset}. "
        f"Epoch policy: {policy}. Metric pooling: {ctx.pooling} "
        f"({'predictions pooled over all LOSO folds' if ctx.pooling == 'pooled' else 'mean over folds'}). "
        f"Seeds: {', '.join(map(str, ctx.seeds))}.",
        *[f"Dataset {d}: {ctx.data_notes[d]}" for d in datasets if d in ctx.data_notes],
        "Cells: reproduced value " + ("mean ± std over seeds" if len(ctx.seeds) > 1 else
                                      "[subject-level bootstrap 95% interval]")
        + (" | the paper's reported value. Paper protocol: " if spec.reported_header == "paper" else
           f" | the {spec.reported_header} value. Table protocol: ") + f"{spec.protocol.split.upper()}, pooling "
        f"{spec.protocol.pooling}.",
    ]
    if len(pred):
        codes = sorted(set(pred["code_version"].astype(str))) if "code_version" in pred else []
        lines.append("Code versions (per method source hash): " + ", ".join(codes))
        notes = sorted({n for n in pred.get("protocol_note", pd.Series(dtype=str)).astype(str) if n})
        lines += [f"Note: {n}" for n in notes]
        pols = sorted(set(pred["policy_label"].astype(str))) if "policy_label" in pred else []
        lines.append("Epoch selection as run: " + "; ".join(pols))
        lines += training_lines(pred, ctx.preset, ctx.reasons)
    for k, reason in sorted(ctx.not_runnable.items()):
        m, v, d = k.split("|")
        lines.append(f"Not runnable: {m}{f'[{v}]' if v else ''} on {d}: {reason}")
    missing = _not_run(spec, ctx, scored)
    if missing:
        lines.append("Not run here (no predictions in this run: left out by --methods, or failed): "
                     + ", ".join(missing) + ".")
    lines += ctx.extra
    return lines


def _not_run(spec: TableSpec, ctx: RenderContext, scored: set[str]) -> list[str]:
    """The implemented rows (``method[variant]``, with the epoch policy of rows that set one) that no cell score
    covers (``scored``: row ids of :func:`cell_scores`) and that are not marked not runnable."""
    out: list[str] = []
    refs = [g.sources[ctx.data] for g in spec.groups if ctx.data in g.sources]
    for row in spec.implemented_rows:
        if row.id in scored or not refs or all(f"{row.method}|{row.variant or ''}|{r.dataset}" in ctx.not_runnable
                                               for r in refs):
            continue
        name = f"{row.method}{f'[{row.variant}]' if row.variant else ''}"
        label = f"{name} ({row.epoch_policy})" if row.epoch_policy else name
        if label not in out:
            out.append(label)
    return out


def _current_reason(preset: str, method: str, stored: str) -> str | None:
    """The preset's reason for ``method``'s overrides today, if the stored overrides are still today's (a run
    made before the preset changed gets no reason it was not given)."""
    from benchmarks.presets import PRESETS
    from benchmarks.registry import get_method

    if preset not in PRESETS or method not in PRESETS[preset].reasons:
        return None
    try:
        family = get_method(method).family
    except KeyError:
        return None
    now = repr(dict(sorted(PRESETS[preset].overrides_for(method, family).items())))
    return PRESETS[preset].reasons[method] if now == stored else None


def training_lines(pred: pd.DataFrame, preset: str, reasons: dict[str, str] | None = None) -> list[str]:
    """Footer lines on how the models were trained: weights, trainer, and each method's preset overrides
    with the reason for them: the one the run recorded (``reasons``), else the preset's current one where
    the overrides are unchanged since the run, else none."""

    trainers = sorted(set(pred["trainer"].astype(str)) - {"n/a"}) if "trainer" in pred else []
    init = pred.loc[pred["init_weights"].astype(str) != "", ["method", "init_weights"]].drop_duplicates() \
        if "init_weights" in pred else pd.DataFrame()
    start = "every model from scratch (no pretrained weights)" if init.empty else (
        "from scratch except " + "; ".join(f"{m} from {w}" for m, w in init.itertuples(index=False)))
    lines = [f"Training: {start}" + (f"; trainer: {', '.join(trainers)}." if trainers else ".")]
    if "preset_overrides" not in pred:
        return lines
    for method, ov in sorted(set(zip(pred["method"].astype(str), pred["preset_overrides"].astype(str)))):
        if ov not in ("", "{}"):
            reason = reasons.get(method) if reasons is not None else _current_reason(preset, method, ov)
            why = f" ({reason})" if reason else ""
            lines.append(f"Preset {preset} overrides for {method}: {ov}{why}.")
    return lines


def render(spec: TableSpec, pred: pd.DataFrame, ctx: RenderContext, out: Path,
           marks: dict | None = None, n_boot: int = M.BOOTSTRAP_N) -> dict[str, Path]:
    """Write ``table<N>.md`` (``<name>.md`` for a named table), ``.tex`` and ``.csv`` under ``out``."""
    scores = cell_scores(pred, spec, ctx.data, ctx.pooling, n_boot) if len(pred) else pd.DataFrame()
    frame = table_frame(spec, scores, ctx, marks)
    heads = _headers(spec)
    foot = footer(spec, ctx, pred, set(scores["row"]) if len(scores) else set())
    out.mkdir(parents=True, exist_ok=True)
    n = spec.stem
    body = tabulate(frame.values.tolist(), headers=heads, tablefmt="github", disable_numparse=True)
    md = [f"### {spec.heading}: {spec.title}", "", body, ""] + [f"- {line}" for line in foot]
    paths = {"md": out / f"{n}.md", "tex": out / f"{n}.tex", "csv": out / f"{n}.csv"}
    paths["md"].write_text("\n".join(md) + "\n")
    tex = tabulate(frame.values.tolist(), headers=heads, tablefmt="latex_booktabs", disable_numparse=True)
    caption = _tex_escape(f"{spec.heading} ({spec.title}) reproduced. " + " ".join(foot))
    paths["tex"].write_text("\\begin{table}\n\\centering\n\\small\n" + tex + f"\n\\caption{{{caption}}}\n"
                            "\\end{table}\n")
    frame.to_csv(paths["csv"], index=False)
    if len(scores):
        scores.to_csv(out / f"{n}_cells.csv", index=False)
    return paths


def render_with_tests(spec: TableSpec, pred: pd.DataFrame, out: Path, ctx: RenderContext,
                      n_boot: int = M.BOOTSTRAP_N) -> dict[str, Path]:
    """:func:`render` with MFVAN-vs-baseline paired tests marked in the cells and explained in the footer."""
    from benchmarks.stats import REFERENCE, legend, marks_from_tests, paired_tests, reference_row

    try:
        reference_row(spec, REFERENCE)
        has_reference = True
    except KeyError:  # a table without MFVAN's full model (e.g. the leaderboard): no paired tests
        has_reference = False
    tests = paired_tests(pred, spec, ctx.data) if len(pred) and has_reference else pd.DataFrame()
    marks = marks_from_tests(tests, spec) if len(tests) else {}
    sig = legend(tests, spec) if len(tests) else ""
    if sig:
        ctx = RenderContext(**{**ctx.__dict__, "extra": [*ctx.extra, sig]})
    paths = render(spec, pred, ctx, out, marks=marks, n_boot=n_boot)
    if len(tests):
        tests.to_csv(out / f"{spec.stem}_tests.csv", index=False)
        paths["tests"] = out / f"{spec.stem}_tests.csv"
    return paths


def _tex_escape(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("±", r"$\pm$"), ("[", "{[}"), ("]", "{]}")):
        s = s.replace(a, b)
    return s


def load_predictions(path: Path) -> pd.DataFrame:
    """Stored predictions (parquet, or CSV / gzipped CSV as in the committed result sets)."""
    if path.name.endswith((".csv", ".csv.gz")):
        return pd.read_csv(path, dtype={"variant": str, "subject": str, "clip": str, "group": str},
                           keep_default_na=False)
    return pd.read_parquet(path)


def labels_digest(pred: pd.DataFrame) -> str:
    """SHA-256 of the (group, clip, y_true) triples of ``pred``'s distinct clips, in sorted order."""
    rows = pred[["group", "clip", "y_true"]].drop_duplicates().astype(str).sort_values(["group", "clip"])
    text = "\n".join(f"{g}/{c}:{y}" for g, c, y in rows.itertuples(index=False))
    return hashlib.sha256(text.encode()).hexdigest()


def attach_labels(pred: pd.DataFrame, meta: dict) -> pd.DataFrame:
    """``pred`` with ``y_true`` joined from the datasets it names (a result set stored without labels,
    ``benchmarks.export --strip-labels``); the joined labels must hash to the digest recorded at export."""
    from benchmarks.data.registry import load_dataset

    digests = (meta.get("labels") or {}).get("sha256", {})
    parts = []
    for name, part in pred.groupby("dataset", sort=False):
        try:
            ds = load_dataset(name)
        except Exception as e:  # noqa: BLE001  (any loader error: the data is not installed here)
            raise ValueError(f"predictions of {name} were stored without labels and {name} cannot be loaded "
                             f"here to join them ({e})") from e
        labels = ds.clips[["group", "clip", "label"]].rename(columns={"label": "y_true"})
        merged = part.merge(labels, on=["group", "clip"], how="left", validate="many_to_one")
        if merged["y_true"].isna().any():
            missing = merged.loc[merged["y_true"].isna(), ["group", "clip"]].iloc[0].tolist()
            raise ValueError(f"{name}: clip {'/'.join(missing)} of the predictions is not in the dataset")
        merged = merged.astype({"y_true": int})
        if name not in digests or labels_digest(merged) != digests[name]:
            raise ValueError(f"{name}: the labels found here differ from those the predictions were scored "
                             "with (digest mismatch or none recorded)")
        parts.append(merged)
    at = pred.columns.get_loc("y_pred")
    return pd.concat(parts, ignore_index=True)[[*pred.columns[:at], "y_true", *pred.columns[at:]]]


PREDICTION_FILES = ("predictions.parquet", "predictions.csv", "predictions.csv.gz")


def find_predictions(folder: Path) -> Path | None:
    """The stored predictions of a run or result-set folder (first of ``PREDICTION_FILES``), or None."""
    return next((folder / n for n in PREDICTION_FILES if (folder / n).exists()), None)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.render", description="Rebuild tables from stored "
                                "predictions without training.")
    p.add_argument("--table", required=True, type=table_choice, dest="tables", metavar="TABLE",
                   help="1, 2, 3 or all")
    p.add_argument("--out", required=True, help="the run folder holding predictions.parquet and run.json")
    p.add_argument("--n-boot", type=non_negative_int, default=M.BOOTSTRAP_N)
    p.add_argument("--to", help="write the tables here instead of --out")
    a = p.parse_args(argv)
    try:
        return _render(a)
    except CliError as e:
        return report(e)


def data_notes(meta: dict) -> dict[str, str]:
    """Dataset -> its first note (what it is: for the synthetic default, the generator version and seed), as a
    run recorded it in ``run.json`` (``datasets.<name>.note``; absent in runs before it was recorded)."""
    return {n: d["note"] for n, d in (meta.get("datasets") or {}).items() if isinstance(d, dict) and d.get("note")}


def merge_notes(meta: dict) -> list[str]:
    """A footer line for a set merged from several runs of one grid (``benchmarks.export``), else none."""
    src = meta.get("merged_from") or []
    if len(src) < 2:
        return []
    return [f"Merged from {len(src)} runs of this grid (units per run: "
            + ", ".join(str(s.get("n_units")) for s in src) + "; run.json lists them): each row's code version is "
            "that of the run it comes from."]


def _render(a: argparse.Namespace) -> int:
    out = Path(a.out)
    if not out.is_dir():
        fail(f"--out {out}: no such folder")
    meta_path = out / "run.json"
    pred_path = find_predictions(out)
    if pred_path is None or not meta_path.exists():
        fail(f"--out {out} has no predictions.parquet (or .csv, .csv.gz) / run.json (run benchmarks.run first)")
    dest = writable_folder(a.to, "--to") if a.to else out
    try:
        pred = load_predictions(pred_path)
    except Exception as e:  # noqa: BLE001 - pyarrow and pandas raise many types for a damaged file
        fail(f"{pred_path}: cannot read the stored predictions ({type(e).__name__}: {str(e).splitlines()[0]})")
    try:
        meta = json.loads(meta_path.read_text())
        ctx_fields = (meta["data"], meta["preset"], meta["epoch_policy"], meta.get("pooling", "pooled"),
                      tuple(meta["seeds"]), meta.get("not_runnable", {}), merge_notes(meta), data_notes(meta),
                      meta.get("preset_reasons"))
    except (ValueError, KeyError, TypeError) as e:
        fail(f"{meta_path}: not a run.json written by benchmarks.run ({type(e).__name__}: {e})")
    if "y_true" not in pred.columns:
        try:
            pred = attach_labels(pred, meta)
        except ValueError as e:
            fail(f"{pred_path}: {e}")
    for n in a.tables:
        spec = with_added_methods(load_table_spec(n), meta.get("added_methods", []))
        paths = render_with_tests(spec, pred, dest, RenderContext(*ctx_fields), n_boot=a.n_boot)
        print(f"table {n}: " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
