"""DSSN: dual-stream shallow networks (Khor, See, Liong, Phan & Lin, ICIP 2019, pp. 36-40).

Two truncated ("shallow") AlexNets, each fed one 3-channel optical-flow-derived image of the onset->apex
motion, are fused element-wise and classified by one fully connected layer.

Per stream, as built by the authors' Keras code: conv1 96 filters 11x11 stride 4 + ReLU -> max-pool 3/2 ->
LRN -> zero-pad 2 -> conv2 256 filters 5x5 in two groups of 128 + ReLU -> max-pool 3/2 -> LRN -> zero-pad 1.
For the reference 227x227 input a stream ends at 256x15x15. Fusion ``mul`` (reference), ``add`` or
``concat``; then flatten -> dropout 0.5 -> Linear(classes). 857,603 parameters for 3 classes with ``mul``.

Sources checked (read with the search tool; no code copied):

- ``IcedDoggie/DSSN-MER`` (the paper's repository) ``networks.py`` (commit
  44de3571ce443dc3270fd06e9de548767a72fc01): ``train_dual_stream_shallow_alexnet`` builds two
  ``train_shallow_alexnet_imagenet`` streams on (3, 227, 227) inputs named ``input_mag`` and
  ``input_strain``, keeps each stream up to ``layers[-5]`` (for multiply/add; ``layers[-4]``, the flattened
  maps, for concatenation), merges with ``Multiply()`` (``Add()`` and ``Concatenate`` commented out), then
  Flatten -> Dropout(0.5) -> Dense(classes, he_normal) -> softmax. ``train_shallow_alexnet_imagenet`` cuts the
  ImageNet AlexNet at ``model.layers[13]`` ("Use 2 conv with weights"), which in that functional graph is the
  ZeroPadding2D((1, 1)) after conv_2 -> max-pool -> LRN.
- ``IcedDoggie/DSSN-MER`` ``models.py`` (commit 47b80409ce8701ca40e1b550c86fd5db42f86a55), ``alexnet``:
  conv_1 Conv2D(96, 11x11, stride 4, relu); MaxPooling2D(3, stride 2); crosschannelnormalization;
  ZeroPadding2D(2); conv_2 = two Conv2D(128, 5x5, relu) on the two channel halves (``splittensor``);
  MaxPooling2D(3, 2); crosschannelnormalization; ZeroPadding2D(1); ... An input Lambda subtracts the
  ImageNet RGB means and divides by 255 (input scaling: left to the harness).
- ``crosschannelnormalization`` (convnets-keras ``customlayers.py``, vendored in ``IcedDoggie/ME_Autoencoders``):
  ``x / (k + alpha * sum_{n neighbours} x^2) ** beta`` with alpha 1e-4, k 2, beta 0.75, n 5. PyTorch's
  ``LocalResponseNorm`` divides alpha by n, so we pass ``alpha * n``.
- Training settings of the authors' DSSN script ``IcedDoggie/ME_Autoencoders`` ``sssn_avec_dssn.py``
  (commit 715e98a90bb6abc657e8c36fbf0da168d259e7db): Adam lr 1e-4 (Keras decay 1e-7 per update), batch 60,
  100 epochs, categorical cross-entropy.

Decisions:

- Inputs: the issue describes two flow-derived 3-channel inputs, (u, v, strain) and (u, v, magnitude);
  the reference names its streams "mag" and "strain". ``stream_a``/``stream_b`` record which channels the
  harness stacks; ``forward`` takes ``(B, Ca + Cb, H, W)`` and splits channels ``[:Ca]`` / ``[Ca:]``.
- Initialisation: the reference starts both streams from ImageNet AlexNet weights (``alexnet_weights.h5``
  of convnets-keras), which are not redistributed here; torchvision's AlexNet has different conv shapes.
  We initialise convolutions and the classifier He-normal (the reference's initialiser for its new layers)
  with zero biases; ``load_state_dict`` can bring converted pretrained weights.
- The final zero-padding is kept (``tail_padding=1``): it fixes the classifier's input size of the
  reference (256*15*15 = 57,600 per stream), although the padded border is constant zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

Fusion = Literal["mul", "add", "concat"]


@dataclass(frozen=True)
class DSSNConfig:
    """Model and training settings of DSSN (``IcedDoggie/DSSN-MER`` networks.py, ``sssn_avec_dssn.py``)."""

    num_classes: int = 3
    stream_a: tuple[str, ...] = ("u", "v", "strain")  # channels stacked for stream A (harness builds them)
    stream_b: tuple[str, ...] = ("u", "v", "magnitude")  # channels stacked for stream B
    input_size: int = 227  # reference Input(shape=(3, 227, 227))
    fusion: Fusion = "mul"  # reference: Multiply(); Add() and Concatenate are its commented alternatives
    dropout: float = 0.5
    tail_padding: int = 1  # ZeroPadding2D((1, 1)) at the truncation point (model.layers[13])
    lrn_size: int = 5  # crosschannelnormalization n
    lrn_alpha: float = 1e-4  # its alpha (not divided by n)
    lrn_beta: float = 0.75
    lrn_k: float = 2.0
    optimizer: str = "adam"
    lr: float = 1e-4  # sssn_avec_dssn.py: learning_rate = 0.0001, Adam(decay=1e-7)
    batch_size: int = 60  # sssn_avec_dssn.py: batch_size = 60
    epochs: int = 100  # sssn_avec_dssn.py: epochs = 100
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        if self.num_classes < 2:
            raise ValueError(f"DSSNConfig.num_classes must be >= 2, got {self.num_classes}")
        if self.fusion not in ("mul", "add", "concat"):
            raise ValueError(f"DSSNConfig.fusion must be 'mul', 'add' or 'concat', got {self.fusion!r}")
        if not self.stream_a or not self.stream_b:
            raise ValueError("DSSNConfig.stream_a and stream_b must name at least one channel each")
        if stream_output_size(self.input_size, self.tail_padding) < 1:
            raise ValueError(f"DSSNConfig.input_size={self.input_size} is too small for the shallow AlexNet")


def stream_output_size(input_size: int, tail_padding: int = 1) -> int:
    """Side of a stream's output map: conv11/4 -> pool3/2 -> pad2 + conv5 -> pool3/2 -> pad ``tail_padding``."""
    s = (input_size - 11) // 4 + 1
    s = (s - 3) // 2 + 1
    s = s + 4 - 5 + 1
    s = (s - 3) // 2 + 1
    return s + 2 * tail_padding if s >= 1 else 0


