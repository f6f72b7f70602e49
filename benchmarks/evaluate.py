"""Leave-one-subject-out evaluation of any registered method: :func:`run_loso` -> one prediction row per clip.

Inputs come from the views of :mod:`benchmarks.data.views` named by the method's spec
(:mod:`benchmarks.registry`). When the data source cannot provide them, the spec's fallback view sets are
tried in order and the predictions carry the fallback's note (``protocol_note``, e.g. "approximation
(stored 28x28 min-max flow ...)"); when none can, :class:`NotRunnable` is raised (the harness reports it
instead of failing).

- Handcrafted methods: one feature vector per clip, computed once (cached on disk under
  ``paths.cache_dir()/"features"`` keyed by the views' cache keys, the method and its feature
  hyperparameters, and in memory for the process), then the method's classifier (``baselines.svm``:
  scaler + linear SVM) is fitted on each training fold and predicts its test subject.
- Deep methods: the stacked views -> ``spec.inputs`` -> :func:`benchmarks.trainer.train_fold` per fold (or,
  ``fold_batching=True``, every selected fold at once: :func:`benchmarks.batched_trainer.train_folds_batched`) with
  the method's training settings (epochs, batch size, lr, optimizer, weight decay of its config;
  ``epochs=`` overrides for quick runs). The unit of work is ``(method, hyperparameters, dataset name +
  manifest hash, seed)`` (:func:`unit_key`); fold ``k`` (the index in the full LOSO list, so a subset of folds
  reproduces the same folds of a full run) is seeded ``derive_seed(unit_key, k)``, the contract of
  :func:`benchmarks.trainer.train_loso`.

Prediction columns (:data:`PREDICTION_COLUMNS`): method, variant, dataset (the ClipDataset's name), source
(the clip's source dataset), subject, group, clip, fold, seed, y_true, y_pred, epoch_policy,
chosen_epoch (-1 for handcrafted methods), data_source (raw/public/synthetic), views (the view specs
used), protocol_note ("" when the method's own inputs and protocol were used; else the fallback's note and
the spec's ``config_note``, joined by "; "), policy_label, init_weights ("" = trained from scratch, else the
weights file's name and checksum).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks import paths
from benchmarks.atomic import atomic_save_npz, load_npz_checked, stable_hash
from benchmarks.batched_trainer import train_folds_batched
from benchmarks.data.clips import ClipDataset
from benchmarks.data.registry import load_dataset
from benchmarks.data.views import ViewSpec, cache_key, get_view, unavailable_reason, view_array
from benchmarks.registry import MethodSpec, get_method, hyperparameters, with_overrides
from benchmarks.seeding import derive_seed
from benchmarks.splits import Fold, loso_splits
from benchmarks.trainer import EPOCH_POLICIES, TrainConfig, policy_label, train_fold

log = logging.getLogger(__name__)

FEATURE_CODE_VERSION = "1"
"""Bump when a feature function's numbers change (invalidates the feature cache)."""
NO_EPOCHS = "n/a"
PREDICTION_COLUMNS = [
    "method", "variant", "dataset", "source", "subject", "group", "clip", "fold", "seed", "y_true", "y_pred",
    "epoch_policy", "chosen_epoch", "data_source", "views", "protocol_note", "policy_label", "init_weights",
]
_TRAIN_FIELDS = ("epochs", "batch_size", "lr", "optimizer", "weight_decay")
_OPTIONAL_TRAIN_FIELDS = ("batch_order", "loss", "focal_gamma", "focal_alpha", "lr_schedule", "warmup_epochs",
                          "lr_step_size", "lr_gamma", "momentum")
_MEMORY: dict[str, np.ndarray] = {}


class NotRunnable(Exception):
    """A method cannot run on a data source (e.g. LBP-TOP needs frame sequences the source lacks)."""

    def __init__(self, method: str, dataset: str, reason: str) -> None:
        self.method, self.dataset, self.reason = method, dataset, reason
        super().__init__(f"{method} cannot run on {dataset}: {reason}")


# ------------------------------------------------------------------------------------------- helpers
def _dataset(dataset: str | ClipDataset, root: Any = None) -> ClipDataset:
    return dataset if isinstance(dataset, ClipDataset) else load_dataset(dataset, root)


