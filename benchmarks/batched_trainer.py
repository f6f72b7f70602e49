"""Fold-batched training: the LOSO folds of a cell trained at once, as one batched computation.

:func:`train_folds_batched` returns, for every fold, what :func:`benchmarks.trainer.train_fold` returns for
it: the same reproducibility contract (per-fold streams ``"init"``, ``"shuffle"``, ``"dropout"``,
``"val_split"``, ``"pre_fit"``; the caller's global RNG untouched; deterministic algorithms when
``config.deterministic``), the same epoch policies and losses, equal up to floating-point rounding.

How (one *chunk* of folds at a time: on CUDA as many folds as memory allows, :func:`chunk_size`; on the CPU
one fold per chunk by default, :data:`DEFAULT_FOLDS_PER_CHUNK`, where batching across folds does not pay):

* Models: each fold's model is built as the sequential trainer builds it (``init_model`` on the CPU with the
  fold's ``"init"`` stream, then moved to the device) and its ``pre_fit`` hook runs on that model alone (same
  seed, same deterministic scope; MFVAN's stages 1 and 1b). Then the chunk's parameters and buffers are
  stacked along a leading fold dimension and one copy of the model (the template) runs them all with
  ``torch.func.functional_call`` under ``torch.func.vmap``. A chunk of one fold trains that fold's model
  itself (the sequential kernels, no vmap); a lone fold in a step of a larger chunk runs on its slices.
* Data order and batch sizes: one CPU generator per fold seeded ``derive_seed(fold_seed, "shuffle")``,
  batches from :func:`~benchmarks.trainer.epoch_batches`, as sequential. Folds can have different numbers of
  batches per epoch and different last-batch sizes: at each batch position of an epoch, the folds that have
  a batch there are grouped by its size, one batched step per group. No padding, so BatchNorm batch
  statistics and batch-mean losses are the sequential ones. Folds are ordered by training-set size, which
  makes every group a contiguous slice of the stacked tensors (equal sizes give equal batch sequences).
* Dropout: the template's ``nn.Dropout`` modules become :class:`FoldDropout`, which draws each fold's mask
  from that fold's own ``"dropout"`` stream in the order and shape ``F.dropout`` draws it (CPU: a per-fold
  ``torch.Generator``, bitwise the sequential masks; CUDA: the fold's saved state of the global CUDA
  generator swapped in around ``F.dropout``). Any other draw from the global generator during the batched
  forward is refused with :class:`FoldBatchingUnsupported` (the sequential trainer handles such models).
* BatchNorm running statistics (and every other buffer) are per fold: stacked, updated in place under vmap.
* Optimiser: :class:`StackedOptimizer`: torch's own functional Adam / AdamW / SGD with every fold's slice of
  every tensor as one parameter (per-fold state and step count, so per-fold bias correction), all updated in
  one call; fused kernels by default.
* Losses: ``config.loss`` per fold (class weights from each fold's fitted labels), ``loss_fn``, or the
  model's own ``loss(outputs, y)``. Per-fold state a model's forward or loss reads must be a parameter or a
  buffer (MFVAN keeps its per-fold focal alpha in a buffer); Python attributes come from the first fold.
* Policies: ``last``; ``val`` (per-fold held-out subjects, per-fold best state, per-fold patience: a fold
  that stops leaves the batch and is no longer updated); ``oracle`` (per-fold best test predictions).
  Prediction runs the stacked eval-mode model on every fold's clips at once, each fold padded to the
  largest (eval mode treats samples independently).

What differs from the sequential trainer is rounding only: batched kernels (grouped convolutions, batched
matrix products, losses under vmap) and the fused optimiser sum in other orders, so the first losses agree to
about 1e-7 relative; Adam turns rounding-level differences of near-zero gradients into steps of up to lr, so
histories then drift apart slowly (1e-5..1e-3 relative after a few epochs in the tests), as two runs on
different kernels do. Predictions agree except at such rounding-level ties. A fold's numbers can also depend
at that level on which folds share its chunk. One fold per chunk with ``optimizer_impl="single"`` is bitwise
the sequential trainer on the CPU (tested).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, vmap
from torch.optim.adam import adam as adam_functional
from torch.optim.sgd import sgd as sgd_functional

from benchmarks.seeding import derive_seed, forked_global_rng, seeded_generator
from benchmarks.trainer import (
    FoldResult,
    Inputs,
    LossFn,
    PreFit,
    TrainConfig,
    _as_inputs,
    _call,
    _DeterministicScope,
    _labels,
    _leaves,
    _logits,
    _map,
    _n_samples,
    epoch_batches,
    fixed_class_f1,
    fixed_order,
    focal_loss,
    init_model,
    loss_class_weights,
    lr_factor,
    policy_label,
    resolve_device,
    split_validation_groups,
)

__all__ = ["FoldBatchingUnsupported", "FoldDropout", "StackedOptimizer", "chunk_size", "train_folds_batched"]

ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam / AdamW defaults, as make_optimizer uses them
CPU_BUDGET_FRACTION, CUDA_BUDGET_FRACTION = 0.4, 0.6


DEFAULT_FOLDS_PER_CHUNK: dict[str, int | None] = {"cpu": 1}
"""Folds trained together when the caller does not say, per device type (absent: as many as memory allows).

