"""HTNet: hierarchical transformer network (Wang, Zhang, Luo & Sankaranarayana, Neurocomputing 602:128196, 2024).

Input: a ``(B, 3, 28, 28)`` mosaic of four 14x14 windows of the 28x28 (u, v, strain) flow image, centred on
facial landmarks (two eyes, two mouth corners; built by the harness, ``benchmarks.data.patch_views``).
The network (a NesT-style hierarchy): 7x7 patches -> 1x1 conv embedding (147 -> 256) on a 4x4 token map;
three hierarchies with widths 256 / 512 / 1024 and 3 / 6 / 12 heads, each a transformer over the tokens of
non-overlapping blocks (4x4, 2x2, then 1x1 blocks of the shrinking map: 1 token per block at every level
for a 28x28 input with patch 7), followed, except after the last, by an aggregation layer (conv 3x3 ->
channel LayerNorm -> max-pool 3/2, halving the map and doubling the width); head: channel LayerNorm ->
spatial mean -> linear. Blocks per hierarchy (2, 2, 10). Every transformer block is pre-norm (channel
LayerNorm, eps inside the square root) with multi-head attention (1x1-conv q/k/v without bias, head width
``dim // heads`` = 85, so 255 / 510 / 1020 inner channels) and a 4x MLP of 1x1 convs with GELU; each
transformer adds one learned position scalar per token of a block (here one). 139,582,982 parameters for 3
classes (counted by hand in the tests; the reference ``Model.py`` with this configuration, built with einops
0.8.1, gives the same number, and with the same weights the same logits to 1e-6).

Source checked (read with the fetch tool; no code copied): ``wangzhifengharrison/HTNet`` at commit
91cf4bda0a2db50d638d46c04c5d7cf3b602d446, ``Model.py`` (classes ``LayerNorm``, ``PreNorm``,
``FeedForward``, ``Attention``, ``Transformer``, ``HTNet`` and function ``Aggregate``: the layer layout
above) and ``main_HTNet.py`` (``HTNet(image_size=28, patch_size=7, dim=256, heads=3, num_hierarchies=3,
block_repeats=(2, 2, 10), num_classes=3)``; Adam lr 0.00005, batch 256, 800 epochs, ``nn.CrossEntropyLoss``;
the test prediction of each subject's best test-accuracy epoch is kept). Attribute names, module indices
and shapes follow ``Model.py``, so a ``state_dict`` of the reference loads with ``strict=True``, and the
patch embedding flattens each patch in the reference's (row, column, channel) order.

Two data details of ``main_HTNet.py`` are settings of the harness config here: it feeds the
``cv2.imread`` values (0..255, channels in BGR order: strain, v, u) unscaled (``input_scale=255``,
``bgr=True``), and its training ``DataLoader`` does not shuffle (files listed class folder by class folder:
``batch_order="by_label"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

REFERENCE = "wangzhifengharrison/HTNet (commit 91cf4bda0a2db50d638d46c04c5d7cf3b602d446)"


@dataclass(frozen=True)
class HTNetConfig:
    """Model and training settings of the authors' code (``main_HTNet.py``, ``Model.py`` at :data:`REFERENCE`)."""

    num_classes: int = 3  # MEGC 2019 composite: negative, positive, surprise (main_HTNet.py num_classes=3)
    image_size: int = 28  # main_HTNet.py: image_size=28 (the 2x2 mosaic of 14x14 windows)
    patch_size: int = 7  # main_HTNet.py: patch_size=7
    dim: int = 256  # main_HTNet.py: dim=256 (width of the first hierarchy, doubled per hierarchy)
    heads: int = 3  # main_HTNet.py: heads=3 (first hierarchy; doubled per hierarchy)
    num_hierarchies: int = 3  # main_HTNet.py: num_hierarchies=3
    block_repeats: tuple[int, ...] = (2, 2, 10)  # main_HTNet.py: block_repeats=(2, 2, 10), bottom level first
    mlp_mult: int = 4  # Model.py: HTNet(mlp_mult=4) default
    channels: int = 3  # Model.py: channels=3 (u, v, strain)
    dropout: float = 0.0  # Model.py: dropout=0. default, not set by main_HTNet.py
    optimizer: str = "adam"  # main_HTNet.py: torch.optim.Adam(model.parameters(), lr=learning_rate)
    lr: float = 5e-5  # main_HTNet.py: learning_rate = 0.00005
    batch_size: int = 256  # main_HTNet.py: batch_size = 256
    epochs: int = 800  # main_HTNet.py: epochs = 800
    weight_decay: float = 0.0  # main_HTNet.py: Adam without weight decay
    input_scale: float = 255.0  # main_HTNet.py: cv2.imread values go to torch.Tensor unscaled (0..255)
    bgr: bool = True  # main_HTNet.py: cv2.imread channel order (B, G, R) = (strain, v, u)
    batch_order: str = "by_label"  # main_HTNet.py: DataLoader(dataset_train, batch_size) without shuffle,
    # training files appended expression folder by expression folder (u_train/<expression>/...)
    landmarks: str = "detector"  # main_HTNet.py: MTCNN landmarks of the apex image resized to 28x28;
    # "fixed" = its no-face fallback coordinates for every clip
    centres: str = "reference"  # main_HTNet.py indexes image[x - 7:x + 7, y - 7:y + 7] (row from x);
    # "image" = rows from y (see benchmarks.data.patch_views)
    select_epoch: str = "oracle"  # main_HTNet.py: each subject's best test-accuracy epoch (ties: the later)

    def __post_init__(self) -> None:
        object.__setattr__(self, "block_repeats", tuple(int(b) for b in self.block_repeats))
        if self.num_classes < 2:
            raise ValueError(f"HTNetConfig.num_classes must be >= 2, got {self.num_classes}")
        if self.image_size % self.patch_size:
            raise ValueError(f"HTNetConfig: image_size {self.image_size} is not a multiple of patch_size "
                             f"{self.patch_size}")
        fmap, blocks = self.image_size // self.patch_size, 2 ** (self.num_hierarchies - 1)
        if fmap % blocks:
            raise ValueError(f"HTNetConfig: the {fmap}x{fmap} token map cannot be cut into {blocks}x{blocks} "
                             f"blocks ({self.num_hierarchies} hierarchies)")
        if len(self.block_repeats) != self.num_hierarchies:
            raise ValueError(f"HTNetConfig.block_repeats needs {self.num_hierarchies} entries, got "
                             f"{self.block_repeats}")
        if self.landmarks not in ("detector", "fixed"):
            raise ValueError(f"HTNetConfig.landmarks must be 'detector' or 'fixed', got {self.landmarks!r}")
        if self.centres not in ("reference", "image"):
            raise ValueError(f"HTNetConfig.centres must be 'reference' or 'image', got {self.centres!r}")


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of a ``(B, C, H, W)`` map: ``(x - mean) / sqrt(var + eps) * g + b``
    (biased variance, eps inside the root, as ``Model.py``'s ``LayerNorm``)."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.g = nn.Parameter(torch.ones(1, dim, 1, 1))
        self.b = nn.Parameter(torch.zeros(1, dim, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=1, keepdim=True)
        var = x.var(dim=1, unbiased=False, keepdim=True)
        return (x - mean) * torch.rsqrt(var + self.eps) * self.g + self.b


class PreNorm(nn.Module):
    """``fn(norm(x))``."""

    def __init__(self, dim: int, fn: nn.Module) -> None:
        super().__init__()
        self.norm = ChannelLayerNorm(dim)
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.norm(x))


class FeedForward(nn.Module):
    """1x1 conv ``dim -> mult * dim`` -> GELU -> dropout -> 1x1 conv back -> dropout."""

    def __init__(self, dim: int, mult: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(dim, dim * mult, 1), nn.GELU(), nn.Dropout(dropout),
                                 nn.Conv2d(dim * mult, dim, 1), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Attention(nn.Module):
    """Multi-head self-attention over the ``H * W`` positions of a map; head width ``dim // heads``."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.heads, self.dim_head = heads, dim // heads
        inner = self.dim_head * heads
        self.scale = self.dim_head ** -0.5
        self.attend = nn.Softmax(dim=-1)
        self.dropout = nn.Dropout(dropout)
        self.to_qkv = nn.Conv2d(dim, inner * 3, 1, bias=False)
        self.to_out = nn.Sequential(nn.Conv2d(inner, dim, 1), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        q, k, v = (t.reshape(b, self.heads, self.dim_head, h * w).transpose(-1, -2)
                   for t in self.to_qkv(x).chunk(3, dim=1))            # (B, heads, HW, d)
        attn = self.dropout(self.attend(q @ k.transpose(-1, -2) * self.scale))
        out = (attn @ v).transpose(-1, -2).reshape(b, self.heads * self.dim_head, h, w)
        return self.to_out(out)


class Transformer(nn.Module):
    """``depth`` pre-norm blocks (attention, then MLP, each residual) after adding a learned position
    scalar per position (``seq_len`` of them; a block of ``H * W`` positions uses the first ``H * W``)."""

    def __init__(self, dim: int, seq_len: int, depth: int, heads: int, mlp_mult: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.pos_emb = nn.Parameter(torch.randn(seq_len))
        self.layers = nn.ModuleList(
            nn.ModuleList([PreNorm(dim, Attention(dim, heads, dropout)),
                           PreNorm(dim, FeedForward(dim, mlp_mult, dropout))]) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x = x + self.pos_emb[: h * w].reshape(1, 1, h, w)
        for attn, ff in self.layers:
            x = attn(x) + x
            x = ff(x) + x
        return x


def aggregate(dim: int, dim_out: int) -> nn.Sequential:
    """The block-aggregation layer: conv 3x3 (padding 1) ``dim -> dim_out`` -> channel LayerNorm ->
    max-pool 3x3, stride 2, padding 1 (the map's height and width halve, rounding up)."""
    return nn.Sequential(nn.Conv2d(dim, dim_out, 3, padding=1), ChannelLayerNorm(dim_out),
                         nn.MaxPool2d(3, stride=2, padding=1))


class PatchEmbedInput(nn.Module):
    """``(B, C, H, W)`` -> ``(B, p * p * C, H / p, W / p)``: each p x p patch flattened row, column, channel."""

    def __init__(self, patch: int) -> None:
        super().__init__()
        self.patch = patch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, hh, ww = x.shape
        p = self.patch
        x = x.reshape(b, c, hh // p, p, ww // p, p).permute(0, 3, 5, 1, 2, 4)
        return x.reshape(b, p * p * c, hh // p, ww // p)


def to_blocks(x: torch.Tensor, n: int) -> torch.Tensor:
    """``(B, C, n*h, n*w)`` -> ``(B*n*n, C, h, w)``: the n x n non-overlapping blocks, row-major per sample."""
    b, c, hh, ww = x.shape
    x = x.reshape(b, c, n, hh // n, n, ww // n).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b * n * n, c, hh // n, ww // n)


def from_blocks(x: torch.Tensor, n: int) -> torch.Tensor:
    """Inverse of :func:`to_blocks`."""
    bnn, c, h, w = x.shape
    x = x.reshape(bnn // (n * n), n, n, c, h, w).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(bnn // (n * n), c, n * h, n * w)


class HTNet(nn.Module):
    """HTNet; ``forward(x)`` maps ``(B, channels, image_size, image_size)`` to logits ``(B, num_classes)``."""

    def __init__(self, *, image_size: int = 28, patch_size: int = 7, num_classes: int = 3, dim: int = 256,
                 heads: int = 3, num_hierarchies: int = 3, block_repeats: tuple[int, ...] = (2, 2, 10),
                 mlp_mult: int = 4, channels: int = 3, dropout: float = 0.0) -> None:
        super().__init__()
        self.image_size, self.channels = image_size, channels
        fmap = image_size // patch_size
        seq_len = (fmap // 2 ** (num_hierarchies - 1)) ** 2  # tokens per block, the same at every level
        mults = [2 ** k for k in range(num_hierarchies)]
        dims = [m * dim for m in mults]
        self.to_patch_embedding = nn.Sequential(PatchEmbedInput(patch_size),
                                                nn.Conv2d(channels * patch_size ** 2, dims[0], 1))
        self.layers = nn.ModuleList()
        for k in range(num_hierarchies):
            last = k == num_hierarchies - 1
            self.layers.append(nn.ModuleList([
                Transformer(dims[k], seq_len, block_repeats[k], mults[k] * heads, mlp_mult, dropout),
                nn.Identity() if last else aggregate(dims[k], dims[k + 1])]))
        self.mlp_head = nn.Sequential(ChannelLayerNorm(dims[-1]), SpatialMean(), nn.Linear(dims[-1], num_classes))

    @classmethod
    def from_config(cls, config: HTNetConfig) -> HTNet:
        return cls(image_size=config.image_size, patch_size=config.patch_size, num_classes=config.num_classes,
                   dim=config.dim, heads=config.heads, num_hierarchies=config.num_hierarchies,
                   block_repeats=config.block_repeats, mlp_mult=config.mlp_mult, channels=config.channels,
                   dropout=config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.image_size
        if x.ndim != 4 or x.shape[1] != self.channels or tuple(x.shape[2:]) != (s, s):
            raise ValueError(f"HTNet expects (B, {self.channels}, {s}, {s}), got {tuple(x.shape)}")
        x = self.to_patch_embedding(x)
        n_levels = len(self.layers)
        for k, (transformer, agg) in enumerate(self.layers):
            n = 2 ** (n_levels - 1 - k)  # blocks per side at this level: 4, 2, 1
            x = agg(from_blocks(transformer(to_blocks(x, n)), n))
        return self.mlp_head(x)


class SpatialMean(nn.Module):
    """``(B, C, H, W)`` -> ``(B, C)``: the mean over positions."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))
