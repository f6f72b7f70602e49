"""A plain apex-frame CNN: a small timm ResNet trained from scratch on the apex frame alone.

Not a method of any paper: the harness's reference for MFVAN's apex branch (issue 11). It reads exactly
MFVAN's inputs (the RGB apex frame at MFVAN's ``img_size``, scaled to [0, 1]) under the same budget, so a
table can show whether MFVAN's global CNN and attention scales beat a standard network on identical data.

Architecture: timm's ``resnet10t`` (a ResNet-10 with the 3-layer "deep tiered" stem and average-pool
downsampling in the shortcuts; one BasicBlock per stage) with every width quartered: stem 16, stages
16/32/64/128 channels (``channels``, ``stem_width``), global average pooling, dropout, a linear classifier.
317,087 parameters for 3 classes (full width: 4.9M). Quartered because at full width one training step of
batch 32 at 64 px took 0.49 s on one core of this 2-core CPU, 5x MFVAN's full model at the same size; at a
quarter it takes 0.09 s, so a LOSO table fits the CPU preset. Weights start from scratch (timm's
``pretrained=False``): nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass

import timm
from torch import nn

ARCHS = ("resnet10t", "resnet18")


@dataclass(frozen=True)
class ApexCNNConfig:
    """Model and training settings of the plain apex reference (every value chosen: not in any paper)."""

    num_classes: int = 3
    img_size: int = 128  # MFVAN's img_size (mfvan_core.config), so that both read the same pixels
    arch: str = "resnet10t"
    stem_width: int = 16  # resnet10t: 32; quartered with the stages
    channels: tuple[int, int, int, int] = (16, 32, 64, 128)  # resnet10t: 64/128/256/512
    drop_rate: float = 0.1  # before the classifier, as MFVAN's heads
    optimizer: str = "adam"  # MFVAN's optimiser settings (mfvan_core/README.md): same budget, same steps
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 32
    epochs: int = 40  # MFVAN's stage-2 epochs
    lr_schedule: str = "constant"  # MFVAN's schedule (the trainer's lr_schedule / warmup_epochs)
    warmup_epochs: int = 0
    loss: str = "balanced_ce"  # class-balanced cross-entropy per training fold (MFVAN: inverse-frequency alpha)

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"ApexCNNConfig.arch={self.arch!r}: choose one of {ARCHS}")
        if self.num_classes < 2 or self.img_size < 32:
            raise ValueError(f"ApexCNNConfig: num_classes >= 2 and img_size >= 32 needed, got "
                             f"{self.num_classes}, {self.img_size}")
        if len(self.channels) != 4 or min(self.channels) < 1 or self.stem_width < 1:
            raise ValueError(f"ApexCNNConfig.channels needs 4 positive widths, got {self.channels}")


def apex_cnn(cfg: ApexCNNConfig) -> nn.Module:
    """The timm model of ``cfg`` (randomly initialised): (B, 3, S, S) in [0, 1] -> logits (B, classes)."""
    return timm.create_model(cfg.arch, pretrained=False, num_classes=cfg.num_classes, in_chans=3,
                             channels=tuple(cfg.channels), stem_width=cfg.stem_width, drop_rate=cfg.drop_rate)
