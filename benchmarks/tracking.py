"""MLflow tracking of a sweep: one parent run per ``benchmarks.run`` invocation, one nested run per cell.

The store is a local SQLite database, ``sqlite:///<out>/mlflow.db`` (``MLFLOW_TRACKING_URI`` overrides
it); artifacts go under ``<out>/mlartifacts`` (the experiment's artifact location, set when this
module creates the experiment). Everything is logged after the sweep, from the main process only:
worker processes never touch MLflow, so the store sees one writer.

- Parent run (named from the tables, data source and preset): the protocol labels of ``run.json``
  as parameters (data, preset, epoch policy, pooling, seeds, version, dataset manifests), the sweep's
  counts as metrics, and the rendered tables, figures, ``run.json`` and ``results.parquet`` as
  artifacts. Its status is FAILED when some unit failed (the run's exit code is then non-zero).
- Nested run per cell (method, variant, dataset, seed; tag ``mlflow.parentRunId``): the cell's
  identity, protocol labels and resolved hyperparameters as parameters; per-fold metrics as
  ``fold/<metric>`` with ``step = fold``; the cell's pooled metrics (predictions of all its folds
  pooled, :func:`benchmarks.metrics.compute_metrics`) under the metric names, and their mean over
  folds as ``fold_mean/<metric>``.

Writes go through ``MlflowClient.log_batch`` (hundreds of cells log in seconds). MLflow is imported
inside the functions, so ``--no-mlflow`` never pays for the import. A tracking failure never loses
results: :func:`log_sweep` warns on stderr and returns None (the outputs on disk are complete).
"""

from __future__ import annotations

import ast
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks import metrics as M
from benchmarks.units import policy_tag

EXPERIMENT = "mer-bench"
DB_NAME = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"
CELL_KEYS = ("method", "variant", "dataset", "seed", "epoch_policy")  # a table may run a method under several
FOLD_METRICS = (*M.METRICS, "chosen_epoch")    # per fold; chosen_epoch only for deep methods (>= 0)
_CELL_PARAM_COLUMNS = ("code_version", "preset_overrides", "epoch_policy", "policy_label", "data_source",
                       "views", "protocol_note")
_PROTOCOL_KEYS = ("data", "preset", "epoch_policy", "pooling", "seeds", "epochs_override", "version", "tables",
                  "label_control")
# MLflow's limits (mlflow.utils.validation): param value length, entities per log_batch call.
_MAX_PARAM_LEN = 6000
_MAX_BATCH_PARAMS, _MAX_BATCH_METRICS, _MAX_BATCH_TOTAL = 100, 1000, 1000


def tracking_uri(out: str | Path) -> str:
    """``MLFLOW_TRACKING_URI`` when set, else the SQLite store ``sqlite:///<out>/mlflow.db`` (absolute)."""
    env = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if env:
        return env
    return f"sqlite:///{(Path(out).expanduser().resolve() / DB_NAME).as_posix()}"


def artifact_location(out: str | Path) -> str:
    """The file URI of ``<out>/mlartifacts`` (new experiments store their artifacts there)."""
    return (Path(out).expanduser().resolve() / ARTIFACTS_DIR).as_uri()


def log_sweep(out: str | Path, meta: Mapping[str, Any], pred: pd.DataFrame, results: pd.DataFrame,
              table_paths: Sequence[str | Path], figure_paths: Sequence[str | Path] = (),
              experiment: str = EXPERIMENT, n_classes: Mapping[str, int] | None = None,
              configs: Mapping[tuple[str, str, str], Mapping[str, Any]] | None = None) -> str | None:
    """Log a finished sweep to MLflow; returns the parent run id, or None when tracking failed.

    ``meta`` is the content of ``run.json``; ``pred`` the prediction rows (``predictions.parquet``);
    ``results`` the per-fold metrics (``results.parquet``). ``n_classes`` maps a dataset to its
    class count (default: the largest label seen in ``pred`` for that dataset, plus one).
    ``configs`` maps (method, variant, dataset) to the resolved hyperparameters of the cell's units
    (default: rebuilt from the registry, the predictions' ``preset_overrides`` and ``n_classes``).
    Any MLflow error is reported on stderr and swallowed: results on disk are never at stake.
    """
    if multiprocessing.parent_process() is not None:
        print("warning: MLflow logging skipped: log_sweep must run in the main process, not a worker",
              file=sys.stderr)
        return None
    try:
        return _log_sweep(Path(out), meta, pred, results, table_paths, figure_paths, experiment, n_classes,
                          configs)
    except Exception as e:  # noqa: BLE001 - tracking must never lose a sweep's results
        print(f"warning: MLflow logging failed ({type(e).__name__}: {e}); the results in {out} are complete, "
              f"rerun with the same --out to retry (finished units are reused)", file=sys.stderr)
        return None


