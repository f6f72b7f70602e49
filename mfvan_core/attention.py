"""Per-scale vision transformer with class-token attention masking (paper section 3.2, eq. 5, 6, 8).

One ``ScaleEncoder`` per scale. Its input map (the apex image or a conv feature map) is split into s x s
non-overlapping patches; each patch is embedded by a convolution whose kernel and stride equal the patch
side (eq. 6: f_i = F_conv(x_i w_i + b_i)), so a patch token depends on its own patch only. A class token is
prepended and a learnable positional embedding added (eq. 5). L pre-norm blocks of multi-head
self-attention and MLP follow (eq. 8).

Masking (the "f_c >= theta" of eq. 7), in two passes with shared weights:

1. pass 1 runs the L blocks over [class, patches]; f_c is the class token's attention over the patches,
   averaged over heads, from the last block (``mask_attention="last"``) or averaged over blocks
   (``"mean"``), renormalised over the patches so it sums to 1 (the class token's self-weight removed);
2. patches with f_c < theta are masked; pass 2 re-runs the same L blocks from the embeddings with those
   patch tokens removed as keys (their attention logits are -inf, so their softmax weight is exactly 0).

The class token of pass 2 is the scale's readout (eq. 7-8). Given the mask, masked patches cannot
influence it: no token of pass 2 attends to them and every other operation is per token. f_c (pass 1)
feeds L_mask (eq. 11) and the attention maps; the keep mask itself carries no gradient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from timm.layers import Mlp, trunc_normal_
from torch import Tensor, nn


class ClassTokenAttention(nn.Module):
    """Multi-head self-attention that also returns the class token's (token 0) attention row.

    ``key_mask`` (B, T) bool, True = may be attended to; masked keys get -inf logits (weight exactly 0).
    """

    def __init__(self, dim: int, num_heads: int, attn_drop: float = 0.0, proj_drop: float = 0.0) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: Tensor, key_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        b, t, c = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        logits = (q * self.scale) @ k.transpose(-2, -1)  # (B, heads, T, T)
        if key_mask is not None:
            logits = logits.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        attn = logits.softmax(dim=-1)
        cls_attn = attn[:, :, 0, :]  # (B, heads, T), before dropout
        out = (self.attn_drop(attn) @ v).transpose(1, 2).reshape(b, t, c)
        return self.proj_drop(self.proj(out)), cls_attn


class Block(nn.Module):
    """Pre-norm transformer block: x + MSA(LN(x)), then x + MLP(LN(x)) (eq. 8)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, drop: float, attn_drop: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = ClassTokenAttention(dim, num_heads, attn_drop=attn_drop, proj_drop=drop)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU, drop=drop)

    def forward(self, x: Tensor, key_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        y, cls_attn = self.attn(self.norm1(x), key_mask)
        x = x + y
        return x + self.mlp(self.norm2(x)), cls_attn


@dataclass
class ScaleOutput:
    """What one scale hands on: readout class token, patch weights f_c and the keep mask."""

    cls: Tensor  # (B, D): class token after pass 2 (masked), layer-normed
    weights: Tensor  # (B, k): f_c, class-token attention over patches from pass 1, rows sum to 1
    keep: Tensor  # (B, k) bool: f_c >= theta (or the given override)


class ScaleEncoder(nn.Module):
    """Patch embedding (conv) + class token + positional embedding + L blocks + attention masking."""

    def __init__(self, in_chans: int, map_size: int, patch_grid: int, embed_dim: int, depth: int,
                 num_heads: int, mlp_ratio: float = 2.0, drop: float = 0.0, attn_drop: float = 0.0,
                 mask_attention: Literal["last", "mean"] = "last") -> None:
        super().__init__()
        if map_size % patch_grid:
            raise ValueError(f"ScaleEncoder: map side {map_size} is not divisible by patch_grid {patch_grid}")
        self.in_chans, self.map_size, self.patch_grid = in_chans, map_size, patch_grid
        self.mask_attention = mask_attention
        patch = map_size // patch_grid
        self.patch_embed = nn.Conv2d(in_chans, embed_dim, kernel_size=patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + patch_grid * patch_grid, embed_dim))
        self.pos_drop = nn.Dropout(drop)
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio, drop, attn_drop) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim)
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.cls_token, std=0.02)

    def embed(self, feat: Tensor) -> Tensor:
        """Eq. 5-6: [class token, conv patch embeddings] + positional embedding -> (B, 1 + k, D)."""
        if feat.ndim != 4 or feat.shape[1:] != (self.in_chans, self.map_size, self.map_size):
            raise ValueError(f"ScaleEncoder: expected (B, {self.in_chans}, {self.map_size}, {self.map_size}), "
                             f"got {tuple(feat.shape)}")
        tokens = self.patch_embed(feat).flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        return self.pos_drop(torch.cat([cls, tokens], dim=1) + self.pos_embed)

    def encode(self, x: Tensor, key_mask: Tensor | None = None) -> tuple[Tensor, list[Tensor]]:
        """The L blocks (eq. 8); returns the tokens and each block's class-token attention (B, heads, T)."""
        rows = []
        for block in self.blocks:
            x, cls_attn = block(x, key_mask)
            rows.append(cls_attn)
        return x, rows

    def patch_weights(self, rows: list[Tensor]) -> Tensor:
        """f_c: head-averaged class-token attention over the patches, renormalised to sum 1 -> (B, k)."""
        attn = rows[-1] if self.mask_attention == "last" else torch.stack(rows).mean(0)
        patches = attn.mean(1)[:, 1:]
        return patches / patches.sum(-1, keepdim=True).clamp_min(1e-12)

    def forward(self, feat: Tensor, theta: float, keep: Tensor | None = None) -> ScaleOutput:
        """Encode one scale; patches with f_c < theta (or ``keep`` False, if given) are masked."""
        x = self.embed(feat)
        h, rows = self.encode(x)
        weights = self.patch_weights(rows)
        keep_given = keep
        if keep is None:
            keep = weights.detach() >= theta
        elif keep.shape != weights.shape or keep.dtype != torch.bool:
            raise ValueError(f"ScaleEncoder: keep must be a bool tensor of shape {tuple(weights.shape)}, "
                             f"got {keep.dtype} {tuple(keep.shape)}")
        # Pass 2 runs whenever a patch may be masked. With every patch kept it equals pass 1 exactly (no logit
        # is filled), so it is skipped only when that is known without reading values (theta <= 0, no override):
        # no data-dependent branch, which keeps the encoder usable under torch.func.vmap (fold-batched training).
        if not (theta <= 0 and keep_given is None):
            key_mask = torch.cat([keep.new_ones(keep.shape[0], 1), keep], dim=1)
            h, _ = self.encode(x, key_mask)
        return ScaleOutput(cls=self.norm(h[:, 0]), weights=weights, keep=keep)