On the CPU one fold at a time. Measured on a 2-core AMD EPYC with one thread (``python -m
benchmarks.bench_folds``): the per-fold kernels of the harness's models are already compute- or memory-bound
there. vmap's batched kernels (grouped convolutions, batched BatchNorm, stacked optimiser state that leaves
the cache) make every fold of a cell in one chunk run at 0.34x (STSTNet), 0.69x (OFF-ApexNet) and 0.85x
(MFVAN) of the sequential trainer's speed. One fold per chunk (the fold's own model, the sequential kernels,
a fused optimiser) runs at 1.00x, 1.20x and 0.97x. On CUDA a fold's step is launch-bound, so all the folds
that fit in memory run as one batched step."""


class _Clock:
    """Accumulates wall seconds per phase into ``timings`` (a no-op without one)."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings

    @contextlib.contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        if self.timings is None:
            yield
            return
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[phase] = self.timings.get(phase, 0.0) + time.perf_counter() - t0


BATCHED_OPTIMIZERS = ("adam", "adamw", "sgd")  # the optimizers StackedOptimizer implements


def unsupported_reason(config: TrainConfig) -> str | None:
    """Why the fold-batched trainer cannot train under ``config`` (an optimizer without a stacked
    implementation, class-balanced epochs of per-fold length), or None. Model-level refusals (random numbers
    drawn in the forward other than by ``nn.Dropout``) show only when the model is built."""
    if config.optimizer not in BATCHED_OPTIMIZERS:
        return (f"optimizer {config.optimizer!r} has no fold-batched implementation (Adam, AdamW and SGD do); "
                "train with fold_batching=False")
    if config.batch_order == "balanced":
        return ("batch_order='balanced' (class-balanced oversampling) is not supported by the fold-batched "
                "trainer; train fold after fold (fold_batching=False, --no-fold-batching)")
    return None


class FoldBatchingUnsupported(RuntimeError):
    """The model cannot be trained fold-batched with the sequential trainer's numbers (use ``fold_batching=False``)."""


# ------------------------------------------------------------------------------------------------ dropout
class _FoldStreams:
    """Per-fold dropout streams of one chunk and the folds of the step being run (shared by every FoldDropout).

    ``mode="generator"``: one ``torch.Generator`` per fold on the device, drawn like ``F.dropout`` on the CPU
    (``empty_like(x).bernoulli_(1 - p).div_(1 - p)``). ``mode="global"``: the fold's saved state of the global
    generator of the device is swapped in around ``F.dropout`` itself (CUDA, whose fused dropout kernel draws
    differently from ``bernoulli_``); the global state is restored after each draw.
    """

    def __init__(self, seeds: Sequence[int], device: torch.device, mode: str | None = None) -> None:
        self.device = device
        self.mode = mode or ("global" if device.type == "cuda" else "generator")
        if self.mode not in ("generator", "global"):
            raise ValueError(f"unknown dropout stream mode {self.mode!r}")
        self.streams: list[Any] = []
        for s in seeds:
            if self.mode == "generator":
                self.streams.append(seeded_generator(s, device))
            else:
                with forked_global_rng(s):
                    self.streams.append(self._get_state())
        self.active: range | None = None  # positions (in the chunk) of the folds of the current step
        self.pos: Tensor | None = None  # inside vmap: this fold's index into the step's folds

    def _get_state(self) -> Tensor:
        return torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else torch.get_rng_state()

    def _set_state(self, state: Tensor) -> None:
        if self.device.type == "cuda":
            torch.cuda.set_rng_state(state, self.device)
        else:
            torch.set_rng_state(state)

    def noise(self, shape: tuple[int, ...], p: float, dtype: torch.dtype) -> Tensor:
        """(folds of the step, *shape): each fold's ``F.dropout`` noise (0 or 1/(1-p)), drawn from its stream."""
        if self.active is None:
            raise RuntimeError("FoldDropout called outside a fold-batched step")
        out = []
        for i in self.active:
            if self.mode == "generator":
                out.append(torch.empty(shape, dtype=dtype, device=self.device)
                           .bernoulli_(1 - p, generator=self.streams[i]).div_(1 - p))
            else:
                saved = self._get_state()
                self._set_state(self.streams[i])
                out.append(F.dropout(torch.ones(shape, dtype=dtype, device=self.device), p, True))
                self.streams[i] = self._get_state()
                self._set_state(saved)
        return out[0].unsqueeze(0) if len(out) == 1 else torch.stack(out)


class FoldDropout(nn.Module):
    """``nn.Dropout`` for a fold-batched template: each fold's mask comes from that fold's own stream.

    Under vmap the input is one fold's ``(B, ...)`` slice; the masks of every fold of the step are drawn in
    fold order (the order of the sequential trainer's draws within a fold is the order of the forward), and
    this fold's is selected. Outside a fold-batched step (e.g. a plain call on the template) it is identity.
    """

    def __init__(self, p: float, streams: _FoldStreams) -> None:
        super().__init__()
        self.p = float(p)
        self._streams = [streams]  # a list: not registered as a submodule or state

    def forward(self, x: Tensor) -> Tensor:
        streams = self._streams[0]
        if not self.training or self.p == 0 or streams.active is None:
            return x
        if self.p == 1:
            return x * x.new_zeros(())
        return x * streams.noise(tuple(x.shape), self.p, x.dtype)[streams.pos]


