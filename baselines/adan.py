"""Adan: adaptive Nesterov momentum (Xie, Zhou, Li, Lin & Yan, "Adan: Adaptive Nesterov Momentum Algorithm for
Faster Optimizing Deep Models", arXiv:2208.06677, 2022; IEEE TPAMI 2024), Algorithm 1, as a ``torch.optim``
optimizer.

Written from the paper's Algorithm 1 (no code copied). With the betas written as PyTorch decay rates
(``beta_i`` here = ``1 - beta_i`` of the paper, whose defaults are 0.02, 0.08, 0.01), per parameter and step k::

    m_k = b1 m_{k-1} + (1 - b1) g_k
    v_k = b2 v_{k-1} + (1 - b2) (g_k - g_{k-1})
    n_k = b3 n_{k-1} + (1 - b3) [g_k + b2 (g_k - g_{k-1})]^2
    theta_{k+1} = (theta_k - lr (m_k + b2 v_k) / (sqrt(n_k) + eps)) / (1 + lr wd)

The paper's initialisation ``m_0 = g_0, v_0 = 0, n_0 = g_0^2`` makes the first step ``lr g / (|g| + eps)``, and
``v_1 = g_1 - g_0`` is set (not decayed) on the second step; from the third step the recursions run. Weight
decay is the paper's decoupled, proximal form ``(1 + lr wd)^-1`` (the official code's default ``no_prox=False``);
no bias correction (Algorithm 1 has none: the official implementation's zero-initialised, bias-corrected
moments agree with it on the first step only) and no restart condition (the paper's experiments use none).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

BETAS = (0.98, 0.92, 0.99)  # the paper's (0.02, 0.08, 0.01) as decay rates (its Sec. 5 default)
EPS = 1e-8  # the paper's epsilon (Sec. 5)


class Adan(torch.optim.Optimizer):
    """Adan (Algorithm 1 of Xie et al. 2022); ``betas`` as decay rates, ``weight_decay`` proximal (decoupled)."""

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float, float] = BETAS,
                 eps: float = EPS, weight_decay: float = 0.0) -> None:
        if not lr > 0 or not eps > 0 or weight_decay < 0:
            raise ValueError(f"Adan: lr and eps must be > 0 and weight_decay >= 0, got {lr}, {eps}, {weight_decay}")
        if len(betas) != 3 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"Adan: betas must be three values in [0, 1), got {betas!r}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001, ANN201 (torch.optim.Optimizer's signature)
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (b1, b2, b3), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if g.is_sparse:
                    raise RuntimeError("Adan does not support sparse gradients")
                state = self.state[p]
                k = state.get("step", 0)
                if k == 0:  # m_0 = g_0, v_0 = 0, n_0 = g_0^2
                    state["m"], state["v"], state["n"] = g.clone(), torch.zeros_like(g), g.square()
                else:
                    diff = g - state["prev_grad"]
                    state["m"].mul_(b1).add_(g, alpha=1 - b1)
                    if k == 1:  # v_1 = g_1 - g_0
                        state["v"].copy_(diff)
                    else:
                        state["v"].mul_(b2).add_(diff, alpha=1 - b2)
                    state["n"].mul_(b3).addcmul_(g + b2 * diff, g + b2 * diff, value=1 - b3)
                state["prev_grad"] = g.clone()
                state["step"] = k + 1
                direction = state["m"] + b2 * state["v"]
                p.addcdiv_(direction, state["n"].sqrt().add_(eps), value=-lr)
                if wd:
                    p.div_(1 + lr * wd)
        return loss
