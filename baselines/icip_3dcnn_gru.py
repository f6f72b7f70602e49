"""Dual-branch shallow 3D-CNN + GRU with a modified CBAM (Fang, Liu & Liu, ICIP 2024).

C.-T. Fang, T.-J. Liu, K.-H. Liu, "Micro-expression recognition based on 3DCNN combined with GRU and new
attention mechanism", IEEE ICIP 2024. Reference code (Keras; read for facts, nothing copied):
``dannyFan-0201/ICIP_2024`` at commit ``64eafb7d96d103bbf6f712e9df1767bee9f64c49``, files ``ME_model.py``
(identical to ``CASME2/ME_model.py``), ``SAMM/ME_model.py``, ``SMIC/ME_model.py`` and ``attention.py``
(identical in the three folders up to unused extra classes).

Input ``(B, 3, T, H, W)`` (the first T frames of a clip, RGB, 128x128). Two parallel Conv3D with 32
filters (5x5x5 and 3x3x3, "same" padding), each LeakyReLU(0.2) and max-pool 2x2x2 ("same": ceil), are
concatenated (64 channels), then Conv3D 32 3x3x3, LeakyReLU, max-pool 2x2x2 -> ``(B, 32, T', H/4, W/4)``
with ``T' = ceil(ceil(T / 2) / 2)`` (8 for 30 frames, 3 for 10). The modified CBAM multiplies the features by
a channel attention ``sigmoid(0.5 (MLP_max(maxpool x) - MLP_avg(avgpool x)))`` (two separate MLPs C -> C/8
-> C with LeakyReLU) and by a spatial attention ``sigmoid(Conv3D_32,3x3x3([max_c x, mean_c x]))`` (32 output
maps, one per channel), both computed from the block's input (``attention_order="parallel"``, the code; the
README figure draws CBAM's sequential order with a shared MLP: settings ``attention_order``,
``shared_mlp``). Then per time step: flatten (H, W, C order, Keras's) -> dropout -> Dense 128 -> LeakyReLU ->
dropout -> Dense 64 -> LeakyReLU -> dropout -> GRU 1024 (every step) -> Dense 32 -> LeakyReLU -> Dense K.

Training (the model's own :meth:`ICIP3DCNNGRU.loss`): the per-step class-weighted cross-entropy averaged
over batch and steps (Keras's reduction: not divided by the weights' sum) with weights 0.3, 0.35, 0.35 for
negative, positive, surprise, plus Keras's L2 penalty ``0.01 * sum(w^2)`` on the kernels of Dense 128,
Dense 64 and the attention MLPs' first layers. The script trains every step on the clip label but
classifies a clip by the FIRST step's output (``y_pred[:, 0]``): ``readout="first"`` (``"last"``, ``"mean"``
are the alternatives). 7,656,395 parameters at 128x128 (any T), 3 classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

REFERENCE = "dannyFan-0201/ICIP_2024 (commit 64eafb7d96d103bbf6f712e9df1767bee9f64c49)"
READOUTS = ("first", "last", "mean")
COMBINES = ("max_minus_avg", "sum")
ORDERS = ("parallel", "sequential")
INITS = ("keras", "torch")
NORMS = ("dataset", "unit")


@dataclass(frozen=True)
class ICIP3DConfig:
    """Settings of ``ME_model.py`` / ``attention.py`` (``REFERENCE``); CASME II values unless noted."""

    num_classes: int = 3  # three MEGC2019 classes (negative, positive, surprise); set from the dataset
    in_channels: int = 3  # RGB frames of the video (imageio ffmpeg reader)
    n_frames: int = 30  # ME_model.py: image_depth = 30, range(30); SMIC/ME_model.py: 10
    image_size: int = 128  # ME_model.py: image_rows, image_columns = 128, 128 (cv2.INTER_AREA)
    frame_start: str = "clip"  # ME_model.py: frames 0..n-1 of each video file (its first frame)
    input_norm: str = "dataset"  # ME_model.py: x -= mean(all clips); x /= max(x) ("unit": x / 255)
    filters: int = 32  # ME_model.py: Conv3D(32, ...) in both branches and after the concatenation
    branch_kernels: tuple[int, int] = (5, 3)  # ME_model.py: Conv3D (5, 5, 5) and (3, 3, 3) branches
    fuse_kernel: int = 3  # ME_model.py: Conv3D(32, (3, 3, 3)) after concatenate
    leak: float = 0.2  # ME_model.py / attention.py: LeakyReLU(alpha=0.2)
    reduction: int = 8  # ME_model.py: CBAMModule(channels=32, reduction=8)
    channel_combine: str = "max_minus_avg"  # attention.py: sigmoid(0.5 * (max - avg)); "sum": CBAM's
    channel_scale: float = 0.5  # attention.py: the 0.5 factor (README figure: "* C")
    shared_mlp: bool = False  # attention.py: fc_avg and fc_max are separate (figure: "Shared MLP")
    attention_order: str = "parallel"  # attention.py: both maps from x (figure: channel, then spatial)
    spatial_kernel: int = 3  # attention.py: Conv3D(32, kernel_size=(3, 3, 3), activation='sigmoid')
    hidden: tuple[int, int] = (128, 64)  # ME_model.py: TimeDistributed Dense(128), Dense(64)
    dropout: float = 0.5  # ME_model.py: Dropout(0.5) x3; SAMM/ and SMIC/ME_model.py: Dropout(0.3)
    gru_units: int = 1024  # ME_model.py: GRU(1024, return_sequences=True)
    head_hidden: int = 32  # ME_model.py: Dense(32) + LeakyReLU before Dense(3, softmax)
    readout: str = "first"  # ClassLossCallback: argmax(predict(x))[:, 0], the first step
    class_weights: tuple[float, ...] | str = (0.3, 0.35, 0.35)  # ME_model.py / README: class_weights
    l2: float = 0.01  # ME_model.py / attention.py: kernel_regularizer=l2(0.01)
    init: str = "keras"  # Keras initialisers (he_normal, glorot_uniform, orthogonal); "torch": defaults
    optimizer: str = "adam"  # ME_model.py: compile(optimizer='adam') (Keras default lr 0.001)
    lr: float = 1e-3  # ME_model.py: Adam(learning_rate=0.001)
    batch_size: int = 8  # ME_model.py: model.fit(batch_size=8)
    epochs: int = 200  # ME_model.py: epochs=200
    weight_decay: float = 0.0  # the L2 terms are in the loss (Keras regularisers), not in Adam
    batch_order: str = "shuffle"  # ME_model.py: fit(shuffle=True)

    def __post_init__(self) -> None:
        for key, allowed in (("readout", READOUTS), ("channel_combine", COMBINES), ("attention_order", ORDERS),
                             ("init", INITS), ("input_norm", NORMS), ("frame_start", ("clip", "onset"))):
            if getattr(self, key) not in allowed:
                raise ValueError(f"ICIP3DConfig.{key} must be one of {allowed}, got {getattr(self, key)!r}")
        if self.num_classes < 2 or self.n_frames < 1 or self.image_size < 4:
            raise ValueError("ICIP3DConfig: num_classes >= 2, n_frames >= 1 and image_size >= 4 are required")
        w = self.class_weights
        if isinstance(w, str):
            if w not in ("balanced", "none"):
                raise ValueError(f"ICIP3DConfig.class_weights: a tuple, 'balanced' or 'none', got {w!r}")
        elif len(w) != self.num_classes or any(v < 0 for v in w):
            raise ValueError(f"ICIP3DConfig.class_weights: {len(w)} weights for {self.num_classes} classes: {w!r}")

    def steps(self) -> int:
        """GRU steps: the frames after two ceil-halving max-pools."""
        return pooled(pooled(self.n_frames))


def pooled(n: int) -> int:
    """Length after a 2-wide, stride-2 max-pool with Keras "same" padding (PyTorch ``ceil_mode=True``)."""
    return math.ceil(n / 2)


# ------------------------------------------------------------------------------------------ attention
class ChannelAttention3D(nn.Module):
    """``sigmoid(scale (MLP_max(max x) - MLP_avg(avg x)))`` over (T, H, W), ``(B, C, 1, 1, 1)``;
    ``combine="sum"``: CBAM's ``sigmoid(MLP_avg(avg x) + MLP_max(max x))``."""

    def __init__(self, channels: int, reduction: int = 8, leak: float = 0.2, combine: str = "max_minus_avg",
                 scale: float = 0.5, shared: bool = False) -> None:
        super().__init__()
        mlp = lambda: nn.Sequential(nn.Linear(channels, channels // reduction), nn.LeakyReLU(leak),  # noqa: E731
                                    nn.Linear(channels // reduction, channels))
        self.mlp_avg = mlp()
        self.mlp_max = self.mlp_avg if shared else mlp()
        self.combine, self.scale = combine, scale

    def forward(self, x: Tensor) -> Tensor:
        a = self.mlp_avg(x.mean(dim=(2, 3, 4)))
        m = self.mlp_max(x.amax(dim=(2, 3, 4)))
        z = self.scale * (m - a) if self.combine == "max_minus_avg" else a + m
        return torch.sigmoid(z)[:, :, None, None, None]


class SpatialAttention3D(nn.Module):
    """``sigmoid(conv([max over C, mean over C]))``: ``(B, out_channels, T, H, W)`` maps."""

    def __init__(self, out_channels: int = 32, kernel: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv3d(2, out_channels, kernel, padding=kernel // 2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.conv(torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], 1)))


class ModifiedCBAM3D(nn.Module):
    """``x * channel(x) * spatial(x)`` (parallel, the code) or ``y * spatial(y)``, ``y = x * channel(x)``."""

    def __init__(self, channels: int, cfg: ICIP3DConfig) -> None:
        super().__init__()
        self.channel = ChannelAttention3D(channels, cfg.reduction, cfg.leak, cfg.channel_combine,
                                          cfg.channel_scale, cfg.shared_mlp)
        self.spatial = SpatialAttention3D(channels, cfg.spatial_kernel)
        self.order = cfg.attention_order

    def forward(self, x: Tensor) -> Tensor:
        y = x * self.channel(x)
        return y * self.spatial(x if self.order == "parallel" else y)


class GRU(nn.Module):
    """A one-layer GRU over ``(B, T, I)`` returning every step's state, in ``nn.GRU``'s parameter layout
    (gates r, z, n; reset applied after the recurrent product, as Keras's ``reset_after=True``). Written with
    matrix products so that it runs under ``torch.func.vmap`` (the fold-batched trainer); ``nn.GRU`` does not."""

    def __init__(self, input_size: int, units: int) -> None:
        super().__init__()
        self.units = units
        self.weight_ih = nn.Parameter(torch.empty(3 * units, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * units, units))
        self.bias_ih = nn.Parameter(torch.zeros(3 * units))
        self.bias_hh = nn.Parameter(torch.zeros(3 * units))
        bound = 1 / math.sqrt(units)
        for w in (self.weight_ih, self.weight_hh):
            nn.init.uniform_(w, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        gi = F.linear(x, self.weight_ih, self.bias_ih)  # all steps' input products at once
        h = x.new_zeros(x.shape[0], self.units)
        out = []
        for t in range(x.shape[1]):
            i_r, i_z, i_n = gi[:, t].chunk(3, dim=-1)
            h_r, h_z, h_n = F.linear(h, self.weight_hh, self.bias_hh).chunk(3, dim=-1)
            r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
            h = (1 - z) * torch.tanh(i_n + r * h_n) + z * h
            out.append(h)
        return torch.stack(out, dim=1)


# ---------------------------------------------------------------------------------------------- model
def _he_normal(w: Tensor) -> None:
    """Keras ``he_normal``: truncated normal (2 std) of std ``sqrt(2 / fan_in) / 0.8796``."""
    std = math.sqrt(2.0 / nn.init._calculate_fan_in_and_fan_out(w)[0]) / 0.87962566103423978
    nn.init.trunc_normal_(w, 0.0, std, -2 * std, 2 * std)


class ICIP3DCNNGRU(nn.Module):
    """``forward(x)`` maps ``(B, C, T, H, W)`` to ``{"logits": (B, K) of the readout step, "step_logits":
    (B, T', K)}``; :meth:`loss` is the reference's training objective."""

    def __init__(self, cfg: ICIP3DConfig) -> None:
        super().__init__()
        self.cfg = cfg
        f, k5, k3 = cfg.filters, *cfg.branch_kernels
        self.branch_a = nn.Conv3d(cfg.in_channels, f, k5, padding=k5 // 2)
        self.branch_b = nn.Conv3d(cfg.in_channels, f, k3, padding=k3 // 2)
        self.fuse = nn.Conv3d(2 * f, f, cfg.fuse_kernel, padding=cfg.fuse_kernel // 2)
        self.act = nn.LeakyReLU(cfg.leak)
        self.pool = nn.MaxPool3d(2, 2, ceil_mode=True)
        self.cbam = ModifiedCBAM3D(f, cfg)
        side = pooled(pooled(cfg.image_size))
        self.drop = nn.Dropout(cfg.dropout)
        self.fc1 = nn.Linear(f * side * side, cfg.hidden[0])
        self.fc2 = nn.Linear(cfg.hidden[0], cfg.hidden[1])
        self.gru = GRU(cfg.hidden[1], cfg.gru_units)
        self.fc3 = nn.Linear(cfg.gru_units, cfg.head_hidden)
        self.out = nn.Linear(cfg.head_hidden, cfg.num_classes)
        k = cfg.num_classes
        w = cfg.class_weights
        weights = [1.0] * k if w == "none" else [1.0 / k] * k if w == "balanced" else list(w)
        self.register_buffer("class_weight", torch.tensor(weights, dtype=torch.float32))
        if cfg.init == "keras":
            self._keras_init()

    @classmethod
    def from_config(cls, cfg: ICIP3DConfig) -> ICIP3DCNNGRU:
        return cls(cfg)

    def _keras_init(self) -> None:
        ca = self.cbam.channel
        he = [self.branch_a, self.branch_b, self.fuse, self.fc1, self.fc2, self.fc3, ca.mlp_avg[2], ca.mlp_max[2]]
        glorot = [self.cbam.spatial.conv, self.out, ca.mlp_avg[0], ca.mlp_max[0]]
        for m in he + glorot:
            (_he_normal if m in he else nn.init.xavier_uniform_)(m.weight)
            nn.init.zeros_(m.bias)
        nn.init.xavier_uniform_(self.gru.weight_ih)
        nn.init.orthogonal_(self.gru.weight_hh)
        nn.init.zeros_(self.gru.bias_ih)
        nn.init.zeros_(self.gru.bias_hh)

    def regularized(self) -> list[Tensor]:
        """The kernels under Keras's ``l2(0.01)``: Dense 128, Dense 64, the attention MLPs' first layers."""
        ca = self.cbam.channel
        mlps = [ca.mlp_avg] if ca.mlp_max is ca.mlp_avg else [ca.mlp_avg, ca.mlp_max]
        return [self.fc1.weight, self.fc2.weight, *(m[0].weight for m in mlps)]

    def features(self, x: Tensor) -> Tensor:
        """``(B, 32, T', H/4, W/4)`` after the two convolution stages and the attention block."""
        a = self.pool(self.act(self.branch_a(x)))
        b = self.pool(self.act(self.branch_b(x)))
        return self.cbam(self.pool(self.act(self.fuse(torch.cat([a, b], dim=1)))))

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        if x.ndim != 5 or x.shape[1] != self.cfg.in_channels:
            raise ValueError(f"ICIP3DCNNGRU expects (B, {self.cfg.in_channels}, T, H, W), got {tuple(x.shape)}")
        z = self.features(x)
        z = z.permute(0, 2, 3, 4, 1).flatten(2)  # (B, T', H * W * C): Keras's TimeDistributed(Flatten())
        z = self.drop(self.act(self.fc1(self.drop(z))))
        z = self.drop(self.act(self.fc2(z)))
        steps = self.out(self.act(self.fc3(self.gru(z))))
        ro = self.cfg.readout
        logits = steps[:, 0] if ro == "first" else steps[:, -1] if ro == "last" else steps.mean(dim=1)
        return {"logits": logits, "step_logits": steps}

    def loss(self, outputs: dict[str, Tensor], y: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Mean over batch and steps of ``-w_y log max(p_y, 1e-15)`` plus ``l2 * sum(w^2)``."""
        log_p = F.log_softmax(outputs["step_logits"], dim=-1).clamp(min=math.log(1e-15))
        nll = -log_p.gather(-1, y[:, None, None].expand(-1, log_p.shape[1], 1)).squeeze(-1)
        wce = (self.class_weight[y][:, None] * nll).mean()
        l2 = self.cfg.l2 * sum((w ** 2).sum() for w in self.regularized())
        return wce + l2, {"wce": wce.detach(), "l2": l2.detach()}

    def set_class_weights(self, y_fit: Tensor) -> None:
        """``class_weights="balanced"``: inverse class frequency of ``y_fit``, summing to 1 like the
        reference's (0.3, 0.35, 0.35); absent classes 0."""
        counts = torch.bincount(y_fit.long().cpu(), minlength=self.cfg.num_classes).double()
        inv = torch.where(counts > 0, 1.0 / counts.clamp(min=1), torch.zeros_like(counts))
        with torch.no_grad():
            self.class_weight.copy_((inv / inv.sum()).float())
