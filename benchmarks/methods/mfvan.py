"""MFVAN (Pan et al., Front. Neurosci. 2023): the library model ``mfvan_core.MFVAN`` in the harness.

Inputs: the apex frame, and for the RI variants (Table 3 "+RI") the onset frame, RGB at the config's
``img_size`` (``apex_frame`` / ``onset_frame`` views), scaled to [0, 1], channels first. At test time only
the apex is used: the wrapper drops the onset in eval mode (the student generates it), so the test
subject's onset frames never reach a prediction. Data sources without onset frames (the public MEGC2019
composite: stored 224 px apex crops only) run the four non-RI variants from the apex crops resized to
``img_size``; the RI variants are :class:`benchmarks.evaluate.NotRunnable` there (the onset view is
unavailable).

Training, per LOSO fold, through the one shared trainer (:func:`benchmarks.trainer.train_fold`): the
``pre_fit`` hook runs the stages before the joint objective, then the trainer's loop trains L_all (eq. 9)
via the model's ``loss``:

1. focal alpha (eq. 10): ``inverse_frequency_alpha`` of the fold's fitted training labels
   (``alpha_from_fold=True``; False keeps ``focal_alpha`` as configured, None = 1);
2. stage 1 (RI variants, ``pretrain_epochs``): teacher self-supervision L_pre (eq. 1) on the onset and apex
   frames of the fold's training clips (``pretrain_scope="train"``, the default). ``"all"`` uses the onset
   and apex frames of every clip, the test subject's included: the paper's "video frames" allow that
   reading, but it is transductive and every prediction row says so in ``protocol_note``;
3. stage 1b (RI variants, ``ri_epochs``): teacher + student on apex -> onset, L_remove (eq. 4);
4. stage 2 (``epochs``, the trainer's loop): every parameter on L_all (eq. 9).

Stage 1 reads only the onset and apex frames of each clip, not every frame (decision, the paper is silent):
consecutive frames of a micro-expression clip differ by a few grey levels, so the two key frames carry nearly
all the appearance variety the teacher has to reconstruct, at 2 frames per clip instead of 10 (synthetic) to
several hundred (raw CASME II / SAMM at 200 fps). Each stage has its own Adam optimiser (``lr``,
``weight_decay``) and its own shuffling stream, derived from the trainer's ``pre_fit`` seed; parameter
initialisation draws ``MFVANConfig.seed`` from the trainer's ``"init"`` stream, so it depends on the fold.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from benchmarks.data.views import ViewSpec
from benchmarks.registry import MethodSpec, register_method
from benchmarks.seeding import derive_seed, seeded_generator
from benchmarks.trainer import epoch_batches
from mfvan_core import MFVAN, VARIANTS, MFVANConfig, inverse_frequency_alpha
from mfvan_core import stages as mfvan_stages

log = logging.getLogger(__name__)

PRETRAIN_SCOPES = ("train", "all")
TRANSDUCTIVE_NOTE = ("transductive: teacher pretraining (stage 1, L_pre) on the onset and apex frames of every "
                     "clip, the test subject's included (pretrain_scope='all')")
README = "mfvan_core/README.md"
OPEN = f"chosen ({README}, 'Values the paper leaves open')"


@dataclass(frozen=True)
class MFVANRunConfig(MFVANConfig):
    """``MFVANConfig`` plus the harness's per-fold settings (``pretrain_scope``, ``alpha_from_fold``)."""

    pretrain_scope: str = "train"  # "train" (LOSO hygiene) or "all" (transductive, labelled)
    alpha_from_fold: bool = True  # focal alpha = inverse frequency of the fold's training labels

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pretrain_scope not in PRETRAIN_SCOPES:
            raise ValueError(f"MFVANRunConfig.pretrain_scope={self.pretrain_scope!r}: choose one of {PRETRAIN_SCOPES}")

    def model_config(self, seed: int | None = None) -> MFVANConfig:
        """The library's config (harness fields dropped), with ``seed`` when given."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(MFVANConfig)}
        if seed is not None:
            values["seed"] = int(seed)
        return MFVANConfig(**values)


class MFVANFold(nn.Module):
    """``MFVAN`` with the trainer's interface: ``forward(apex, onset=None)`` and ``loss(outputs, y)``.

    The onset is passed to the network in training mode only (it is a loss target for RI); in eval mode
    the prediction reads the apex alone. The focal alpha of eq. 10 is also held in the (non-persistent)
    buffer ``focal_alpha`` (ones for None: the same numbers), so that each fold of a fold-batched run
    (:mod:`benchmarks.batched_trainer`) carries its own.
    """

    def __init__(self, config: MFVANConfig) -> None:
        super().__init__()
        self.net = MFVAN(config)
        alpha = config.focal_alpha if config.focal_alpha is not None else (1.0,) * config.num_classes
        self.register_buffer("focal_alpha", torch.tensor(alpha, dtype=torch.float32), persistent=False)

    def forward(self, apex: Tensor, onset: Tensor | None = None) -> dict[str, Any]:
        use_onset = self.training and self.net.config.use_ri
        out = dict(self.net(apex, onset if use_onset else None))
        out["onset"] = onset if use_onset else None
        return out

    def loss(self, outputs: Mapping[str, Any], y: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        batch = {"label": y} if outputs.get("onset") is None else {"label": y, "onset": outputs["onset"]}
        terms = self.net.loss(outputs, batch, focal_alpha=self.focal_alpha)
        return terms["all"], {k: v.detach() for k, v in terms.items() if k != "all"}

    def set_focal_alpha(self, alpha: tuple[float, ...] | None) -> None:
        """Set eq. 10's per-class alpha (None = 1 for every class) in the config and the buffer."""
        self.net.config = dataclasses.replace(self.net.config, focal_alpha=alpha)
        with torch.no_grad():
            self.focal_alpha.copy_(torch.tensor(alpha if alpha is not None else (1.0,) * len(self.focal_alpha)))


