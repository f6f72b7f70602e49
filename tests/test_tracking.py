"""MLflow tracking of a sweep (benchmarks.tracking): logged runs read back with MlflowClient."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from benchmarks import tracking
from benchmarks.render import fold_results

# Two cells x two folds. Cell A: fold 0 scores 2/3, fold 1 scores 3/3 -> pooled accuracy 5/6.
_FOLDS = {
    ("ststnet", "", "synthetic-megc2019", 0): [([0, 1, 2], [0, 1, 1]), ([0, 0, 1], [0, 0, 1])],
    ("lbptop", "", "synthetic-megc2019", 0): [([0, 1, 2], [2, 1, 0]), ([0, 0, 1], [1, 0, 1])],
}


def _pred() -> pd.DataFrame:
    rows = []
    for (method, variant, dataset, seed), folds in _FOLDS.items():
        for fold, (yt, yp) in enumerate(folds):
            for i, (t, p) in enumerate(zip(yt, yp)):
                rows.append({"method": method, "variant": variant, "dataset": dataset, "source": "synthetic-casme2",
                             "subject": f"s{fold}", "group": f"synthetic-casme2/s{fold}", "clip": f"c{i}",
                             "fold": fold, "seed": seed, "y_true": t, "y_pred": p,
                             "epoch_policy": "last" if method == "ststnet" else "none",
                             "chosen_epoch": 3 if method == "ststnet" else -1, "data_source": "synthetic",
                             "views": "flow_uvs(size=28)", "protocol_note": "", "policy_label": "last epoch",
                             "preset_overrides": "{'epochs': 4}" if method == "ststnet" else "{}",
                             "code_version": f"{method[:3]}123", "unit_key": f"k{method}{fold}"})
    return pd.DataFrame(rows)


def _meta(n_failed: int = 0) -> dict:
    return {"tables": [2], "data": "synthetic", "preset": "smoke", "epoch_policy": "last", "pooling": "pooled",
            "seeds": [0], "epochs_override": None, "version": "0.1.0", "not_runnable": {"x|y|z": "no views"},
            "n_units": 4, "n_failed": n_failed,
            "datasets": {"synthetic-megc2019": {"manifest": "abc123", "kind": "synthetic", "root": "/tmp/x"}},
            "wall_s": 1.5}


def _sweep(out: Path, n_failed: int = 0) -> str | None:
    pred = _pred()
    res = fold_results(pred, {"synthetic-megc2019": 3})
    out.mkdir(parents=True, exist_ok=True)
    res.to_parquet(out / "results.parquet", index=False)
    table = out / "table2.md"
    table.write_text("| Method | UF1 |\n")
    fig = out / "cm.png"
    fig.write_bytes(b"\x89PNG fake")
    configs = {("lbptop", "", "synthetic-megc2019"): {"radius": 1, "neighbors": [8, 8, 8], "C": 1.0}}
    return tracking.log_sweep(out, _meta(n_failed), pred, res, [table], [fig], n_classes={"synthetic-megc2019": 3},
                              configs=configs)


def test_log_sweep_parent_nested_metrics_params_artifacts(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "run"
    pid = _sweep(out)
    assert pid is not None
    assert (out / "mlflow.db").is_file()
    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    exp = client.get_experiment_by_name("mer-bench")
    assert exp.artifact_location == (out / "mlartifacts").resolve().as_uri()
    runs = client.search_runs([exp.experiment_id], max_results=100)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert [r.info.run_id for r in parents] == [pid]
    assert len(children) == 2 and all(r.data.tags["mlflow.parentRunId"] == pid for r in children)

    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.info.run_name == "table 2 | synthetic | smoke"
    p = parent.data.params
    assert (p["data"], p["preset"], p["epoch_policy"], p["pooling"], p["seeds"], p["version"]) == (
        "synthetic", "smoke", "last", "pooled", "0", "0.1.0")
    assert p["dataset.synthetic-megc2019.manifest"] == "abc123"
    assert p["n_not_runnable"] == "1"
    assert parent.data.metrics["n_cells"] == 2 and parent.data.metrics["n_units"] == 4

    by_method = {r.data.params["method"]: r for r in children}
    a, b = by_method["ststnet"], by_method["lbptop"]
    assert a.info.run_name == "ststnet synthetic-megc2019 seed 0"
    assert (a.data.params["dataset"], a.data.params["seed"], a.data.params["variant"]) == (
        "synthetic-megc2019", "0", "")
    # ststnet's hyperparameters rebuilt from the registry: preset override + dataset class count
    assert a.data.params["epochs"] == "4" and a.data.params["num_classes"] == "3"
    assert a.data.params["lr"] == "5e-05"
    assert a.data.params["preset_overrides"] == "{'epochs': 4}" and a.data.params["code_version"] == "sts123"
    # lbptop's from the configs argument
    assert (b.data.params["radius"], b.data.params["neighbors"], b.data.params["C"]) == ("1", "8,8,8", "1.0")

    hist = client.get_metric_history(a.info.run_id, "fold/accuracy")
    assert sorted((m.step, round(m.value, 6)) for m in hist) == [(0, round(2 / 3, 6)), (1, 1.0)]
    assert [m.value for m in client.get_metric_history(a.info.run_id, "fold/chosen_epoch")] == [3.0, 3.0]
    assert a.data.metrics["accuracy"] == pytest.approx(5 / 6)
    assert a.data.metrics["fold_mean/accuracy"] == pytest.approx((2 / 3 + 1) / 2)
    assert a.data.metrics["n_clips"] == 6
    # cell B: 1/3 then 2/3 -> pooled 3/6
    assert b.data.metrics["accuracy"] == pytest.approx(0.5)
    assert sorted(m.step for m in client.get_metric_history(b.info.run_id, "fold/uf1")) == [0, 1]
    assert "fold/chosen_epoch" not in b.data.metrics   # handcrafted: no epochs

    top = {f.path for f in client.list_artifacts(pid)}
    assert {"run.json", "tables", "figures", "data"} <= top
    assert [f.path for f in client.list_artifacts(pid, "tables")] == ["tables/table2.md"]
    assert [f.path for f in client.list_artifacts(pid, "figures")] == ["figures/cm.png"]
    assert [f.path for f in client.list_artifacts(pid, "data")] == ["data/results.parquet"]
    assert (out / "mlartifacts").is_dir()


def test_tracking_uri_env_is_honoured_and_failed_units_mark_the_parent(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    other = tmp_path / "elsewhere" / "store.db"
    other.parent.mkdir()
    uri = f"sqlite:///{other}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert tracking.tracking_uri(tmp_path / "run") == uri
    pid = _sweep(tmp_path / "run", n_failed=1)
    assert pid is not None
    assert other.is_file() and not (tmp_path / "run" / "mlflow.db").exists()
    run = MlflowClient(tracking_uri=uri).get_run(pid)
    assert run.info.status == "FAILED"


def test_default_uri_is_absolute_sqlite_under_out(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert tracking.tracking_uri("runs/x") == f"sqlite:///{tmp_path.resolve()}/runs/x/mlflow.db"


def test_tracking_failure_warns_and_returns_none(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "not-a-db.db"
    bad.write_bytes(b"this is not an SQLite file" * 100)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{bad}")
    assert _sweep(tmp_path / "run") is None
    err = capsys.readouterr().err
    assert "MLflow logging failed" in err and "results" in err
    assert (tmp_path / "run" / "results.parquet").is_file()
