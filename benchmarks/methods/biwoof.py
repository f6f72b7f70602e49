"""Bi-WOOF (Liong et al., SPIC 2018): ``baselines.biwoof.bi_woof`` features of the onset->apex flow and strain,
classified by the linear SVM of ``baselines.svm`` (fitted per LOSO fold, scaling inside the fold)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from baselines.biwoof import BiWOOFConfig, bi_woof
from baselines.svm import linear_svm
from benchmarks.data.flow import median_centred
from benchmarks.data.views import ViewSpec
from benchmarks.registry import MethodSpec, ViewSet, register_method

RESOLUTION = 28
STORED_NOTE = ("approximation (stored 28x28 flow, min-max scaled per clip: zero of u and v estimated by their "
               "per-clip median; the paper computes flow at full resolution)")
BIWOOF_M = "christy1206/biwoof biwoof.m (commit efa566b1b457dab7ffc98c85d078d020ef55690e)"
MEGC_SCRIPT = "IcedDoggie/ME_Autoencoders lbptop_baseline.py (commit 3dcc5866b7ae9e9affb0b15386b332ca85e24f48)"


MINMAX_ZERO = ("median", "none")


@dataclass(frozen=True)
class HarnessBiWOOFConfig(BiWOOFConfig):
    """``BiWOOFConfig`` plus how the harness reads flow stored as min-max scaled images.

    ``minmax_zero``: the published MEGC2019 flow PNGs scale each of u and v to 0..1 per clip, which loses the
    zero, so every orientation would fall in one quadrant. ``"median"`` subtracts each component's per-clip
    median first (``center_minmax``: most pixels of a face barely move, so the median estimates the zero; the
    per-component scale stays unknown, so this remains an approximation); ``"none"`` uses the values as stored.
    """

    minmax_zero: str = "median"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.minmax_zero not in MINMAX_ZERO:
            raise ValueError(f"biwoof: minmax_zero must be one of {MINMAX_ZERO}, got {self.minmax_zero!r}")


def center_minmax(component: np.ndarray, zero: str = "median") -> np.ndarray:
    """Signed estimate of a flow component min-max scaled per clip: minus its median, or as stored."""
    arr = np.asarray(component, dtype=np.float64)
    if zero not in MINMAX_ZERO:
        raise ValueError(f"center_minmax: zero must be one of {MINMAX_ZERO}, got {zero!r}")
    return median_centred(arr) if zero == "median" else arr


def biwoof_features(cfg: HarnessBiWOOFConfig):
    """Feature function of one clip's views: ``flow`` + ``strain``, or the stored min-max ``flow_uvs``."""

    def features(views: Mapping[str, np.ndarray]) -> np.ndarray:
        if "flow" in views:
            (u, v), s = views["flow"], views["strain"]
        else:
            u, v, s = views["flow_uvs"]
            u, v = center_minmax(u, cfg.minmax_zero), center_minmax(v, cfg.minmax_zero)
        return bi_woof(u, v, s, cfg)

    return features


STANDARDIZE = False  # the reference script classifies unscaled features (see sources["standardize"])

SPEC = register_method(MethodSpec(
    name="biwoof",
    family="handcrafted",
    views=(ViewSpec.of("flow", size=RESOLUTION), ViewSpec.of("strain", size=RESOLUTION)),
    fallbacks=(ViewSet((ViewSpec.of("flow_uvs", size=RESOLUTION, scale="minmax"),), STORED_NOTE),),
    defaults=HarnessBiWOOFConfig(),
    build=biwoof_features,
    classifier=lambda cfg: linear_svm(cfg.svm_c, standardize=STANDARDIZE),
    citation=("S.-T. Liong, J. See, K. Wong, R. C.-W. Phan. Less is more: Micro-expression recognition from "
              "video using apex frame. Signal Processing: Image Communication 62 (2018) 82-92."),
    paper="Less is more: Micro-expression recognition from video using apex frame",
    sources={
        "grid": f"{BIWOOF_M}: nW = nH = 5",
        "n_bins": f"{BIWOOF_M}: nBin = 8",
        "block_margin": f"0 = the paper's non-overlapping blocks; 1 reproduces {BIWOOF_M}'s one-pixel overlap",
        "standardize": f"{MEGC_SCRIPT}: unscaled features (STANDARDIZE = False); "
                       "scaling inside the fold with C = 10000 "
                       "makes LIBSVM take minutes per fold (measured > 100x slower)",
        "svm_c": f"not given by the Bi-WOOF sources; C = 10000 of {MEGC_SCRIPT}",
        "resolution": f"{RESOLUTION}x28 flow grid of the harness (the MEGC2019 published flow size); the paper "
                      "computes flow at the crop's full resolution",
        "scaling": "none, as the reference script (see standardize); Bi-WOOF vectors are L2-normalised per clip",
        "minmax_zero": "stored min-max flow only: each of u, v minus its per-clip median (center_minmax); "
                       "on megc2019-public UF1/UAR 0.642/0.641 with it, 0.544/0.539 without ('none')",
    },
    notes="MEGC2019 composite (published): UF1 0.6296 / UAR 0.6227.",
))