def method_config(spec: MethodSpec, ds: ClipDataset, variant: str | None, overrides: Mapping[str, Any] | None,
                  epochs: int | None) -> Any:
    """The spec's config for ``variant`` + ``overrides``, with ``num_classes`` of the dataset and ``epochs``;
    the spec's ``dataset_defaults(ds)`` replace defaults that neither the variant nor ``overrides`` set."""
    cfg = spec.config(variant, overrides)
    extra: dict[str, Any] = {}
    if spec.dataset_defaults is not None:
        explicit = set(spec.variants.get(variant, {}) if variant else ()) | set(overrides or {})
        extra.update({k: v for k, v in spec.dataset_defaults(ds).items() if k not in explicit})
    if "num_classes" in hyperparameters(cfg):
        extra["num_classes"] = ds.n_classes
    if epochs is not None:
        if spec.family != "deep":
            raise ValueError(f"epochs={epochs}: method {spec.name} is {spec.family} (no epochs)")
        extra["epochs"] = int(epochs)
    return with_overrides(cfg, extra, f"method {spec.name}") if extra else cfg


def resolve_views(spec: MethodSpec, cfg: Any, ds: ClipDataset) -> tuple[tuple[ViewSpec, ...], str, bool]:
    """(views, protocol note, preferred?) that ``ds`` can provide; :class:`NotRunnable` when none."""
    preferred = spec.input_views(cfg)
    reasons = [r for r in (unavailable_reason(ds, v) for v in preferred) if r]
    extra = spec.config_note(cfg) if spec.config_note is not None else ""  # e.g. transductive pretraining
    if not reasons:
        return preferred, extra, True
    for alt in spec.fallbacks:
        if not any(unavailable_reason(ds, v) for v in alt.views):
            return alt.views, "; ".join(n for n in (alt.note, extra) if n), False
    raise NotRunnable(spec.name, ds.name, reasons[0])


def select_folds(folds: list[Fold], which: int | Iterable[int | str] | None) -> list[Fold]:
    """All folds (None), the first ``n`` (an int), or those with the given indices or test groups."""
    if which is None:
        return folds
    if isinstance(which, int | np.integer):
        if which < 1:
            raise ValueError(f"folds={which}: must be >= 1")
        return folds[: int(which)]
    by_group = {f.test_group: f for f in folds}
    out = []
    for w in which:
        if isinstance(w, str):
            if w not in by_group:
                raise ValueError(f"folds: no subject {w!r}; subjects: {sorted(by_group)[:8]}...")
            out.append(by_group[w])
        else:
            if not 0 <= int(w) < len(folds):
                raise ValueError(f"folds: index {w} out of range 0..{len(folds) - 1}")
            out.append(folds[int(w)])
    if not out:
        raise ValueError("folds: empty selection")
    return sorted({f.k: f for f in out}.values(), key=lambda f: f.k)


def views_label(views: Iterable[ViewSpec]) -> str:
    return " + ".join(str(v) for v in views)


# ------------------------------------------------------------------------------------ handcrafted
def clip_features(spec: MethodSpec, cfg: Any, ds: ClipDataset, views: tuple[ViewSpec, ...], preferred: bool,
                  cache: bool = True) -> np.ndarray:
    """(N, D) features of every clip of ``ds`` (disk + memory cached, see the module docstring)."""
    feature_params = {k: v for k, v in hyperparameters(cfg).items() if not k.startswith("svm_")}
    extract = spec.build(cfg)
    rows = []
    for i in range(len(ds.clips)):
        clip_views = spec.input_views(cfg, ds, i) if preferred else views
        key = stable_hash({"method": spec.name, "params": feature_params, "code": FEATURE_CODE_VERSION,
                           "views": [cache_key(ds, i, v) for v in clip_views]}, n=32)
        if key in _MEMORY:
            rows.append(_MEMORY[key])
            continue
        path = paths.cache_dir() / "features" / spec.name / key[:2] / f"{key}.npz"
        hit = load_npz_checked(path) if cache else None
        if hit is not None and "feature" in hit:
            feature = hit["feature"]
        else:
            feature = np.asarray(extract({v.name: get_view(ds, i, v, cache=cache) for v in clip_views}),
                                 dtype=np.float64)
            if cache:
                atomic_save_npz(path, feature=feature)
        _MEMORY[key] = feature
        rows.append(feature)
    return np.stack(rows)


