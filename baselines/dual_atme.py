"""Dual-ATME: dual-branch attention network (Zhou, Huang, Li & Wang, Entropy 25(3):460, 2023).

Two 28x28 optical-flow images (onset -> apex) of one clip: the whole face (upper branch, "AARS") and a
mosaic of facial regions (lower branch, "HARS"; built by ``benchmarks.data.roi_views``). Each branch:
Inception(3 -> 4x6 = 24) -> max-pool 2 -> Inception(24 -> 4x12 = 48) -> max-pool 2, i.e. 48 x 7 x 7. An
Inception block has four paths concatenated on channels: 1x1; 1x1 (6) -> 3x3; 1x1 (6) -> 5x5; max-pool 3/1 ->
1x1, each convolution followed by BatchNorm and ReLU. CBAM (channel attention: shared MLP 48 -> 48/16 -> 48
over average- and max-pooled descriptors, summed, sigmoid; then spatial attention: a 3x3 convolution of the
channel mean and max, sigmoid) refines the face branch. The two 2352-vectors are concatenated (4704) -> FC
1024 -> BatchNorm -> ReLU -> dropout 0.5 -> FC classes. Loss: focal (gamma 2, alpha 1) on the logits plus
0.01 x mean(1 - cos(face features, mosaic features)) of the flattened branch outputs. 4,833,193 parameters
for 3 classes (hand count in ``tests/test_dual_atme.py``; the paper publishes none).

Sources (read for facts only; no code copied): the paper (Fig. 1: the two branches, CBAM in the upper branch
only, the 7x7x48 features, FC1 4704 -> FC2 1024, L_con + L_cls; Sec. 3.3.1: no attention block in the lower
branch, "did not significantly improve performance", Table 1) and ``HaoliangZhou/Dual-ATME`` at commit
5f2480fbbc83d95c886908914ff82fe5aadf1190: ``Me_Model_att.py`` (classes ``CBAM``, ``Inception``,
``MEROIInception``: layer sizes, attribute names), ``LossFunctions.py`` (``FocalLoss``: alpha = ones, gamma
2, batch mean), ``ModelTrain_MERoI_flow_3ls_cde2019.py`` (Adam lr 1e-3, batch 128, 60 epochs, shuffled
loader, last epoch tested, loss ``0.01 * (1 - CosineSimilarity(dim=1)).mean() + focal``, inputs
``Resize(28)``, ``ToTensor``, ``Normalize(0.5, 0.5)``), ``Datasets.py`` (``data`` = the face flow image,
``data1`` = the same path with ``flow`` -> ``flow_puzzle``, both read as 3-channel RGB).

Where they disagree (each a config field):

- ``cbam_branches``: the script's ``MEROIInception.forward`` applies its one ``cbam`` module to both branches
  (a comment on that line notes that this scored lower, 65 %); the paper's Fig. 1 and Sec. 3.3.1 put CBAM in
  the face branch only. Default ``"face"`` (paper); ``"shared"`` = the script; ``"separate"`` = one CBAM
  per branch (adds ``cbam2``, 358 parameters).
- The script builds ``StepLR(step_size=10, gamma=0.5)`` but never calls ``scheduler.step()``, so its runs
  trained at a constant 1e-3; the harness's config sets ``lr_schedule="step"`` (the schedule the script
  sets up; the method's ``script`` variant trains at a constant rate, as the script ran).
- The script reads ``args.featuremap`` and ``args.poolsize``, which its parser does not define (they are
  RCN's arguments, ``xiazhaoqiang/ParameterFreeRCNs-MicroExpressionRec`` README: ``--featuremap 32
  --poolsize 5``); ``MEROIInception`` uses neither, so they have no counterpart here.
- The flow images' three channels are not documented (the data lists follow RCN, whose README says the
  flow is "extracted by your own tools"); ``channels`` picks from (u, v, strain), all three by default.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CBAM_BRANCHES = ("face", "shared", "separate")
REFERENCE = "HaoliangZhou/Dual-ATME (commit 5f2480fbbc83d95c886908914ff82fe5aadf1190)"


@dataclass(frozen=True)
class DualATMEConfig:
    """Model, loss and training settings; sources in the module docstring and the method's ``sources``."""

    num_classes: int = 3  # MEGC2019 composite: negative, positive, surprise (set from the dataset)
    channels: tuple[int, ...] = (0, 1, 2)  # indices into (u, v, strain); the script reads 3-channel images
    input_size: int = 28  # script: transforms.Resize(28); paper Fig. 1: 7x7x48 after two 2x pools
    input_mean: float = 0.5  # script: Normalize([0.5]*3, [0.5]*3) after ToTensor: [0, 1] -> [-1, 1]
    input_std: float = 0.5
    widths: tuple[int, int] = (6, 12)  # Me_Model_att.py: Inception(3, 6), Inception(24, 12): 24 and 48 channels
    reduce_width: int = 6  # Me_Model_att.py: the 1x1 before the 3x3 and 5x5 paths has 6 filters in both blocks
    cbam_reduction: int = 16  # Me_Model_att.py: CBAM(channel, reduction=16, k_size=3)
    cbam_kernel: int = 3
    cbam_branches: str = "face"  # paper Fig. 1 / Sec. 3.3.1; "shared" = the script's forward
    hidden: int = 1024  # paper Fig. 1 FC2 1024; script: Linear(4704, 1024), BatchNorm1d, ReLU, Dropout(0.5)
    dropout: float = 0.5
    contrast_weight: float = 0.01  # script: loss = 0.01 * loss_contrast + loss_class
    loss: str = "focal"  # script: --lossfunction focal (LossFunctions.FocalLoss)
    focal_gamma: float = 2.0  # LossFunctions.FocalLoss(gamma=2)
    focal_alpha: tuple[float, ...] | None = None  # FocalLoss alpha = ones(class_num): None = 1 for every class
    optimizer: str = "adam"  # script: optim.Adam(params, lr=lr), no weight decay
    lr: float = 1e-3  # script: --learningrate 0.001
    weight_decay: float = 0.0
    batch_size: int = 128  # script: --batchsize 128, DataLoader(shuffle=True)
    epochs: int = 60  # script: --epochs 60; the last epoch's model is tested
    lr_schedule: str = "step"  # script: StepLR(step_size=10, gamma=0.5), constructed but never stepped
    lr_step_size: int = 10
    lr_gamma: float = 0.5
    rois: tuple[tuple[float, ...], ...] | None = None  # None: the view's DEFAULT_ROIS (benchmarks.data.roi_views)
    mosaic_source_size: int | None = None  # the flow the regions are cut from: None = finest available

    def __post_init__(self) -> None:
        if self.num_classes < 2:
            raise ValueError(f"DualATMEConfig.num_classes must be >= 2, got {self.num_classes}")
        if self.cbam_branches not in CBAM_BRANCHES:
            raise ValueError(f"DualATMEConfig.cbam_branches must be one of {CBAM_BRANCHES}, got {self.cbam_branches!r}")
        if self.input_size % 4 or self.input_size < 4:
            raise ValueError(f"DualATMEConfig.input_size must be a positive multiple of 4, got {self.input_size}")
        ch = self.channels
        if not ch or any(c not in (0, 1, 2) for c in ch) or len(set(ch)) != len(ch):
            raise ValueError(f"DualATMEConfig.channels must be distinct indices into (u, v, strain), got {ch}")
        if self.loss != "focal":
            raise ValueError(f"DualATMEConfig.loss: the model's own loss is focal, got {self.loss!r}")
        if self.focal_alpha is not None and len(self.focal_alpha) != self.num_classes:
            raise ValueError(f"DualATMEConfig.focal_alpha needs {self.num_classes} weights, got {self.focal_alpha}")
        if self.widths[1] * 4 < self.cbam_reduction:
            raise ValueError("DualATMEConfig: 4 * widths[1] must be >= cbam_reduction")


