"""The one trainer for every deep method of the harness (sequential LOSO reference).

Reproducibility contract (a fold-batched trainer must reproduce it from ``(unit_key, fold_index)``):

* ``fold_seed = derive_seed(unit_key, fold_index)`` (:func:`train_loso`); inside a fold the sub-streams are
  ``derive_seed(fold_seed, name)``: ``"init"`` seeds torch's global generator, forked, while
  ``model_factory()`` runs on the CPU (the model is moved to the device afterwards, so the initial weights do
  not depend on the device); ``"shuffle"`` seeds a CPU ``torch.Generator`` that draws one
  ``torch.randperm(n_fit)`` per epoch, cut into consecutive batches (:func:`epoch_batches`; for
  ``batch_order="balanced"`` it first draws the fold's oversampled pool, :func:`balanced_pool`, then one
  ``torch.randperm(len(pool))`` per epoch); ``"dropout"``
  re-seeds the forked global generator before the first epoch (dropout and other in-forward randomness);
  ``"val_split"`` seeds the choice of held-out subjects (:func:`split_validation_groups`); ``"pre_fit"``
  seeds a method's stages before the main loop (``train_fold(pre_fit=...)``; the other streams are unchanged).
* The caller's global RNG state is neither used nor changed.
* Same seed, same inputs, same thread count -> bitwise identical loss history and predictions on the CPU
  (``deterministic=True`` turns on ``torch.use_deterministic_algorithms`` for the duration of the fold and
  restores the previous setting). Global thread settings are never changed; CPU reductions can depend on
  the number of threads, so bitwise equality is promised for a given ``torch.get_num_threads()``.
  On CUDA the same flag also sets cuDNN to deterministic mode (warn-only for ops without a deterministic
  kernel, since ``CUBLAS_WORKSPACE_CONFIG`` cannot be set once cuBLAS is initialised).

Epoch selection is a labelled policy (``TrainConfig.epoch_policy``): ``last`` (default), ``val`` (early
stopping on subjects held out from the training fold) and ``oracle`` (each fold's best epoch on its own test
subject: optimistic, never the default, always labelled in results via ``FoldResult.policy_label``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from baselines.adan import Adan
from benchmarks.seeding import derive_seed, forked_global_rng, seeded_generator

Inputs = torch.Tensor | np.ndarray | Mapping[str, Any] | tuple
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
PreFit = Callable[[nn.Module, Any, torch.Tensor, int], None]

OPTIMIZERS = ("adam", "sgd", "adamw", "adan")
LOSSES = ("ce", "balanced_ce", "focal")
EPOCH_POLICIES = ("last", "val", "oracle")
BATCH_ORDERS = ("shuffle", "fixed", "by_label", "balanced")
LR_SCHEDULES = ("constant", "cosine", "step")
ORACLE_LABEL = "oracle (test-set epoch selection; optimistic)"


# ----------------------------------------------------------------------------------------- configuration
@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one training run; each model's defaults and their sources live with the model.

    ``patience`` counts evaluations (every ``eval_every`` epochs) without a strict improvement of the
    validation score before training stops (``val`` only; None trains all ``epochs``). ``momentum`` is
    used by ``sgd`` only. ``focal_alpha``: None, ``"balanced"`` (the class-balanced weights of
    :func:`balanced_class_weights`) or one weight per class. ``device``: "auto" (CUDA when available),
    "cpu" or "cuda[:i]". ``deterministic``: deterministic algorithms for the duration of each fold (see the
    module docstring). ``batch_order``: ``"shuffle"`` (a seeded permutation per epoch), ``"fixed"`` (the samples
    in the order given, every epoch) or ``"by_label"`` (sorted by label, stably: a loader that lists one class
    folder after another without shuffling, as some reference code does; no draw from the shuffle stream) or
    ``"balanced"`` (random oversampling to the majority class, :func:`balanced_pool`: an epoch is one shuffled
    pass over that pool, so it has ``n_classes_present * majority count`` samples, not ``n_fit``).
    The defaults are generic; each model passes the values of its paper.
    """

    epochs: int = 100
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.0
    optimizer: str = "adam"
    momentum: float = 0.9
    loss: str = "ce"
    focal_gamma: float = 2.0
    focal_alpha: str | tuple[float, ...] | None = None
    epoch_policy: str = "last"
    val_subjects: int = 1
    patience: int | None = None
    eval_every: int = 1
    eval_batch_size: int = 256
    device: str = "auto"
    deterministic: bool = True
    batch_order: str = "shuffle"
    lr_schedule: str = "constant"
    warmup_epochs: int = 0
    lr_step_size: int = 1
    lr_gamma: float = 0.1

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "val_subjects", "eval_every", "eval_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be an integer >= 1, got {value!r}")
        if self.patience is not None and (not isinstance(self.patience, int) or self.patience < 1):
            raise ValueError(f"TrainConfig.patience must be None or an integer >= 1, got {self.patience!r}")
        if not self.lr > 0:
            raise ValueError(f"TrainConfig.lr must be > 0, got {self.lr!r}")
        if self.weight_decay < 0 or self.momentum < 0 or self.focal_gamma < 0:
            raise ValueError("TrainConfig.weight_decay, momentum and focal_gamma must be >= 0")
        if not isinstance(self.lr_step_size, int) or isinstance(self.lr_step_size, bool) or self.lr_step_size < 1:
            raise ValueError(f"TrainConfig.lr_step_size must be an integer >= 1, got {self.lr_step_size!r}")
        if not 0 < self.lr_gamma <= 1:
            raise ValueError(f"TrainConfig.lr_gamma must be in (0, 1], got {self.lr_gamma!r}")
        if not isinstance(self.warmup_epochs, int) or not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(f"TrainConfig.warmup_epochs must be an integer in [0, epochs), got {self.warmup_epochs!r}")
        for name, allowed in (("optimizer", OPTIMIZERS), ("loss", LOSSES), ("epoch_policy", EPOCH_POLICIES),
                              ("batch_order", BATCH_ORDERS), ("lr_schedule", LR_SCHEDULES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"TrainConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        alpha = self.focal_alpha
        if alpha is not None and alpha != "balanced":
            if isinstance(alpha, str) or not all(isinstance(a, int | float) and a >= 0 for a in alpha):
                raise ValueError(f"TrainConfig.focal_alpha must be None, 'balanced' or weights >= 0, got {alpha!r}")
            object.__setattr__(self, "focal_alpha", tuple(float(a) for a in alpha))
        if not (self.device in ("auto", "cpu") or self.device.startswith("cuda")):
            raise ValueError(f"TrainConfig.device must be 'auto', 'cpu' or 'cuda[:i]', got {self.device!r}")


@dataclasses.dataclass(frozen=True)
class FoldResult:
    """What one fold produced. ``scores`` maps each evaluated epoch (1-based) to ``score_name``."""

    y_pred: np.ndarray  # (n_test,) int64 class indices
    proba: np.ndarray  # (n_test, n_classes) float32 softmax probabilities
    chosen_epoch: int
    epoch_policy: str
    policy_label: str
    train_loss: tuple[float, ...]  # per epoch, mean over the training samples of that epoch
    scores: dict[int, float]
    score_name: str | None  # "val_macro_f1", "test_acc" or None (policy last)
    epochs_run: int
    seed: int
    device: str
    loss_name: str
    loss_parts: tuple[dict[str, float], ...] = ()  # per epoch, when the model's own loss returns parts
    val_groups: tuple = ()  # subjects held out for the val policy
    fold: int | None = None
    test_idx: np.ndarray | None = None
    last_y_pred: np.ndarray | None = None  # oracle only: the last epoch's test predictions (what ``last`` gives)


def lr_factor(epoch: int, config: TrainConfig) -> float:
    """The learning-rate multiplier of (1-based) ``epoch``: ``e / W`` during the ``W = warmup_epochs`` warm-up
    epochs, then 1 for ``constant``; for ``cosine``, ``(1 + cos(pi (e - W - 1) / (E - W))) / 2`` (1 at the first
    epoch after warm-up, decaying towards 0 at the last of ``E = epochs``; never 0); for ``step`` (PyTorch's
    ``StepLR`` stepped once per epoch), ``lr_gamma ** ((e - W - 1) // lr_step_size)``: epochs 1..S at 1, S+1..2S
    at gamma, and so on."""
    w, e_total = config.warmup_epochs, config.epochs
    if epoch <= w:
        return epoch / w
    if config.lr_schedule == "constant":
        return 1.0
    if config.lr_schedule == "step":
        return config.lr_gamma ** ((epoch - w - 1) // config.lr_step_size)
    return 0.5 * (1.0 + math.cos(math.pi * (epoch - w - 1) / (e_total - w)))


def policy_label(config: TrainConfig) -> str:
    """The label results tables print for the epoch-selection policy of ``config``."""
    if config.epoch_policy == "oracle":
        return ORACLE_LABEL
    if config.epoch_policy == "val":
        return f"val (early stopping on {config.val_subjects} held-out training subject(s))"
    return "last"


def resolve_device(spec: str) -> torch.device:
    """``"auto"`` -> CUDA when ``torch.cuda.is_available()``, else CPU; an explicit CUDA must exist."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {spec!r} requested but torch.cuda.is_available() is False")
    return device


# ------------------------------------------------------------------------------------------------ losses
def balanced_class_weights(y: np.ndarray | torch.Tensor, n_classes: int) -> torch.Tensor:
    """Inverse class frequency of ``y``, normalised to mean 1 over the classes present; absent classes 0.

    Example: ``y = [0, 0, 0, 1]`` -> ``1/n_c = [1/3, 1]``, mean ``2/3`` -> ``[0.5, 1.5]``.
    """
    y = torch.as_tensor(np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y), dtype=torch.long)
    counts = torch.bincount(y, minlength=n_classes).to(torch.float64)
    inv = torch.where(counts > 0, 1.0 / counts.clamp(min=1), torch.zeros_like(counts))
    present = counts > 0
    return (inv / inv[present].mean()).to(torch.float32)


def focal_loss(
    logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0, alpha: torch.Tensor | None = None
) -> torch.Tensor:
    """Focal loss (Lin et al., ICCV 2017), mean over the batch: ``-alpha_t (1 - p_t)^gamma log p_t``.

    With ``gamma = 0`` and ``alpha = None`` it equals ``F.cross_entropy``. ``alpha`` is one weight per class.
    """
    log_p = F.log_softmax(logits, dim=-1).gather(-1, target.unsqueeze(-1)).squeeze(-1)
    loss = -((1.0 - log_p.exp()).clamp(min=0) ** gamma) * log_p if gamma else -log_p
    if alpha is not None:
        loss = alpha.to(loss.device, loss.dtype)[target] * loss
    return loss.mean()


def loss_class_weights(config: TrainConfig, y_fit: torch.Tensor, n_classes: int) -> torch.Tensor | None:
    """The per-class weights the configured loss reads (CPU tensor), or None: class-balanced weights of the
    fitted labels for ``balanced_ce`` and ``focal_alpha="balanced"``, the given ``focal_alpha`` for focal."""
    if config.loss == "balanced_ce" or (config.loss == "focal" and config.focal_alpha == "balanced"):
        return balanced_class_weights(y_fit, n_classes)
    if config.loss == "focal" and config.focal_alpha is not None:
        if len(config.focal_alpha) != n_classes:
            raise ValueError(f"TrainConfig.focal_alpha has {len(config.focal_alpha)} weights for {n_classes} classes")
        return torch.tensor(config.focal_alpha)
    return None


def make_loss(config: TrainConfig, y_fit: torch.Tensor, n_classes: int) -> LossFn:
    """The configured loss; class weights come from the labels the model is fitted on (the training fold)."""
    if config.loss == "ce":
        return F.cross_entropy
    weights = loss_class_weights(config, y_fit, n_classes)
    weights = None if weights is None else weights.to(y_fit.device)
    if config.loss == "balanced_ce":
        return lambda logits, target: F.cross_entropy(logits, target, weight=weights)
    return lambda logits, target: focal_loss(logits, target, config.focal_gamma, weights)


# ----------------------------------------------------------------------------------------------- metrics
def fixed_class_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Validation score of the ``val`` policy: mean of ``2TP / (2TP + FP + FN)`` over classes ``0..C-1``.

    A class never true and never predicted counts 0 (``sklearn f1_score(average="macro",
    labels=range(C), zero_division=0)``, ``benchmarks.metrics.macro_f1``). Over a fixed class list that
    is a constant offset, so the arg-max over epochs does not depend on which classes the few held-out
    subjects happen to show. (The MEGC UF1 of ``benchmarks.metrics.uf1`` drops such classes from the
    mean, which makes the denominator vary with the predictions.)
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    total = 0.0
    for c in range(n_classes):
        tp = np.sum((y_true == c) & (y_pred == c))
        denom = 2 * tp + np.sum((y_true != c) & (y_pred == c)) + np.sum((y_true == c) & (y_pred != c))
        total += 2 * tp / denom if denom else 0.0
    return float(total / n_classes)


# ------------------------------------------------------------------------------------------------ inputs
def _as_inputs(x: Inputs, name: str) -> torch.Tensor | dict[str, torch.Tensor] | tuple[torch.Tensor, ...]:
    if isinstance(x, torch.Tensor | np.ndarray):
        return torch.as_tensor(x)
    if isinstance(x, Mapping):
        if not x:
            raise ValueError(f"{name} is an empty dict")
        return {str(k): torch.as_tensor(v) for k, v in x.items()}
    if isinstance(x, tuple | list):
        if not x:
            raise ValueError(f"{name} is an empty tuple")
        return tuple(torch.as_tensor(v) for v in x)
    raise TypeError(f"{name} must be a Tensor, an array, a dict or a tuple of them, got {type(x).__name__}")


def _leaves(x: Any) -> list[tuple[str, torch.Tensor]]:
    if isinstance(x, torch.Tensor):
        return [("", x)]
    if isinstance(x, dict):
        return [(f"[{k!r}]", v) for k, v in x.items()]
    return [(f"[{i}]", v) for i, v in enumerate(x)]


def _n_samples(x: Any, name: str) -> int:
    sizes = {f"{name}{key}": (v.shape[0] if v.dim() else None) for key, v in _leaves(x)}
    if len(set(sizes.values())) != 1 or None in sizes.values():
        raise ValueError(f"all entries of {name} must be indexed by sample (same first dimension): {sizes}")
    return next(iter(sizes.values()))


def _map(x: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    if isinstance(x, torch.Tensor):
        return fn(x)
    if isinstance(x, dict):
        return {k: fn(v) for k, v in x.items()}
    return tuple(fn(v) for v in x)


def _call(model: nn.Module, x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return model(x)
    if isinstance(x, dict):
        return model(**x)
    return model(*x)


def _logits(outputs: Any) -> torch.Tensor:
    if isinstance(outputs, torch.Tensor):
        return outputs
    if isinstance(outputs, Mapping) and "logits" in outputs:
        return outputs["logits"]
    raise TypeError(f"the model must return a logits Tensor or a dict with key 'logits', got {type(outputs)}")


def _labels(y: Any, n: int, name: str, n_classes: int | None = None) -> torch.Tensor:
    y = torch.as_tensor(np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y))
    if y.dim() != 1 or y.shape[0] != n or y.is_floating_point():
        raise ValueError(
            f"{name} must be a 1-d integer vector of {n} labels, got dtype {y.dtype}, shape {tuple(y.shape)}"
        )
    if n and (y.min() < 0 or (n_classes is not None and y.max() >= n_classes)):
        raise ValueError(f"{name} labels must lie in [0, {n_classes}), got [{int(y.min())}, {int(y.max())}]")
    return y.long()


# --------------------------------------------------------------------------------------- building blocks
def init_model(model_factory: Callable[[], nn.Module], seed: int) -> nn.Module:
    """Build the model on the CPU, global generator forked and seeded ``derive_seed(seed, "init")``."""
    with forked_global_rng(derive_seed(seed, "init")):
        model = model_factory()
    if not isinstance(model, nn.Module):
        raise TypeError(f"model_factory must return an nn.Module, got {type(model).__name__}")
    return model


def epoch_batches(
    n: int, batch_size: int, generator: torch.Generator, device: str | torch.device = "cpu",
    order: torch.Tensor | None = None, pool: torch.Tensor | None = None,
) -> list[torch.Tensor]:
    """One epoch's batches: ``torch.randperm(n, generator)`` cut into consecutive chunks of ``batch_size``.

    A trailing chunk of a single sample is merged into the previous chunk (BatchNorm cannot train on one
    sample). Draws exactly one permutation from ``generator`` (a CPU generator: the order does not depend on
    ``device``, where the index chunks are placed), unless a fixed ``order`` of the ``n`` indices is given
    (:func:`fixed_order`), which is cut instead and draws nothing. With a ``pool`` of sample indices (repeats
    allowed, :func:`balanced_pool`) the epoch is ``pool[torch.randperm(len(pool), generator)]`` instead (``n``
    is then not read).
    """
    if pool is not None:
        perm = pool.cpu()[torch.randperm(len(pool), generator=generator)].to(device)
    else:
        perm = (torch.randperm(n, generator=generator) if order is None else order).to(device)
    chunks = list(torch.split(perm, batch_size))
    if len(chunks) > 1 and len(chunks[-1]) == 1:
        chunks[-2:] = [torch.cat(chunks[-2:])]
    return chunks


def fixed_order(batch_order: str, y_fit: torch.Tensor | np.ndarray) -> torch.Tensor | None:
    """The epochs' sample order for ``batch_order`` (None: shuffled per epoch), see :class:`TrainConfig`."""
    if batch_order in ("shuffle", "balanced"):
        return None
    y = torch.as_tensor(np.asarray(y_fit.cpu() if isinstance(y_fit, torch.Tensor) else y_fit))
    if batch_order == "fixed":
        return torch.arange(len(y))
    return torch.sort(y, stable=True).indices


def balanced_pool(y_fit: torch.Tensor | np.ndarray, generator: torch.Generator) -> torch.Tensor:
    """The sample indices of ``batch_order="balanced"``: every fitted sample once, and each class present topped
    up to the majority count ``M`` by ``M - n_c`` draws with replacement from its own samples
    (``torch.randint(n_c, (M - n_c,), generator)``, classes in increasing order; nothing drawn for a class at
    ``M``). Drawn once per fold (before the first epoch) from the shuffle stream, then shuffled every epoch
    (:func:`epoch_batches`): random oversampling to the majority class, as Micro-Attention's composite scripts
    build their ``TrainBalance`` list. Returns class after class (original order, then the draws); length
    ``n_classes_present * M``.

    Example: ``y = [0, 1, 0, 0]`` -> ``[0, 2, 3, 1, 1, 1]`` (class 1 has one sample, drawn twice more).
    """
    y = torch.as_tensor(np.asarray(y_fit.cpu() if isinstance(y_fit, torch.Tensor) else y_fit)).long()
    counts = torch.bincount(y)
    majority = int(counts.max())
    parts = []
    for c in torch.nonzero(counts).flatten().tolist():
        idx = torch.nonzero(y == c).flatten()
        parts.append(idx)
        if len(idx) < majority:
            parts.append(idx[torch.randint(len(idx), (majority - len(idx),), generator=generator)])
    return torch.cat(parts)


def split_validation_groups(groups: Sequence, n_val: int, seed: int) -> tuple[np.ndarray, tuple]:
    """Hold out ``n_val`` subjects of the training fold; returns (mask of held-out samples, held-out ids).

    The subjects are drawn by ``torch.randperm`` over the sorted unique ids, seeded ``derive_seed(seed,
    "val_split")``.
    """
    groups = np.asarray(groups)
    unique = np.unique(groups)
    if len(unique) <= n_val:
        raise ValueError(
            f"val policy: val_subjects={n_val} needs more than {n_val} subjects in the training fold, got {len(unique)}"
        )
    order = torch.randperm(len(unique), generator=seeded_generator(derive_seed(seed, "val_split"))).numpy()
    held = np.sort(unique[order[:n_val]])
    return np.isin(groups, held), tuple(held.tolist())


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adan":  # Xie et al. 2022, Algorithm 1 (baselines.adan)
        return Adan(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


class _DeterministicScope:
    """Turn on deterministic algorithms for a block and restore the previous global settings."""

    def __init__(self, enabled: bool, device: torch.device):
        self.enabled, self.device = enabled, device

    def __enter__(self) -> None:
        if not self.enabled:
            return
        self.saved = (
            torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(),
            torch.backends.cudnn.deterministic,
            torch.backends.cudnn.benchmark,
        )
        torch.use_deterministic_algorithms(True, warn_only=self.device.type == "cuda")
        if self.device.type == "cuda":
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False

    def __exit__(self, *exc: object) -> None:
        if not self.enabled:
            return
        enabled, warn_only, cudnn_det, cudnn_bench = self.saved
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn_det, cudnn_bench


@torch.inference_mode()
def predict(model: nn.Module, x: Any, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(predicted classes, softmax probabilities) as CPU numpy arrays, in eval mode."""
    was_training = model.training
    model.eval()
    n = _n_samples(x, "x")
    logits = [_logits(_call(model, _map(x, lambda v, s=s: v[s : s + batch_size]))) for s in range(0, n, batch_size)]
    model.train(was_training)
    proba = torch.softmax(torch.cat(logits).float(), dim=-1).cpu().numpy()
    return proba.argmax(axis=1).astype(np.int64), proba.astype(np.float32)


def _logit_loss(loss_fn: LossFn, n_classes: int) -> Callable[[Any, torch.Tensor], tuple[torch.Tensor, dict]]:
    """Wrap ``loss_fn(logits, y)`` as ``(outputs, y) -> (loss, {})``, checking the number of logits."""

    def compute(outputs: Any, y: torch.Tensor) -> tuple[torch.Tensor, dict]:
        logits = _logits(outputs)
        if logits.shape[-1] != n_classes:
            raise ValueError(
                f"the model returns {logits.shape[-1]} logits but there are {n_classes} classes "
                "(pass n_classes explicitly when the labels do not show every class)"
            )
        return loss_fn(logits, y), {}

    return compute


def _fit_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x_fit: Any,
    y_fit: torch.Tensor,
    batches: list[torch.Tensor],
    compute_loss: Callable[[Any, torch.Tensor], tuple[torch.Tensor, Mapping]],
) -> tuple[float, dict[str, float]]:
    """One pass over ``batches`` in train mode; (sample-weighted mean loss, mean of each loss part)."""
    model.train()
    n = sum(len(b) for b in batches)
    loss_sum = torch.zeros((), device=y_fit.device, dtype=torch.float64)
    parts_sum: dict[str, torch.Tensor] = {}
    for idx in batches:
        loss, parts = compute_loss(_call(model, _map(x_fit, lambda v, i=idx: v[i])), y_fit[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach().double() * len(idx)  # accumulated on the device: one sync per epoch
        for k, v in dict(parts).items():
            v = torch.as_tensor(v).detach().to(y_fit.device, torch.float64)
            parts_sum[k] = parts_sum.get(k, 0.0) + v * len(idx)
    return float(loss_sum) / n, {k: float(v) / n for k, v in parts_sum.items()}


# ------------------------------------------------------------------------------------------------- train
def train_fold(
    model_factory: Callable[[], nn.Module],
    x_train: Inputs,
    y_train: Any,
    x_test: Inputs,
    y_test: Any | None,
    config: TrainConfig,
    seed: int,
    groups_train: Sequence | None = None,
    loss_fn: LossFn | None = None,
    n_classes: int | None = None,
    pre_fit: PreFit | None = None,
    epoch_end: Callable[[int, nn.Module], None] | None = None,
) -> FoldResult:
    """Train a fresh model on one fold and predict its test clips under ``config.epoch_policy``.

    ``x_*``: a Tensor (``model(x)``), a dict of Tensors (``model(**x)``) or a tuple (``model(*x)``), every
    entry indexed by sample. The model returns logits or a dict with ``"logits"``. The loss is, in order:
    the model's own ``loss(outputs, y) -> (total, parts)`` when it has one, else ``loss_fn(logits, y)``,
    else ``config.loss`` (giving both a model ``loss`` and ``loss_fn`` is an error). ``y_test`` is read by
    the ``oracle`` policy only. ``n_classes`` defaults to the largest label + 1.

    ``pre_fit(model, x_fit, y_fit, seed)``: a method's own stages before the main loop (e.g. self-supervised
    pretraining), run once on the fresh model with the data it is fitted on (the training fold less the
    ``val`` policy's held-out subjects, on the device), global generator forked and seeded
    ``seed = derive_seed(fold seed, "pre_fit")``. The main loop's optimiser is created after it.

    ``epoch_end(epoch, model)``: called after each training epoch (1-based), for diagnostics (learning curves);
    it must leave the model's parameters and mode as it found them (it runs under ``torch.no_grad``, and the
    model is put back in train mode afterwards). The global generator is restored around it, so a callback
    changes no prediction.
    """
    x_train, x_test = _as_inputs(x_train, "x_train"), _as_inputs(x_test, "x_test")
    n_train, n_test = _n_samples(x_train, "x_train"), _n_samples(x_test, "x_test")
    if n_train == 0 or n_test == 0:
        raise ValueError(f"empty fold: {n_train} training and {n_test} test samples")
    y_train = _labels(y_train, n_train, "y_train")
    if config.epoch_policy == "oracle":
        if y_test is None:
            raise ValueError("epoch_policy='oracle' needs y_test")
        y_test = _labels(y_test, n_test, "y_test")
    if n_classes is None:
        n_classes = int(max(y_train.max(), y_test.max() if isinstance(y_test, torch.Tensor) else 0)) + 1
    _labels(y_train, n_train, "y_train", n_classes)
    if config.epoch_policy == "oracle":
        _labels(y_test, n_test, "y_test", n_classes)

    val_groups: tuple = ()
    x_fit, y_fit, x_val, y_val = x_train, y_train, None, None
    if config.epoch_policy == "val":
        if groups_train is None or len(groups_train) != n_train:
            raise ValueError("epoch_policy='val' needs groups_train (one subject id per training sample)")
        val_mask, val_groups = split_validation_groups(groups_train, config.val_subjects, seed)
        fit_idx = torch.from_numpy(np.flatnonzero(~val_mask))
        val_idx = torch.from_numpy(np.flatnonzero(val_mask))
        x_fit, y_fit = _map(x_train, lambda v: v[fit_idx]), y_train[fit_idx]
        x_val, y_val = _map(x_train, lambda v: v[val_idx]), y_train[val_idx].numpy()
    n_fit = int(y_fit.shape[0])

    device = resolve_device(config.device)
    model = init_model(model_factory, seed).to(device)
    own_loss = getattr(model, "loss", None)
    if callable(own_loss) and loss_fn is not None:
        raise ValueError("the model defines its own loss(); do not also pass loss_fn")
    to_dev = lambda v: v.to(device)  # noqa: E731
    x_fit, y_fit, x_test = _map(x_fit, to_dev), y_fit.to(device), _map(x_test, to_dev)
    x_val = _map(x_val, to_dev) if x_val is not None else None
    if callable(own_loss):
        loss_name = "model.loss"
    elif loss_fn is not None:
        loss_name = getattr(loss_fn, "__name__", "custom")
    else:
        loss_name, loss_fn = config.loss, make_loss(config, y_fit, n_classes)
    compute_loss = own_loss if callable(own_loss) else _logit_loss(loss_fn, n_classes)
    if pre_fit is not None:
        pre_seed = derive_seed(seed, "pre_fit")
        with _DeterministicScope(config.deterministic, device), forked_global_rng(pre_seed):
            pre_fit(model, x_fit, y_fit, pre_seed)

    optimizer = make_optimizer(model, config)
    shuffle = seeded_generator(derive_seed(seed, "shuffle"))
    history: list[float] = []
    parts_history: list[dict[str, float]] = []
    scores: dict[int, float] = {}
    best: tuple[float, int] = (-math.inf, 0)
    best_state: dict[str, torch.Tensor] | None = None
    best_pred: tuple[np.ndarray, np.ndarray] | None = None
    last_pred: tuple[np.ndarray, np.ndarray] | None = None
    stale = 0
    epoch = 0
    y_test_np = y_test.numpy() if config.epoch_policy == "oracle" else None

    order = fixed_order(config.batch_order, y_fit)
    pool = balanced_pool(y_fit, shuffle) if config.batch_order == "balanced" else None
    with _DeterministicScope(config.deterministic, device), forked_global_rng(derive_seed(seed, "dropout")):
        for epoch in range(1, config.epochs + 1):
            for group in optimizer.param_groups:
                group["lr"] = config.lr * lr_factor(epoch, config)
            batches = epoch_batches(n_fit, config.batch_size, shuffle, device, order, pool)
            mean_loss, mean_parts = _fit_epoch(model, optimizer, x_fit, y_fit, batches, compute_loss)
            if not math.isfinite(mean_loss):
                raise FloatingPointError(f"training loss is {mean_loss} at epoch {epoch} (seed {seed})")
            history.append(mean_loss)
            if mean_parts:
                parts_history.append(mean_parts)
            if epoch_end is not None:
                with torch.no_grad(), torch.random.fork_rng(devices=[] if device.type == "cpu" else [device]):
                    epoch_end(epoch, model)
                model.train()

            if config.epoch_policy == "last" or (epoch % config.eval_every and epoch != config.epochs):
                continue
            if config.epoch_policy == "val":
                score = fixed_class_f1(y_val, predict(model, x_val, config.eval_batch_size)[0], n_classes)
            else:
                pred = predict(model, x_test, config.eval_batch_size)
                score = float(np.mean(pred[0] == y_test_np))
                if epoch == config.epochs:
                    last_pred = pred
            scores[epoch] = score
            if score > best[0]:  # strict: ties keep the earliest epoch
                best, stale = (score, epoch), 0
                if config.epoch_policy == "val":
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                else:
                    best_pred = pred
            else:
                stale += 1
                if config.epoch_policy == "val" and config.patience is not None and stale >= config.patience:
                    break

        if config.epoch_policy == "last":
            chosen, (y_pred, proba) = epoch, predict(model, x_test, config.eval_batch_size)
        elif config.epoch_policy == "val":
            model.load_state_dict(best_state)
            chosen, (y_pred, proba) = best[1], predict(model, x_test, config.eval_batch_size)
        else:
            chosen, (y_pred, proba) = best[1], best_pred

    return FoldResult(
        y_pred=y_pred,
        proba=proba,
        chosen_epoch=chosen,
        epoch_policy=config.epoch_policy,
        policy_label=policy_label(config),
        train_loss=tuple(history),
        scores=scores,
        score_name={"last": None, "val": "val_macro_f1", "oracle": "test_acc"}[config.epoch_policy],
        epochs_run=epoch,
        seed=seed,
        device=str(device),
        loss_name=loss_name,
        loss_parts=tuple(parts_history),
        val_groups=val_groups,
        last_y_pred=last_pred[0] if last_pred is not None else None,
    )


def train_loso(
    model_factory: Callable[[], nn.Module],
    x: Inputs,
    y: Any,
    folds: Iterable[Any],
    config: TrainConfig,
    unit_key: Any,
    groups: Sequence | None = None,
    n_classes: int | None = None,
    loss_fn: LossFn | None = None,
) -> list[FoldResult]:
    """Train fold after fold (the sequential reference); fold ``k`` is seeded ``derive_seed(unit_key, k)``.

    ``folds``: objects with ``train_idx`` and ``test_idx`` integer arrays into ``x``/``y``. ``y_test`` is
    passed to the trainer only under the ``oracle`` policy. ``n_classes`` defaults to ``max(y) + 1``.
    """
    x = _as_inputs(x, "x")
    n = _n_samples(x, "x")
    y = _labels(y, n, "y")
    n_classes = int(y.max()) + 1 if n_classes is None else n_classes
    groups = None if groups is None else np.asarray(groups)
    if groups is not None and len(groups) != n:
        raise ValueError(f"groups has {len(groups)} entries for {n} samples")
    results = []
    for k, fold in enumerate(folds):
        train_idx = np.asarray(fold.train_idx, dtype=np.int64)
        test_idx = np.asarray(fold.test_idx, dtype=np.int64)
        if np.intersect1d(train_idx, test_idx).size:
            raise ValueError(f"fold {k}: train_idx and test_idx overlap")
        tr, te = torch.from_numpy(train_idx), torch.from_numpy(test_idx)
        result = train_fold(
            model_factory,
            _map(x, lambda v, i=tr: v[i]),
            y[tr],
            _map(x, lambda v, i=te: v[i]),
            y[te] if config.epoch_policy == "oracle" else None,
            config,
            derive_seed(unit_key, k),
            groups_train=None if groups is None else groups[train_idx],
            loss_fn=loss_fn,
            n_classes=n_classes,
        )
        results.append(dataclasses.replace(result, fold=k, test_idx=test_idx))
    return results