def _swap_dropout(template: nn.Module, streams: _FoldStreams) -> None:
    """Replace every active ``nn.Dropout`` of ``template`` by a :class:`FoldDropout` reading ``streams``."""
    for parent in list(template.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                setattr(parent, name, FoldDropout(child.p, streams))
            elif isinstance(child, nn.modules.dropout._DropoutNd) and child.p > 0:
                raise FoldBatchingUnsupported(
                    f"{type(child).__name__} at {name!r}: only nn.Dropout is reproduced per fold")


# ---------------------------------------------------------------------------------------------- optimiser
def _like(t: Tensor, ref: Tensor) -> Tensor:
    """``t`` with the strides of ``ref`` (a copy only when they differ)."""
    return t if t.stride() == ref.stride() else torch.empty_like(ref).copy_(t)


def _runs(values: Sequence[Any], start: int = 0) -> list[tuple[int, int, Any]]:
    """Maximal runs of equal consecutive values: (begin, end, value), positions offset by ``start``."""
    out: list[tuple[int, int, Any]] = []
    for i, v in enumerate(values):
        if out and out[-1][2] == v and out[-1][1] == start + i:
            out[-1] = (out[-1][0], start + i + 1, v)
        else:
            out.append((start + i, start + i + 1, v))
    return out


class StackedOptimizer:
    """Adam / AdamW / SGD of :func:`benchmarks.trainer.make_optimizer` on stacked per-fold parameters.

    ``params`` maps names to ``(folds, ...)`` tensors, updated in place. Each fold's slice of each tensor is
    one parameter of torch's own functional optimiser (``torch.optim.adam.adam``, ``torch.optim.sgd.sgd``)
    with its own state and step count, so a fold's update is the sequential trainer's ``torch.optim`` update
    (bias correction from that fold's steps). :meth:`step` updates folds ``begin..end-1`` of the tensors given
    gradients, all in one call; a tensor without a gradient is skipped, as torch skips a parameter whose
    ``grad`` is None. ``impl``: ``"fused"`` (default: one kernel per tensor; the numbers of the
    single-tensor loop up to rounding), ``"foreach"`` (torch's CUDA default) or ``"single"`` (torch's CPU
    default, bitwise the sequential trainer's optimiser on the CPU).
    """

    IMPLS = ("fused", "foreach", "single")

    def __init__(self, params: Mapping[str, Tensor], config: TrainConfig, impl: str = "fused") -> None:
        if not params:
            raise ValueError("the model has no trainable parameters")
        if impl not in self.IMPLS:
            raise ValueError(f"StackedOptimizer impl must be one of {self.IMPLS}, got {impl!r}")
        if config.optimizer not in BATCHED_OPTIMIZERS:
            raise FoldBatchingUnsupported(unsupported_reason(config))
        self.config, self.impl = config, impl
        self.lr_scale = 1.0  # trainer.lr_factor of the current epoch, set by the epoch loop
        n = {p.shape[0] for p in params.values()}
        if len(n) != 1:
            raise ValueError(f"stacked parameters disagree on the number of folds: {sorted(n)}")
        self.n_folds = n.pop()
        self.views = {k: list(p.unbind(0)) for k, p in params.items()}
        on_device = impl == "fused"  # torch keeps fused steps on the parameter's device, the others on the CPU
        self.steps = {k: [torch.zeros((), dtype=torch.float32, device=p.device if on_device else "cpu")
                          for _ in range(self.n_folds)] for k, p in params.items()}
        if config.optimizer == "sgd":
            self.momentum: dict[str, list[Tensor | None]] = {k: [None] * self.n_folds for k in params}
        else:
            self.exp_avg = {k: [torch.zeros_like(v) for v in self.views[k]] for k in params}
            self.exp_avg_sq = {k: [torch.zeros_like(v) for v in self.views[k]] for k in params}

    def step_count(self, name: str, fold: int) -> int:
        return int(self.steps[name][fold])

    @torch.no_grad()
    def step(self, begin: int, end: int, grads: Mapping[str, Tensor | None]) -> None:
        names = [k for k, g in grads.items() if g is not None]
        if not names:
            return
        c = self.config
        folds = range(begin, end)
        params = [self.views[k][f] for k in names for f in folds]
        # gradients in their parameter's memory layout: the fused kernels walk the storage linearly
        grad_list = [_like(g, p) for g, p in zip((g for k in names for g in grads[k].unbind(0)), params)]
        kw = dict(foreach=self.impl == "foreach", fused=self.impl == "fused")
        if c.optimizer == "sgd":
            buffers = [self.momentum[k][f] for k in names for f in folds]
            sgd_functional(params, grad_list, buffers, weight_decay=c.weight_decay, momentum=c.momentum,
                                lr=c.lr * self.lr_scale, dampening=0.0, nesterov=False, maximize=False, **kw)
            for j, (k, f) in enumerate((k, f) for k in names for f in folds):
                self.momentum[k][f] = buffers[j]
                self.steps[k][f] += 1  # torch's SGD keeps no step count; kept here for step_count
            return
        adam_functional(
            params, grad_list, [self.exp_avg[k][f] for k in names for f in folds],
            [self.exp_avg_sq[k][f] for k in names for f in folds], [],
            [self.steps[k][f] for k in names for f in folds],
            decoupled_weight_decay=c.optimizer == "adamw", amsgrad=False, beta1=ADAM_BETAS[0], beta2=ADAM_BETAS[1],
            lr=c.lr * self.lr_scale, weight_decay=c.weight_decay, eps=ADAM_EPS, maximize=False, **kw)


# -------------------------------------------------------------------------------------------------- folds
@dataclasses.dataclass
class _Fold:
    """One fold's data, streams and progress (``pos``: its index in the caller's list)."""

    pos: int
    seed: int
    fit_idx: np.ndarray  # sample indices (into x) the model is fitted on
    test_idx: np.ndarray
    val_idx: np.ndarray | None = None
    val_groups: tuple = ()
    y_val: np.ndarray | None = None
    y_test: np.ndarray | None = None
    hook: PreFit | None = None
    shuffle: torch.Generator | None = None
    order: Tensor | None = None  # fixed sample order (TrainConfig.batch_order), None = shuffled per epoch
    history: list[float] = dataclasses.field(default_factory=list)
    parts: list[dict[str, float]] = dataclasses.field(default_factory=list)
    scores: dict[int, float] = dataclasses.field(default_factory=dict)
    best: tuple[float, int] = (-math.inf, 0)
    best_pred: tuple[np.ndarray, np.ndarray] | None = None
    stale: int = 0
    stopped: bool = False
    epochs_run: int = 0

    @property
    def n_fit(self) -> int:
        return int(self.fit_idx.size)


def _prepare(pos: int, fold: Any, seed: int, y: Tensor, groups: np.ndarray | None, config: TrainConfig,
             hook: PreFit | None) -> _Fold:
    """A fold's index sets and held-out subjects, checked as :func:`benchmarks.trainer.train_fold` checks them."""
    train_idx = np.array(fold.train_idx, dtype=np.int64)  # copies: the splits' arrays are read-only
    test_idx = np.array(fold.test_idx, dtype=np.int64)
    if train_idx.size == 0 or test_idx.size == 0:
        raise ValueError(f"fold {pos}: empty fold: {train_idx.size} training and {test_idx.size} test samples")
    if np.intersect1d(train_idx, test_idx).size:
        raise ValueError(f"fold {pos}: train_idx and test_idx overlap")
    f = _Fold(pos=pos, seed=int(seed), fit_idx=train_idx, test_idx=test_idx, hook=hook)
    if config.epoch_policy == "oracle":
        f.y_test = y[torch.from_numpy(test_idx)].numpy()
    if config.epoch_policy == "val":
        if groups is None:
            raise ValueError("epoch_policy='val' needs groups (one subject id per sample)")
        val_mask, f.val_groups = split_validation_groups(groups[train_idx], config.val_subjects, f.seed)
        f.fit_idx, f.val_idx = train_idx[~val_mask], train_idx[val_mask]
        f.y_val = y[torch.from_numpy(f.val_idx)].numpy()
    return f


def _loss_name(own_loss: bool, loss_fn: LossFn | None, config: TrainConfig) -> str:
    if own_loss:
        return "model.loss"
    if loss_fn is not None:
        return getattr(loss_fn, "__name__", "custom")
    return config.loss


def _class_weights(config: TrainConfig, y_fit: Tensor, n_classes: int) -> Tensor:
    """The per-fold weight vector the configured loss reads (``loss_class_weights``), ones when it reads none."""
    weights = loss_class_weights(config, y_fit, n_classes)
    return torch.ones(n_classes) if weights is None else weights


class _Step(nn.Module):
    """What runs under vmap for one fold: forward and loss in training mode, or logits in eval mode."""

    def __init__(self, model: nn.Module, streams: _FoldStreams, config: TrainConfig, n_classes: int,
                 loss_fn: LossFn | None) -> None:
        super().__init__()
        self.model = model
        self._streams = [streams]
        self.own_loss = callable(getattr(model, "loss", None))
        self.config, self.n_classes, self.loss_fn = config, n_classes, loss_fn

    def forward(self, x: Any, y: Tensor | None = None, weights: Tensor | None = None,
                pos: Tensor | None = None) -> Any:
        if y is None:
            return _logits(_call(self.model, x))
        self._streams[0].pos = pos
        outputs = _call(self.model, x)
        if self.own_loss:
            loss, parts = self.model.loss(outputs, y)
            return loss, {k: v if isinstance(v, Tensor) else torch.as_tensor(v) for k, v in dict(parts).items()}
        logits = _logits(outputs)
        if logits.shape[-1] != self.n_classes:
            raise ValueError(
                f"the model returns {logits.shape[-1]} logits but there are {self.n_classes} classes "
                "(pass n_classes explicitly when the labels do not show every class)")
        return self._logit_loss(logits, y, weights), {}

    def _logit_loss(self, logits: Tensor, y: Tensor, weights: Tensor) -> Tensor:
        c = self.config
        if self.loss_fn is not None:
            return self.loss_fn(logits, y)
        if c.loss == "ce":
            return F.cross_entropy(logits, y)
        if c.loss == "balanced_ce":
            return F.cross_entropy(logits, y, weight=weights)
        return focal_loss(logits, y, c.focal_gamma, None if c.focal_alpha is None else weights)


# ------------------------------------------------------------------------------------------- chunk sizing
def _available_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * CUDA_BUDGET_FRACTION)
    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        avail = 8 << 30
    return int(avail * CPU_BUDGET_FRACTION)


