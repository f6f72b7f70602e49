"""The global CNN: the "Global" branch of Table 3 and the source of the conv feature maps (scales 2, 3).

Without RI it reads the apex frame; with RI it reads the identity-removed change image
(apex - student(apex)), so its feature maps are "the multiple-scale feature maps of the removing identity
attributes network" (paper, section 5) and its pooled feature is the "global change feature" (section 3.1).
Three stride-2 conv stages (H/2, H/4, H/8), each optionally followed by residual modules. Scale 2 is the
output of the first stage and scale 3 of the second (Figure 6: "the first and second convolutional
feature map"). The pooled stage-3 output is projected to the token width D as the global feature.
"""

from __future__ import annotations

from torch import Tensor, nn

from .identity import ResidualBlock, conv_bn_relu


def _stage(cin: int, cout: int, n_res: int) -> nn.Sequential:
    return nn.Sequential(conv_bn_relu(cin, cout, stride=2), *(ResidualBlock(cout) for _ in range(n_res)))


class GlobalCNN(nn.Module):
    """(B, C, H, W) -> ([stage-1 map (B, w1, H/2, W/2), stage-2 map (B, w2, H/4, W/4)], global (B, out_dim))."""

    def __init__(self, in_chans: int = 3, widths: tuple[int, int, int] = (16, 32, 48),
                 res_blocks: tuple[int, int, int] = (0, 0, 1), out_dim: int = 64) -> None:
        super().__init__()
        w1, w2, w3 = widths
        r1, r2, r3 = res_blocks
        self.stage1 = _stage(in_chans, w1, r1)
        self.stage2 = _stage(w1, w2, r2)
        self.stage3 = _stage(w2, w3, r3)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.project = nn.Sequential(nn.Flatten(), nn.Linear(w3, out_dim), nn.LayerNorm(out_dim))

    def forward(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        f1 = self.stage1(x)
        f2 = self.stage2(f1)
        g = self.project(self.pool(self.stage3(f2)))
        return [f1, f2], g
