"""Losses of section 3.3: focal loss (eq. 10), mask loss (eq. 11) and their sum L_all (eq. 9).

Eq. 11 as printed, L_mask = f_c if f_c >= theta else 0, sums the attention weights of the KEPT patches.
Because f_c sums to 1 over the patches, minimising it moves attention mass from kept patches to masked
ones: it flattens the class-token attention towards (just under) the threshold, which looks inverted from
the stated aim (learn high weights on the micro-expression regions). It is implemented as printed
(``mask_loss="as_printed"``, the default) and offered with alternatives:

- ``"masked_mass"``: sum of f_c over the MASKED patches (= 1 - as_printed): concentrates attention on
  the kept patches, i.e. the reading where the mask loss suppresses redundant regions;
- ``"entropy"``: entropy of f_c divided by log k (in [0, 1]): a threshold-free sparsity form;
- ``"none"``: no mask loss.
Each is averaged over the batch for one scale; L_all sums it over the active scales.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .config import MFVANConfig
from .identity import remove_loss


def focal_loss(logits: Tensor, target: Tensor, alpha: Tensor | Sequence[float] | None = None,
               gamma: float = 2.0) -> Tensor:
    """Eq. 10, -alpha_t (1 - p_t)^r log p_t, with p = softmax(logits), averaged over the batch.

    ``alpha``: one weight per class (alpha_t is the weight of the sample's true class t); None = 1.
    ``gamma`` is the paper's r. With r = 0 and alpha = 1 this is the cross-entropy.
    """
    if logits.ndim != 2:
        raise ValueError(f"focal_loss: logits must be (B, classes), got {tuple(logits.shape)}")
    if target.shape != logits.shape[:1] or target.dtype != torch.long:
        raise ValueError(f"focal_loss: target must be int64 of shape ({logits.shape[0]},), "
                         f"got {target.dtype} {tuple(target.shape)}")
    n_classes = logits.shape[1]
    if target.numel() and is_concrete(target) and (int(target.min()) < 0 or int(target.max()) >= n_classes):
        raise ValueError(f"focal_loss: target labels must lie in [0, {n_classes - 1}], "
                         f"got {int(target.min())}..{int(target.max())}")
    log_pt = F.log_softmax(logits, dim=-1).gather(1, target[:, None])[:, 0]
    loss = -((1.0 - log_pt.exp()) ** gamma) * log_pt
    if alpha is not None:
        alpha = (alpha.to(logits.dtype) if isinstance(alpha, Tensor)
                 else torch.as_tensor(alpha, dtype=logits.dtype, device=logits.device))
        if alpha.shape != (n_classes,):
            raise ValueError(f"focal_loss: alpha needs {n_classes} per-class weights, got {tuple(alpha.shape)}")
        loss = alpha[target] * loss
    return loss.mean()


def is_concrete(t: Tensor) -> bool:
    """False for a tensor traced by a ``torch.func`` transform (e.g. ``vmap``): its values cannot be read in
    Python there, so value checks (``int(t.min())``) are skipped; shapes are still checked."""
    wrapped = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
    return not (wrapped is not None and wrapped(t))


def mask_loss(weights: Tensor, theta: float, mode: str = "as_printed") -> Tensor:
    """L_mask (eq. 11) for one scale: ``weights`` (B, k) is f_c (rows sum to 1); mean over the batch.

    The keep/mask split (f_c >= theta) is a constant; gradients flow through the summed weights.
    """
    if weights.ndim != 2:
        raise ValueError(f"mask_loss: weights must be (B, patches), got {tuple(weights.shape)}")
    keep = (weights.detach() >= theta).to(weights.dtype)
    if mode == "as_printed":
        per_sample = (weights * keep).sum(-1)
    elif mode == "masked_mass":
        per_sample = (weights * (1.0 - keep)).sum(-1)
    elif mode == "entropy":
        k = weights.shape[1]
        ent = -(weights * weights.clamp_min(1e-12).log()).sum(-1)
        per_sample = ent / math.log(k) if k > 1 else ent
    elif mode == "none":
        return weights.new_zeros(())
    else:
        raise ValueError(f"mask_loss: unknown mode {mode!r}; use as_printed, masked_mass, entropy or none")
    return per_sample.mean()


def inverse_frequency_alpha(labels: Sequence[int] | Tensor, num_classes: int) -> tuple[float, ...]:
    """alpha_c = n / (C * n_c) from the training labels (mean 1 over samples); 1.0 for absent classes.

    Compute it on the training fold only (LOSO) and pass it as ``MFVANConfig.focal_alpha``.
    """
    y = torch.as_tensor(labels, dtype=torch.long).flatten()
    if y.numel() == 0:
        raise ValueError("inverse_frequency_alpha: no labels")
    if int(y.min()) < 0 or int(y.max()) >= num_classes:
        raise ValueError(f"inverse_frequency_alpha: labels must lie in [0, {num_classes - 1}]")
    counts = torch.bincount(y, minlength=num_classes).double()
    alpha = torch.where(counts > 0, y.numel() / (num_classes * counts.clamp_min(1)), torch.ones_like(counts))
    return tuple(float(a) for a in alpha)


def mfvan_loss(outputs: Mapping[str, object], batch: Mapping[str, Tensor], config: MFVANConfig,
               focal_alpha: Tensor | Sequence[float] | None = None) -> dict[str, Tensor]:
    """L_all (eq. 9) = L_remove + L_class_global + sum_i L_class_scale,i + L_mask, each term reported.

    ``batch``: ``label`` (B,) int64, and ``onset`` (B, C, H, W) when RI is on. ``outputs``: the dict of
    ``MFVAN.forward`` (called with the onset when RI is on, so the teacher output is there).
    Keys: ``all``, ``class_global``, ``class_scale{i}`` per scale, ``mask`` (scales only), and with RI
    ``remove``, ``teacher``, ``student``, ``student_onset``, ``student_soft``. ``focal_alpha``, when given,
    replaces ``config.focal_alpha`` (e.g. per-fold weights held in a buffer).
    """
    if "label" not in batch:
        raise ValueError("mfvan_loss: batch has no 'label'")
    labels = batch["label"]
    alpha = config.focal_alpha if focal_alpha is None else focal_alpha
    terms: dict[str, Tensor] = {"class_global": focal_loss(outputs["logits"], labels, alpha, config.focal_gamma)}
    total = terms["class_global"]
    scale_logits: Mapping[int, Tensor] = outputs["scale_logits"]  # type: ignore[assignment]
    patch_weights: Mapping[int, Tensor] = outputs["patch_weights"]  # type: ignore[assignment]
    for i in config.scales:
        terms[f"class_scale{i}"] = focal_loss(scale_logits[i], labels, alpha, config.focal_gamma)
        total = total + terms[f"class_scale{i}"]
    if config.scales:
        terms["mask"] = sum(
            (mask_loss(patch_weights[i], config.mask_threshold, config.mask_loss) for i in config.scales),
            start=total.new_zeros(()),
        )
        total = total + config.mask_loss_weight * terms["mask"]
    if config.use_ri:
        if "onset" not in batch:
            raise ValueError("mfvan_loss: RI is on (use_ri=True) and the batch has no 'onset' frame")
        if outputs.get("onset_teacher") is None:
            raise ValueError("mfvan_loss: outputs lack 'onset_teacher'; call the model with the onset frame")
        terms.update(remove_loss(outputs["onset_student"], outputs["onset_teacher"], batch["onset"],
                                 config.soft_target_weight))
        total = total + config.remove_loss_weight * terms["remove"]
    return {"all": total, **terms}
