"""Bi-WOOF (Liong et al., SPIC 2018): ``baselines.biwoof.bi_woof`` features of the onset->apex flow and strain,
classified by the linear SVM of ``baselines.svm`` (fitted per LOSO fold, scaling inside the fold)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from baselines.biwoof import BiWOOFConfig, bi_woof
from baselines.svm import linear_svm
from benchmarks.data.views import ViewSpec
from benchmarks.registry import MethodSpec, ViewSet, register_method

RESOLUTION = 28
STORED_NOTE = "approximation (stored 28x28 min-max flow; the paper computes flow at full resolution)"
BIWOOF_M = "christy1206/biwoof biwoof.m (commit efa566b1b457dab7ffc98c85d078d020ef55690e)"
MEGC_SCRIPT = "IcedDoggie/ME_Autoencoders lbptop_baseline.py (commit 3dcc5866b7ae9e9affb0b15386b332ca85e24f48)"


def biwoof_features(cfg: BiWOOFConfig):
    """Feature function of one clip's views: ``flow`` + ``strain``, or the stored min-max ``flow_uvs``."""

    def features(views: Mapping[str, np.ndarray]) -> np.ndarray:
        if "flow" in views:
            (u, v), s = views["flow"], views["strain"]
        else:
            u, v, s = views["flow_uvs"]
        return bi_woof(u, v, s, cfg)

    return features


STANDARDIZE = False  # the reference script classifies unscaled features (see sources["standardize"])

SPEC = register_method(MethodSpec(
    name="biwoof",
    family="handcrafted",
    views=(ViewSpec.of("flow", size=RESOLUTION), ViewSpec.of("strain", size=RESOLUTION)),
    fallbacks=(ViewSet((ViewSpec.of("flow_uvs", size=RESOLUTION, scale="minmax"),), STORED_NOTE),),
    defaults=BiWOOFConfig(),
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
        "scaling": "StandardScaler fitted inside each training fold (baselines.svm)",
    },
    notes="MEGC2019 composite (published): UF1 0.6296 / UAR 0.6227.",
))
