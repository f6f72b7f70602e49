"""MFDAN: multi-level flow-driven attention network (Cai, Zhao, Yi, Yu, Duan, Pan & Liu, IEEE TCSVT 34(12),
2024, pp. 12823-12836; DOI 10.1109/TCSVT.2024.3437481). No public code: built from the paper (authors' copy,
``YongjinLiu/YongjinLiu.github.io`` files/2024-MFDAN_...pdf, commit e81aa49f80c3865d997ed9b66349f54599029b8b).

Two branches on the onset -> apex motion of a clip, concatenated before the classifier (Sec. III, Fig. 2):

- optical-flow encoder (Sec. III-A, Fig. 3): TV-L1 (u, v, optical strain) at 224x224 into the single-stream
  shallow network (SSSN) of Khor et al. (ICIP 2019; the DSSN paper): :class:`baselines.dssn.ShallowAlexNetStream`
  (conv 96 11x11/4, conv 256 5x5 in two groups, ReLU, LRN, max-pool), then FC -> dropout;
- image encoder with the MFDAN module (Sec. III-B/C, Figs. 2 and 4): the motion-magnified apex frame and the
  flow image share one 4x4 patch embedding (C = 96); two flow-driven layers (W-Driven, SW-Driven; 3 heads,
  window 7) at H/4; three patch mergings (shared by image and flow, the flow skipping the first block: Fig. 2's
  yellow path) to H/32 x 8C; two flow-driven layers (6 heads); LayerNorm and global average pooling.

Flow-driven attention (Eqs. 9-15, Fig. 4): one shared linear map gives Q, K, V of the image tokens and Q of the
flow tokens; per window and head ``softmax(Q_m K_m^T / sqrt(d) + B + M) V_m + softmax(cos(Q_f, K_m) / tau + B +
M) V_m``, then the output projection. ``B`` is a relative position bias (Swin) shared by both terms (Fig. 4's
single ``b``), ``tau`` a learnable temperature (per head, as Swin V2's logit scale: ``1 / tau = exp(s)``,
``s`` clamped at log 100), ``M`` the DropKey mask (Li et al., CVPR 2023; Eq. 12): in training each key logit is
masked with probability ``d`` before the softmax (one mask for both terms, as Eqs. 13-14 write one M_j), none
at evaluation. Layers are residual post-norm (Eqs. 4-7): ``z = z + LN(attn(z, f)); z = z + LN(MLP(z))``.

Choices where the paper is silent (exposed in :class:`MFDANConfig`): MLP ratio 4, qkv bias, GELU, patch-embedding
LayerNorm, truncated-normal(0.02) initialisation of the Transformer and no stochastic depth (Swin-T's
defaults, drop-path aside); the flow encoder's FC width (768 = the image feature width) with a ReLU (AlexNet's
FC6 convention) and dropout 0.5 (DSSN's); He-normal convolutions (DSSN). A window as large as the map is cut
to the map and not shifted (Swin's rule): at H/32 = 7 the SW-Driven layer is a second W-Driven layer.
Fig. 3 draws LRN before max-pooling; the SSSN code that DSSN reuses pools first, and so does this model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from baselines.adan import Adan  # noqa: F401  (the paper's optimizer; the harness builds it from `optimizer`)
from baselines.dssn import DSSNConfig, ShallowAlexNetStream, stream_output_size

PAPER = "Cai et al., IEEE TCSVT 2024 (MFDAN)"
DROPKEY_FILL = -1e12  # stands for Eq. 12's -inf: a row whose keys are all dropped stays finite (uniform)


@dataclass(frozen=True)
class MFDANConfig:
    """MFDAN's settings; each value's source is on its line (Sec. = the paper's section)."""

    num_classes: int = 3  # Sec. IV-A: negative, positive, surprise (MEGC2019 CDE)
    input_size: int = 224  # Sec. III-A: flow "adjusted to an image size of 224x224x3"; image the same (III-B)
    patch_size: int = 4  # Sec. III-B: "The patch size is 4x4"
    embed_dim: int = 96  # Sec. IV-D: "embedding vector size in the Transformer block is 96"
    heads: tuple[int, int] = (3, 6)  # Sec. IV-D: "attention heads of the Flow-Driven-Block module are 3 and 6"
    window: int = 7  # Sec. IV-D: "window size is 7x7"
    merges: int = 3  # Sec. III-B and Fig. 2: "down-sample the feature map three times" (H/4 -> H/32, C -> 8C)
    mlp_ratio: float = 4.0  # paper silent; Swin's 4
    qkv_bias: bool = True  # paper silent; Swin's qkv_bias=True
    tau_init: float = 0.1  # paper silent on tau's start; Swin V2's logit scale log(10), i.e. tau = 0.1
    dropkey: float = 0.4  # Sec. V-B, Table VII: d = 0.4 best on CASME II (0.3 on SAMM, SMIC: variant dropkey0.3)
    flow_features: int = 768  # paper silent (Fig. 3 "FC"): the image feature width 8C
    flow_dropout: float = 0.5  # Fig. 3 "Dropout"; rate silent, DSSN's 0.5
    share_embedding: bool = True  # Fig. 2: one Patch Embed and one Patch Merging box for image and flow
    optimizer: str = "adan"  # Sec. III and IV-D: Adan (Xie et al. [60])
    lr: float = 1e-4  # Sec. IV-D: "the learning rate is 0.0001"
    batch_size: int = 16  # Sec. IV-D: "the batch size is 16"
    epochs: int = 100  # paper silent; a choice (see benchmarks.methods.mfdan)
    weight_decay: float = 0.0  # paper silent on the value (Adan's decoupled decay mentioned, Sec. IV-D)
    loss: str = "focal"  # Sec. III-E, Eq. 16
    focal_gamma: float = 2.0  # Sec. IV-D: "The gamma in the Focal loss is set to 2.0"
    magnify_alpha: float = 10.0  # substitute for MagNet (see benchmarks.data.magnify_views): Eulerian factor
    magnify_lambda_c: float = 16.0  # its cut-off wavelength (px at input_size)
    magnify_levels: int = 6  # its Laplacian levels

    def __post_init__(self) -> None:
        object.__setattr__(self, "heads", tuple(int(h) for h in self.heads))
        if self.num_classes < 2:
            raise ValueError(f"MFDANConfig.num_classes must be >= 2, got {self.num_classes}")
        if len(self.heads) != 2:
            raise ValueError(f"MFDANConfig.heads needs two entries (the two flow-driven blocks), got {self.heads}")
        side = self.input_size // self.patch_size
        if self.input_size % self.patch_size or side % 2 ** self.merges:
            raise ValueError(f"MFDANConfig: input_size {self.input_size} / patch {self.patch_size} cannot be "
                             f"halved {self.merges} times")
        for dim, h in zip(self.dims, self.heads, strict=True):
            if dim % h:
                raise ValueError(f"MFDANConfig: width {dim} is not divisible by {h} heads")
        if not 0 <= self.dropkey < 1 or not 0 <= self.flow_dropout < 1:
            raise ValueError("MFDANConfig.dropkey and flow_dropout must be in [0, 1)")
        if not self.tau_init > 0:
            raise ValueError(f"MFDANConfig.tau_init must be > 0, got {self.tau_init}")

    @property
    def dims(self) -> tuple[int, int]:
        return self.embed_dim, self.embed_dim * 2 ** self.merges

    @property
    def resolutions(self) -> tuple[int, int]:
        side = self.input_size // self.patch_size
        return side, side // 2 ** self.merges


# --------------------------------------------------------------------------------------------- windows
def window_partition(x: torch.Tensor, w: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * nW, w * w, C), windows in row-major order."""
    b, h, wd, c = x.shape
    x = x.view(b, h // w, w, wd // w, w, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, w * w, c)


def window_reverse(x: torch.Tensor, w: int, h: int, wd: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: (B * nW, w * w, C) -> (B, H, W, C)."""
    b = x.shape[0] // ((h // w) * (wd // w))
    x = x.view(b, h // w, wd // w, w, w, -1).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, wd, -1)


def relative_position_index(w: int) -> torch.Tensor:
    """(w*w, w*w) index into the (2w-1)^2 bias table: ``(dy + w - 1) * (2w - 1) + (dx + w - 1)`` for the offset
    (dy, dx) of query minus key (Swin's table layout)."""
    ys, xs = torch.meshgrid(torch.arange(w), torch.arange(w), indexing="ij")
    coords = torch.stack([ys.flatten(), xs.flatten()])  # (2, w*w)
    rel = coords[:, :, None] - coords[:, None, :]
    return (rel[0] + w - 1) * (2 * w - 1) + (rel[1] + w - 1)


def shift_mask(h: int, wd: int, w: int, s: int) -> torch.Tensor:
    """(nW, w*w, w*w) additive mask of a cyclic shift by ``s``: -100 between tokens of different regions (Swin)."""
    img = torch.zeros(1, h, wd, 1)
    cnt = 0
    for ys in (slice(0, -w), slice(-w, -s), slice(-s, None)):
        for xs in (slice(0, -w), slice(-w, -s), slice(-s, None)):
            img[:, ys, xs, :] = cnt
            cnt += 1
    win = window_partition(img, w).squeeze(-1)
    diff = win[:, None, :] - win[:, :, None]
    return torch.where(diff != 0, torch.tensor(-100.0), torch.tensor(0.0))


def dropkey_mask(shape: torch.Size, p: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Eq. 12: additive mask, DROPKEY_FILL with probability ``p`` and 0 otherwise (global RNG: seeded runs agree)."""
    return torch.bernoulli(torch.full(shape, p, device=device, dtype=dtype)) * DROPKEY_FILL


# ------------------------------------------------------------------------------------------- attention
class FlowDrivenWindowAttention(nn.Module):
    """Eqs. 9-15 on windows: image tokens ``x`` and flow tokens ``f``, both (B*nW, N, C)."""

    def __init__(self, dim: int, heads: int, window: int, qkv_bias: bool = True, tau_init: float = 0.1,
                 dropkey: float = 0.0) -> None:
        super().__init__()
        self.heads, self.window, self.dropkey = heads, window, dropkey
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)  # W_qkv, shared by image and flow (Eq. 9)
        self.proj = nn.Linear(dim, dim)
        self.logit_scale = nn.Parameter(torch.full((heads, 1, 1), math.log(1.0 / tau_init)))  # 1/tau = exp(.)
        self.bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        self.register_buffer("rel_index", relative_position_index(window), persistent=False)

    def position_bias(self) -> torch.Tensor:
        n = self.window * self.window
        return self.bias_table[self.rel_index.view(-1)].view(n, n, -1).permute(2, 0, 1)  # (heads, N, N)

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        b, n, c = t.shape
        return t.view(b, n, self.heads, c // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, f: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, c = x.shape
        q_m, k_m, v_m = (self._split(t) for t in self.qkv(x).chunk(3, dim=-1))
        q_f = self._split(self.qkv(f).chunk(3, dim=-1)[0])
        bias = self.position_bias().unsqueeze(0)
        s_self = (q_m * self.scale) @ k_m.transpose(-2, -1) + bias  # Eq. 10
        inv_tau = torch.clamp(self.logit_scale, max=math.log(100.0)).exp()
        s_flow = (F.normalize(q_f, dim=-1) @ F.normalize(k_m, dim=-1).transpose(-2, -1)) * inv_tau + bias  # Eq. 11
        if mask is not None:  # shifted windows: (nW, N, N)
            nw = mask.shape[0]
            m = mask.to(x.dtype)[None, :, None]
            s_self = (s_self.view(b // nw, nw, self.heads, n, n) + m).view(b, self.heads, n, n)
            s_flow = (s_flow.view(b // nw, nw, self.heads, n, n) + m).view(b, self.heads, n, n)
        if self.training and self.dropkey > 0:  # Eqs. 12-14: one mask M_j for both terms
            drop = dropkey_mask(s_self.shape, self.dropkey, x.device, x.dtype)
            s_self, s_flow = s_self + drop, s_flow + drop
        out = s_self.softmax(-1) @ v_m + s_flow.softmax(-1) @ v_m  # Eq. 15
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class FlowDrivenLayer(nn.Module):
    """One (S)W-Driven layer with its MLP, residual post-norm (Eqs. 4-7); tokens (B, H, W, C)."""

    def __init__(self, dim: int, heads: int, resolution: int, window: int, shift: int, cfg: MFDANConfig) -> None:
        super().__init__()
        if resolution <= window:  # Swin: a window as large as the map, no shift
            window, shift = resolution, 0
        self.window, self.shift = window, shift
        self.attn = FlowDrivenWindowAttention(dim, heads, window, cfg.qkv_bias, cfg.tau_init, cfg.dropkey)
        self.norm1 = nn.LayerNorm(dim)
        hidden = int(dim * cfg.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.norm2 = nn.LayerNorm(dim)
        mask = shift_mask(resolution, resolution, window, shift) if shift else None
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        xs, fs = x, f
        if self.shift:
            xs = torch.roll(x, (-self.shift, -self.shift), dims=(1, 2))
            fs = torch.roll(f, (-self.shift, -self.shift), dims=(1, 2))
        a = self.attn(window_partition(xs, self.window), window_partition(fs, self.window), self.mask)
        a = window_reverse(a, self.window, h, w)
        if self.shift:
            a = torch.roll(a, (self.shift, self.shift), dims=(1, 2))
        x = x + self.norm1(a)  # Eq. 4 / 6
        return x + self.norm2(self.mlp(x))  # Eq. 5 / 7


class PatchEmbed(nn.Module):
    """4x4 patches -> C (Sec. III-B: 48 values per patch, Linear Embedding), as a strided conv, then LayerNorm."""

    def __init__(self, patch: int, dim: int, in_channels: int = 3) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x).permute(0, 2, 3, 1))  # (B, H/4, W/4, C)


class PatchMerging(nn.Module):
    """2x2 neighbours concatenated (4C) -> LayerNorm -> Linear 4C -> 2C without bias (Swin's patch merging)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x))


class _Path(nn.Module):
    """Patch embedding and the mergings (one instance, or one per branch when not shared)."""

    def __init__(self, cfg: MFDANConfig) -> None:
        super().__init__()
        self.embed = PatchEmbed(cfg.patch_size, cfg.embed_dim)
        self.merges = nn.Sequential(*(PatchMerging(cfg.embed_dim * 2 ** k) for k in range(cfg.merges)))


class MFDAN(nn.Module):
    """MFDAN; ``forward(flow, image)``: (B, 3, S, S) flow image (u, v, strain) and magnified apex -> logits."""

    def __init__(self, config: MFDANConfig = MFDANConfig()) -> None:
        super().__init__()
        cfg = self.config = config
        (d1, d2), (r1, r2), w = cfg.dims, cfg.resolutions, cfg.window
        self.image_path = _Path(cfg)
        self.own_flow_path = None if cfg.share_embedding else _Path(cfg)
        self.block1 = nn.ModuleList([FlowDrivenLayer(d1, cfg.heads[0], r1, w, s, cfg) for s in (0, w // 2)])
        self.block2 = nn.ModuleList([FlowDrivenLayer(d2, cfg.heads[1], r2, w, s, cfg) for s in (0, w // 2)])
        self.norm = nn.LayerNorm(d2)
        dssn = DSSNConfig(input_size=cfg.input_size)
        self.flow_encoder = ShallowAlexNetStream(3, dssn)
        side = stream_output_size(cfg.input_size, dssn.tail_padding)
        self.flow_fc = nn.Linear(256 * side * side, cfg.flow_features)
        self.flow_dropout = nn.Dropout(cfg.flow_dropout)
        self.classifier = nn.Linear(cfg.flow_features + d2, cfg.num_classes)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    @classmethod
    def from_config(cls, config: MFDANConfig) -> MFDAN:
        return cls(config)

    def image_features(self, flow: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """The MFDAN module (Fig. 2): (B, 8C) pooled image features driven by the flow."""
        fp = self.own_flow_path if self.own_flow_path is not None else self.image_path
        x, f = self.image_path.embed(image), fp.embed(flow)
        for layer in self.block1:
            x = layer(x, f)
        x, f = self.image_path.merges(x), fp.merges(f)  # the flow skips block 1 (Fig. 2)
        for layer in self.block2:
            x = layer(x, f)
        return self.norm(x).mean(dim=(1, 2))

    def flow_features(self, flow: torch.Tensor) -> torch.Tensor:
        """The optical-flow encoder (Fig. 3): SSSN -> FC -> ReLU -> dropout."""
        return self.flow_dropout(F.relu(self.flow_fc(torch.flatten(self.flow_encoder(flow), 1))))

    def forward(self, flow: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        s = self.config.input_size
        for name, t in (("flow", flow), ("image", image)):
            if t.ndim != 4 or tuple(t.shape[1:]) != (3, s, s):
                raise ValueError(f"MFDAN expects {name} of shape (B, 3, {s}, {s}), got {tuple(t.shape)}")
        return self.classifier(torch.cat([self.flow_features(flow), self.image_features(flow, image)], dim=1))
