"""OFF-ApexNet (Gan et al., SPIC 2019): ``baselines.off_apexnet.OFFApexNet`` on the u and v flow images (28x28)."""

from __future__ import annotations

from baselines.off_apexnet import OFFApexNet, OFFApexNetConfig
from benchmarks.data.views import ViewSpec
from benchmarks.registry import MethodSpec, register_method

OFF_TANET = "ECNU-Cross-Innovation-Lab/PRICAI2021-Off-TANet (commit 5ae73be796d38c3bd6aaa4cc2b7d03c5ac001ef4)"

SPEC = register_method(MethodSpec(
    name="off_apexnet",
    family="deep",
    # u and v, each min-max scaled per clip (channels 0 and 1 of the published flow images)
    views=(ViewSpec.of("flow_uvs", size=28, scale="minmax"),),
    defaults=OFFApexNetConfig(),
    build=OFFApexNet.from_config,
    inputs=lambda views, cfg: views["flow_uvs"][:, :2],
    citation=("Y. S. Gan, S.-T. Liong, W.-C. Yau, Y.-C. Huang, L.-K. Tan. OFF-ApexNet on micro-expression "
              "recognition system. Signal Processing: Image Communication 74 (2019) 129-139."),
    paper="OFF-ApexNet on micro-expression recognition system",
    sources={
        "architecture": "paper (two 28x28 streams u/v, conv5x5x6 -> pool -> conv5x5x16 -> pool, FC 1024 x2, "
                        f"dropout 0.5); layer layout as {OFF_TANET} models/off_apexnet.py",
        "lr": f"paper: Adam lr 1e-4; {OFF_TANET} train_arg.py lr 1e-4",
        "batch_size": f"{OFF_TANET} train_arg.py: batch_size = 64 (paper value not found)",
        "epochs": f"{OFF_TANET} train_arg.py: n_epochs = 3000 (the authors' count is uncertain)",
        "conv_relu": "paper (LeNet-style conv -> ReLU -> pool); the Off-TANet port has none (conv_relu=False)",
        "input": "u and v of the onset->apex flow, min-max scaled per clip (channels 0, 1 of flow_uvs)",
    },
    notes="MEGC2019 composite (published): UF1 0.7196 / UAR 0.7096.",
))
