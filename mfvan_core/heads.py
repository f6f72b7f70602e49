"""Classification heads: the fusion MLP F_MLP-f of eq. 7 and the per-scale heads of eq. 9.

Eq. 7 averages the class tokens of the scales, (1/3) sum_i f'_{i,L}, and classifies them with an MLP. The
paper fuses these local features with the global feature ("micro-expressions are classified by fusing
global features with local features with high weights", section 5), so the fusion input here is
[global feature, mean of the active scales' class tokens] (concatenated); with no scale (the Table 3
"Global" rows) it is the global feature alone. With fewer than three scales the mean runs over the active
ones (1/|scales| instead of 1/3).
"""

from __future__ import annotations

import torch
from timm.layers import trunc_normal_
from torch import Tensor, nn


def _init_linear(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)


class FusionHead(nn.Module):
    """F_MLP-f: LN -> Linear(in, D) -> GELU -> Dropout -> Linear(D, classes); softmax is left to the loss."""

    def __init__(self, embed_dim: int, num_classes: int, with_scales: bool, drop: float = 0.0) -> None:
        super().__init__()
        self.with_scales = with_scales
        in_dim = 2 * embed_dim if with_scales else embed_dim
        self.mlp = nn.Sequential(
            nn.LayerNorm(in_dim), nn.Linear(in_dim, embed_dim), nn.GELU(), nn.Dropout(drop),
            nn.Linear(embed_dim, num_classes),
        )
        _init_linear(self)

    def forward(self, global_feature: Tensor, scale_tokens: list[Tensor]) -> Tensor:
        if self.with_scales != bool(scale_tokens):
            raise ValueError(f"FusionHead built with_scales={self.with_scales}, got {len(scale_tokens)} scale tokens")
        if scale_tokens:
            local = torch.stack(scale_tokens).mean(0)  # (1/|scales|) sum_i f'_{i,L}
            global_feature = torch.cat([global_feature, local], dim=-1)
        return self.mlp(global_feature)


class ScaleHead(nn.Module):
    """Per-scale classifier on the scale's class token (p_{i,scale} of eq. 9): Dropout -> Linear."""

    def __init__(self, embed_dim: int, num_classes: int, drop: float = 0.0) -> None:
        super().__init__()
        self.head = nn.Sequential(nn.Dropout(drop), nn.Linear(embed_dim, num_classes))
        _init_linear(self)

    def forward(self, cls_token: Tensor) -> Tensor:
        return self.head(cls_token)
