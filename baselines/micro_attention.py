"""Micro-Attention (Wang, Peng, Bi & Chen, Neurocomputing 410 (2020) 354-362; arXiv 1811.02360).

A ResNet-10 on the grey apex frame with a *micro-attention* unit after each of its four residual blocks:
input BatchNorm -> conv 7x7/2 (64) -> BN -> ReLU -> max-pool 3/2 -> one basic block at 64, 128, 256 and 512
channels (the last three pre-activation, stride 2, 1x1/2 projection shortcut) -> BN -> ReLU -> global average
pool -> FC. Micro-attention on a block with shortcut ``s``, first conv output ``a`` (after its BN and ReLU) and
second conv output ``b`` (sum ``F = b + s``): ``M = sigmoid(avg_c(W [s, a, b]))`` with ``W`` a trainable 1x1 conv
3C -> C and ``avg_c`` a FIXED 1x1 conv C -> 1 with every weight 1/C (a channel mean); output ``F + F * M``, the
one-channel mask broadcast over the C channels. 5,943,813 parameters for 3 classes (hand count in the tests).

Sources (read for facts only; nothing copied):

- ``Mvrjustid/Micro-Attention-for-Micro-Expression`` ``train_test.prototxt`` (commit
  acffd462212ed3fea7807addee0e4e5113fe7b7e, "MA"): every layer above; Caffe ``BatchNorm`` + ``Scale`` pairs (an
  affine BatchNorm); convs without bias except conv1; pooling 3/2 in Caffe's ceil mode (224 -> 112 -> 56);
  the mask conv ``mask_Concat_<C>_1x1_one`` has ``lr_mult: 0``, ``decay_mult: 0`` and constant weights 1/C
  (0.015625, 0.0078125, 0.00390625, 0.00195312 = 1/512 rounded in the file); ``Tile`` to C channels,
  ``Eltwise PROD`` with the block sum, ``Eltwise SUM`` with it again. Initialisation: ``msra`` (conv1 with
  ``variance_norm: FAN_OUT``, the others Caffe's default FAN_IN), biases 0; FC ``xavier`` (Caffe: uniform
  +-sqrt(3 / fan_in); its ``std: 0.02`` is not read by that filler), bias 0.2. Data: grey, resized to 240,
  random 224 crop, no mirror (TRAIN); resized to 224, no crop (TEST); batch 10. No solver file.
- ``Trunpm/ACII19-Apex-Time-Network`` (commit 81789f16bed79d4a1bd09c84e2519a50d349058e, "ATN"), the authors'
  composite-database runs of Micro-Attention, ``MicroAttentionNet/CDE/CASMEII_sub01/``: ``prototxt/train.prototxt``
  (same network; data layer ``ReadImageAndPointData``: grey, resized to 224, no crop, batch 16, mirror, rotation
  max 5, colour shift max 10, "probability_value" 0.5); ``prototxt/solver.prototxt`` (SGD base_lr 0.01, step
  policy gamma 0.1 every 500 iterations, 2500 iterations, momentum 0.9, weight_decay 5e-6);
  ``prototxt/train_net.sh`` (fine-tunes ``Data/facia_expression_iter_50000.caffemodel``, a macro-expression
  model that is not published); ``get_samples_Train_Test_TXT.py`` (random oversampling of each class to the
  majority count: ``TrainBalance_Apex.txt``, 3 x 248 = 744 lines for that fold); ``Add_python_layers.py`` (the
  data layer: per image, with probability p each: mirror, a rotation by ``randint(0, 5)`` degrees
  counter-clockwise about the centre with a black border, subtracting ``randint(0, 10)`` from every pixel; raw
  0..255 intensities, mean 0, scale 1; the list reshuffled at every pass).

Choices where the sources disagree or leave a value open (each exposed in :class:`MicroAttentionConfig`):

- Crop: the defaults follow the composite configuration (224, no crop; ``train_resize=224``); MA's 240 -> random
  224 crop is ``train_resize=240`` (at evaluation the 224 input as is, as both sources' TEST phases do: no centre
  crop). Augmentation and crop run inside :meth:`MicroAttentionNet.forward` in training mode only, drawing
  from torch's global CPU generator (the trainer's ``"dropout"`` stream), the same on every device.
- Augmentation probability: ATN's layer reads the key ``probability`` but the prototxt passes
  ``probability_value``, so as run no augmentation was applied (p = 0; its mirror branch would also fail on a
  one-channel image). The default is the configuration's stated p = 0.5 (``augment_p``); ``augment_p=0`` is
  what ran. Rotation angles as the code draws them: integers 0..``max_rotation``, counter-clockwise only.
- BatchNorm at evaluation: Caffe's moving averages (factor 0.999, normalised by the sum of the weights, so
  no pull towards the initial 0 / 1; the variance unbiased), :class:`CaffeBatchNorm2d`.
- Not reproduced (the shared trainer has one parameter group): Caffe's ``lr_mult: 2`` on biases and Scale
  shifts and ``decay_mult: 0`` on the FC bias; Caffe's momentum form (``v = m v + lr g``) differs from
  PyTorch's (``v = m v + g``, step ``lr v``) only just after each lr step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

ITERATIONS = 2500  # ATN solver.prototxt max_iter
STEP_ITERATIONS = 500  # ATN solver.prototxt stepsize
EPOCH_SAMPLES = 744  # ATN CDE/CASMEII_sub01 TrainBalance_Apex.txt: 3 classes x 248 (one pass of the balanced list)


def iterations_to_epochs(iterations: int, batch_size: int, epoch_samples: int = EPOCH_SAMPLES) -> int:
    """Epochs (passes over ``epoch_samples``) closest to ``iterations`` batches of ``batch_size``; at least 1."""
    return max(1, round(iterations * batch_size / epoch_samples))


@dataclass(frozen=True)
class MicroAttentionConfig:
    """Model and training settings; "MA" / "ATN" as in the module docstring (files and commits there).

    ``epochs`` and ``lr_step_size`` are the solver's 2500 and 500 iterations of batch 16 in passes over the
    balanced training list (``batch_order="balanced"``: ``n_classes x`` the majority count), counted for ATN's
    composite fold with 744 entries: 2500 x 16 / 744 = 53.8 -> 54 epochs, 500 x 16 / 744 = 10.8 -> 11
    (:func:`iterations_to_epochs`; epochs 1-11 at lr 0.01, ..., 45-54 at 1e-6: the solver's five levels).
    Composite folds have 723..750 entries (54 epochs are 2500..2594 iterations); for another dataset pass
    ``epochs`` and ``lr_step_size`` from :func:`iterations_to_epochs` with its own list length.
    """

    num_classes: int = 3
    input_size: int = 224  # ATN train/test.prototxt new_height/new_width 224; MA crop_size 224
    train_resize: int = 224  # ATN: 224 (crop 0 = none); MA: 240 then a random 224 crop (variant "ma_crop")
    widths: tuple[int, int, int, int] = (64, 128, 256, 512)  # MA/ATN: layer_64_1 ... layer_512_1
    augment_p: float = 0.5  # ATN train.prototxt probability_value 0.5 (as run: 0, see module docstring)
    mirror: bool = True  # ATN: mirror True (MA: mirror false)
    max_rotation: int = 5  # ATN: rotation True, maxrotation 5 (degrees, randint(0, 5))
    max_shift: int = 10  # ATN: colorshift True, maxcolorshift 10 (grey levels subtracted, randint(0, 10))
    bn_average_fraction: float = 0.999  # Caffe BatchNorm moving_average_fraction default
    bn_eps: float = 1e-5  # Caffe BatchNorm eps default
    optimizer: str = "sgd"  # ATN solver.prototxt (Caffe SGD)
    lr: float = 0.01  # ATN solver.prototxt base_lr
    momentum: float = 0.9  # ATN solver.prototxt momentum
    weight_decay: float = 5e-6  # ATN solver.prototxt weight_decay 0.000005
    batch_size: int = 16  # ATN train.prototxt batch_size 16 (MA: 10)
    batch_order: str = "balanced"  # ATN get_samples_Train_Test_TXT.py: oversampled to the majority class
    lr_schedule: str = "step"  # ATN solver.prototxt lr_policy "step"
    lr_gamma: float = 0.1  # ATN solver.prototxt gamma
    lr_step_size: int = iterations_to_epochs(STEP_ITERATIONS, 16)  # 11 (class docstring)
    epochs: int = iterations_to_epochs(ITERATIONS, 16)  # 54 (class docstring)

    def __post_init__(self) -> None:
        if self.num_classes < 2:
            raise ValueError(f"MicroAttentionConfig.num_classes must be >= 2, got {self.num_classes}")
        if self.input_size < 32 or self.train_resize < self.input_size:
            raise ValueError(f"MicroAttentionConfig: need 32 <= input_size <= train_resize, got "
                             f"{self.input_size}, {self.train_resize}")
        if not 0 <= self.augment_p <= 1 or self.max_rotation < 0 or self.max_shift < 0:
            raise ValueError("MicroAttentionConfig: augment_p must be in [0, 1], max_rotation and max_shift >= 0")
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        if len(self.widths) != 4:
            raise ValueError(f"MicroAttentionConfig.widths must have 4 entries, got {self.widths}")


class CaffeBatchNorm2d(nn.BatchNorm2d):
    """Caffe's ``BatchNorm`` + ``Scale``: batch statistics in training; at evaluation Caffe's moving averages,
    ``sum_t / s_t`` with ``sum_t = f sum_{t-1} + stat_t`` and ``s_t = f s_{t-1} + 1`` (variance unbiased). That is
    PyTorch's update with momentum ``1 / s_t = (1 - f) / (1 - f^t)`` at the t-th training batch (1 at the first)."""

    def __init__(self, channels: int, average_fraction: float = 0.999, eps: float = 1e-5) -> None:
        super().__init__(channels, eps=eps, momentum=1.0)
        self.average_fraction = average_fraction
        self._steps = 0  # a Python copy of num_batches_tracked (no device sync per step)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self._steps += 1
            f = self.average_fraction
            self.momentum = 1.0 if f == 0 else (1.0 - f) / (1.0 - f ** self._steps)
        return super().forward(x)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:  # noqa: ANN001
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._steps = int(self.num_batches_tracked)


class MicroAttention(nn.Module):
    """``F + F * sigmoid(mean_c(proj([s, a, b])))``; ``average`` is the fixed C -> 1 conv (a buffer, weights 1/C)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3 * channels, channels, kernel_size=1, bias=False)
        self.register_buffer("average", torch.full((1, channels, 1, 1), 1.0 / channels))

    def mask(self, s: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """The (B, 1, H, W) attention mask."""
        return torch.sigmoid(F.conv2d(self.proj(torch.cat([s, a, b], dim=1)), self.average))

    def forward(self, s: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        f = b + s
        return f + f * self.mask(s, a, b)


class Block(nn.Module):
    """One basic residual block and its micro-attention. ``first``: MA's layer_64_1 (no pre-activation, identity
    shortcut, stride 1); else pre-activation BN-ReLU, stride 2 and a 1x1/2 projection shortcut."""

    def __init__(self, c_in: int, c_out: int, first: bool, bn: dict) -> None:
        super().__init__()
        self.first = first
        stride = 1 if first else 2
        self.bn1 = nn.Identity() if first else CaffeBatchNorm2d(c_in, **bn)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn2 = CaffeBatchNorm2d(c_out, **bn)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.expand = None if first else nn.Conv2d(c_in, c_out, 1, stride=2, bias=False)
        self.attention = MicroAttention(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = x if self.first else F.relu(self.bn1(x))
        a = F.relu(self.bn2(self.conv1(pre)))
        b = self.conv2(a)
        s = x if self.expand is None else self.expand(pre)
        return self.attention(s, a, b)


class MicroAttentionNet(nn.Module):
    """``forward(x)``: ``(B, 1, S, S)`` grey apex frames in 0..255 (S = ``input_size``) -> ``(B, num_classes)``.
    In training mode it first applies the configured crop and augmentation (:meth:`augment`)."""

    def __init__(self, config: MicroAttentionConfig) -> None:
        super().__init__()
        self.config = config
        bn = dict(average_fraction=config.bn_average_fraction, eps=config.bn_eps)
        w = config.widths
        self.data_bn = CaffeBatchNorm2d(1, **bn)
        self.conv1 = nn.Conv2d(1, w[0], 7, stride=2, padding=3)
        self.conv1_bn = CaffeBatchNorm2d(w[0], **bn)
        self.pool = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # Caffe pooling rounds up
        self.blocks = nn.ModuleList(Block(w[max(k - 1, 0)], w[k], k == 0, bn) for k in range(4))
        self.last_bn = CaffeBatchNorm2d(w[3], **bn)
        self.fc = nn.Linear(w[3], config.num_classes)
        self.reset_parameters()

    @classmethod
    def from_config(cls, config: MicroAttentionConfig) -> MicroAttentionNet:
        return cls(config)

    def reset_parameters(self) -> None:
        """Caffe's fillers (module docstring); BatchNorm scale 1, shift 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out" if m is self.conv1 else "fan_in",
                                        nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        bound = math.sqrt(3.0 / self.fc.in_features)
        nn.init.uniform_(self.fc.weight, -bound, bound)
        nn.init.constant_(self.fc.bias, 0.2)

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """Training-time input transform, per sample, from torch's global CPU generator (in this order): bilinear
        resize to ``train_resize`` and a uniformly placed ``input_size`` crop (when larger); then, each with
        probability ``augment_p``: horizontal mirror; rotation by ``randint(0, max_rotation)`` degrees
        counter-clockwise about the centre (bilinear, black outside); subtracting ``randint(0, max_shift)``."""
        cfg, n, s = self.config, x.shape[0], self.config.input_size
        if cfg.train_resize > s:
            big = F.interpolate(x, size=(cfg.train_resize,) * 2, mode="bilinear", align_corners=False)
            off = torch.randint(0, cfg.train_resize - s + 1, (n, 2)).tolist()
            x = torch.stack([big[i, :, r:r + s, c:c + s] for i, (r, c) in enumerate(off)])
        p = cfg.augment_p
        if p == 0:
            return x
        draws = torch.rand(n, 3)
        angle = torch.randint(0, cfg.max_rotation + 1, (n,)).float()
        shift = torch.randint(0, cfg.max_shift + 1, (n,)).float()
        flip, rot, shifted = (draws < p).T
        if cfg.mirror:
            x = torch.where(flip.to(x.device).view(n, 1, 1, 1), x.flip(-1), x)
        if cfg.max_rotation:
            t = torch.deg2rad(angle) * rot
            cos, sin = torch.cos(t), torch.sin(t)  # counter-clockwise on screen (y down): sample at R(-t)
            theta = torch.stack([torch.stack([cos, -sin, torch.zeros(n)], 1),
                                 torch.stack([sin, cos, torch.zeros(n)], 1)], 1).to(x)
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = torch.where(rot.to(x.device).view(n, 1, 1, 1), F.grid_sample(x, grid, align_corners=False), x)
        if cfg.max_shift:
            x = x - (shift * shifted).to(x).view(n, 1, 1, 1)
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The (B, widths[-1]) globally pooled features."""
        x = self.pool(F.relu(self.conv1_bn(self.conv1(self.data_bn(x)))))
        for block in self.blocks:
            x = block(x)
        return F.relu(self.last_bn(x)).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.config.input_size
        if x.ndim != 4 or x.shape[1] != 1 or tuple(x.shape[2:]) != (s, s):
            raise ValueError(f"MicroAttentionNet expects (B, 1, {s}, {s}) grey frames, got {tuple(x.shape)}")
        x = x.float()
        if self.training:
            x = self.augment(x)
        return self.fc(self.features(x))