class CBAM(nn.Module):
    """Convolutional block attention (Woo et al., ECCV 2018): channel attention, then spatial attention."""

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 3) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.max_pool = nn.AdaptiveMaxPool2d(1)
        self.shared_MLP = nn.Sequential(nn.Linear(channels, channels // reduction), nn.ReLU(),
                                        nn.Linear(channels // reduction, channels))
        self.conv2d = nn.Conv2d(2, 1, kernel_size=kernel_size, stride=1, padding=kernel_size // 2)

    def channel_attention(self, x: Tensor) -> Tensor:
        """(B, C, 1, 1) weights: sigmoid(MLP(avg-pool x) + MLP(max-pool x))."""
        avg = self.shared_MLP(torch.flatten(self.avg_pool(x), 1))
        mx = self.shared_MLP(torch.flatten(self.max_pool(x), 1))
        return torch.sigmoid(avg + mx)[:, :, None, None]

    def spatial_attention(self, x: Tensor) -> Tensor:
        """(B, 1, H, W) weights: sigmoid(conv([channel mean, channel max]))."""
        stats = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv2d(stats))

    def forward(self, x: Tensor) -> Tensor:
        x = self.channel_attention(x) * x
        return self.spatial_attention(x) * x


def _conv_bn_relu(c_in: int, c_out: int, k: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel_size=k, padding=k // 2), nn.BatchNorm2d(c_out), nn.ReLU()]


class Inception(nn.Module):
    """Four paths, concatenated (``4 * out_channels`` channels, same H x W): 1x1; 1x1 -> 3x3; 1x1 -> 5x5;
    max-pool 3/1 -> 1x1 (``reduce`` filters in the 1x1 before the 3x3 and 5x5)."""

    def __init__(self, in_channels: int = 3, out_channels: int = 6, reduce: int = 6) -> None:
        super().__init__()
        self.branch1x1 = nn.Sequential(*_conv_bn_relu(in_channels, out_channels, 1))
        self.branch3x3 = nn.Sequential(*_conv_bn_relu(in_channels, reduce, 1), *_conv_bn_relu(reduce, out_channels, 3))
        self.branch5x5 = nn.Sequential(*_conv_bn_relu(in_channels, reduce, 1), *_conv_bn_relu(reduce, out_channels, 5))
        self.branch_pool = nn.Sequential(nn.MaxPool2d(kernel_size=3, stride=1, padding=1),
                                         *_conv_bn_relu(in_channels, out_channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch1x1(x), self.branch3x3(x), self.branch5x5(x), self.branch_pool(x)], dim=1)


def focal_loss(logits: Tensor, target: Tensor, gamma: float = 2.0, alpha: Tensor | None = None) -> Tensor:
    """Batch mean of ``-alpha_t (1 - p_t)^gamma log p_t`` (Lin et al. 2017; the script's ``FocalLoss``)."""
    log_p = F.log_softmax(logits, dim=-1).gather(-1, target[:, None])[:, 0]
    loss = -((1.0 - log_p.exp()).clamp(min=0) ** gamma) * log_p
    if alpha is not None:
        loss = alpha.to(loss.device, loss.dtype)[target] * loss
    return loss.mean()


def contrast_loss(face: Tensor, mosaic: Tensor) -> Tensor:
    """Batch mean of ``1 - cos(face_b, mosaic_b)`` over flattened features (``CosineSimilarity(dim=1)``, eps 1e-8)."""
    return (1.0 - F.cosine_similarity(torch.flatten(face, 1), torch.flatten(mosaic, 1), dim=1, eps=1e-8)).mean()


class DualATME(nn.Module):
    """``forward(face, mosaic)`` on two ``(B, C, S, S)`` flow images -> ``{"logits", "face", "mosaic"}`` (the
    branch features, ``(B, 48, S/4, S/4)``); ``loss(outputs, y)`` -> (total, {"focal", "contrast"})."""

    def __init__(self, config: DualATMEConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        w1, w2 = c.widths
        in_ch = len(c.channels)
        # attribute names as in the reference's MEROIInception (branch 1 = face, branch 2 = mosaic)
        self.Inception1_1 = Inception(in_ch, w1, c.reduce_width)
        self.Inception1_2 = Inception(4 * w1, w2, c.reduce_width)
        self.Inception2_1 = Inception(in_ch, w1, c.reduce_width)
        self.Inception2_2 = Inception(4 * w1, w2, c.reduce_width)
        self.maxpool = nn.MaxPool2d(kernel_size=2)
        self.cbam = CBAM(4 * w2, c.cbam_reduction, c.cbam_kernel)
        if c.cbam_branches == "separate":
            self.cbam2 = CBAM(4 * w2, c.cbam_reduction, c.cbam_kernel)
        side = c.input_size // 4
        self.fc = nn.Sequential(nn.Linear(2 * 4 * w2 * side * side, c.hidden), nn.BatchNorm1d(c.hidden), nn.ReLU(),
                                nn.Dropout(c.dropout), nn.Linear(c.hidden, c.num_classes))
        alpha = c.focal_alpha if c.focal_alpha is not None else (1.0,) * c.num_classes
        self.register_buffer("focal_alpha", torch.tensor(alpha, dtype=torch.float32), persistent=False)

    @classmethod
    def from_config(cls, config: DualATMEConfig) -> DualATME:
        return cls(config)

    def _branch(self, x: Tensor, first: Inception, second: Inception) -> Tensor:
        return self.maxpool(second(self.maxpool(first(x))))

    def forward(self, face: Tensor, mosaic: Tensor) -> dict[str, Tensor]:
        c, s = self.config, self.config.input_size
        for name, x in (("face", face), ("mosaic", mosaic)):
            if x.ndim != 4 or x.shape[1] != len(c.channels) or tuple(x.shape[2:]) != (s, s):
                raise ValueError(f"DualATME expects {name} of shape (B, {len(c.channels)}, {s}, {s}), "
                                 f"got {tuple(x.shape)}")
        f1 = self.cbam(self._branch(face, self.Inception1_1, self.Inception1_2))
        f2 = self._branch(mosaic, self.Inception2_1, self.Inception2_2)
        if c.cbam_branches == "shared":
            f2 = self.cbam(f2)
        elif c.cbam_branches == "separate":
            f2 = self.cbam2(f2)
        logits = self.fc(torch.cat([torch.flatten(f1, 1), torch.flatten(f2, 1)], dim=1))
        return {"logits": logits, "face": f1, "mosaic": f2}

    def loss(self, outputs: dict[str, Tensor], y: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """``focal(logits, y) + contrast_weight * contrast(face, mosaic)`` and both terms (detached)."""
        cls = focal_loss(outputs["logits"], y, self.config.focal_gamma, self.focal_alpha)
        con = contrast_loss(outputs["face"], outputs["mosaic"])
        return cls + self.config.contrast_weight * con, {"focal": cls.detach(), "contrast": con.detach()}