def _fold_bytes(step: _Step, x_batch: Any, y_batch: Tensor, weights: Tensor) -> int:
    """Memory one fold needs in a batched step: parameters with gradients and optimiser state (x4), buffers,
    and the tensors autograd saves for one training batch (activations, x2 for their gradients)."""
    saved = 0

    def pack(t: Tensor) -> Tensor:
        nonlocal saved
        saved += t.numel() * t.element_size()
        return t

    step.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), forked_global_rng(0):
        loss, _ = step(x_batch, y_batch, weights)
        del loss
    state = sum(p.numel() * p.element_size() for p in step.parameters()) * 4
    state += sum(b.numel() * b.element_size() for b in step.buffers())
    inputs = sum(v.numel() * v.element_size() for _, v in _leaves(x_batch))
    return state + 2 * saved + inputs


def _tree(fn: Callable[[Tensor], Tensor], x: Any) -> Any:
    """``fn`` applied to every tensor of nested dicts, tuples and lists."""
    if isinstance(x, Tensor):
        return fn(x)
    if isinstance(x, Mapping):
        return {k: _tree(fn, v) for k, v in x.items()}
    if isinstance(x, tuple | list):
        return type(x)(_tree(fn, v) for v in x)
    return x


def _writable(x: Any) -> Any:
    """``x`` with read-only numpy arrays copied (torch cannot wrap them without a warning)."""
    if isinstance(x, np.ndarray):
        return x if x.flags.writeable else x.copy()
    if isinstance(x, Mapping):
        return {k: _writable(v) for k, v in x.items()}
    if isinstance(x, tuple | list):
        return tuple(_writable(v) for v in x)
    return x


