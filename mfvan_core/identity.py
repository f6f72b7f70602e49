"""Removing identity attributes (paper section 3.1, eq. 1-4).

The onset frame is read as the identity image and the apex frame as identity + emotion. A teacher
autoencoder (residual encoder, deconvolution decoder) is first trained self-supervised to reconstruct every
frame of the training clips (L_pre, eq. 1); teacher and a shallow student are then trained together to map
apex -> onset (L_teacher, L_student, eq. 2-3; L_remove = L_teacher + L_student, eq. 4).

"The teacher network is used as a soft target to guide shallow student networks" (section 3.1) is read as
knowledge distillation on the generated image: the student is trained to match the onset (eq. 3 as
printed) AND the teacher's output, ``soft_weight * MSE(student(apex), stopgrad(teacher(apex)))``. The
stop-gradient keeps the teacher a target (it learns only from eq. 2). ``soft_weight = 0`` gives eq. 3.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def conv_bn_relu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution, batch norm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


def deconv(cin: int, cout: int, kernel: int = 4, bias: bool = True) -> nn.ConvTranspose2d:
    """Stride-2 transposed convolution ("deconvolution"), exact x2 upsampling.

    ``kernel=4`` (padding 1): overlapping, the usual DCGAN-style layer; ``kernel=2``: non-overlapping,
    about 3x cheaper on CPU.
    """
    if kernel not in (2, 4):
        raise ValueError(f"deconv: kernel must be 2 or 4, got {kernel}")
    return nn.ConvTranspose2d(cin, cout, kernel, stride=2, padding=(kernel - 2) // 2, bias=bias)


def deconv_bn_relu(cin: int, cout: int, kernel: int = 4) -> nn.Sequential:
    """Stride-2 deconvolution, batch norm, ReLU."""
    return nn.Sequential(deconv(cin, cout, kernel, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ResidualBlock(nn.Module):
    """Basic residual module (He et al. 2016): x + BN(conv(ReLU(BN(conv(x))))), then ReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x + self.body(x))


class TeacherAutoencoder(nn.Module):
    """Teacher: residual encoder (three stride-2 stages with residual modules) + deconvolution decoder.

    Maps a (B, C, H, W) frame to a (B, C, H, W) image; H and W must be divisible by 8. The output is
    linear (no squashing), so it works for any fixed input normalisation.
    """

    def __init__(self, in_chans: int = 3, widths: tuple[int, int, int] = (16, 32, 32),
                 res_blocks: tuple[int, int, int] = (0, 0, 2), deconv_kernel: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_chans
        for width, n_blocks in zip(widths, res_blocks, strict=True):
            layers.append(conv_bn_relu(prev, width, stride=2))
            layers.extend(ResidualBlock(width) for _ in range(n_blocks))
            prev = width
        self.encoder = nn.Sequential(*layers)
        w1, w2, w3 = widths
        self.decoder = nn.Sequential(
            deconv_bn_relu(w3, w2, deconv_kernel), deconv_bn_relu(w2, w1, deconv_kernel),
            deconv(w1, in_chans, deconv_kernel),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))


class StudentNetwork(nn.Module):
    """Shallow student: two stride-2 conv layers and two deconvolution layers (apex -> onset).

    ``residual=True`` generates ``apex + decoder(encoder(apex))`` with the last deconvolution initialised to
    zero, so the student starts at the trivial answer "onset = apex" and learns only what the expression
    changed (an open choice: the paper says the student generates the onset; see README "Diagnosis").
    """

    def __init__(self, in_chans: int = 3, widths: tuple[int, int] = (16, 32), deconv_kernel: int = 4,
                 residual: bool = False) -> None:
        super().__init__()
        w1, w2 = widths
        self.residual = residual
        self.encoder = nn.Sequential(conv_bn_relu(in_chans, w1, stride=2), conv_bn_relu(w1, w2, stride=2))
        self.decoder = nn.Sequential(deconv_bn_relu(w2, w1, deconv_kernel), deconv(w1, in_chans, deconv_kernel))
        if residual:
            nn.init.zeros_(self.decoder[-1].weight)
            nn.init.zeros_(self.decoder[-1].bias)

    def forward(self, x: Tensor) -> Tensor:
        out = self.decoder(self.encoder(x))
        return x + out if self.residual else out