LABEL_CONTROLS = ("shuffled",)
SHUFFLED_NOTE = "shuffled-label control: training labels permuted within each training fold (a null model)"


def training_labels(y: np.ndarray, fold: Fold, control: str | None, key: Any) -> np.ndarray:
    """The labels a fold trains on: ``y[train_idx]``, or for the ``"shuffled"`` control the same labels in a
    seeded random order over the fold's training clips (class counts kept, association with the clips gone)."""
    y_tr = y[fold.train_idx]
    if control is None:
        return y_tr
    if control not in LABEL_CONTROLS:
        raise ValueError(f"label control must be None or one of {LABEL_CONTROLS}, got {control!r}")
    rng = np.random.default_rng(derive_seed(key, "shuffled_labels", fold.k))
    return y_tr[rng.permutation(len(y_tr))]


def _run_handcrafted(spec, cfg, ds, folds, views, preferred, control=None) -> list[tuple[Fold, np.ndarray, int]]:
    x = clip_features(spec, cfg, ds, views, preferred)
    y = ds.labels()
    out = []
    for f in folds:
        clf = spec.classifier(cfg)
        clf.fit(x[f.train_idx], training_labels(y, f, control, {"method": spec.name, "dataset": ds.name}))
        out.append((f, np.asarray(clf.predict(x[f.test_idx]), dtype=np.int64), -1))
    return out


# ------------------------------------------------------------------------------------------- deep
_STACKED: OrderedDict[tuple[str, str, str], np.ndarray] = OrderedDict()  # per process: (data, manifest, view)
STACKED_CACHE_BYTES = 512 * 2**20


def stacked_view(ds: ClipDataset, view: ViewSpec) -> np.ndarray:
    """``view_array`` of every clip, kept per process (read-only, at most :data:`STACKED_CACHE_BYTES`) so that
    the units of one dataset that a worker runs in turn read the view cache once, not once per unit. Keyed by
    the dataset's manifest hash: changed labels or frames are a new entry."""
    key = (ds.name, ds.manifest_hash(), str(view))
    hit = _STACKED.get(key)
    if hit is not None:
        _STACKED.move_to_end(key)
        return hit
    arr = view_array(ds, view.name, **view.kwargs, progress=False)
    arr.flags.writeable = False
    _STACKED[key] = arr
    while len(_STACKED) > 1 and sum(a.nbytes for a in _STACKED.values()) > STACKED_CACHE_BYTES:
        _STACKED.popitem(last=False)
    return arr


def deep_inputs(spec: MethodSpec, cfg: Any, ds: ClipDataset, views: tuple[ViewSpec, ...]) -> Any:
    """The model input for every clip: ``spec.inputs`` of the stacked views (:func:`stacked_view`)."""
    arrays = {v.name: stacked_view(ds, v) for v in views}
    return spec.inputs(arrays, cfg)


def train_config(cfg: Any, epoch_policy: str, device: str = "auto") -> TrainConfig:
    """The trainer's settings from a method config: its :data:`_TRAIN_FIELDS` (required) and
    :data:`_OPTIONAL_TRAIN_FIELDS` (when the config has them)."""
    hp = hyperparameters(cfg)
    missing = [k for k in _TRAIN_FIELDS if k not in hp]
    if missing:
        raise ValueError(f"deep method config lacks training field(s) {missing}")
    optional = {k: hp[k] for k in _OPTIONAL_TRAIN_FIELDS if k in hp}
    return TrainConfig(**{k: hp[k] for k in _TRAIN_FIELDS}, **optional, epoch_policy=epoch_policy, device=device)


def unit_key(spec: MethodSpec, cfg: Any, ds: ClipDataset, seed: int) -> dict[str, Any]:
    """The unit of work a deep run's seeds derive from: method, resolved hyperparameters, dataset and seed.
    Not the variant's name: two names of one configuration (MFVAN's ``full`` = ``global+s123+ri``) are one
    computation."""
    return {"method": spec.name, "hyperparameters": hyperparameters(cfg), "dataset": ds.name,
            "manifest": ds.manifest_hash(), "seed": int(seed)}


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (identifies initial weights in unit keys and results)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def weights_label(path: str | Path | None) -> str:
    """What prediction rows record about the initial weights: "" (from scratch) or ``name (sha256 …)``."""
    return "" if not path else f"{Path(path).name} (sha256 {file_sha256(path)[:12]})"


