"""``python -m benchmarks.bench_folds [--methods M,...] [--epochs N] [--repeats N] [--vmap-epochs N] [--folds N]``.

Sequential vs fold-batched training of the same LOSO cells, measured side by side in one run: STSTNet and
OFF-ApexNet on ``megc2019-public`` (68 folds, fixed epochs; skipped with a message when ``../shared/data`` is
absent) and MFVAN (the full model, CPU-sized: 64 px, 4 x 4 patches) on ``synthetic-smic`` (16 folds). Both
trainers run what ``benchmarks.evaluate.run_loso`` runs for a cell (``fold_batching=False`` / ``True``):
same inputs, seeds and policy ``last``.

Printed per method: wall seconds of each trainer (best of ``--repeats`` interleaved runs), their ratio,
whether the predictions agree (classes per clip, largest probability difference, loss histories); then the
fold-batched trainer with every fold in one vmapped chunk (the CUDA policy,
:data:`benchmarks.batched_trainer.DEFAULT_FOLDS_PER_CHUNK`) against sequential over ``--vmap-epochs``; then
a profile of the fold-batched run (time per phase, torch.profiler's top operators by self CPU time). One
intra-op thread by default (``--threads``), for a steady comparison on a shared machine; a warm-up run of
each trainer precedes the timed runs.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from benchmarks import batched_trainer
from benchmarks.batched_trainer import train_folds_batched
from benchmarks.data.errors import DataError
from benchmarks.data.registry import load_dataset
from benchmarks.evaluate import deep_inputs, method_config, resolve_views, train_config, unit_key
from benchmarks.paths import shared_data_dir
from benchmarks.registry import get_method
from benchmarks.seeding import derive_seed
from benchmarks.splits import loso_splits
from benchmarks.trainer import FoldResult, resolve_device, train_fold

MFVAN_CPU = {"img_size": 64, "patch_grid": 4, "pretrain_epochs": 1, "ri_epochs": 1}


@dataclass(frozen=True)
class Case:
    """One measured cell: a method (default variant) on a dataset, with overrides and a default epoch count."""

    method: str
    dataset: str
    epochs: int
    overrides: dict[str, Any] = field(default_factory=dict)
    needs_shared: bool = False

    @property
    def label(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in self.overrides.items())
        return f"{self.method} ({extra})" if extra else self.method


CASES = {
    "ststnet": Case("ststnet", "megc2019-public", 5, needs_shared=True),
    "off_apexnet": Case("off_apexnet", "megc2019-public", 2, needs_shared=True),
    "mfvan": Case("mfvan", "synthetic-smic", 2, MFVAN_CPU),
}


class Cell:
    """Inputs, folds and trainer calls of one cell, as ``evaluate._run_deep`` prepares them."""

    def __init__(self, case: Case, epochs: int, n_folds: int | None, like: Cell | None = None,
                 device: str = "cpu") -> None:
        """``like``: a cell of the same case whose dataset and inputs are reused (they do not depend on epochs);
        ``device``: the trainers' device ("cpu", "cuda" or "auto")."""
        self.case, self.device = case, device
        self.ds = like.ds if like is not None else load_dataset(case.dataset)
        self.spec = get_method(case.method)
        self.cfg = method_config(self.spec, self.ds, None, case.overrides or None, epochs)
        if like is not None:
            self.x = like.x
        else:
            views, _, _ = resolve_views(self.spec, self.cfg, self.ds)
            self.x = deep_inputs(self.spec, self.cfg, self.ds, views)
        self.y = np.array(self.ds.labels())
        self.groups = self.ds.groups()
        self.tcfg = train_config(self.cfg, "last", device)
        self.key = unit_key(self.spec, self.cfg, self.ds, 0)
        folds = loso_splits(self.groups)
        self.folds = folds if n_folds is None else folds[:n_folds]

    def _hook(self, f: Any) -> Any:
        return self.spec.pre_fit(self.cfg, self.x, f) if self.spec.pre_fit is not None else None

    def _take(self, idx: np.ndarray) -> Any:
        return {k: v[idx] for k, v in self.x.items()} if isinstance(self.x, dict) else self.x[idx]

    def sequential(self, folds: list | None = None) -> list[FoldResult]:
        return [train_fold(lambda: self.spec.build(self.cfg), self._take(f.train_idx), self.y[f.train_idx],
                           self._take(f.test_idx), None, self.tcfg, derive_seed(self.key, f.k),
                           groups_train=self.groups[f.train_idx], n_classes=self.ds.n_classes, pre_fit=self._hook(f))
                for f in (self.folds if folds is None else folds)]

    def batched(self, folds: list | None = None, timings: dict | None = None) -> list[FoldResult]:
        folds = self.folds if folds is None else folds
        return train_folds_batched(lambda: self.spec.build(self.cfg), self.x, self.y, folds, self.tcfg,
                                   [derive_seed(self.key, f.k) for f in folds], groups=self.groups,
                                   n_classes=self.ds.n_classes, pre_fit_hooks=[self._hook(f) for f in folds],
                                   timings=timings)


