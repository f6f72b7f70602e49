"""``python -m benchmarks.analysis.learning_curves``: per-epoch learning curves of deep methods under LOSO.

For each (method[variant], dataset) and each selected LOSO fold, the fold is trained exactly as a table unit
is (same config, preset, seeds, ``pre_fit`` stages, trainer), and after every epoch the trainer's
``epoch_end`` hook records, in eval mode: accuracy on the fitted training clips, accuracy on the held-out
subject, the held-out predicted-class histogram, the mean of every loss term, and for MFVAN's RI variants
the student's apex -> onset error on the held-out clips next to the trivial answer "onset = apex" (mean
squared error per pixel, images in [0, 1]). Curves are pooled over folds (held-out accuracy = correct /
clips over all selected folds). Writes ``curves.json`` and one PNG per dataset under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.atomic import atomic_write_json
from benchmarks.presets import PRESETS, get_preset


def _load(dataset: str, version: int | None):
    from benchmarks.data.registry import load_dataset

    return load_dataset(dataset, version=version) if version is not None else load_dataset(dataset)


def _fold_curve(job: tuple[str, str, str, dict[str, Any], int, int, int | None]) -> dict[str, Any]:
    """Train one fold with the per-epoch probe; returns its per-epoch records."""
    import torch

    from benchmarks.evaluate import _take, deep_inputs, method_config, model_factory, resolve_views, train_config
    from benchmarks.evaluate import unit_key as eval_unit_key
    from benchmarks.registry import get_method
    from benchmarks.seeding import derive_seed
    from benchmarks.splits import loso_splits
    from benchmarks.trainer import _as_inputs, predict, train_fold

    method, variant, dataset, overrides, k, seed, version = job
    torch.set_num_threads(1)
    spec = get_method(method)
    ds = _load(dataset, version)
    cfg = method_config(spec, ds, variant or None, overrides, None)
    views, _, _ = resolve_views(spec, cfg, ds)
    x = deep_inputs(spec, cfg, ds, views)
    y = ds.labels()
    fold = loso_splits(ds.groups())[k]
    tr, te = fold.train_idx, fold.test_idx
    x_tr, x_te = _as_inputs(_take(x, tr), "x_train"), _as_inputs(_take(x, te), "x_test")
    tcfg = train_config(cfg, "last", "cpu")
    records: list[dict[str, Any]] = []
    ri = isinstance(x, Mapping) and "onset" in x

    def probe(epoch: int, model: torch.nn.Module) -> None:
        tr_pred = predict(model, x_tr, tcfg.eval_batch_size)[0]
        te_pred = predict(model, x_te, tcfg.eval_batch_size)[0]
        rec = {"epoch": epoch, "train_correct": int((tr_pred == y[tr]).sum()), "n_train": len(tr),
               "test_correct": int((te_pred == y[te]).sum()), "n_test": len(te),
               "test_hist": np.bincount(te_pred, minlength=ds.n_classes).tolist()}
        if ri:
            apex, onset = torch.as_tensor(x_te["apex"]), torch.as_tensor(x_te["onset"])
            student = model.net.ri.student(model.net._layout(apex))
            rec["student_mse"] = float(((student - onset) ** 2).mean())
            rec["trivial_mse"] = float(((apex - onset) ** 2).mean())
        records.append(rec)

    hook = spec.pre_fit(cfg, x, fold) if spec.pre_fit is not None else None
    t0 = time.perf_counter()
    result = train_fold(model_factory(spec, cfg), x_tr, y[tr], x_te, None, tcfg,
                        derive_seed(eval_unit_key(spec, cfg, ds, seed), fold.k), groups_train=ds.groups()[tr],
                        n_classes=ds.n_classes, pre_fit=hook, epoch_end=probe)
    for rec, loss, parts in zip(records, result.train_loss, result.loss_parts or [{}] * len(records)):
        rec["loss"] = loss
        rec.update({f"loss_{name}": v for name, v in parts.items()})
    return {"fold": k, "records": records, "wall_s": time.perf_counter() - t0,
            "true_hist": np.bincount(y[te], minlength=ds.n_classes).tolist()}


def pool_folds(folds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-epoch curves over folds: accuracies pooled (correct / clips), loss terms and errors averaged."""
    n_epochs = min(len(f["records"]) for f in folds)
    out = []
    for e in range(n_epochs):
        recs = [f["records"][e] for f in folds]
        row = {"epoch": e + 1,
               "train_acc": sum(r["train_correct"] for r in recs) / sum(r["n_train"] for r in recs),
               "test_acc": sum(r["test_correct"] for r in recs) / sum(r["n_test"] for r in recs),
               "test_hist": np.sum([r["test_hist"] for r in recs], axis=0).tolist()}
        for key in sorted({k for r in recs for k in r if k.startswith("loss") or k.endswith("_mse")}):
            vals = [r[key] for r in recs if key in r]
            row[key] = float(np.mean(vals))
        out.append(row)
    return out


