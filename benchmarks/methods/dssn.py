"""DSSN (Khor et al., ICIP 2019): ``baselines.dssn.DSSN`` on two 3-channel flow images, (u, v, strain) and
(u, v, magnitude), each channel min-max scaled per clip, resized to the config's ``input_size`` (227).

From frames, the views are the TV-L1 flow at ``input_size`` (:mod:`benchmarks.data.views`). The public
MEGC2019 composite publishes only 28x28 (u, v, strain) images, each channel min-max scaled per clip: the
magnitude stream is then derived from those u, v with the zero of motion estimated as each channel's median
(the true zero is lost by the scaling, and u and v are rescaled by different factors), so it is a relative
magnitude, and both streams are enlarged bilinearly from 28x28: results are labelled as an approximation.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F

from baselines.dssn import DSSN, DSSNConfig
from benchmarks.data.flow import median_centred
from benchmarks.data.views import ViewSpec
from benchmarks.registry import MethodSpec, ViewSet, register_method

REPO = "IcedDoggie/DSSN-MER networks.py (commit 44de3571ce443dc3270fd06e9de548767a72fc01)"
TRAIN = "IcedDoggie/ME_Autoencoders sssn_avec_dssn.py (commit 715e98a90bb6abc657e8c36fbf0da168d259e7db)"
STORED_NOTE = ("approximation (stored 28x28 min-max (u, v, strain) enlarged to the input size; magnitude "
               "stream derived from the min-max u, v around their per-clip medians: relative, not absolute)")


def _minmax(x: np.ndarray) -> np.ndarray:
    """Per-sample, per-channel min-max scaling of (N, C, H, W) to [0, 1] (a constant channel -> 0)."""
    lo = x.min(axis=(2, 3), keepdims=True)
    span = x.max(axis=(2, 3), keepdims=True) - lo
    return np.where(span > 0, (x - lo) / np.where(span > 0, span, 1), 0).astype(np.float32)


def _resize(x: np.ndarray, size: int) -> np.ndarray:
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    t = F.interpolate(torch.from_numpy(np.ascontiguousarray(x)), size=(size, size), mode="bilinear",
                      align_corners=False)
    return t.numpy()


def dssn_inputs(views: Mapping[str, np.ndarray], cfg: DSSNConfig) -> np.ndarray:
    """(N, 6, S, S): stream A (u, v, strain) then stream B (u, v, magnitude), channels min-max per clip."""
    uvs = np.asarray(views["flow_uvs"], dtype=np.float32)
    if "magnitude_orientation" in views:
        mag = np.asarray(views["magnitude_orientation"], dtype=np.float32)[:, :1]
    else:  # stored min-max u, v: zero motion estimated by each channel's median (relative magnitude)
        centred = median_centred(uvs[:, :2])
        mag = np.hypot(centred[:, :1], centred[:, 1:2])
    x = np.concatenate([uvs, uvs[:, :2], _minmax(mag)], axis=1)
    return _resize(_minmax(x), cfg.input_size)


SPEC = register_method(MethodSpec(
    name="dssn",
    family="deep",
    views=(ViewSpec.of("flow_uvs", size=227, scale="minmax"), ViewSpec.of("magnitude_orientation", size=227)),
    views_for=lambda cfg, ds=None, i=None: (ViewSpec.of("flow_uvs", size=cfg.input_size, scale="minmax"),
                           ViewSpec.of("magnitude_orientation", size=cfg.input_size)),
    fallbacks=(ViewSet((ViewSpec.of("flow_uvs", size=28, scale="minmax"),), STORED_NOTE),),
    defaults=DSSNConfig(),
    build=DSSN.from_config,
    inputs=dssn_inputs,
    citation=("H.-Q. Khor, J. See, S.-T. Liong, R. C. W. Phan, W. Lin. Dual-stream Shallow Networks for Facial "
              "Micro-expression Recognition. IEEE ICIP 2019, pp. 36-40."),
    paper="Dual-stream Shallow Networks for Facial Micro-expression Recognition",
    sources={
        "architecture": f"{REPO}: two AlexNets truncated after conv2 (model.layers[13]), Multiply fusion, "
                        "Flatten -> Dropout(0.5) -> Dense",
        "input_size": f"{REPO}: Input(shape=(3, 227, 227))",
        "streams": "project issue: (u, v, strain) and (u, v, magnitude); the reference names them strain and mag",
        "lr": f"{TRAIN}: learning_rate = 0.0001, Adam (Keras decay 1e-7 not reproduced)",
        "batch_size": f"{TRAIN}: batch_size = 60",
        "epochs": f"{TRAIN}: epochs = 100",
        "init": "He-normal (the reference starts from ImageNet AlexNet weights, not redistributed)",
        "scaling": "each channel min-max scaled per clip (the representation of the published flow images)",
    },
    notes="No published MEGC2019-composite number. " + STORED_NOTE.capitalize() + " on megc2019-public.",
))
