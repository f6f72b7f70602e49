"""STSTNet (Liong et al., FG 2019): the library model ``baselines.ststnet.STSTNet`` on (u, v, strain) 28x28."""

from __future__ import annotations

import numpy as np

from baselines.ststnet import STSTNet, STSTNetConfig
from benchmarks.data.views import ViewSpec
from benchmarks.registry import MethodSpec, register_method

PORT = "christy1206/STSTNet main.py (commit 220f3de2dd262d726875330761703e1e39bbfe2e)"

SPEC = register_method(MethodSpec(
    name="ststnet",
    family="deep",
    views=(ViewSpec.of("flow_uvs", size=28, scale="minmax"),),
    defaults=STSTNetConfig(),
    build=STSTNet.from_config,
    inputs=lambda views, cfg: views["flow_uvs"] * np.float32(cfg.input_scale),
    citation=("S.-T. Liong, Y. S. Gan, J. See, H.-Q. Khor, Y.-C. Huang. Shallow Triple Stream Three-dimensional "
              "CNN (STSTNet) for Micro-expression Recognition. IEEE FG 2019 (MEGC 2019), pp. 1-5."),
    paper="Shallow Triple Stream Three-dimensional CNN (STSTNet) for Micro-expression Recognition",
    sources={
        "architecture": f"{PORT}: conv 3x3 with 3/5/8 filters, ReLU -> BN -> max-pool 3/3 -> dropout, avg-pool 2, fc",
        "input": "repository README: 28x28x3 (u, v, optical strain) from onset/apex TV-L1 flow, min-max scaled "
                 "per clip as in the published flow images",
        "lr": f"{PORT}: learning_rate = 0.00005 (Adam)",
        "batch_size": f"{PORT}: batch_size = 256",
        "epochs": f"{PORT}: epochs = 800",
        "weight_decay": f"{PORT}: Adam without weight decay",
        "select_epoch": f"{PORT}: the last epoch's weights are evaluated",
        "dropout": f"{PORT}: nn.Dropout(p=0.5)",
        "input_scale": f"{PORT}: X_train = torch.Tensor(cv2.imread(...)): the 0..255 image values, unscaled",
        "batch_order": (f"{PORT}: DataLoader(dataset_train, batch_size=batch_size), no shuffle; the training "
                        "files are appended class folder by class folder, so each epoch is sorted by label"),
    },
    notes="Paper: UF1 0.7353 / UAR 0.7605 on the MEGC2019 composite; the authors' port logs 0.7209 / 0.7250 "
          "(last epoch).",
))