def _log_sweep(out: Path, meta, pred, results, table_paths, figure_paths, experiment, n_classes,
               configs) -> str:
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri(out))
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        out.mkdir(parents=True, exist_ok=True)
        exp_id = client.create_experiment(experiment, artifact_location=artifact_location(out))
    else:
        exp_id = exp.experiment_id
        if exp.lifecycle_stage == "deleted":
            client.restore_experiment(exp_id)
    now = int(time.time() * 1000)
    wall = meta.get("wall_s")
    start = now - int(1000 * wall) if isinstance(wall, int | float) and wall > 0 else now   # the sweep's start
    parent = client.create_run(exp_id, run_name=_parent_name(meta), start_time=start,
                               tags={"mer.level": "sweep", "mlflow.source.name": "benchmarks.run",
                                     "mlflow.source.type": "LOCAL", "mer.out": str(out.resolve())})
    pid = parent.info.run_id
    try:
        metrics = [Metric(k, float(meta[k]), now, 0) for k in ("n_units", "n_failed", "wall_s")
                   if isinstance(meta.get(k), int | float) and not isinstance(meta.get(k), bool)]
        metrics.append(Metric("n_cells", float(_n_cells(pred)), now, 0))
        _log_batch(client, pid, metrics, [Param(k, v) for k, v in sweep_params(meta).items()])
        ncls = {**_n_classes_from(pred), **dict(n_classes or {})}
        cfgs = dict(configs or {})
        labels = {k: meta[k] for k in ("data", "preset", "pooling") if k in meta}
        folds_of = _fold_rows_by_cell(results)
        for key, cell in (pred.groupby(list(CELL_KEYS), sort=True) if len(pred) else []):
            fold_rows = folds_of.get(tuple(key), pd.DataFrame())
            cfg = cfgs[key[:3]] if key[:3] in cfgs else _registry_config(key[0], key[1], cell, ncls.get(key[2]))
            run = client.create_run(exp_id, run_name=cell_name(*key), start_time=now,
                                    tags={"mlflow.parentRunId": pid, "mer.level": "cell"})
            params = [Param(k, v) for k, v in cell_params(key, cell, cfg, labels).items()]
            metrics = cell_metrics(cell, fold_rows, ncls[key[2]], now)
            _log_batch(client, run.info.run_id, metrics, params)
            client.set_terminated(run.info.run_id, "FINISHED", end_time=int(time.time() * 1000))
        client.log_dict(pid, _jsonable(dict(meta)), "run.json")
        for p in _existing([out / "results.parquet"]):
            client.log_artifact(pid, str(p), "data")
        for p in _existing(table_paths):
            client.log_artifact(pid, str(p), "tables")
        for p in _existing(figure_paths):
            client.log_artifact(pid, str(p), "figures")
    except BaseException:
        try:
            client.set_terminated(pid, "FAILED", end_time=int(time.time() * 1000))
        except Exception:  # noqa: BLE001 - the original error is the one to report
            pass
        raise
    status = "FAILED" if meta.get("n_failed") else "FINISHED"
    client.set_terminated(pid, status, end_time=int(time.time() * 1000))
    return pid


# ------------------------------------------------------------------------------------------ contents
def _parent_name(meta: Mapping[str, Any]) -> str:
    tables = meta.get("tables") or []
    t = ",".join(str(x) for x in tables) if isinstance(tables, list | tuple) else str(tables)
    return f"table {t} | {meta.get('data', '?')} | {meta.get('preset', '?')}"


def sweep_params(meta: Mapping[str, Any]) -> dict[str, str]:
    """Parent-run parameters: the protocol labels and each dataset's manifest, kind and root."""
    out = {k: _param_value(meta[k]) for k in _PROTOCOL_KEYS if k in meta}
    for name, d in sorted((meta.get("datasets") or {}).items()):
        for field in ("manifest", "kind", "root"):
            if isinstance(d, Mapping) and field in d:
                out[f"dataset.{name}.{field}"] = _param_value(d[field])
    out["n_not_runnable"] = str(len(meta.get("not_runnable") or {}))
    return out


def cell_name(method: str, variant: str, dataset: str, seed: int, epoch_policy: str = "last") -> str:
    return f"{method}{f'[{variant}]' if variant else ''} {dataset} seed {seed}{policy_tag(epoch_policy)}"


