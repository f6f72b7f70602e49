"""MFVAN (Pan et al., Front. Neurosci. 2023): tensors in, no harness imports.

Multi-scale fusion visual attention network for micro-expression recognition: an identity-removal
teacher/student autoencoder (apex -> onset), a global CNN, per-scale vision transformers whose class
token masks low-attention patches, and a fusion head; trained with L_all = L_remove + focal losses +
L_mask. The equation-to-code map and every value the paper leaves open are in ``mfvan_core/README.md``.

    from mfvan_core import MFVAN, variant_config
    model = MFVAN(variant_config("full", num_classes=3))
    out = model(apex, onset)                      # (B, 3, 128, 128) each
    terms = model.loss(out, {"label": y, "onset": onset})
"""

from .config import TABLE3_LABELS, VARIANTS, MFVANConfig, variant_config
from .losses import focal_loss, inverse_frequency_alpha, mask_loss, mfvan_loss
from .model import MFVAN
from .stages import make_optimizer, predict_proba, pretrain_teacher_step, ri_step, train_step

__all__ = [
    "MFVAN", "MFVANConfig", "TABLE3_LABELS", "VARIANTS", "focal_loss", "inverse_frequency_alpha", "make_optimizer",
    "mask_loss", "mfvan_loss", "predict_proba", "pretrain_teacher_step", "ri_step", "train_step", "variant_config",
]