@contextlib.contextmanager
def all_folds_vmapped() -> Iterator[None]:
    """Train every fold in one vmapped chunk (memory permitting) on the CPU too: the CUDA policy."""
    saved = dict(batched_trainer.DEFAULT_FOLDS_PER_CHUNK)
    batched_trainer.DEFAULT_FOLDS_PER_CHUNK["cpu"] = None
    try:
        yield
    finally:
        batched_trainer.DEFAULT_FOLDS_PER_CHUNK.clear()
        batched_trainer.DEFAULT_FOLDS_PER_CHUNK.update(saved)


def timed(fn, *args, **kwargs) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def agreement_stats(a: list[FoldResult], b: list[FoldResult]) -> dict[str, float | int]:
    """Clips of the same class, clips in all, the largest probability and relative loss differences."""
    pa, pb = np.concatenate([r.y_pred for r in a]), np.concatenate([r.y_pred for r in b])
    dp = max(float(np.abs(r.proba - s.proba).max()) for r, s in zip(a, b, strict=True))
    dl = max(float(np.max(np.abs(np.subtract(r.train_loss, s.train_loss)) / np.abs(r.train_loss)))
             for r, s in zip(a, b, strict=True))
    return {"same_class": int((pa == pb).sum()), "clips": int(len(pa)), "max_abs_proba_diff": dp,
            "max_rel_loss_diff": dl}


def agreement(a: list[FoldResult], b: list[FoldResult]) -> str:
    """Classes equal per clip, the largest probability difference, the largest relative loss difference."""
    s = agreement_stats(a, b)
    return (f"{s['same_class']}/{s['clips']} clips same class, max |dp| {s['max_abs_proba_diff']:.1e}, "
            f"max rel. loss diff {s['max_rel_loss_diff']:.1e}")


def compare(cell: Cell, repeats: int, warm_up: bool = True
            ) -> tuple[dict[str, list[float]], list[FoldResult], list[FoldResult], dict[str, float]]:
    """Wall seconds of each trainer over ``repeats`` interleaved runs (alternating which goes first: the
    machine's load drifts), after an untimed warm-up of both on two folds and one epoch (kernel selection,
    caches); returns (times, sequential results, fold-batched results, phase timings of the fastest batched run)."""
    if warm_up:
        warm = Cell(cell.case, 1, min(2, len(cell.folds)), like=cell, device=cell.device)
        warm.sequential(), warm.batched()
    times: dict[str, list[float]] = {"sequential": [], "fold-batched": []}
    seq = bat = None
    timings: dict[str, float] = {}
    for r in range(repeats):
        for name in (("sequential", "fold-batched") if r % 2 == 0 else ("fold-batched", "sequential")):
            if name == "sequential":
                seq, t = timed(cell.sequential)
            else:
                phases: dict[str, float] = {}
                bat, t = timed(cell.batched, timings=phases)
                if not times[name] or t < min(times[name]):
                    timings = phases
            times[name].append(t)
    return times, seq, bat, timings


def profile_batched(cell: Cell, n_folds: int, top: int = 10) -> str:
    """torch.profiler's top operators (self CPU) and the time per phase of a short fold-batched run."""
    from torch.profiler import ProfilerActivity, profile

    timings: dict[str, float] = {}
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        cell.batched(cell.folds[:n_folds], timings=timings)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    lines = [f"  phases ({n_folds} folds, {cell.tcfg.epochs} epoch(s), profiled): "
             + ", ".join(f"{k} {v:.2f} s" if k != "folds per chunk" else f"{k} {v:.0f}" for k, v in timings.items())]
    lines.append(f"  top operators by self CPU time (of {total / 1e6:.2f} s):")
    for e in events[:top]:
        share = 100 * e.self_cpu_time_total / total
        lines.append(f"    {e.key:<44s} {e.self_cpu_time_total / 1e6:7.2f} s {share:5.1f} %  {e.count:7d} calls")
    return "\n".join(lines)


