"""Training stages of MFVAN (section 3.1 and 3.3) as single optimisation steps, for the trainer.

Stage 1 (RI variants only): ``pretrain_teacher_step`` - L_pre (eq. 1). Data: every frame of the training
    clips (unlabelled; under LOSO only the training subjects' clips), as (B, C, H, W) batches. Optimiser
    over ``model.ri.teacher`` parameters.
Stage 1b (RI variants only, optional warm-up): ``ri_step`` - L_remove (eq. 4). Data: (apex, onset) pairs
    of the training clips. Optimiser over ``model.ri`` parameters.
Stage 2: ``train_step`` - L_all (eq. 9). Data: apex, label, and (RI variants) onset of the training
    clips. Optimiser over all parameters.
Inference: ``predict_proba`` - apex frames only; the student generates the onset.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import Tensor, nn

from .config import MFVANConfig
from .model import MFVAN


def make_optimizer(params: Iterable[nn.Parameter], config: MFVANConfig) -> torch.optim.Optimizer:
    """Adam with ``config.lr`` and ``config.weight_decay`` (the paper names no optimiser)."""
    if config.optimizer != "adam":
        raise ValueError(f"make_optimizer: unknown optimizer {config.optimizer!r}")
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)


def _step(optimizer: torch.optim.Optimizer, loss: Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def pretrain_teacher_step(model: MFVAN, frames: Tensor, optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """Stage 1: one step of teacher self-supervision on a batch of frames; returns {"pre": L_pre}."""
    model.train()
    loss = model.pretrain_loss(frames)
    _step(optimizer, loss)
    return {"pre": float(loss.detach())}


def ri_step(model: MFVAN, apex: Tensor, onset: Tensor, optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """Stage 1b: one step of teacher + student on apex -> onset; returns the L_remove terms."""
    model.train()
    terms = model.remove_loss(apex, onset)
    _step(optimizer, terms["remove"])
    return {k: float(v.detach()) for k, v in terms.items()}


def train_step(model: MFVAN, batch: Mapping[str, Tensor], optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """Stage 2: one step on L_all; ``batch`` has apex, label and (RI) onset. Returns every term."""
    model.train()
    if "apex" not in batch:
        raise ValueError("train_step: batch has no 'apex'")
    outputs = model(batch["apex"], batch.get("onset") if model.config.use_ri else None)
    terms = model.loss(outputs, batch)
    _step(optimizer, terms["all"])
    return {k: float(v.detach()) for k, v in terms.items()}


@torch.no_grad()
def predict_proba(model: MFVAN, apex: Tensor) -> Tensor:
    """Softmax of the fused prediction (eq. 7) for apex frames, in eval mode."""
    model.eval()
    return model(apex)["logits"].softmax(-1)