class ShallowAlexNetStream(nn.Module):
    """AlexNet truncated after its second convolution block (DSSN-MER ``train_shallow_alexnet_imagenet``)."""

    def __init__(self, in_channels: int, config: DSSNConfig) -> None:
        super().__init__()
        lrn = dict(size=config.lrn_size, alpha=config.lrn_alpha * config.lrn_size, beta=config.lrn_beta,
                   k=config.lrn_k)
        self.conv1 = nn.Conv2d(in_channels, 96, kernel_size=11, stride=4)
        self.pool1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.norm1 = nn.LocalResponseNorm(**lrn)
        self.conv2 = nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=2)  # two groups of 128 filters
        self.pool2 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.norm2 = nn.LocalResponseNorm(**lrn)
        self.tail = nn.ZeroPad2d(config.tail_padding)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(self.pool1(self.relu(self.conv1(x))))
        x = self.norm2(self.pool2(self.relu(self.conv2(x))))
        return self.tail(x)


class DSSN(nn.Module):
    """DSSN; ``forward(x)`` maps ``(B, Ca + Cb, S, S)`` to logits ``(B, num_classes)``."""

    def __init__(self, config: DSSNConfig = DSSNConfig()) -> None:
        super().__init__()
        self.config = config
        self.channels_a, self.channels_b = len(config.stream_a), len(config.stream_b)
        self.stream1 = ShallowAlexNetStream(self.channels_a, config)
        self.stream2 = ShallowAlexNetStream(self.channels_b, config)
        side = stream_output_size(config.input_size, config.tail_padding)
        features = 256 * side * side * (2 if config.fusion == "concat" else 1)
        self.dropout = nn.Dropout(config.dropout)
        self.fc = nn.Linear(features, config.num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    @classmethod
    def from_config(cls, config: DSSNConfig) -> DSSN:
        return cls(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, s = self.channels_a + self.channels_b, self.config.input_size
        if x.ndim != 4 or x.shape[1] != c or tuple(x.shape[2:]) != (s, s):
            raise ValueError(f"DSSN expects (B, {c}, {s}, {s}) = stream A {self.config.stream_a} + stream B "
                             f"{self.config.stream_b}, got {tuple(x.shape)}")
        a = self.stream1(x[:, : self.channels_a])
        b = self.stream2(x[:, self.channels_a:])
        if self.config.fusion == "mul":
            fused = a * b
        elif self.config.fusion == "add":
            fused = a + b
        else:
            fused = torch.cat([a, b], dim=1)
        return self.fc(self.dropout(torch.flatten(fused, 1)))