def load_weights(path: str | Path) -> dict[str, Any]:
    """A state dict from a local file (``torch.save`` of ``state_dict()``, or a dict holding it under
    ``"state_dict"``/``"model"``); nothing is ever downloaded. Tensors only (``weights_only=True``)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"init weights: no file {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file
        raise ValueError(f"init weights: cannot read {path} as a torch state dict ({type(e).__name__}: {e})") from e
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise ValueError(f"init weights: {path} holds no state dict (parameter name -> tensor)")
    return state


def model_factory(spec: MethodSpec, cfg: Any, init_weights: str | Path | None = None) -> Any:
    """``spec.build(cfg)``, then (``init_weights``) the file's weights loaded with ``strict=True``."""
    if not init_weights:
        return lambda: spec.build(cfg)
    state = load_weights(init_weights)

    def build():
        model = spec.build(cfg)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise ValueError(f"init weights {init_weights} do not fit method {spec.name}: {e}") from None
        return model

    return build


def _run_deep(spec, cfg, ds, folds, views, seed, epoch_policy, device,
              fold_batching: bool = False, init_weights: str | Path | None = None, control: str | None = None
              ) -> list[tuple[Fold, np.ndarray, int]]:
    factory = model_factory(spec, cfg, init_weights)
    x = deep_inputs(spec, cfg, ds, views)
    y = ds.labels()
    groups = ds.groups()
    tcfg = train_config(cfg, epoch_policy, device)
    key = unit_key(spec, cfg, ds, seed)
    if fold_batching and len(folds) > 1 and control is None:  # a control's labels differ per fold: sequential
        hooks = [spec.pre_fit(cfg, x, f) if spec.pre_fit is not None else None for f in folds]
        seeds = [derive_seed(key, f.k) for f in folds]
        results = train_folds_batched(factory, x, y, folds, tcfg, seeds, groups=groups,
                                      n_classes=ds.n_classes, pre_fit_hooks=hooks)
        return [(f, r.y_pred.astype(np.int64), int(r.chosen_epoch), None) for f, r in zip(folds, results, strict=True)]
    out = []
    for f in folds:
        tr, te = f.train_idx, f.test_idx
        hook = spec.pre_fit(cfg, x, f) if spec.pre_fit is not None else None
        result = train_fold(factory, _take(x, tr), training_labels(y, f, control, key), _take(x, te),
                            y[te] if epoch_policy == "oracle" else None, tcfg, derive_seed(key, f.k),
                            groups_train=groups[tr], n_classes=ds.n_classes, pre_fit=hook)
        last = result.last_y_pred.astype(np.int64) if result.last_y_pred is not None else None
        out.append((f, result.y_pred.astype(np.int64), int(result.chosen_epoch), last))
    return out


def _take(x: Any, idx: np.ndarray) -> Any:
    if isinstance(x, Mapping):
        return {k: v[idx] for k, v in x.items()}
    if isinstance(x, tuple):
        return tuple(v[idx] for v in x)
    return x[idx]