def _take(x: Any, idx: Tensor) -> Any:
    """The samples ``idx`` (any index shape) of every entry of ``x``."""
    return _map(x, lambda v: v[idx])


def _probe_chunk(model: nn.Module, x: Any, y: Tensor, n: int, config: TrainConfig, n_classes: int,
                 loss_fn: LossFn | None, n_folds: int, device: torch.device, budget: int | None,
                 cap: int | None) -> int:
    """Folds per chunk for ``model``'s architecture: its memory for one training batch, against the budget."""
    probe = _Step(copy.deepcopy(model), _FoldStreams([], device), config, n_classes, loss_fn)
    rows = torch.arange(min(config.batch_size, n), device=device)
    per_fold = _fold_bytes(probe, _take(x, rows), y[rows], torch.ones(n_classes, device=device))
    return chunk_size(per_fold, n_folds, device, budget, cap)


def chunk_size(per_fold_bytes: int, n_folds: int, device: torch.device, budget: int | None = None,
               max_folds: int | None = None) -> int:
    """Folds trained together: as many as fit ``budget`` bytes (default: 40 % of the available RAM on the CPU,
    60 % of the free memory on CUDA), at most ``max_folds`` and ``n_folds``, at least 1."""
    budget = _available_bytes(device) if budget is None else int(budget)
    n = max(1, budget // max(1, per_fold_bytes))
    if max_folds is not None:
        n = min(n, int(max_folds))
    return int(max(1, min(n, n_folds)))


# ------------------------------------------------------------------------------------------------ training
class _Chunk:
    """The stacked models of a chunk of folds and the batched steps over them."""

    def __init__(self, folds: list[_Fold], models: list[nn.Module], y: Tensor, config: TrainConfig,
                 n_classes: int, loss_fn: LossFn | None, device: torch.device, optimizer_impl: str = "fused") -> None:
        """Stacks (and then empties) ``models``, one per fold of ``folds``.

        A chunk of one fold keeps its model: the model is the template, the "stacks" are views of its own
        tensors, and its steps call it directly (the sequential kernels, no vmap, no ``functional_call``).
        """
        self.folds, self.config, self.device = folds, config, device
        self.streams = _FoldStreams([derive_seed(f.seed, "dropout") for f in folds], device)
        self.own = len(models) == 1
        template = models[0] if self.own else copy.deepcopy(models[0])
        _swap_dropout(template, self.streams)
        self.step_module = _Step(template, self.streams, config, n_classes, loss_fn)
        if self.own:
            self.params = {f"model.{k}": p.detach().unsqueeze(0) for k, p in template.named_parameters()}
            self.buffers = {f"model.{k}": b.unsqueeze(0) for k, b in template.named_buffers()}
            self.own_leaves = {f"model.{k}": p for k, p in template.named_parameters() if p.requires_grad}
            self.trainable = list(self.own_leaves)
        else:
            named = [(dict(m.named_parameters()), dict(m.named_buffers())) for m in models]
            self.params = {f"model.{k}": _stack([p[k] for p, _ in named]) for k in named[0][0]}
            self.buffers = {f"model.{k}": _stack([b[k] for _, b in named]) for k in named[0][1]}
            self.trainable = [f"model.{k}" for k, v in named[0][0].items() if v.requires_grad]
            del named
        models.clear()
        self.optimizer = StackedOptimizer({k: self.params[k] for k in self.trainable}, config, optimizer_impl)
        if self.step_module.own_loss or loss_fn is not None:
            self.weights = torch.ones(len(folds), n_classes, device=device)
        else:  # make_loss's class weights, from each fold's fitted labels
            self.weights = torch.stack([_class_weights(config, y[torch.from_numpy(f.fit_idx).to(device)].cpu(),
                                                       n_classes) for f in folds]).to(device)
        self.best_params: dict[str, Tensor] | None = None
        self.best_buffers: dict[str, Tensor] | None = None
        self.checked_rng = False

    # ---- one batched training step over folds [a, b), all with batches of the same size
    def train_step(self, a: int, b: int, idx: Tensor, x: Any, y: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """One optimisation step of folds ``a..b-1`` (chunk positions) on their batches ``idx`` (folds, batch);
        returns each fold's loss and loss parts, ``(folds,)`` each."""
        one = b - a == 1  # one fold: its slices directly, without vmap (the sequential kernels)
        sl = (lambda v: v[a]) if one else (lambda v: v[a:b])
        if self.own:
            leaves = self.own_leaves
        else:
            leaves = {k: sl(self.params[k]).detach().requires_grad_(True) for k in self.trainable}
            params = {k: leaves.get(k, sl(v)) for k, v in self.params.items()}
            buffers = {k: sl(v) for k, v in self.buffers.items()}  # views: in-place updates reach the stack
        self.streams.active = range(a, b)
        before = None if self.checked_rng else _global_rng_state(self.device)
        try:
            if self.own:
                loss, parts = self.step_module(_take(x, idx[0]), y[idx[0]], self.weights[0], 0)
                loss, parts = loss.unsqueeze(0), {k: v.unsqueeze(0) for k, v in parts.items()}
            elif one:
                loss, parts = self._train_fn(params, buffers, _take(x, idx[0]), y[idx[0]], self.weights[a], 0)
                loss, parts = loss.unsqueeze(0), {k: v.unsqueeze(0) for k, v in parts.items()}
            else:
                loss, parts = vmap(self._train_fn, randomness="same")(
                    params, buffers, _take(x, idx), y[idx], self.weights[a:b], torch.arange(b - a, device=self.device))
        finally:
            self.streams.active, self.streams.pos = None, None
        if before is not None:
            after = _global_rng_state(self.device)
            if any(not torch.equal(s, t) for s, t in zip(before, after)):
                raise FoldBatchingUnsupported(
                    "the model draws from torch's global generator in its forward or loss outside nn.Dropout; "
                    "the fold-batched trainer cannot give each fold its own stream there (use fold_batching=False)")
            self.checked_rng = True
        grads = torch.autograd.grad(loss.sum(), list(leaves.values()), allow_unused=True)
        if one:
            grads = tuple(None if g is None else g.unsqueeze(0) for g in grads)
        self.optimizer.step(a, b, dict(zip(leaves, grads)))
        return loss.detach(), {k: v.detach() for k, v in parts.items()}

    def _train_fn(self, params: dict, buffers: dict, x: Any, y: Tensor, weights: Tensor, pos: Tensor | int) -> Any:
        return functional_call(self.step_module, (params, buffers), (x, y, weights, pos), strict=True)

    def _eval_fn(self, params: dict, buffers: dict, x: Any, pos: Tensor | int) -> Tensor:
        return functional_call(self.step_module, (params, buffers), (x,), strict=True)

    def _batched(self, fn: Callable, n: int, *stacked: Any) -> Any:
        """``fn`` over the leading (fold) dimension of ``stacked``, with the fold's index as last argument:
        ``vmap``, or for one fold a plain call on its slices (the sequential kernels, without vmap's cost)."""
        if n == 1:
            return _tree(lambda t: t.unsqueeze(0), fn(*_tree(lambda t: t[0], stacked), 0))
        return vmap(fn, randomness="same")(*stacked, torch.arange(n, device=self.device))

    # ---- prediction
    @torch.no_grad()
    def predict(self, positions: Sequence[int], index_sets: Sequence[np.ndarray], x: Any,
                best: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
        """(classes, probabilities) of each fold at ``positions`` on its samples ``index_sets``, in eval mode."""
        params = self.best_params if best else self.params
        buffers = self.best_buffers if best else self.buffers
        self.step_module.eval()
        out: list[list[Tensor]] = [[] for _ in positions]
        try:
            for a, b, _ in _runs([p - i for i, p in enumerate(positions)]):
                sel = positions[a:b]
                lo, hi = sel[0], sel[-1] + 1
                sets = index_sets[a:b]
                longest = max(len(s) for s in sets)
                for start in range(0, longest, self.config.eval_batch_size):
                    rows = []
                    for s in sets:
                        part = s[start:start + self.config.eval_batch_size]
                        part = part if part.size else s[:1]
                        pad = min(self.config.eval_batch_size, longest - start) - part.size
                        rows.append(np.concatenate([part, np.full(pad, part[0], dtype=np.int64)]))
                    idx = torch.from_numpy(np.stack(rows)).to(self.device)
                    if self.own and not best:
                        logits = self.step_module(_take(x, idx[0])).unsqueeze(0)
                    else:
                        logits = self._batched(self._eval_fn, hi - lo, {k: v[lo:hi] for k, v in params.items()},
                                               {k: v[lo:hi] for k, v in buffers.items()}, _take(x, idx))
                    for j, s in enumerate(sets):
                        n = max(0, min(len(s) - start, self.config.eval_batch_size))
                        if n:
                            out[a + j].append(logits[j, :n])
        finally:
            self.step_module.train()
        results = []
        for chunks in out:
            proba = torch.softmax(torch.cat(chunks).float(), dim=-1).cpu().numpy()
            results.append((proba.argmax(axis=1).astype(np.int64), proba.astype(np.float32)))
        return results

    def save_best(self, i: int) -> None:
        if self.best_params is None:
            self.best_params = {k: v.clone() for k, v in self.params.items()}
            self.best_buffers = {k: v.clone() for k, v in self.buffers.items()}
        for src, dst in ((self.params, self.best_params), (self.buffers, self.best_buffers)):
            for k, v in src.items():
                dst[k][i].copy_(v[i])


def _stack(tensors: Sequence[Tensor]) -> Tensor:
    """The folds' tensors stacked along a new leading dimension, contiguous (what vmap's batching rules expect;
    a channels-last weight stacked as is would make some of them fall back to slow loops)."""
    return torch.stack([t.detach() for t in tensors]).contiguous()


def _global_rng_state(device: torch.device) -> tuple[Tensor, ...]:
    states = (torch.get_rng_state(),)
    return states + ((torch.cuda.get_rng_state(device),) if device.type == "cuda" else ())


def _build_models(folds: list[_Fold], model_factory: Callable[[], nn.Module], x: Any, y: Tensor,
                  config: TrainConfig, device: torch.device, loss_fn: LossFn | None) -> list[nn.Module]:
    """Each fold's fresh model, on the device, after its ``pre_fit`` hook (as ``train_fold`` prepares it)."""
    models = []
    for f in folds:
        model = init_model(model_factory, f.seed).to(device)
        if callable(getattr(model, "loss", None)) and loss_fn is not None:
            raise ValueError("the model defines its own loss(); do not also pass loss_fn")
        if f.hook is not None:
            idx = torch.from_numpy(f.fit_idx).to(device)
            pre_seed = derive_seed(f.seed, "pre_fit")
            with _DeterministicScope(config.deterministic, device), forked_global_rng(pre_seed):
                f.hook(model, _take(x, idx), y[idx], pre_seed)
        models.append(model)
    return models


def _train_chunk(folds: list[_Fold], models: list[nn.Module], x: Any, y: Tensor, config: TrainConfig,
                 n_classes: int, loss_fn: LossFn | None, device: torch.device, optimizer_impl: str,
                 clock: _Clock) -> list[tuple[np.ndarray, ...]]:
    """Train the chunk's folds (``models``: theirs, emptied) to the end of their policy; returns each fold's
    (y_pred, proba, chosen epoch)."""
    chunk = _Chunk(folds, models, y, config, n_classes, loss_fn, device, optimizer_impl)
    for f in folds:
        f.shuffle = seeded_generator(derive_seed(f.seed, "shuffle"))
        f.order = fixed_order(config.batch_order, y[torch.from_numpy(f.fit_idx)])
    policy = config.epoch_policy
    epoch = 0
    for epoch in range(1, config.epochs + 1):
        active = [i for i, f in enumerate(folds) if not f.stopped]
        if not active:
            break
        chunk.optimizer.lr_scale = lr_factor(epoch, config)
        batches = {i: epoch_batches(folds[i].n_fit, config.batch_size, folds[i].shuffle, order=folds[i].order)
                   for i in active}
        loss_sum = torch.zeros(len(folds), dtype=torch.float64, device=device)  # one sync per epoch
        parts_sum: dict[str, Tensor] = {}
        with clock("train steps"):
            for slot in range(max(len(b) for b in batches.values())):
                present = [i for i in active if len(batches[i]) > slot]
                sizes = [len(batches[i][slot]) for i in present]
                # runs of consecutive folds with the same batch size at this position: one batched step each
                for a, b, size in _runs(list(zip([p - j for j, p in enumerate(present)], sizes))):
                    lo, hi = present[a], present[b - 1] + 1
                    idx = torch.from_numpy(np.stack([folds[i].fit_idx[batches[i][slot].numpy()]
                                                     for i in range(lo, hi)])).to(device)
                    loss, parts = chunk.train_step(lo, hi, idx, x, y)
                    loss_sum[lo:hi] += loss.double() * size[1]
                    for k, v in parts.items():
                        if k not in parts_sum:
                            parts_sum[k] = torch.zeros(len(folds), dtype=torch.float64, device=device)
                        parts_sum[k][lo:hi] += v.to(torch.float64) * size[1]
            loss_host = loss_sum.cpu().tolist()
            parts_host = {k: v.cpu().tolist() for k, v in parts_sum.items()}
        for i in active:
            f = folds[i]
            mean_loss = loss_host[i] / f.n_fit
            if not math.isfinite(mean_loss):
                raise FloatingPointError(f"training loss is {mean_loss} at epoch {epoch} (seed {f.seed})")
            f.history.append(mean_loss)
            if parts_host:
                f.parts.append({k: v[i] / f.n_fit for k, v in parts_host.items()})
            f.epochs_run = epoch
        if policy == "last" or (epoch % config.eval_every and epoch != config.epochs):
            continue
        sets = [folds[i].val_idx if policy == "val" else folds[i].test_idx for i in active]
        with clock("evaluate"):
            preds = chunk.predict(active, sets, x)
        for i, pred in zip(active, preds):
            f = folds[i]
            if policy == "val":
                score = fixed_class_f1(f.y_val, pred[0], n_classes)
            else:
                score = float(np.mean(pred[0] == f.y_test))
            f.scores[epoch] = score
            if score > f.best[0]:  # strict: ties keep the earliest epoch
                f.best, f.stale = (score, epoch), 0
                if policy == "val":
                    chunk.save_best(i)
                else:
                    f.best_pred = pred
            else:
                f.stale += 1
                if policy == "val" and config.patience is not None and f.stale >= config.patience:
                    f.stopped = True
    if policy == "oracle":
        return [(f.best_pred[0], f.best_pred[1], f.best[1]) for f in folds]
    with clock("evaluate"):
        preds = chunk.predict(list(range(len(folds))), [f.test_idx for f in folds], x, best=policy == "val")
    return [(p[0], p[1], f.epochs_run if policy == "last" else f.best[1]) for f, p in zip(folds, preds)]


def train_folds_batched(
    model_factory: Callable[[], nn.Module],
    x: Inputs,
    y: Any,
    folds: Iterable[Any],
    config: TrainConfig,
    fold_seeds: Sequence[int],
    groups: Sequence | None = None,
    n_classes: int | None = None,
    pre_fit_hooks: Sequence[PreFit | None] | None = None,
    loss_fn: LossFn | None = None,
    max_folds_per_chunk: int | None = None,
    memory_budget: int | None = None,
    optimizer_impl: str = "fused",
    timings: dict[str, float] | None = None,
) -> list[FoldResult]:
    """Train every fold of ``folds`` at once; one :class:`~benchmarks.trainer.FoldResult` per fold, in order.

    Fold ``i`` is what ``train_fold(model_factory, x[train], y[train], x[test], y[test] (oracle only), config,
    fold_seeds[i], groups_train=groups[train], loss_fn=loss_fn, n_classes=n_classes,
    pre_fit=pre_fit_hooks[i])`` returns, up to floating-point rounding (module docstring), with ``fold=i``
    and ``test_idx`` set as :func:`~benchmarks.trainer.train_loso` sets them. ``x``: every sample's inputs
    (a Tensor, array, dict or tuple, indexed by sample); ``folds``: objects with ``train_idx`` and
    ``test_idx``. ``n_classes`` defaults to ``max(y) + 1``.

    Folds are trained in chunks of at most ``max_folds_per_chunk`` (default :data:`DEFAULT_FOLDS_PER_CHUNK` of
    the device) that fit ``memory_budget`` bytes (:func:`chunk_size`). ``optimizer_impl``: see
    :class:`StackedOptimizer`. ``timings``, when given, accumulates wall seconds per phase ("build models +
    pre_fit", "train steps", "evaluate") and records "folds per chunk". Raises :class:`FoldBatchingUnsupported`
    for a model whose forward draws random numbers other than through ``nn.Dropout``, and for
    ``config.batch_order="balanced"`` (its epochs differ in length from fold to fold; not implemented here).
    """
    if config.batch_order == "balanced":
        raise FoldBatchingUnsupported(unsupported_reason(config))
    folds = list(folds)
    x = _as_inputs(_writable(x), "x")
    n = _n_samples(x, "x")
    y = _labels(_writable(y), n, "y")
    n_classes = int(y.max()) + 1 if n_classes is None else int(n_classes)
    _labels(y, n, "y", n_classes)
    if len(fold_seeds) != len(folds):
        raise ValueError(f"{len(fold_seeds)} fold seeds for {len(folds)} folds")
    hooks = list(pre_fit_hooks) if pre_fit_hooks is not None else [None] * len(folds)
    if len(hooks) != len(folds):
        raise ValueError(f"{len(hooks)} pre_fit hooks for {len(folds)} folds")
    groups = None if groups is None else np.asarray(groups)
    if groups is not None and len(groups) != n:
        raise ValueError(f"groups has {len(groups)} entries for {n} samples")
    if not folds:
        return []
    states = [_prepare(i, f, s, y, groups, config, h) for i, (f, s, h) in enumerate(zip(folds, fold_seeds, hooks))]
    device = resolve_device(config.device)
    x_dev, y_dev = _map(x, lambda v: v.to(device)), y.to(device)
    order = sorted(states, key=lambda f: (f.n_fit, f.pos))  # equal sizes adjacent: groups are slices
    cap = max_folds_per_chunk if max_folds_per_chunk is not None else DEFAULT_FOLDS_PER_CHUNK.get(device.type)
    clock = _Clock(timings)
    results: dict[int, tuple] = {}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        start, size, own_loss = 0, None, False
        while start < len(order):
            with clock("build models + pre_fit"):
                if size is None:  # sized on the first fold: every fold has the same architecture and batch size
                    models = _build_models(order[:1], model_factory, x_dev, y_dev, config, device, loss_fn)
                    own_loss = callable(getattr(models[0], "loss", None))
                    size = 1 if cap == 1 else _probe_chunk(models[0], x_dev, y_dev, n, config, n_classes, loss_fn,
                                                           len(order), device, memory_budget, cap)
                    models += _build_models(order[1:size], model_factory, x_dev, y_dev, config, device, loss_fn)
                else:
                    models = _build_models(order[start:start + size], model_factory, x_dev, y_dev, config, device,
                                           loss_fn)
            chunk = order[start:start + size]
            with _DeterministicScope(config.deterministic, device):
                outcome = _train_chunk(chunk, models, x_dev, y_dev, config, n_classes, loss_fn, device,
                                       optimizer_impl, clock)
            for f, r in zip(chunk, outcome):
                results[f.pos] = r
            start += len(chunk)
    if timings is not None:
        timings["folds per chunk"] = float(size)
    loss_name = _loss_name(own_loss, loss_fn, config)
    label = policy_label(config)
    score_name = {"last": None, "val": "val_macro_f1", "oracle": "test_acc"}[config.epoch_policy]
    return [
        FoldResult(y_pred=results[f.pos][0], proba=results[f.pos][1], chosen_epoch=int(results[f.pos][2]),
                   epoch_policy=config.epoch_policy, policy_label=label, train_loss=tuple(f.history),
                   scores=dict(f.scores), score_name=score_name, epochs_run=f.epochs_run, seed=f.seed,
                   device=str(device), loss_name=loss_name, loss_parts=tuple(f.parts), val_groups=f.val_groups,
                   fold=f.pos, test_idx=f.test_idx)
        for f in states
    ]
