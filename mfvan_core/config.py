"""Every value of the MFVAN model in one frozen dataclass, and the eight Table 3 ablation variants.

The paper (Pan et al. 2023, Front. Neurosci. 17:1216181) gives the architecture and losses (eq. 1-11) but
no sizes, thresholds or training settings. Each value the paper leaves open is marked "open" below with
the value chosen; the reasons are in ``mfvan_core/README.md`` ("Values the paper leaves open").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

MaskLoss = Literal["as_printed", "masked_mass", "entropy", "none"]
MaskAttention = Literal["last", "mean"]

ALL_SCALES: tuple[int, ...] = (1, 2, 3)


@dataclass(frozen=True)
class MFVANConfig:
    """Hyperparameters of MFVAN. Defaults are the full model (Table 3, last row: Global+scale1,2,3+RI)."""

    # ---- task / input ----------------------------------------------------------------------------------
    num_classes: int = 3  # 3 (SMIC, composite) or 5 (CASME II, SAMM), paper section 4
    in_chans: int = 3  # RGB apex / onset frames
    img_size: int = 128  # open: apex crop side in pixels (synthetic data 128 px; composite crops resized)

    # ---- which parts are on (Table 3 ablation) ---------------------------------------------------------
    scales: tuple[int, ...] = ALL_SCALES  # 1 = apex image, 2/3 = first/second conv feature map (Fig. 6)
    use_ri: bool = True  # removing-identity network (section 3.1)

    # ---- removing identity (section 3.1) ---------------------------------------------------------------
    teacher_widths: tuple[int, int, int] = (16, 32, 32)  # open: residual encoder channels per stride-2 stage
    teacher_res_blocks: tuple[int, int, int] = (0, 0, 2)  # open: residual modules after each encoder stage
    student_widths: tuple[int, int] = (16, 32)  # open: shallow student, two conv + two deconv layers
    deconv_kernel: int = 4  # open: 4 = overlapping stride-2 deconvolution, 2 = non-overlapping (cheaper)
    student_residual: bool = False  # open: student = apex + r(apex), r starting at 0 (README "Diagnosis")
    soft_target_weight: float = 1.0  # open: weight of ||student - teacher||^2 (teacher as soft target)
    remove_loss_weight: float = 1.0  # eq. 9 sums L_remove with weight 1
    classifier_grad_to_ri: bool = True  # eq. 9 is one joint loss: classification gradients reach the student

    # ---- global CNN ("Global" in Table 3) -------------------------------------------------------------
    cnn_widths: tuple[int, int, int] = (16, 32, 48)  # open: channels of its three stride-2 stages
    cnn_res_blocks: tuple[int, int, int] = (0, 0, 1)  # open: residual modules after each stage

    # ---- multi-scale attention (section 3.2) -----------------------------------------------------------
    patch_grid: int = 8  # open: s, patches per side at every scale (k = s*s tokens per scale)
    embed_dim: int = 64  # open: q, token width
    depth: int = 2  # open: L, transformer blocks per scale
    num_heads: int = 4  # open
    mlp_ratio: float = 2.0  # open
    drop_rate: float = 0.1  # open: dropout before the classifier layers of the fusion and per-scale heads
    token_drop_rate: float = 0.0  # open: dropout inside the transformer (embedding, projection, MLP)
    attn_drop_rate: float = 0.0  # open: dropout on attention weights (f_c is read before it)
    theta: float | None = None  # open: mask threshold; None = 1/(s*s), the uniform attention level
    mask_attention: MaskAttention = "last"  # open: class-token attention of the last block, or layer mean

    # ---- losses (section 3.3) --------------------------------------------------------------------------
    focal_gamma: float = 2.0  # r of eq. 10 (open; Lin et al. 2017 default)
    focal_alpha: tuple[float, ...] | None = None  # alpha_t of eq. 10 per class; None = 1 for every class
    mask_loss: MaskLoss = "as_printed"  # eq. 11 as printed, or an alternative (README)
    mask_loss_weight: float = 1.0  # eq. 9 sums L_mask with weight 1

    # ---- optimisation (used by the trainer; all open) --------------------------------------------------
    optimizer: Literal["adam"] = "adam"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 32
    pretrain_epochs: int = 10  # stage 1: teacher self-supervision, L_pre (eq. 1)
    ri_epochs: int = 5  # stage 1b: teacher + student on apex -> onset, L_remove (eq. 4)
    epochs: int = 40  # stage 2: everything, L_all (eq. 9)
    lr_schedule: Literal["constant", "cosine"] = "constant"  # stage 2 learning rate per epoch (the trainer's)
    warmup_epochs: int = 0  # stage 2: linear warm-up epochs before the schedule
    seed: int = 0  # parameter initialisation seed (the trainer derives it from the fold)
    channels_last: bool = True  # NHWC convolutions (same numbers up to float rounding; ~25% faster on CPU)

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> ValueError:
            return ValueError(f"MFVANConfig.{name}={getattr(self, name)!r}: {why}")

        if self.num_classes < 2:
            raise bad("num_classes", "need at least 2 classes")
        if not self.scales == tuple(sorted(set(self.scales))) or any(s not in ALL_SCALES for s in self.scales):
            raise bad("scales", f"must be a sorted subset of {ALL_SCALES} without repeats")
        if self.patch_grid < 1:
            raise bad("patch_grid", "must be >= 1")
        if self.img_size % (4 * self.patch_grid) or self.img_size % 8:
            raise bad("img_size", f"must be divisible by 8 and by 4*patch_grid={4 * self.patch_grid} "
                                  "(scale 3 is img_size/4 px and is cut into patch_grid x patch_grid patches)")
        if self.embed_dim % self.num_heads:
            raise bad("embed_dim", f"must be divisible by num_heads={self.num_heads}")
        if self.depth < 1:
            raise bad("depth", "must be >= 1")
        if self.theta is not None and not 0.0 <= self.theta <= 1.0:
            raise bad("theta", "attention weights lie in [0, 1]; use a threshold in [0, 1] or None")
        if self.focal_alpha is not None and len(self.focal_alpha) != self.num_classes:
            raise bad("focal_alpha", f"needs one weight per class ({self.num_classes})")
        if self.focal_gamma < 0:
            raise bad("focal_gamma", "must be >= 0")
        if self.mask_loss not in ("as_printed", "masked_mass", "entropy", "none"):
            raise bad("mask_loss", "choose 'as_printed', 'masked_mass', 'entropy' or 'none'")
        if self.mask_attention not in ("last", "mean"):
            raise bad("mask_attention", "choose 'last' or 'mean'")
        if self.lr <= 0 or self.batch_size < 1 or min(self.pretrain_epochs, self.ri_epochs, self.epochs) < 0:
            raise bad("lr", "lr must be > 0, batch_size >= 1 and epoch counts >= 0")
        if len(self.teacher_widths) != 3 or len(self.teacher_res_blocks) != 3:
            raise bad("teacher_widths", "teacher_widths and teacher_res_blocks need 3 entries each")
        if self.deconv_kernel not in (2, 4):
            raise bad("deconv_kernel", "must be 2 or 4")
        if len(self.student_widths) != 2:
            raise bad("student_widths", "needs 2 entries")
        if len(self.cnn_widths) != 3 or len(self.cnn_res_blocks) != 3:
            raise bad("cnn_widths", "cnn_widths and cnn_res_blocks need 3 entries each")

    @property
    def num_patches(self) -> int:
        """k = s * s, the patch tokens per scale."""
        return self.patch_grid * self.patch_grid

    @property
    def mask_threshold(self) -> float:
        """theta: the configured value, else the uniform attention level 1 / k."""
        return 1.0 / self.num_patches if self.theta is None else float(self.theta)


# name -> (scales, use_ri, the row label of Table 3)
_TABLE3: dict[str, tuple[tuple[int, ...], bool, str]] = {
    "global": ((), False, "Global"),
    "global+ri": ((), True, "Global+RI"),
    "global+s1": ((1,), False, "Global+scale1"),
    "global+s1+ri": ((1,), True, "Global+scale1 + RI"),
    "global+s12": ((1, 2), False, "Global+scale1,2"),
    "global+s12+ri": ((1, 2), True, "Global+scale1,2 + RI"),
    "global+s123": ((1, 2, 3), False, "Global+scale1,2,3"),
    "global+s123+ri": ((1, 2, 3), True, "Global+scale1,2,3 + RI"),
}
ALIASES: dict[str, str] = {"full": "global+s123+ri"}

TABLE3_LABELS: dict[str, str] = {name: label for name, (_, _, label) in _TABLE3.items()}
VARIANTS: dict[str, MFVANConfig] = {
    name: MFVANConfig(scales=scales, use_ri=ri) for name, (scales, ri, _) in _TABLE3.items()
}


def variant_config(name: str, **overrides: Any) -> MFVANConfig:
    """The config of a Table 3 variant (``full`` = ``global+s123+ri``) with field overrides.

    The variant fixes ``scales`` and ``use_ri``; overriding those two is refused (pick another variant).
    """
    key = ALIASES.get(name, name)
    if key not in VARIANTS:
        raise ValueError(f"unknown MFVAN variant {name!r}; known: {sorted(VARIANTS) + sorted(ALIASES)}")
    fixed = {"scales", "use_ri"} & overrides.keys()
    if fixed:
        raise ValueError(f"variant {name!r} fixes {sorted(fixed)}; choose another variant instead")
    fields = {f.name for f in dataclasses.fields(MFVANConfig)}
    unknown = set(overrides) - fields
    if unknown:
        raise ValueError(f"unknown MFVANConfig field(s) {sorted(unknown)} for variant {name!r}")
    return dataclasses.replace(VARIANTS[key], **overrides)