def plot(curves: dict[str, dict[str, Any]], dataset: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = {k: v for k, v in curves.items() if v["dataset"] == dataset}
    ri = any("student_mse" in c["curve"][0] for c in cells.values())
    fig, axes = plt.subplots(1, 3 if ri else 2, figsize=(15 if ri else 10, 4.2))
    for c in cells.values():
        ep = [r["epoch"] for r in c["curve"]]
        line = axes[0].plot(ep, [r["train_acc"] for r in c["curve"]], "--", alpha=0.7)[0]
        axes[0].plot(ep, [r["test_acc"] for r in c["curve"]], "-", color=line.get_color(), label=c["label"])
        axes[1].plot(ep, [r["loss"] for r in c["curve"]], color=line.get_color(), label=c["label"])
        if ri and "student_mse" in c["curve"][0]:
            axes[2].plot(ep, [r["student_mse"] for r in c["curve"]], color=line.get_color(), label=c["label"])
            axes[2].axhline(c["curve"][0]["trivial_mse"], color=line.get_color(), ls=":", lw=1)
    axes[0].axhline(cells[next(iter(cells))]["majority_rate"], color="k", ls=":", lw=1, label="majority class")
    axes[0].set(title=f"{dataset}: accuracy (dashed: training, solid: held-out)", xlabel="epoch", ylim=(0, 1))
    axes[1].set(title="training loss (L_all for MFVAN)", xlabel="epoch", yscale="log")
    if ri:
        axes[2].set(title="RI: student apex->onset MSE (dotted: onset = apex)", xlabel="epoch")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run(cells: list[tuple[str, str]], datasets: list[str], preset: str, folds: int | None, jobs: int,
        epochs: int | None, seed: int = 0, extra: Mapping[str, Any] | None = None,
        version: int | None = None) -> dict[str, dict[str, Any]]:
    from benchmarks.registry import get_method, hyperparameters
    from benchmarks.splits import loso_splits

    p = get_preset(preset)
    curves: dict[str, dict[str, Any]] = {}
    for dataset in datasets:
        ds = _load(dataset, version)
        splits = loso_splits(ds.groups())
        n_folds = ds.clips["group"].nunique()
        chosen = list(range(n_folds)) if not folds else sorted({round(i * n_folds / folds) for i in range(folds)})
        for method, variant in cells:
            spec = get_method(method)
            overrides = dict(p.overrides_for(method, spec.family))
            if epochs is not None:
                overrides["epochs"] = epochs
            known = set(hyperparameters(spec.config(variant or None)))
            overrides.update({k: v for k, v in (extra or {}).items() if k in known})
            jobs_ = [(method, variant, dataset, overrides, k, seed, version) for k in chosen]
            t0 = time.time()
            if jobs == 1:
                per_fold = [_fold_curve(j) for j in jobs_]
            else:
                with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as ex:
                    per_fold = list(ex.map(_fold_curve, jobs_))
            label = f"{method}[{variant}]" if variant else method
            counts = np.bincount(ds.labels()[np.concatenate([splits[k].test_idx for k in chosen])],
                                 minlength=ds.n_classes)
            name = f"{label}/{dataset}" + (f"/v{version}" if version is not None else "")
            curves[name] = {
                "label": label + (f" (generator v{version})" if version is not None else ""), "dataset": dataset,
                "generator_version": version, "preset": preset, "overrides": overrides, "folds": chosen,
                "n_folds_total": n_folds, "seed": seed, "majority_rate": float(counts.max() / counts.sum()),
                "curve": pool_folds(per_fold), "wall_s": round(time.time() - t0, 1),
                "fold_wall_s": [round(f["wall_s"], 1) for f in per_fold]}
            last = curves[name]["curve"][-1]
            print(f"{label:24s} {dataset:18s} train {last['train_acc']:.3f} held-out {last['test_acc']:.3f} "
                  f"hist {last['test_hist']} ({time.time() - t0:.0f} s)", flush=True)
    return curves


def _cells(text: str) -> list[tuple[str, str]]:
    out = []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        name, _, variant = item.partition("[")
        out.append((name, variant.rstrip("]")))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.analysis.learning_curves",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--methods", required=True, help="comma-separated NAME[VARIANT], e.g. 'mfvan[global],apex_cnn'")
    ap.add_argument("--datasets", required=True, help="comma-separated registered dataset names")
    ap.add_argument("--preset", choices=list(PRESETS), default="default")
    ap.add_argument("--epochs", type=int, help="override the stage-2 epochs")
    ap.add_argument("--folds", type=int, help="evenly spaced LOSO folds to train (default: all)")
    ap.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                    help="override a hyperparameter of every method that has it (value read as JSON, else text)")
    ap.add_argument("--generator-version", type=int, help="synthetic datasets: the generator version (default: newest)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", required=True, help="folder for curves.json and the figures")
    a = ap.parse_args(argv)
    if a.jobs < 1 or (a.folds is not None and a.folds < 1) or (a.epochs is not None and a.epochs < 1):
        print("error: --jobs, --folds and --epochs must be >= 1", file=sys.stderr)
        return 2
    from benchmarks.registry import get_method

    cells = _cells(a.methods)
    try:
        for m, v in cells:
            get_method(m).config(v or None)
    except (KeyError, ValueError) as e:
        print(f"error: --methods: {e.args[0]}", file=sys.stderr)
        return 2
    extra: dict[str, Any] = {}
    for item in a.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            print(f"error: --set {item!r}: expected KEY=VALUE", file=sys.stderr)
            return 2
        try:
            extra[key] = json.loads(value)
        except json.JSONDecodeError:
            extra[key] = value
    datasets = [d.strip() for d in a.datasets.split(",") if d.strip()]
    curves = run(cells, datasets, a.preset, a.folds, a.jobs, a.epochs, extra=extra, version=a.generator_version)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    old = json.loads((out / "curves.json").read_text()) if (out / "curves.json").exists() else {}
    old.update(curves)
    atomic_write_json(out / "curves.json", old)
    for d in datasets:
        print(f"figure: {plot(old, d, out / f'curves-{d}.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
