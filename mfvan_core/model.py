"""MFVAN: removing identity + global CNN + multi-scale class-token-masked transformers + fusion (Fig. 2, 4).

Data flow of ``MFVAN.forward(apex, onset=None)``:

- RI on: the student maps apex -> generated onset (the identity image); the global CNN reads the change
  apex - generated onset. The teacher runs only when the onset is given (its output is a loss target).
- RI off: the global CNN reads the apex.
- scale 1 = the apex image, scale 2 / 3 = the global CNN's first / second stage feature map; each active
  scale goes through its own ``ScaleEncoder`` (eq. 5-8) and per-scale head.
- fused prediction (eq. 7): MLP over [global feature, mean of the scales' class tokens].
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from .attention import ScaleEncoder
from .backbone import GlobalCNN
from .config import MFVANConfig
from .heads import FusionHead, ScaleHead
from .identity import IdentityRemoval, identity_removed_change, pretrain_loss, remove_loss
from .losses import is_concrete, mfvan_loss


class MFVAN(nn.Module):
    """The MFVAN model of one ``MFVANConfig`` (any Table 3 variant). Parameters are seeded by ``config.seed``."""

    def __init__(self, config: MFVANConfig | None = None) -> None:
        super().__init__()
        self.config = c = config if config is not None else MFVANConfig()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(c.seed)
            self.ri = (IdentityRemoval(c.in_chans, c.teacher_widths, c.teacher_res_blocks, c.student_widths,
                                       c.deconv_kernel, c.student_residual)
                       if c.use_ri else None)
            self.cnn = GlobalCNN(c.in_chans, c.cnn_widths, c.cnn_res_blocks, c.embed_dim)
            channels = {1: c.in_chans, 2: c.cnn_widths[0], 3: c.cnn_widths[1]}
            sides = {1: c.img_size, 2: c.img_size // 2, 3: c.img_size // 4}
            self.encoders = nn.ModuleDict({
                str(i): ScaleEncoder(channels[i], sides[i], c.patch_grid, c.embed_dim, c.depth, c.num_heads,
                                     c.mlp_ratio, c.token_drop_rate, c.attn_drop_rate, c.mask_attention)
                for i in c.scales
            })
            self.scale_heads = nn.ModuleDict(
                {str(i): ScaleHead(c.embed_dim, c.num_classes, c.drop_rate) for i in c.scales}
            )
            self.fusion = FusionHead(c.embed_dim, c.num_classes, with_scales=bool(c.scales), drop=c.drop_rate)
        if c.channels_last:
            self.to(memory_format=torch.channels_last)

    def _check_images(self, x: Tensor, name: str) -> None:
        c = self.config
        expected = (c.in_chans, c.img_size, c.img_size)
        if not isinstance(x, Tensor) or x.ndim != 4 or tuple(x.shape[1:]) != expected:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"MFVAN: {name} must be a (B, {c.in_chans}, {c.img_size}, {c.img_size}) tensor, "
                             f"got {shape}")
        if not torch.is_floating_point(x):
            raise ValueError(f"MFVAN: {name} must be a float tensor, got {x.dtype}")

    def _layout(self, x: Tensor) -> Tensor:
        """NHWC when ``config.channels_last`` (same values; faster oneDNN convolutions on CPU). A tensor traced
        by ``torch.func.vmap`` (fold-batched training) keeps its layout: vmap cannot query memory formats."""
        return x.contiguous(memory_format=torch.channels_last) if self.config.channels_last and is_concrete(x) else x

    def forward(self, apex: Tensor, onset: Tensor | None = None, return_attention: bool = False,
                keep_masks: Mapping[int, Tensor] | None = None) -> dict[str, object]:
        """Classify apex frames (B, C, H, W); ``onset`` (same shape) is needed only for the RI losses.

        ``keep_masks`` {scale: (B, k) or (B, s, s) bool} overrides the theta rule (for analysis and tests).
        Returns a dict:
          ``logits`` (B, classes): fused prediction p of eq. 7 (pre-softmax); for the Global rows the
              global-feature prediction;
          ``scale_logits`` {scale: (B, classes)}: per-scale predictions p_{i,scale} (eq. 9);
          ``patch_weights`` {scale: (B, k)}: f_c, class-token attention over patches (rows sum to 1);
          ``keep_masks`` {scale: (B, k) bool}: patches with f_c >= theta (used by the fused prediction);
          ``global_feature`` (B, D);
          with RI: ``onset_student`` (B, C, H, W) and ``onset_teacher`` (or None without ``onset``);
          with ``return_attention``: ``attention`` {scale: (B, s, s)} = f_c on the patch grid and
              ``keep_grid`` {scale: (B, s, s) bool}.
        """
        c = self.config
        self._check_images(apex, "apex")
        if onset is not None:
            self._check_images(onset, "onset")
            if onset.shape != apex.shape:
                raise ValueError(f"MFVAN: onset {tuple(onset.shape)} and apex {tuple(apex.shape)} differ")
        apex = self._layout(apex)
        out: dict[str, object] = {}
        if self.ri is not None:
            onset_student, onset_teacher = self.ri(apex, with_teacher=onset is not None)
            out["onset_student"], out["onset_teacher"] = onset_student, onset_teacher
            generated = onset_student if c.classifier_grad_to_ri else onset_student.detach()
            cnn_input = identity_removed_change(apex, generated)
        else:
            cnn_input = apex
        maps, global_feature = self.cnn(cnn_input)
        scale_inputs = {1: apex, 2: maps[0], 3: maps[1]}

        b, s = apex.shape[0], c.patch_grid
        tokens: list[Tensor] = []
        scale_logits: dict[int, Tensor] = {}
        weights: dict[int, Tensor] = {}
        keeps: dict[int, Tensor] = {}
        for i in c.scales:
            keep = None
            if keep_masks is not None and i in keep_masks:
                keep = keep_masks[i].reshape(b, s * s)
            so = self.encoders[str(i)](scale_inputs[i], c.mask_threshold, keep)
            tokens.append(so.cls)
            scale_logits[i] = self.scale_heads[str(i)](so.cls)
            weights[i], keeps[i] = so.weights, so.keep
        out.update(logits=self.fusion(global_feature, tokens), scale_logits=scale_logits, patch_weights=weights,
                   keep_masks=keeps, global_feature=global_feature)
        if return_attention:
            out["attention"] = {i: w.reshape(b, s, s) for i, w in weights.items()}
            out["keep_grid"] = {i: k.reshape(b, s, s) for i, k in keeps.items()}
        return out

    def loss(self, outputs: Mapping[str, object], batch: Mapping[str, Tensor],
             focal_alpha: Tensor | None = None) -> dict[str, Tensor]:
        """L_all (eq. 9) and each of its terms; see ``mfvan_core.losses.mfvan_loss`` (``focal_alpha`` replaces
        ``config.focal_alpha`` when given)."""
        return mfvan_loss(outputs, batch, self.config, focal_alpha)

    def pretrain_loss(self, frames: Tensor) -> Tensor:
        """L_pre (eq. 1): the teacher reconstructs video frames (stage 1, self-supervised)."""
        self._require_ri("pretrain_loss")
        self._check_images(frames, "frames")
        return pretrain_loss(self.ri.teacher(self._layout(frames)), frames)

    def remove_loss(self, apex: Tensor, onset: Tensor) -> dict[str, Tensor]:
        """L_remove (eq. 2-4) alone: teacher and student map apex -> onset (stage 1b)."""
        self._require_ri("remove_loss")
        self._check_images(apex, "apex")
        self._check_images(onset, "onset")
        onset_student, onset_teacher = self.ri(self._layout(apex), with_teacher=True)
        return remove_loss(onset_student, onset_teacher, onset, self.config.soft_target_weight)

    def _require_ri(self, what: str) -> None:
        if self.ri is None:
            raise ValueError(f"MFVAN.{what}: this variant has no RI network (use_ri=False)")