# -------------------------------------------------------------------------------------------- API
def run_loso(method_name: str, dataset: str | ClipDataset, variant: str | None = None, seed: int = 0,
             overrides: Mapping[str, Any] | None = None, epoch_policy: str = "last", epochs: int | None = None,
             folds: int | Iterable[int | str] | None = None, root: Any = None, device: str = "auto",
             fold_batching: bool = False, init_weights: str | Path | None = None,
             label_control: str | None = None, with_last: bool = False) -> pd.DataFrame:
    """Predictions of ``method_name`` under LOSO on ``dataset`` (a registered name or a ClipDataset).

    ``folds``: None (all subjects), an int (the first n folds in sorted subject order) or fold indices /
    test groups; every clip of the selected folds appears exactly once. ``epochs`` overrides a deep
    method's epoch count. Raises :class:`NotRunnable` when the data source cannot provide the inputs.
    ``fold_batching``: train a deep method's selected folds at once, as one batched computation
    (:func:`benchmarks.batched_trainer.train_folds_batched`; a single fold trains sequentially) instead of fold
    after fold (:func:`benchmarks.trainer.train_fold`, the reference); the predictions agree up to
    floating-point rounding. The library default is the sequential reference (bitwise reproducible per fold,
    whatever other folds are selected); the table runner (``benchmarks.run``) trains fold-batched where that
    pays (CUDA) unless told otherwise (``--fold-batching`` / ``--no-fold-batching``).
    ``init_weights``: a local file of initial weights for a deep method's model (default: from scratch);
    every prediction row names it and its checksum (``init_weights`` column).
    ``label_control="shuffled"``: the shuffled-label control (:func:`training_labels`; test labels untouched),
    named in every row's ``protocol_note``; a control's scores estimate what the pipeline gets by chance.
    ``with_last`` (``oracle``, sequential only): also the rows of policy ``last``, from the same training (the
    oracle policy only reads the test set, so its run's last epoch is exactly what ``last`` trains).
    ``df.attrs`` holds the config, the wall time and the number of folds.
    """
    t0 = time.perf_counter()
    spec = get_method(method_name)
    ds = _dataset(dataset, root)
    if epoch_policy not in EPOCH_POLICIES:
        raise ValueError(f"epoch_policy must be one of {EPOCH_POLICIES}, got {epoch_policy!r}")
    cfg = method_config(spec, ds, variant, overrides, epochs)
    views, note, preferred = resolve_views(spec, cfg, ds)
    chosen = select_folds(loso_splits(ds.groups()), folds)
    if with_last and (epoch_policy != "oracle" or fold_batching and len(chosen) > 1 or spec.family != "deep"):
        raise ValueError("with_last needs a deep method trained fold after fold under epoch_policy='oracle'")
    if init_weights and spec.family != "deep":
        raise ValueError(f"init weights: method {spec.name} is {spec.family} (no model weights)")
    if spec.family == "handcrafted":
        results = [(*r, None) for r in _run_handcrafted(spec, cfg, ds, chosen, views, preferred, label_control)]
        policy, label = NO_EPOCHS, "n/a (no training epochs)"
    else:
        results = _run_deep(spec, cfg, ds, chosen, views, seed, epoch_policy, device, fold_batching,
                            init_weights, label_control)
        policy = epoch_policy
        label = policy_label(train_config(cfg, epoch_policy, "cpu"))
    if label_control is not None:
        note = "; ".join(n for n in (note, SHUFFLED_NOTE) if n)
    label_views = views_label(spec.input_views(cfg) if preferred else views)
    if preferred and spec.name == "lbptop" and getattr(cfg, "n_frames", 0) is None:
        label_views = label_views.replace("n_frames=1", "n_frames=<onset..offset length>")
    frames = []
    for f, y_pred, chosen_epoch, last in results:
        c = ds.clips.iloc[f.test_idx]
        runs = [(policy, label, y_pred, chosen_epoch)]
        if with_last:
            runs.append(("last", "last", last, int(hyperparameters(cfg)["epochs"])))
        for pol, lab, pred, ep in runs:
            frames.append(pd.DataFrame({
                "method": spec.name, "variant": variant or "", "dataset": ds.name,
                "source": c["dataset"].astype(str).to_numpy(), "subject": c["subject"].to_numpy(),
                "group": c["group"].to_numpy(), "clip": c["clip"].to_numpy(), "fold": f.k, "seed": int(seed),
                "y_true": c["label"].to_numpy(dtype=np.int64), "y_pred": pred, "epoch_policy": pol,
                "chosen_epoch": ep, "data_source": ds.kind, "views": label_views, "protocol_note": note,
                "policy_label": lab, "init_weights": weights_label(init_weights),
            }))
    df = pd.concat(frames, ignore_index=True)[PREDICTION_COLUMNS]
    df.attrs.update({"config": hyperparameters(cfg), "wall_s": time.perf_counter() - t0, "n_folds": len(chosen),
                     "n_classes": ds.n_classes, "classes": list(ds.classes)})
    return df