def cell_params(key: tuple, cell: pd.DataFrame, config: Mapping[str, Any] | None,
                labels: Mapping[str, Any]) -> dict[str, str]:
    """Nested-run parameters: the cell's identity, protocol labels, provenance and hyperparameters.

    A hyperparameter whose name clashes with an identity or label parameter is logged as ``hp.<name>``.
    """
    out = {k: _param_value(v) for k, v in zip(CELL_KEYS, key)}
    out.update({k: _param_value(v) for k, v in labels.items()})
    for col in _CELL_PARAM_COLUMNS:
        if col in cell.columns:
            vals = sorted({str(v) for v in cell[col]})
            out[col] = _param_value("; ".join(vals))
    out["n_folds"] = str(cell["fold"].nunique()) if "fold" in cell.columns else "0"
    for k, v in (config or {}).items():
        out[f"hp.{k}" if k in out else str(k)] = _param_value(v)
    return out


def cell_metrics(cell: pd.DataFrame, fold_rows: pd.DataFrame, n_classes: int, ts: int) -> list:
    """Per-fold metrics (``fold/<m>``, step = fold; ``fold/chosen_epoch`` for deep methods), their mean over
    folds (``fold_mean/<m>``) and the cell's pooled metrics (``<m>``, ``n_clips``)."""
    from mlflow.entities import Metric

    out = []
    for _, r in fold_rows.sort_values("fold").iterrows():
        step = int(r["fold"])
        out += [Metric(f"fold/{m}", float(r[m]), ts, step) for m in FOLD_METRICS
                if m in r and pd.notna(r[m]) and not (m == "chosen_epoch" and r[m] < 0)]
    for m in M.METRICS:
        if len(fold_rows) and m in fold_rows:
            out.append(Metric(f"fold_mean/{m}", float(fold_rows[m].mean()), ts, 0))
    pooled = M.compute_metrics(cell["y_true"].to_numpy(), cell["y_pred"].to_numpy(), int(n_classes))
    out += [Metric(m, float(v), ts, 0) for m, v in pooled.items()]
    out.append(Metric("n_clips", float(len(cell)), ts, 0))
    return out


# ------------------------------------------------------------------------------------------ helpers
def _log_batch(client, run_id: str, metrics: list, params: list) -> None:
    """``log_batch`` in as few calls as MLflow's per-call limits allow (one for a typical cell)."""
    while params or metrics:
        p = params[:_MAX_BATCH_PARAMS]
        m = metrics[: min(_MAX_BATCH_METRICS, _MAX_BATCH_TOTAL - len(p))]
        client.log_batch(run_id, metrics=m, params=p)
        params, metrics = params[len(p):], metrics[len(m):]


def _fold_rows_by_cell(results: pd.DataFrame | None) -> dict[tuple, pd.DataFrame]:
    if results is None or not len(results):
        return {}
    return {tuple(k): g for k, g in results.groupby(list(CELL_KEYS), sort=False)}


def _n_cells(pred: pd.DataFrame) -> int:
    return int(pred.groupby(list(CELL_KEYS)).ngroups) if len(pred) else 0


def _n_classes_from(pred: pd.DataFrame) -> dict[str, int]:
    if not len(pred):
        return {}
    top = pred.groupby("dataset")[["y_true", "y_pred"]].max().max(axis=1)
    return {str(d): int(v) + 1 for d, v in top.items()}


def _registry_config(method: str, variant: str, cell: pd.DataFrame, n_classes: int | None) -> dict[str, Any]:
    """The cell's hyperparameters rebuilt from the registry (defaults, variant, the run's overrides)."""
    overrides: dict[str, Any] = {}
    if "preset_overrides" in cell.columns and len(cell):
        try:
            overrides = dict(ast.literal_eval(str(cell["preset_overrides"].iloc[0])))
        except (ValueError, SyntaxError, TypeError):
            overrides = {}
    try:
        from benchmarks.registry import get_method, hyperparameters

        hp = hyperparameters(get_method(method).config(variant or None, overrides))
    except Exception:  # noqa: BLE001 - an unregistered method still gets its identity and overrides logged
        return overrides
    if "num_classes" in hp and n_classes is not None:
        hp["num_classes"] = int(n_classes)
    return hp


def _param_value(v: Any) -> str:
    if isinstance(v, list | tuple):
        s = ",".join(str(x) for x in v)
    elif isinstance(v, Mapping):
        s = json.dumps(_jsonable(dict(v)), sort_keys=True)
    else:
        s = str(v)
    return s if len(s) <= _MAX_PARAM_LEN else s[: _MAX_PARAM_LEN - 3] + "..."


def _jsonable(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple | set):
        return [_jsonable(x) for x in v]
    if isinstance(v, str | int | float | bool | type(None)):
        return v
    if hasattr(v, "item"):  # numpy scalar
        return v.item()
    return str(v)


def _existing(paths: Iterable[str | Path]) -> list[Path]:
    return [Path(p) for p in paths if Path(p).is_file()]
