"""Units of work and their cache.

A unit is one LOSO fold of one cell: (method, variant, resolved hyperparameters, dataset name and
manifest hash, fold, seed, epoch policy, code version, trainer). Its key is the hash of those; its result (the
fold's prediction rows) is written atomically to ``<store>/<key[:2]>/<key>.parquet``, then a
``<key>.json`` done marker with its metadata. A unit counts as done only when both exist and the
marker names the parquet's checksum, so a crash or Ctrl-C at any moment loses no finished unit and
leaves no half-written one. Failed units are never written. Invocations that share a store claim a unit
before computing it (:meth:`UnitStore.claim`, a ``<key>.lock`` file lock), so that no unit is computed twice.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import sys
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.atomic import atomic_write_bytes, atomic_write_json, stable_hash
from benchmarks.locks import FileLock

# Harness modules whose code decides a unit's predictions (beside the method's own modules).
_HARNESS_MODULES = ("benchmarks.evaluate", "benchmarks.trainer", "benchmarks.seeding", "benchmarks.splits",
                    "benchmarks.data.views", "benchmarks.data.flow", "benchmarks.data.tim",
                    "benchmarks.data.frames", "benchmarks.data.roi_views")


@cache
def _module_digest(name: str) -> str:
    __import__(name)
    src = inspect.getsource(sys.modules[name])
    return hashlib.sha256(src.encode()).hexdigest()


LIBRARY_PACKAGES = ("baselines", "mfvan_core")
"""Packages of model and feature code (arrays in, no harness imports) that methods are built from."""


def _referenced_modules(name: str) -> set[str]:
    """Names of the library modules that module ``name`` refers to by a module-level name (an imported
    module, or a class / function / constant defined in one)."""
    __import__(name)
    refs = set()
    for value in vars(sys.modules[name]).values():
        ref = value.__name__ if inspect.ismodule(value) else getattr(value, "__module__", None)
        if isinstance(ref, str) and ref.split(".")[0] in LIBRARY_PACKAGES:
            refs.add(ref)
    return refs


def _view_modules(spec: Any) -> set[str]:
    """The modules defining the views ``spec`` reads (its views and fallbacks, and the bases of derived
    views, transitively), e.g. ``benchmarks.data.patch_views``."""
    from benchmarks.data.views import VIEWS

    out, todo = set(), [*spec.views, *(v for alt in spec.fallbacks for v in alt.views)]
    while todo:
        v = todo.pop()
        vdef = VIEWS.get(v.name)
        if vdef is not None:
            out.add(vdef.compute.__module__)
            todo.extend(vdef.bases(v.canonical()) if vdef.bases is not None else ())
    return out


def code_modules(method: str) -> set[str]:
    """The modules whose source decides ``method``'s predictions: the harness modules of evaluation,
    training, splits and views (with the modules of the views it reads), the method's registration and
    build modules, and every library module they reach through module-level names, transitively. Other
    methods, other library modules, the renderer, the runner and the registry are not among them."""
    from benchmarks.registry import get_method

    spec = get_method(method)
    build_mod = getattr(spec.build, "__module__", None) or type(spec.build).__module__
    roots = {build_mod} | {m for m in list(sys.modules) if m.startswith("benchmarks.methods.")
                           and getattr(sys.modules[m], "SPEC", None) is spec}
    library, todo = set(), [*roots]
    while todo:
        for ref in _referenced_modules(todo.pop()) - library:
            library.add(ref)
            todo.append(ref)
    return set(_HARNESS_MODULES) | roots | library | _view_modules(spec)


@cache
def code_version(method: str) -> str:
    """Short hash of the source of ``code_modules(method)``: editing one of them invalidates the method's
    cached units; editing an unrelated method, the renderer or the runner leaves them valid."""
    h = hashlib.sha256()
    for m in sorted(code_modules(method)):
        try:
            h.update(f"{m}:{_module_digest(m)};".encode())
        except (OSError, TypeError):  # a module without source (compiled extension)
            continue
    return h.hexdigest()[:12]


SEQUENTIAL, FOLD_BATCHED, NO_TRAINER = "sequential", "fold-batched", "n/a"
"""How a unit's model is trained: fold after fold, or all folds of its cell at once (``Unit.trainer``);
the two agree up to floating-point rounding, so they are cached apart."""


def policy_tag(epoch_policy: str) -> str:
    """The suffix labels carry for an epoch policy other than the default ``last`` (or a method without epochs)."""
    return f" epochs {epoch_policy}" if epoch_policy in ("val", "oracle") else ""


@dataclass(frozen=True)
class Unit:
    """One LOSO fold of a cell. ``config`` is the resolved hyperparameters (JSON-able dict); ``trainer``
    is :data:`SEQUENTIAL` or :data:`FOLD_BATCHED` for deep methods, :data:`NO_TRAINER` for handcrafted.
    The key hashes what decides the computation, not the variant's name (two names of one configuration,
    e.g. MFVAN's ``full`` and ``global+s123+ri``, share their units)."""

    method: str
    variant: str
    dataset: str
    manifest: str
    fold: int
    test_group: str
    seed: int
    epoch_policy: str
    config: dict = field(hash=False, compare=False)
    overrides: dict = field(default_factory=dict, hash=False, compare=False)
    code: str = ""
    trainer: str = SEQUENTIAL
    weights: str = ""  # sha256 of the initial weights file ("" = from scratch); the path is not part of the key
    weights_path: str = field(default="", hash=False, compare=False)
    label_control: str = ""  # "" = real labels; "shuffled" = the shuffled-label control (evaluate.training_labels)

    @property
    def key(self) -> str:
        return stable_hash({"method": self.method, "dataset": self.dataset,
                            "manifest": self.manifest, "fold": self.fold, "test_group": self.test_group,
                            "seed": self.seed, "epoch_policy": self.epoch_policy, "config": self.config,
                            "code": self.code, "trainer": self.trainer,
                            **({"weights": self.weights} if self.weights else {}),
                            **({"label_control": self.label_control} if self.label_control else {})}, n=24)

    @property
    def cell(self) -> tuple[str, str, str, int]:
        return (self.method, self.variant, self.dataset, self.seed)

    @property
    def label(self) -> str:
        v = f"[{self.variant}]" if self.variant else ""
        return (f"{self.method}{v} {self.dataset} fold {self.fold} ({self.test_group}) seed {self.seed}"
                f"{policy_tag(self.epoch_policy)}")


