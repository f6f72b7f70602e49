"""Off-TANet: a lightweight recogniser on onset->apex optical flow with a "triplet" attention block
(Zhang, Liu & Zhou, PRICAI 2021, LNCS 13033, pp. 266-279).

Input ``(B, 3, 112, 112)`` = (u, v, optical strain). Stem: conv 7x7 stride 2 (3 -> 8) -> ReLU -> BatchNorm
(56x56). Two residual blocks, 8 -> 18 (28x28) and 18 -> 28 (14x14), each [conv 3x3 -> BN -> ReLU] x 2 plus a
1x1 projection of the block input, then max-pool 2. The enhanced block (28 -> 8, 14x14 -> 7x7): conv 3x3
28 -> 28 -> BN -> ReLU, channel gate, spatial gate (together a CBAM), 4-head self-attention (28 -> 4 x 7),
conv 3x3 28 -> 8 -> BN -> ReLU, plus a 1x1 projection of the block input, max-pool 2. Head: 392 -> 64 -> 64 ->
classes, ReLU and dropout 0.5 after each hidden layer. 59,403 parameters for 3 classes (the paper's count).

Sources (read for facts only; no code copied): ``ECNU-Cross-Innovation-Lab/PRICAI2021-Off-TANet``, commit
5ae73be796d38c3bd6aaa4cc2b7d03c5ac001ef4 (code unchanged at b6149babd1b1d3f7a0c16a413ff7a77db805f0b0):
``models/off_tanet.py`` (layers, ``net_type='ta'``), ``train_arg.py`` (settings), ``train.py`` (training loop,
epoch rule), ``data.py`` (inputs); the README and the paper's abstract (59,403 parameters, UAR 0.7315 / UF1
0.7242 on CASME + CASME II + CAS(ME)^2, 294 clips, 49 subjects, 3 classes). Attribute names follow
``models/off_tanet.py``, so the authors' checkpoint (``LOSO1_60epoch.pth``, commit 9899c49) loads with
``strict=True``.

Facts of the reference's layers that differ from the usual modules, reproduced here:

- The CBAM is not Woo et al.'s default: the channel gate's shared MLP has ``channels // ratio`` hidden units
  with ``ratio = channels`` (one unit), no biases; the spatial gate is a 3x3 conv (not 7x7) on the channel
  mean and max, no bias.
- The self-attention is per channel and row-wise on a square map X (H x H) of each head: with Q, K, V the
  1x1-conv projections (with bias) and P the fixed positional matrix (:func:`positional_code`),
  ``A = softmax(Q K^T + Q P^T)`` where the softmax runs over all H*H entries of each channel's map, and the
  output is the element-wise product ``A * V`` (not a matrix product). ``pos_bias=True`` (a reference option,
  off there) uses ``Q K^T + P``.
- The stem applies ReLU before BatchNorm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

BLOCKS = ("ta", "cbam", "sa", "res")
STRAINS = ("code", "view")


@dataclass(frozen=True)
class OffTANetConfig:
    """Model and training settings of the authors' code (``PRICAI2021-Off-TANet``, commit 5ae73be)."""

    num_classes: int = 3  # models/off_tanet.py: nn.Linear(64, 3) (set from the dataset by the harness)
    input_size: int = 112  # train_arg.py: data_args img_sz 112; off_tanet.py comment [N,3,112,112]
    dropout: float = 0.5  # off_tanet.py: nn.Dropout(0.5) after both hidden FC layers
    block: str = "ta"  # train_arg.py: net_type 'ta'; the paper's ablations: 'cbam', 'sa', 'res'
    pos_bias: bool = False  # off_tanet.py: SelfAttention(pos_bias=False) as built by EnhancedResidual
    strain: str = "code"  # data.py: Sobel strain of the 112 px flow (formula below); "view": the harness's
    optimizer: str = "adam"  # train_arg.py: optim.Adam
    lr: float = 1e-3  # train_arg.py: optimizer_args {'lr': 1e-3}
    batch_size: int = 64  # train_arg.py: batch_size = 64 (DataLoader shuffle=True)
    epochs: int = 201  # train_arg.py: n_epochs = 201
    weight_decay: float = 0.0  # train_arg.py: Adam without weight decay
    lr_schedule: str = "step"  # train_arg.py: optim.lr_scheduler.StepLR, stepped once per epoch (train.py)
    lr_step_size: int = 60  # train_arg.py: scheduler_args step_size 60
    lr_gamma: float = 0.3  # train_arg.py: scheduler_args gamma 0.3

    def __post_init__(self) -> None:
        if self.num_classes < 2:
            raise ValueError(f"OffTANetConfig.num_classes must be >= 2, got {self.num_classes}")
        if self.input_size < 16 or self.input_size % 16:
            raise ValueError(f"OffTANetConfig.input_size must be a positive multiple of 16, got {self.input_size}")
        if self.block not in BLOCKS:
            raise ValueError(f"OffTANetConfig.block must be one of {BLOCKS}, got {self.block!r}")
        if self.strain not in STRAINS:
            raise ValueError(f"OffTANetConfig.strain must be one of {STRAINS}, got {self.strain!r}")