class IdentityRemoval(nn.Module):
    """Teacher and student of section 3.1. At inference only the student runs (apex -> generated onset)."""

    def __init__(self, in_chans: int, teacher_widths: tuple[int, int, int],
                 teacher_res_blocks: tuple[int, int, int], student_widths: tuple[int, int],
                 deconv_kernel: int = 4, student_residual: bool = False) -> None:
        super().__init__()
        self.teacher = TeacherAutoencoder(in_chans, teacher_widths, teacher_res_blocks, deconv_kernel)
        self.student = StudentNetwork(in_chans, student_widths, deconv_kernel, student_residual)

    def forward(self, apex: Tensor, with_teacher: bool) -> tuple[Tensor, Tensor | None]:
        """(student's generated onset, teacher's generated onset or None)."""
        return self.student(apex), (self.teacher(apex) if with_teacher else None)


# ---- losses (eq. 1-4) ------------------------------------------------------------------------------------

def reconstruction_mse(pred: Tensor, target: Tensor, name: str = "pred") -> Tensor:
    """1/(N*M) sum_i sum_j |target_ij - pred_ij|^2 over N images of M values: the form of eq. 1-3."""
    if pred.shape != target.shape:
        raise ValueError(f"{name}: shape {tuple(pred.shape)} differs from target {tuple(target.shape)}")
    return F.mse_loss(pred, target, reduction="mean")


def pretrain_loss(reconstruction: Tensor, frames: Tensor) -> Tensor:
    """L_pre (eq. 1): the teacher's reconstruction x' of video frames x."""
    return reconstruction_mse(reconstruction, frames, "reconstruction")


def teacher_loss(onset_teacher: Tensor, onset: Tensor) -> Tensor:
    """L_Teacher (eq. 2): the teacher's generated onset x'_onset against the onset frame."""
    return reconstruction_mse(onset_teacher, onset, "onset_teacher")


def student_loss(onset_student: Tensor, onset: Tensor, onset_teacher: Tensor | None = None,
                 soft_weight: float = 0.0) -> dict[str, Tensor]:
    """L_student: eq. 3 (``onset`` term) + ``soft_weight`` * MSE to the detached teacher output (``soft``).

    Returns ``{"student": total, "student_onset": eq. 3, "student_soft": soft-target term}``.
    """
    hard = reconstruction_mse(onset_student, onset, "onset_student")
    if soft_weight and onset_teacher is None:
        raise ValueError("student_loss: soft_weight > 0 needs onset_teacher (the teacher's output)")
    soft = (reconstruction_mse(onset_student, onset_teacher.detach(), "onset_student")
            if onset_teacher is not None else hard.new_zeros(()))
    return {"student": hard + soft_weight * soft, "student_onset": hard, "student_soft": soft}


def remove_loss(onset_student: Tensor, onset_teacher: Tensor, onset: Tensor,
                soft_weight: float = 0.0) -> dict[str, Tensor]:
    """L_remove = L_Teacher + L_student (eq. 4), with each term reported."""
    terms = student_loss(onset_student, onset, onset_teacher, soft_weight)
    terms["teacher"] = teacher_loss(onset_teacher, onset)
    terms["remove"] = terms["teacher"] + terms["student"]
    return terms


def identity_removed_change(apex: Tensor, generated_onset: Tensor) -> Tensor:
    """The identity-removed change image: apex minus the generated identity (onset) image."""
    return apex - generated_onset


__all__ = [
    "IdentityRemoval", "ResidualBlock", "StudentNetwork", "TeacherAutoencoder", "identity_removed_change",
    "pretrain_loss", "reconstruction_mse", "remove_loss", "student_loss", "teacher_loss",
]