class UnitStore:
    """Atomic per-unit result files under ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _paths(self, key: str) -> tuple[Path, Path]:
        d = self.root / key[:2]
        return d / f"{key}.parquet", d / f"{key}.json"

    def is_done(self, unit: Unit) -> bool:
        return self.load(unit) is not None

    def load(self, unit: Unit) -> pd.DataFrame | None:
        """The unit's predictions, or None when absent, unfinished or corrupt."""
        data, marker = self._paths(unit.key)
        if not (data.exists() and marker.exists()):
            return None
        try:
            meta = json.loads(marker.read_text())
            raw = data.read_bytes()
            if meta.get("sha256") != hashlib.sha256(raw).hexdigest():
                return None
            return pd.read_parquet(io.BytesIO(raw))
        except Exception:  # noqa: BLE001 - any unreadable entry is recomputed
            return None

    def meta(self, unit: Unit) -> dict[str, Any]:
        return json.loads(self._paths(unit.key)[1].read_text())

    def save(self, unit: Unit, predictions: pd.DataFrame, **meta: Any) -> None:
        data, marker = self._paths(unit.key)
        buf = io.BytesIO()
        predictions.to_parquet(buf, index=False)
        raw = buf.getvalue()
        atomic_write_bytes(data, raw)
        atomic_write_json(marker, {**asdict(unit), "key": unit.key, "sha256": hashlib.sha256(raw).hexdigest(),
                                   **meta})

    def claim(self, units: list[Unit], blocking: bool = False) -> UnitClaim | None:
        """Locks on ``units`` for this process, so that no other invocation sharing the store computes them
        meanwhile; None (nothing held) when another holds any of them and ``blocking`` is False. Check
        :meth:`is_done` after claiming: the previous holder may have finished them."""
        locks = []
        for u in units:
            lock = FileLock(self._paths(u.key)[0].with_suffix(".lock"))
            if not lock.acquire(blocking):
                for held in locks:
                    held.release()
                return None
            locks.append(lock)
        return UnitClaim(locks)

    def tidy(self, unit: Unit) -> None:
        """Remove the claim file a done unit may have kept (its holder was killed after saving it)."""
        self._paths(unit.key)[0].with_suffix(".lock").unlink(missing_ok=True)

    def forget(self, unit: Unit) -> None:
        for p in self._paths(unit.key):
            p.unlink(missing_ok=True)


class UnitClaim:
    """The locks :meth:`UnitStore.claim` took; :meth:`release` drops them (removing the lock files of units
    that are done)."""

    def __init__(self, locks: list[FileLock]) -> None:
        self.locks = locks

    def release(self, store: UnitStore | None = None, units: list[Unit] | None = None) -> None:
        done = {u.key for u in units or [] if store is not None and store.is_done(u)}
        for lock in self.locks:
            lock.release(remove=lock.path.stem in done)
        self.locks = []
