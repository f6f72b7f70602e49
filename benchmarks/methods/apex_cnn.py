"""Plain apex CNN (harness reference, not in any paper): ``baselines.apex_cnn`` on MFVAN's apex input.

Registered so that every table can show whether MFVAN's apex branch beats a standard network on identical
inputs and budget: the RGB apex frame at MFVAN's ``img_size`` in [0, 1] (the ``apex_frame`` view, the
published 224 px crops resized on the public composite), the same optimiser, batch and stage-2 epochs at each
preset (``benchmarks/presets.py``), LOSO through the shared trainer. Its rows are marked "not in the paper".
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from baselines.apex_cnn import ApexCNNConfig, apex_cnn
from benchmarks.data.views import ViewSpec
from benchmarks.methods.mfvan import rgb_chw
from benchmarks.registry import MethodSpec, register_method

WHY = "harness choice, issue 11 (a plain reference on MFVAN's inputs); baselines/apex_cnn.py"
SAME_AS_MFVAN = "MFVAN's value (mfvan_core/README.md, 'Values the paper leaves open'): identical budget"


def views_for(cfg: ApexCNNConfig, ds=None, i=None) -> tuple[ViewSpec, ...]:
    return (ViewSpec.of("apex_frame", size=cfg.img_size, color="rgb"),)


def apex_inputs(views: Mapping[str, np.ndarray], cfg: ApexCNNConfig) -> np.ndarray:
    """(N, 3, S, S) float32 in [0, 1] from the (N, S, S, 3) uint8 apex frames."""
    return rgb_chw(views["apex_frame"], "apex_frame", "apex_cnn")


SPEC = register_method(MethodSpec(
    name="apex_cnn",
    family="deep",
    views=views_for(ApexCNNConfig()),
    views_for=views_for,
    defaults=ApexCNNConfig(),
    build=apex_cnn,
    inputs=apex_inputs,
    citation=("Harness reference (not in the MFVAN paper): timm resnet10t (R. Wightman, PyTorch Image Models), "
              "widths quartered, trained from scratch on the apex frame"),
    paper="not in the paper: plain apex-frame CNN reference",
    sources={
        "architecture": f"{WHY}: timm resnet10t, stem 16, stages 16/32/64/128, 317k parameters (3 classes)",
        "img_size": "MFVAN's img_size at each preset (same pixels)",
        "views": "MFVAN's apex_frame view: RGB apex frame in [0, 1]",
        "drop_rate": f"{WHY}: 0.1, as MFVAN's classifier dropout",
        "optimizer": SAME_AS_MFVAN, "lr": SAME_AS_MFVAN, "weight_decay": SAME_AS_MFVAN,
        "batch_size": SAME_AS_MFVAN, "epochs": SAME_AS_MFVAN + " (stage 2, eq. 9)",
        "loss": f"{WHY}: class-balanced cross-entropy per training fold (MFVAN weighs its focal loss by the "
                "fold's inverse class frequency)",
    },
    notes="Not in the paper: an extra row in Tables 1-3 (plain reference on MFVAN's apex input and budget).",
))
