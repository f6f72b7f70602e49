"""STSTNet: shallow triple-stream three-dimensional CNN (Liong, Gan, See, Khor & Huang, FG 2019; MEGC 2019).

Input: a ``(B, 3, 28, 28)`` stack of (u, v, optical strain) computed from the onset and apex frames (the
harness builds it). Three parallel 3x3 convolutions with 3, 5 and 8 filters (padding 2 -> 30x30), each
followed by ReLU -> BatchNorm -> max-pool 3/3 (padding 1 -> 10x10) -> dropout 0.5; the 16 maps are
concatenated, average-pooled 2/2 (-> 5x5) and flattened (400) into one fully connected layer. 1,683
parameters for 3 classes (the paper's "about 1.6K").

Source checked (read with the search tool; no code copied): the authors' PyTorch port, ``christy1206/STSTNet``
``main.py`` (commit 220f3de2dd262d726875330761703e1e39bbfe2e), class ``STSTNet``: attribute names and shapes
``conv1/conv2/conv3`` (Conv2d(3, {3,5,8}, 3, padding=2)), ``relu``, ``bn1/bn2/bn3``, ``maxpool``
(MaxPool2d(3, 3, padding=1)), ``avgpool`` (AvgPool2d(2, 2)), ``dropout`` (p=0.5), ``fc`` (Linear(400, 3)),
and the order ReLU before BatchNorm. This module uses the same attribute names, registration order and
shapes, so a ``state_dict`` saved by that script (its ``STSTNet_Weights/*.pth``) loads with
``load_state_dict(strict=True)``. Training settings of that script: Adam, lr 5e-5, batch 256, 800 epochs,
cross-entropy, the model of the last epoch is evaluated (no early stopping, no best-epoch selection); the
repository README: 28x28x3 inputs (u, v, strain) resized from onset/apex TV-L1 flow. Two details of that
script's data handling are settings here, because they change what the network learns: it feeds the
``cv2.imread`` values of the min-max-scaled flow images unscaled, 0..255 (``input_scale=255``: with the
conv biases initialised at the 1/sqrt(27) scale, inputs in 0..1 make the bias a different model), and its
``DataLoader`` does not shuffle: every epoch sees the training images class folder by class folder, in
the same order (``batch_order="by_label"``; ``"shuffle"`` is the usual seeded per-epoch permutation).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class STSTNetConfig:
    """Model and training settings of the authors' PyTorch port (``christy1206/STSTNet`` ``main.py``)."""

    num_classes: int = 3  # MEGC 2019 composite: negative, positive, surprise
    in_channels: int = 3  # (u, v, optical strain)
    input_size: int = 28  # 28 x 28 (README: "Input data (28x28x3)")
    dropout: float = 0.5
    optimizer: str = "adam"
    lr: float = 5e-5  # main.py: learning_rate = 0.00005
    batch_size: int = 256  # main.py: batch_size = 256
    epochs: int = 800  # main.py: epochs = 800
    weight_decay: float = 0.0  # main.py: torch.optim.Adam(model.parameters(), lr=learning_rate)
    input_scale: float = 255.0  # main.py: torch.Tensor(cv2.imread(...)), no division: inputs 0..255
    batch_order: str = "by_label"  # main.py: DataLoader(dataset_train, batch_size) without shuffle, files
    # appended class folder by class folder (u_train/<expression>/...)
    select_epoch: str = "last"  # the weights of the last epoch are saved and evaluated

    def __post_init__(self) -> None:
        if self.num_classes < 2:
            raise ValueError(f"STSTNetConfig.num_classes must be >= 2, got {self.num_classes}")
        if self.input_size != 28:
            raise ValueError(f"STSTNetConfig.input_size must be 28 (fc expects 5*5*16 features), got {self.input_size}")


class STSTNet(nn.Module):
    """STSTNet; ``forward(x)`` maps ``(B, in_channels, 28, 28)`` to logits ``(B, num_classes)``."""

    def __init__(self, in_channels: int = 3, num_classes: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        # attribute names, order and shapes as in christy1206/STSTNet main.py (state-dict compatible)
        self.conv1 = nn.Conv2d(in_channels, 3, kernel_size=3, padding=2)
        self.conv2 = nn.Conv2d(in_channels, 5, kernel_size=3, padding=2)
        self.conv3 = nn.Conv2d(in_channels, 8, kernel_size=3, padding=2)
        self.relu = nn.ReLU()
        self.bn1 = nn.BatchNorm2d(3)
        self.bn2 = nn.BatchNorm2d(5)
        self.bn3 = nn.BatchNorm2d(8)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=3, padding=1)
        self.avgpool = nn.AvgPool2d(kernel_size=2, stride=2, padding=0)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(5 * 5 * 16, num_classes)
        self.in_channels = in_channels

    @classmethod
    def from_config(cls, config: STSTNetConfig) -> STSTNet:
        return cls(in_channels=config.in_channels, num_classes=config.num_classes, dropout=config.dropout)

    def _stream(self, x: torch.Tensor, conv: nn.Conv2d, bn: nn.BatchNorm2d) -> torch.Tensor:
        return self.dropout(self.maxpool(bn(self.relu(conv(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels or tuple(x.shape[2:]) != (28, 28):
            raise ValueError(f"STSTNet expects (B, {self.in_channels}, 28, 28), got {tuple(x.shape)}")
        x = torch.cat([self._stream(x, self.conv1, self.bn1), self._stream(x, self.conv2, self.bn2),
                       self._stream(x, self.conv3, self.bn3)], dim=1)
        return self.fc(torch.flatten(self.avgpool(x), 1))