# ------------------------------------------------------------------------------------------ attention
class ChannelGate(nn.Module):
    """CBAM channel gate: ``sigmoid(mlp(avgpool(x)) + mlp(maxpool(x)))``, shape (B, C, 1, 1); shared MLP
    C -> C // ratio -> C of bias-free 1x1 convs with ReLU (Off-TANet: ratio = C, one hidden unit)."""

    def __init__(self, channels: int, ratio: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // ratio, 1, bias=False)
        self.fc2 = nn.Conv2d(channels // ratio, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def mlp(t: torch.Tensor) -> torch.Tensor:
            return self.fc2(F.relu(self.fc1(t)))

        return torch.sigmoid(mlp(F.adaptive_avg_pool2d(x, 1)) + mlp(F.adaptive_max_pool2d(x, 1)))


class SpatialGate(nn.Module):
    """CBAM spatial gate: ``sigmoid(conv([mean_c(x), max_c(x)]))``, shape (B, 1, H, W); bias-free conv of
    ``kernel_size`` (Off-TANet: 3)."""

    def __init__(self, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv1(pooled))


def positional_code(size: int) -> torch.Tensor:
    """(size, size) fixed positional matrix ``P[a, b] = p[a] + p[b]`` with ``p[i] = sin(w_i)`` for even i,
    ``cos(w_i)`` for odd i, ``w_i = 10000 ** (-(i // 2) / size)`` (as the reference builds it)."""
    p = torch.tensor([(math.sin if i % 2 == 0 else math.cos)(10000.0 ** (-(i // 2) / size)) for i in range(size)])
    return p[:, None] + p[None, :]


class RowSelfAttention(nn.Module):
    """One head: 1x1 projections Q, K, V (C_in -> C_out, with bias); per channel
    ``softmax_{all H*H}(Q K^T + Q P^T) * V`` (element-wise), on square ``size x size`` maps."""

    def __init__(self, in_channels: int, out_channels: int, size: int, pos_bias: bool = False) -> None:
        super().__init__()
        self.w_q = nn.Conv2d(in_channels, out_channels, 1)
        self.w_k = nn.Conv2d(in_channels, out_channels, 1)
        self.w_v = nn.Conv2d(in_channels, out_channels, 1)
        self.pos_bias = pos_bias
        self.size = size
        self.register_buffer("pos_code", positional_code(size), persistent=False)  # not in the reference's state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != (self.size, self.size):
            raise ValueError(f"RowSelfAttention expects {self.size}x{self.size} maps, got {tuple(x.shape)}")
        q, k, v = self.w_q(x), self.w_k(x), self.w_v(x)
        pos = self.pos_code.to(q.dtype)
        logits = q @ k.transpose(-1, -2) + (pos if self.pos_bias else q @ pos.transpose(-1, -2))
        att = torch.softmax(logits.flatten(2), dim=-1).view_as(logits)
        return att * v


class MultiHeadRowAttention(nn.Module):
    """``heads`` :class:`RowSelfAttention` heads side by side, outputs concatenated on channels."""

    def __init__(self, in_channels: int, head_channels: int, heads: int, size: int, pos_bias: bool = False) -> None:
        super().__init__()
        self.sa_blocks = nn.ModuleList(RowSelfAttention(in_channels, head_channels, size, pos_bias)
                                       for _ in range(heads))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([head(x) for head in self.sa_blocks], dim=1)


# --------------------------------------------------------------------------------------------- blocks
def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]


class ResidualBlock(nn.Module):
    """[conv3x3 -> BN -> ReLU] x 2 plus a 1x1 projection of the input, then max-pool 2: (C_in, H) -> (C_out, H/2)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(*_conv_bn_relu(in_channels, out_channels), *_conv_bn_relu(out_channels, out_channels))
        self.botneck = nn.Conv2d(in_channels, out_channels, 1)
        self.pool = nn.MaxPool2d(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv(x) + self.botneck(x))


class EnhancedBlock(nn.Module):
    """The enhanced residual block: conv3x3 (C_in) -> [channel gate, spatial gate] -> [self-attention] ->
    conv3x3 (C_out), plus a 1x1 projection of the input, max-pool 2. ``block``: ``"ta"`` (both attentions,
    the model), ``"cbam"`` (no self-attention), ``"sa"`` (no CBAM; the heads give C_out channels and the second
    conv is skipped, as in the reference's ablation)."""

    def __init__(self, in_channels: int, out_channels: int, size: int, block: str = "ta", heads: int = 4,
                 pos_bias: bool = False) -> None:
        super().__init__()
        if block not in ("ta", "cbam", "sa"):
            raise ValueError(f"EnhancedBlock: block must be 'ta', 'cbam' or 'sa', got {block!r}")
        self.block = block
        self.conv1 = nn.Sequential(*_conv_bn_relu(in_channels, in_channels))
        if block != "sa":
            self.conv2 = nn.Sequential(*_conv_bn_relu(in_channels, out_channels))
        self.botneck = nn.Conv2d(in_channels, out_channels, 1)
        self.pool = nn.MaxPool2d(2, 2)
        if block in ("ta", "cbam"):
            self.spa = SpatialGate(3)
            self.ca = ChannelGate(in_channels, ratio=in_channels)
        if block in ("ta", "sa"):
            head_channels = (in_channels if block == "ta" else out_channels) // heads
            self.sa = MultiHeadRowAttention(in_channels, head_channels, heads, size, pos_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.botneck(x)
        x = self.conv1(x)
        if self.block != "sa":
            x = self.ca(x) * x
            x = self.spa(x) * x
        if self.block != "cbam":
            x = self.sa(x)
        if self.block != "sa":
            x = self.conv2(x)
        return self.pool(x + skip)


class OffTANet(nn.Module):
    """Off-TANet; ``forward(x)`` maps ``(B, 3, S, S)`` (u, v, strain; S = 112) to logits ``(B, num_classes)``."""

    def __init__(self, num_classes: int = 3, input_size: int = 112, dropout: float = 0.5, block: str = "ta",
                 pos_bias: bool = False) -> None:
        super().__init__()
        self.input_size = input_size
        self.conv1 = nn.Sequential(nn.Conv2d(3, 8, 7, stride=2, padding=3), nn.ReLU(), nn.BatchNorm2d(8))
        self.res1 = ResidualBlock(8, 18)
        self.res2 = ResidualBlock(18, 28)
        size = input_size // 8  # 14 for 112
        self.eres = ResidualBlock(28, 8) if block == "res" else EnhancedBlock(28, 8, size, block, 4, pos_bias)
        flat = 8 * (input_size // 16) ** 2  # 392 for 112
        self.dense = nn.Sequential(nn.Linear(flat, 64), nn.ReLU(), nn.Dropout(dropout),
                                   nn.Linear(64, 64), nn.ReLU(), nn.Dropout(dropout),
                                   nn.Linear(64, num_classes))

    @classmethod
    def from_config(cls, config: OffTANetConfig) -> OffTANet:
        return cls(num_classes=config.num_classes, input_size=config.input_size, dropout=config.dropout,
                   block=config.block, pos_bias=config.pos_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.input_size
        if x.ndim != 4 or x.shape[1] != 3 or tuple(x.shape[2:]) != (s, s):
            raise ValueError(f"OffTANet expects (B, 3, {s}, {s}) = (u, v, strain), got {tuple(x.shape)}")
        x = self.eres(self.res2(self.res1(self.conv1(x))))
        return self.dense(torch.flatten(x, 1))


# ------------------------------------------------------------------------------------------ input
def sobel_xy(img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """3x3 Sobel derivatives (d/dx, d/dy) of ``(N, H, W)`` maps, unnormalised (a unit ramp gives 8) with
    reflect-101 borders: OpenCV's ``cv2.Sobel(img, CV_32F, 1, 0)`` / ``(0, 1)`` defaults."""
    smooth, diff = torch.tensor([1.0, 2.0, 1.0]), torch.tensor([-1.0, 0.0, 1.0])
    kx = (smooth[:, None] * diff[None, :]).to(img.dtype)
    padded = F.pad(img[:, None], (1, 1, 1, 1), mode="reflect")
    weight = torch.stack([kx, kx.T])[:, None]
    out = F.conv2d(padded, weight)
    return out[:, 0], out[:, 1]


def code_strain(uv: torch.Tensor) -> torch.Tensor:
    """The strain channel of the reference's ``data.py``: from Sobel derivatives of u and v,
    ``sqrt(u_x^2 + u_y^2 + 0.5 (v_x + u_y)^2)``. The textbook optical strain has ``v_y^2`` in the second term
    (:func:`benchmarks.data.flow.optical_strain`); the reference squares ``u_y`` there. ``uv``: (N, 2, H, W)."""
    ux, uy = sobel_xy(uv[:, 0])
    vx, _ = sobel_xy(uv[:, 1])
    return torch.sqrt(ux * ux + uy * uy + 0.5 * (vx + uy) ** 2)
