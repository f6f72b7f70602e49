"""Dual-ATME (Zhou et al., Entropy 2023): ``baselines.dual_atme.DualATME`` on the whole-face flow and its ROI mosaic.

Inputs: ``flow_uvs`` (28x28, min-max per clip) for the face branch and ``flow_roi_mosaic``
(:mod:`benchmarks.data.roi_views`: the eye/eyebrow and mouth regions of the flow tiled into 28x28) for the
mosaic branch, channels ``cfg.channels`` of (u, v, strain), mapped from [0, 1] to [-1, 1] as the script's
``Normalize(0.5, 0.5)``. The model supplies its own loss (focal + 0.01 x cosine term) to the shared trainer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from baselines.dual_atme import REFERENCE, DualATME, DualATMEConfig
from benchmarks.data.views import ViewSpec
from benchmarks.registry import MethodSpec, register_method

SCRIPT = f"{REFERENCE} ModelTrain_MERoI_flow_3ls_cde2019.py"
MODEL = f"{REFERENCE} Me_Model_att.py"


def views_for(cfg: DualATMEConfig, ds: Any = None, i: int | None = None) -> tuple[ViewSpec, ...]:
    mosaic = {"size": cfg.input_size, "source_size": cfg.mosaic_source_size, "scale": "minmax"}
    if cfg.rois is not None:
        mosaic["rois"] = cfg.rois
    return (ViewSpec.of("flow_uvs", size=cfg.input_size, scale="minmax"), ViewSpec("flow_roi_mosaic", mosaic))


def inputs(views: Mapping[str, np.ndarray], cfg: DualATMEConfig) -> dict[str, np.ndarray]:
    """{"face", "mosaic"}: (N, len(channels), S, S) float32, ``(x - input_mean) / input_std``."""
    ch = list(cfg.channels)
    norm = lambda a: np.ascontiguousarray((a[:, ch] - np.float32(cfg.input_mean)) / np.float32(cfg.input_std),  # noqa: E731
                                          dtype=np.float32)
    return {"face": norm(views["flow_uvs"]), "mosaic": norm(views["flow_roi_mosaic"])}


SPEC = register_method(MethodSpec(
    name="dual_atme",
    family="deep",
    views=views_for(DualATMEConfig()),
    views_for=views_for,
    defaults=DualATMEConfig(),
    build=DualATME.from_config,
    inputs=inputs,
    variants={"script": {"cbam_branches": "shared", "lr_schedule": "constant"}},
    citation=("H. Zhou, S. Huang, J. Li, S.-J. Wang. Dual-ATME: Dual-Branch Attention Network for "
              "Micro-Expression Recognition. Entropy 25(3):460 (2023). doi:10.3390/e25030460"),
    paper="Dual-ATME: Dual-Branch Attention Network for Micro-Expression Recognition",
    sources={
        "architecture": (f"paper Fig. 1 (two branches of two Inception blocks, 7x7x48 each, FC1 4704 -> FC2 1024); "
                         f"{MODEL} classes Inception, CBAM, MEROIInception (layer sizes, names)"),
        "num_classes": "set from the dataset (3 on the MEGC2019 composite)",
        "channels": ("the script reads each flow PNG as 3-channel RGB (Datasets.py, .convert('RGB')); which flow "
                     "quantities they hold is undocumented (RCN-style lists); chosen: (u, v, strain) of flow_uvs"),
        "input_size": f"{SCRIPT}: transforms.Resize(28); paper Fig. 1 7x7x48 after two 2x max-pools",
        "input_mean": f"{SCRIPT}: transforms.Normalize([0.5]*3, [0.5]*3) after ToTensor", "input_std": "as input_mean",
        "widths": f"{MODEL}: Inception(3, 6) and Inception(24, 12) per branch (24 and 48 channels)",
        "reduce_width": f"{MODEL}: 1x1 with 6 filters before the 3x3 and 5x5 paths in both blocks",
        "cbam_reduction": f"{MODEL}: CBAM(48) with reduction=16", "cbam_kernel": f"{MODEL}: CBAM k_size=3",
        "cbam_branches": ("paper Fig. 1 and Sec. 3.3.1 / Table 1: CBAM in the face (AARS) branch only ('face', "
                          f"default); {MODEL} MEROIInception.forward applies its one cbam to both ('shared', the "
                          "'script' variant); 'separate' = one CBAM per branch"),
        "hidden": f"paper Fig. 1 FC2 1024; {MODEL}: Linear(4704, 1024), BatchNorm1d, ReLU, Dropout(0.5), Linear",
        "dropout": f"{MODEL}: Dropout(0.5)",
        "contrast_weight": (f"{SCRIPT}: loss = 0.01 * mean(1 - CosineSimilarity(dim=1)(x1, x2)) + focal; "
                            "paper Fig. 1 L_con"),
        "loss": f"{SCRIPT}: --lossfunction focal; {REFERENCE} LossFunctions.py FocalLoss (the model's own loss())",
        "focal_gamma": f"{REFERENCE} LossFunctions.py: FocalLoss(gamma=2)",
        "focal_alpha": f"{REFERENCE} LossFunctions.py: alpha = ones(class_num) (None here)",
        "optimizer": f"{SCRIPT}: --optimizer adam, optim.Adam(params, lr) without weight decay",
        "lr": f"{SCRIPT}: --learningrate 0.001", "weight_decay": f"{SCRIPT}: none",
        "batch_size": f"{SCRIPT}: --batchsize 128, DataLoader(shuffle=True)",
        "epochs": f"{SCRIPT}: --epochs 60; the last epoch's model is tested (no selection)",
        "lr_schedule": (f"{SCRIPT}: StepLR(optimizer, step_size=10, gamma=0.5) is built but scheduler.step() is "
                        "never called, so the script ran at a constant 1e-3; default 'step' (the schedule it sets "
                        "up), 'constant' in the 'script' variant"),
        "lr_step_size": f"{SCRIPT}: step_size=10", "lr_gamma": f"{SCRIPT}: gamma=0.5",
        "rois": ("paper Fig. 1 / Sec. 3.2.2 (HARS): eye-and-eyebrow regions above the mouth region; the puzzle code "
                 "is not published; None = benchmarks.data.roi_views.DEFAULT_ROIS (fixed aligned-face boxes)"),
        "mosaic_source_size": ("chosen: the regions are cut from the finest flow the source offers (None; the paper "
                               "computes the flow of puzzled frames, benchmarks/data/roi_views.py)"),
        "undefined_args": (f"{SCRIPT} reads args.featuremap and args.poolsize, which its parser lacks (RCN's "
                           "arguments); MEROIInception uses neither: no counterpart"),
    },
    notes="Paper: MEGC2019-CD (composite) UF1 / UAR as reported in its Table 2 (not checked here).",
))
