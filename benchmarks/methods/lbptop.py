"""LBP-TOP (Zhao & Pietikainen 2007; the MEGC 2019 baseline setting): ``baselines.lbptop.lbp_top`` on the grey
onset..offset sequence, classified by the linear SVM of ``baselines.svm`` fitted per LOSO fold.

The sequence is the ``tim_sequence`` view (gray, ``SEQUENCE_SIZE`` px): resampled by TIM to the config's
``n_frames``, or, when ``n_frames`` is None (the MEGC 2019 setting, no TIM), every frame from onset to
offset (the view with ``method="linear"`` at the clip's own length, an identity resampling).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from baselines.lbptop import MEGC_CONFIG, LBPTOPConfig, lbp_top
from baselines.svm import linear_svm
from benchmarks.data.clips import ClipDataset
from benchmarks.data.frames import available_frames
from benchmarks.data.views import ViewSpec
from benchmarks.registry import MethodSpec, register_method

SEQUENCE_SIZE = 128
MEGC_SCRIPT = "IcedDoggie/ME_Autoencoders lbptop_baseline.py (commit 3dcc5866b7ae9e9affb0b15386b332ca85e24f48)"
LBPTOP_M = "LBPTOP.m (Zhao & Pietikainen; copy in iwawiwi/dip-advanced-final-project, commit 44a1e14a)"


def onset_offset_length(ds: ClipDataset, i: int) -> int:
    """Number of stored frames of clip ``i`` between its onset and offset (-1: that end is open)."""
    r = ds.clips.iloc[int(i)]
    lo = int(r["onset"]) if int(r["onset"]) >= 0 else -np.inf
    hi = int(r["offset"]) if int(r["offset"]) >= 0 else np.inf
    return sum(1 for n in available_frames(r["frames"]) if lo <= n <= hi)


def sequence_view(cfg: LBPTOPConfig, ds: ClipDataset | None = None, i: int | None = None) -> ViewSpec:
    """The grey sequence view: TIM to ``cfg.n_frames``; with ``n_frames=None``, clip ``i``'s own onset..offset
    frames (linear resampling to its own length: the identity), or a 1-frame placeholder without a clip."""
    if cfg.n_frames is not None:
        return ViewSpec.of("tim_sequence", n_frames=cfg.n_frames, size=SEQUENCE_SIZE, color="gray", method="tim")
    n = onset_offset_length(ds, i) if ds is not None and i is not None and ds.has_frames else 1
    return ViewSpec.of("tim_sequence", n_frames=max(n, 1), size=SEQUENCE_SIZE, color="gray", method="linear")


def lbptop_features(cfg: LBPTOPConfig):
    def features(views: Mapping[str, np.ndarray]) -> np.ndarray:
        return lbp_top(views["tim_sequence"], cfg)

    return features


STANDARDIZE = False  # the reference script classifies unscaled features (see sources["standardize"])

SPEC = register_method(MethodSpec(
    name="lbptop",
    family="handcrafted",
    views=(sequence_view(MEGC_CONFIG),),
    views_for=lambda cfg, ds=None, i=None: (sequence_view(cfg, ds, i),),
    defaults=MEGC_CONFIG,
    build=lbptop_features,
    classifier=lambda cfg: linear_svm(cfg.svm_c, standardize=STANDARDIZE),
    citation=("G. Zhao, M. Pietikainen. Dynamic texture recognition using local binary patterns with an "
              "application to facial expressions. IEEE TPAMI 29(6) (2007) 915-928; MEGC 2019 baseline: J. See, "
              "M. H. Yap, J. Li, X. Hong, S.-J. Wang. MEGC 2019 - the second facial micro-expressions grand "
              "challenge. IEEE FG 2019."),
    paper="Dynamic texture recognition using local binary patterns with an application to facial expressions",
    sources={
        "radius_x/radius_y/radius_t": f"{MEGC_SCRIPT}: features 'lbptopR114_N4_noTIM' (R = 1, 1, 4)",
        "points_xy/points_xt/points_yt": f"{MEGC_SCRIPT}: N4 (4 neighbours)",
        "n_frames": f"{MEGC_SCRIPT}: noTIM (None: the whole onset..offset sequence)",
        "blocks_x/blocks_y": "project issue: MEGC 2019 baseline 5 x 5 blocks",
        "mapping/interpolation/normalisation": f"{LBPTOP_M}: u2 mapping, bilinear sampling, L1 per histogram",
        "standardize": f"{MEGC_SCRIPT}: unscaled features (STANDARDIZE = False); "
                       "scaling inside the fold with C = 10000 "
                       "makes LIBSVM take minutes per fold (measured > 100x slower)",
        "svm_c": f"{MEGC_SCRIPT}: SVC(kernel='linear', C=10000)",
        "sequence_size": f"{SEQUENCE_SIZE}x{SEQUENCE_SIZE} grey frames (harness choice; the script's size unknown)",
    },
    notes="MEGC2019 composite (published): UF1 0.5882 / UAR 0.5785. Needs frame sequences.",
))