def run_case(case: Case, a: argparse.Namespace) -> list[str]:
    epochs = a.epochs if a.epochs is not None else case.epochs
    if case.needs_shared and shared_data_dir() is None:
        return [f"{case.label}: skipped: ../shared/data is absent ({case.dataset} needs the published MEGC2019 files)"]
    try:
        cell = Cell(case, epochs, a.folds, device=a.device)
    except DataError as e:
        return [f"{case.label}: skipped: {e}"]
    short = Cell(case, max(1, a.vmap_epochs), a.folds, like=cell, device=a.device)
    n = len(cell.folds)
    out = [f"{case.label} on {case.dataset}: {n} folds, {epochs} epochs, batch {cell.tcfg.batch_size}, "
           f"{sum(p.numel() for p in cell.spec.build(cell.cfg).parameters()):,} parameters"]
    print(out[0], flush=True)
    times, seq, bat, _ = compare(cell, a.repeats)
    t_seq, t_bat = min(times["sequential"]), min(times["fold-batched"])
    runs = "; ".join(f"{k} " + ", ".join(f"{t:.1f}" for t in v) for k, v in times.items())
    out.append(f"  sequential {t_seq:8.1f} s | fold-batched {t_bat:8.1f} s | ratio {t_seq / t_bat:5.2f}x "
               f"(best of {a.repeats}: {runs}) | " + agreement(seq, bat))
    print(out[-1], flush=True)
    if a.vmap_epochs > 0:
        seq_s, t_seq_s = timed(short.sequential)
        with all_folds_vmapped():
            timings: dict[str, float] = {}
            vm, t_vm = timed(short.batched, timings=timings)
        out.append(f"  all folds in one vmapped chunk ({timings.get('folds per chunk', 0):.0f} folds, "
                   f"{a.vmap_epochs} epoch(s)): sequential {t_seq_s:.1f} s | vmapped {t_vm:.1f} s | "
                   f"ratio {t_seq_s / t_vm:5.2f}x | " + agreement(seq_s, vm))
        print(out[-1], flush=True)
    if a.profile:  # printed, not repeated in the summary
        print(profile_batched(short, min(n, a.profile_folds)), flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_folds", description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    ap.add_argument("--epochs", type=int, help="epochs of every method (default: ststnet 5, off_apexnet 2, mfvan 2)")
    ap.add_argument("--repeats", type=int, default=2, help="timed runs of each trainer, interleaved; best reported")
    ap.add_argument("--folds", type=int, help="only the first N folds (default: all)")
    ap.add_argument("--vmap-epochs", type=int, default=1,
                    help="epochs of the all-folds-vmapped comparison (0: skip it; default 1)")
    ap.add_argument("--no-profile", dest="profile", action="store_false", help="skip the profile")
    ap.add_argument("--profile-folds", type=int, default=8, help="folds of the profiled run (default 8)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda: both trainers' device (the GPU check, "
                    "python -m benchmarks.perf.gpu_check, runs these cells on CUDA with its own sizes)")
    a = ap.parse_args(argv)
    names = [m.strip() for m in a.methods.split(",") if m.strip()]
    unknown = [m for m in names if m not in CASES]
    if unknown:
        print(f"error: unknown method(s) {unknown}; known: {', '.join(CASES)}", file=sys.stderr)
        return 2
    try:
        resolve_device(a.device)
    except (ValueError, RuntimeError) as e:
        print(f"error: --device: {e}", file=sys.stderr)
        return 2
    torch.set_num_threads(a.threads)
    print(f"fold-batched vs sequential training: torch {torch.__version__}, device {a.device}, {a.threads} thread(s), "
          f"default folds per chunk on the CPU: {batched_trainer.DEFAULT_FOLDS_PER_CHUNK.get('cpu')}", flush=True)
    t0 = time.perf_counter()
    report = []
    for m in names:
        report += run_case(CASES[m], a)
    print(f"\nsummary ({time.perf_counter() - t0:.0f} s in all)")
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