def build(cfg: MFVANRunConfig) -> MFVANFold:
    """The model; its initialisation seed is drawn from torch's global generator (the trainer seeds it
    per fold with ``derive_seed(fold seed, "init")``)."""
    seed = int(torch.randint(0, 2**31 - 1, ()).item())
    return MFVANFold(cfg.model_config(seed))


def views_for(cfg: MFVANConfig, ds: Any = None, i: int | None = None) -> tuple[ViewSpec, ...]:
    apex = ViewSpec.of("apex_frame", size=cfg.img_size, color="rgb")
    return (apex, ViewSpec.of("onset_frame", size=cfg.img_size, color="rgb")) if cfg.use_ri else (apex,)


def rgb_chw(frames: np.ndarray, name: str, method: str = "mfvan") -> np.ndarray:
    """(N, H, W, 3) uint8 RGB frames -> (N, 3, H, W) float32 in [0, 1] (also the plain apex reference's input)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"{method}: view {name} must be (N, H, W, 3) RGB frames, got {frames.shape}")
    return np.ascontiguousarray(frames.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255.0)


def mfvan_inputs(views: Mapping[str, np.ndarray], cfg: MFVANConfig) -> dict[str, np.ndarray]:
    """{"apex": (N, 3, S, S)} and, with RI, "onset": float32 in [0, 1]."""
    x = {"apex": rgb_chw(views["apex_frame"], "apex_frame")}
    if cfg.use_ri:
        x["onset"] = rgb_chw(views["onset_frame"], "onset_frame")
    return x


# --------------------------------------------------------------------------------------- stages 1 and 1b
def pretrain_teacher(net: MFVAN, frames: Tensor, cfg: MFVANConfig, seed: int) -> list[float]:
    """Stage 1: ``pretrain_epochs`` epochs of L_pre (eq. 1) on ``frames`` (B, C, H, W); per-epoch mean loss."""
    optimizer = mfvan_stages.make_optimizer(net.ri.teacher.parameters(), cfg)
    shuffle = seeded_generator(derive_seed(seed, "pretrain_teacher"))
    history = []
    for _ in range(cfg.pretrain_epochs):
        batches = epoch_batches(frames.shape[0], cfg.batch_size, shuffle, frames.device)
        total = sum(mfvan_stages.pretrain_teacher_step(net, frames[idx], optimizer)["pre"] * len(idx)
                    for idx in batches)
        history.append(total / frames.shape[0])
    return history


def warm_up_ri(net: MFVAN, apex: Tensor, onset: Tensor, cfg: MFVANConfig, seed: int) -> list[float]:
    """Stage 1b: ``ri_epochs`` epochs of L_remove (eq. 4) on (apex, onset) pairs; per-epoch mean loss."""
    optimizer = mfvan_stages.make_optimizer(net.ri.parameters(), cfg)
    shuffle = seeded_generator(derive_seed(seed, "warm_up_ri"))
    history = []
    for _ in range(cfg.ri_epochs):
        batches = epoch_batches(apex.shape[0], cfg.batch_size, shuffle, apex.device)
        total = sum(mfvan_stages.ri_step(net, apex[idx], onset[idx], optimizer)["remove"] * len(idx)
                    for idx in batches)
        history.append(total / apex.shape[0])
    return history


def fold_pre_fit(cfg: MFVANRunConfig, x: Mapping[str, np.ndarray], fold: Any):
    """The trainer's ``pre_fit`` hook for one LOSO fold (see the module docstring).

    ``x`` holds every clip's inputs; it is read only under ``pretrain_scope="all"`` (transductive).
    """
    everyone = None
    if cfg.use_ri and cfg.pretrain_scope == "all":
        everyone = np.concatenate([x["onset"], x["apex"]])

    def hook(model: MFVANFold, x_fit: Mapping[str, Tensor], y_fit: Tensor, seed: int) -> None:
        if cfg.alpha_from_fold:
            model.set_focal_alpha(inverse_frequency_alpha(y_fit.cpu(), cfg.num_classes))
        if not cfg.use_ri:
            return
        apex, onset = x_fit["apex"], x_fit["onset"]
        frames = torch.cat([onset, apex]) if everyone is None else torch.as_tensor(everyone, device=apex.device)
        pre = pretrain_teacher(model.net, frames, cfg, seed)
        warm = warm_up_ri(model.net, apex, onset, cfg, seed)
        log.debug("mfvan fold %s: L_pre %s, L_remove warm-up %s", getattr(fold, "k", "?"), pre, warm)

    return hook


def config_note(cfg: MFVANRunConfig) -> str:
    transductive = cfg.use_ri and cfg.pretrain_scope == "all" and cfg.pretrain_epochs > 0
    return TRANSDUCTIVE_NOTE if transductive else ""


VARIANT_OVERRIDES: dict[str, dict[str, Any]] = {
    name: {"scales": c.scales, "use_ri": c.use_ri} for name, c in VARIANTS.items()
}
VARIANT_OVERRIDES["full"] = dict(VARIANT_OVERRIDES["global+s123+ri"])  # Tables 1 and 2 name it "full"

SPEC = register_method(MethodSpec(
    name="mfvan",
    family="deep",
    views=views_for(MFVANRunConfig()),
    views_for=views_for,
    defaults=MFVANRunConfig(),
    build=build,
    inputs=mfvan_inputs,
    pre_fit=fold_pre_fit,
    config_note=config_note,
    variants=VARIANT_OVERRIDES,
    citation=("H. Pan, H. Yang, L. Xie, Z. Wang. Multi-scale fusion visual "
              "attention network for facial micro-expression recognition. Front. Neurosci. 17:1216181 (2023). "
              "doi:10.3389/fnins.2023.1216181"),
    paper="Multi-scale fusion visual attention network for facial micro-expression recognition",
    sources={
        "architecture": f"paper sections 3.1-3.3, Fig. 2 and 4, eq. 1-11; sizes {OPEN}; no reference code found",
        "variants": "paper Table 3: Global, +RI, +scale1, +scale1,2, +scale1,2,3 (scales, use_ri); full = last row",
        "views": "paper section 3.1: apex frame, and the onset frame as the RI target; RGB at img_size, [0, 1]",
        "num_classes": "paper section 4: 3 (SMIC, composite) or 5 (CASME II, SAMM); set from the dataset",
        "in_chans": "paper Fig. 2: RGB face images",
        "img_size": f"{OPEN}: 128 px (synthetic frames are 128 px; composite 224 px crops are resized)",
        "scales": "paper Table 3 and Fig. 6: scale 1 = image, scales 2/3 = first/second conv feature maps",
        "use_ri": "paper section 3.1 and Table 3 (+RI rows)",
        "teacher_widths": OPEN, "teacher_res_blocks": f"{OPEN}; 'multiple residual modules' (section 3.1)",
        "student_widths": f"{OPEN}; 'shallow student network' (section 3.1)", "deconv_kernel": OPEN,
        "student_residual": (f"{OPEN}: False = the student generates the onset image (section 3.1); True = apex + "
                             "a residual that starts at zero (mfvan_core/README.md, 'Diagnosis')"),
        "soft_target_weight": f"chosen ({README}, 'Readings of ambiguous text': teacher as soft target), weight 1",
        "remove_loss_weight": "paper eq. 9: L_remove summed with weight 1",
        "classifier_grad_to_ri": f"paper eq. 9 is one joint objective ({README})",
        "cnn_widths": OPEN, "cnn_res_blocks": OPEN,
        "patch_grid": OPEN, "embed_dim": OPEN, "depth": f"{OPEN}; L of eq. 8", "num_heads": OPEN,
        "mlp_ratio": OPEN, "drop_rate": OPEN, "token_drop_rate": OPEN, "attn_drop_rate": OPEN,
        "theta": f"{OPEN}: None = 1/k, the uniform attention level (eq. 7, 'f_c >= theta')",
        "mask_attention": f"{OPEN}: the last block's class-token attention",
        "focal_gamma": f"paper eq. 10 (r); value {OPEN}: 2, Lin et al. 2017",
        "focal_alpha": "paper eq. 10 (alpha_t); replaced per fold when alpha_from_fold is True",
        "alpha_from_fold": (f"chosen ({README}: 'alpha must come from the training fold only'): inverse class "
                            "frequency of the fold's fitted training labels, inverse_frequency_alpha"),
        "mask_loss": f"paper eq. 11 as printed ({README}, 'Readings of ambiguous text')",
        "mask_loss_weight": "paper eq. 9: L_mask summed with weight 1",
        "optimizer": f"{OPEN}: Adam", "lr": f"{OPEN}: 1e-3", "weight_decay": f"{OPEN}: 1e-4",
        "batch_size": f"{OPEN}: 32",
        "pretrain_epochs": f"{OPEN}: stage 1 (eq. 1), 10 epochs",
        "ri_epochs": f"{OPEN}: stage 1b (eq. 4) warm-up, 5 epochs",
        "epochs": f"{OPEN}: stage 2 (eq. 9), 40 epochs",
        "seed": "harness: replaced per fold by a draw from the trainer's 'init' stream",
        "channels_last": f"chosen ({README}, 'Cost'): same numbers up to rounding, ~25 % faster on CPU",
        "pretrain_scope": ("chosen (LOSO hygiene): 'train' = the fold's training clips only; 'all' (the paper's "
                           "'video frames' allow it) is transductive and labelled in protocol_note"),
        "pretrain_frames": ("chosen: the onset and apex frames of each clip (module docstring: 2 frames per clip "
                            "instead of all of them)"),
    },
    notes=("Paper (Table 1): accuracy / F1 79.87 / 0.8009 SMIC, 78.45 / 0.7616 CASME II, 76.47 / 0.7325 SAMM. "
           "RI variants need onset frames: not runnable on the public MEGC2019 composite."),
))
