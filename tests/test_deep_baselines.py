"""OFF-ApexNet, DSSN, STSTNet: reference state-dict layouts, output shapes, parameter counts, fusion, LRN."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from baselines.dssn import DSSN, DSSNConfig, stream_output_size
from baselines.off_apexnet import OFFApexNet, OFFApexNetConfig
from baselines.ststnet import STSTNet, STSTNetConfig


def _n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _random_state(layout: dict[str, tuple[int, ...]], seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in layout.items():
        if k.endswith("num_batches_tracked"):
            out[k] = torch.tensor(7, dtype=torch.long)
        elif k.endswith("running_var"):
            out[k] = torch.rand(shape, generator=g) + 0.5
        else:
            out[k] = torch.randn(shape, generator=g)
    return out


# ------------------------------------------------------------------------------------------------ STSTNet
# christy1206/STSTNet main.py (commit 220f3de2dd262d726875330761703e1e39bbfe2e), class STSTNet:
# conv1/2/3 = Conv2d(3, {3, 5, 8}, 3, padding=2); bn1/2/3 = BatchNorm2d({3, 5, 8}); fc = Linear(5*5*16, 3).
STSTNET_REFERENCE_KEYS: dict[str, tuple[int, ...]] = {
    "conv1.weight": (3, 3, 3, 3), "conv1.bias": (3,),
    "conv2.weight": (5, 3, 3, 3), "conv2.bias": (5,),
    "conv3.weight": (8, 3, 3, 3), "conv3.bias": (8,),
    **{f"bn{i}.{n}": (c,) for i, c in ((1, 3), (2, 5), (3, 8))
       for n in ("weight", "bias", "running_mean", "running_var")},
    **{f"bn{i}.num_batches_tracked": () for i in (1, 2, 3)},
    "fc.weight": (3, 400), "fc.bias": (3,),
}


def test_ststnet_loads_reference_state_dict_strictly_and_outputs_logits() -> None:
    model = STSTNet()
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == STSTNET_REFERENCE_KEYS
    state = _random_state(STSTNET_REFERENCE_KEYS, seed=0)
    model.load_state_dict(state, strict=True)
    model.eval()
    x = torch.randn(5, 3, 28, 28)
    out = model(x)
    assert out.shape == (5, 3)
    torch.testing.assert_close(out, model(x))  # eval mode: dropout off, deterministic
    assert _n_params(model) == 1683  # 84 + 140 + 224 (convs) + 32 (BN) + 1203 (fc): the paper's ~1.6K
    with pytest.raises(RuntimeError):
        model.load_state_dict({**state, "fc.extra": torch.zeros(1)}, strict=True)


def test_ststnet_pipeline_order_relu_then_batchnorm() -> None:
    # With BN in eval mode, weight 1, bias -1, mean 0, var 1: BN(ReLU(z)) = ReLU(z) - 1 (up to eps), so a
    # stream whose conv output is negative everywhere yields -1 (BN before ReLU would yield 0).
    model = STSTNet().eval()
    with torch.no_grad():
        for i, conv in enumerate((model.conv1, model.conv2, model.conv3), start=1):
            conv.weight.zero_()
            conv.bias.fill_(-5.0)
            bn = getattr(model, f"bn{i}")
            bn.weight.fill_(1.0)
            bn.bias.fill_(-1.0)
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0)
        model.fc.weight.fill_(1.0)
        model.fc.bias.zero_()
    out = model(torch.randn(2, 3, 28, 28))
    # max-pool of padded -1 maps (padding value -inf) is -1, avg-pool keeps -1: 400 features of about -1
    torch.testing.assert_close(out, torch.full((2, 3), -400.0), atol=0.01, rtol=0)


def test_ststnet_config_defaults() -> None:
    cfg = STSTNetConfig()
    assert (cfg.lr, cfg.batch_size, cfg.epochs, cfg.select_epoch) == (5e-5, 256, 800, "last")
    assert _n_params(STSTNet.from_config(dataclasses.replace(cfg, num_classes=5))) == 1683 + 2 * 401
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="\\(B, 3, 28, 28\\)"):
        STSTNet()(torch.randn(1, 3, 32, 32))


# -------------------------------------------------------------------------------------------- OFF-ApexNet
# ECNU-Cross-Innovation-Lab/PRICAI2021-Off-TANet models/off_apexnet.py (commit 5ae73be7...): streams cnn1/cnn2
# (conv1 1->6 5x5, conv2 6->16 5x5), dense = Sequential(Linear(1568,1024), ReLU, Dropout, Linear(1024,1024),
# ReLU, Dropout, Linear(1024,3)).
OFF_APEXNET_REFERENCE_KEYS: dict[str, tuple[int, ...]] = {
    **{f"cnn{s}.conv1.weight": (6, 1, 5, 5) for s in (1, 2)},
    **{f"cnn{s}.conv1.bias": (6,) for s in (1, 2)},
    **{f"cnn{s}.conv2.weight": (16, 6, 5, 5) for s in (1, 2)},
    **{f"cnn{s}.conv2.bias": (16,) for s in (1, 2)},
    "dense.0.weight": (1024, 1568), "dense.0.bias": (1024,),
    "dense.3.weight": (1024, 1024), "dense.3.bias": (1024,),
    "dense.6.weight": (3, 1024), "dense.6.bias": (3,),
}


@pytest.mark.parametrize("conv_relu", [True, False])
def test_off_apexnet_loads_reference_layout_and_outputs_logits(conv_relu: bool) -> None:
    model = OFFApexNet(conv_relu=conv_relu)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == OFF_APEXNET_REFERENCE_KEYS
    model.load_state_dict(_random_state(OFF_APEXNET_REFERENCE_KEYS, seed=1), strict=True)
    assert model.eval()(torch.randn(4, 2, 28, 28)).shape == (4, 3)
    # 2 * (156 + 2416) convs + 1,606,656 + 1,049,600 + 3,075 FC = 2,664,475 (Off-TANet README: 2.66M)
    assert _n_params(model) == 2_664_475


def test_off_apexnet_streams_take_u_and_v_separately() -> None:
    model = OFFApexNet().eval()
    with torch.no_grad():  # silence the v stream: with ReLU after its convs its output is exactly 0
        model.cnn2.conv1.weight.zero_()
        model.cnn2.conv1.bias.fill_(-1.0)
    x = torch.randn(3, 2, 28, 28)
    y = x.clone()
    y[:, 1] = torch.randn(3, 28, 28)  # change v only
    torch.testing.assert_close(model(x), model(y))
    y[:, 0] = torch.randn(3, 28, 28)  # change u
    assert not torch.allclose(model(x), model(y))


def test_off_apexnet_config_defaults() -> None:
    cfg = OFFApexNetConfig()
    assert (cfg.lr, cfg.batch_size, cfg.epochs, cfg.dropout) == (1e-4, 64, 3000, 0.5)
    with pytest.raises(ValueError, match="channels \\(u, v\\)"):
        OFFApexNet()(torch.randn(1, 3, 28, 28))


# --------------------------------------------------------------------------------------------------- DSSN
def test_dssn_shapes_and_parameter_counts() -> None:
    assert stream_output_size(227) == 15  # 227 -> 55 -> 27 -> 27 -> 13 -> +2 padding
    per_stream = (96 * 3 * 11 * 11 + 96) + (256 * 48 * 5 * 5 + 256)  # conv1 + grouped conv2 = 342,400
    for fusion, fc_in in (("mul", 57600), ("add", 57600), ("concat", 115200)):
        assert _n_params(DSSN(DSSNConfig(fusion=fusion))) == 2 * per_stream + fc_in * 3 + 3
    model = DSSN().eval()
    assert _n_params(model) == 857_603
    with torch.no_grad():
        assert model(torch.randn(1, 6, 227, 227)).shape == (1, 3)


@pytest.mark.parametrize("fusion", ["mul", "add", "concat"])
def test_dssn_fusion_combines_the_two_streams(fusion: str) -> None:
    model = DSSN(DSSNConfig(fusion=fusion, input_size=67)).eval()
    x = torch.randn(2, 6, 67, 67)
    seen: list[torch.Tensor] = []
    model.fc.register_forward_hook(lambda _m, inp, _out: seen.append(inp[0]))
    model(x)
    a, b = model.stream1(x[:, :3]), model.stream2(x[:, 3:])
    want = {"mul": a * b, "add": a + b, "concat": torch.cat([a, b], 1)}[fusion]
    torch.testing.assert_close(seen[0], torch.flatten(want, 1))
    assert (a[:, :, 0, :] == 0).all()  # the final zero padding of the reference truncation point


def test_dssn_lrn_matches_keras_crosschannelnormalization() -> None:
    # convnets-keras: x / (k + alpha * sum_{window of n channels} x^2) ** beta, alpha not divided by n
    lrn = DSSN().stream1.norm1
    x = torch.randn(2, 10, 4, 4)
    sq = torch.nn.functional.pad(x.pow(2), (0, 0, 0, 0, 2, 2))
    window = sum(sq[:, i:i + 10] for i in range(5))
    torch.testing.assert_close(lrn(x), x / (2.0 + 1e-4 * window) ** 0.75)


def test_dssn_config_and_input_checks() -> None:
    cfg = DSSNConfig()
    assert (cfg.lr, cfg.batch_size, cfg.epochs, cfg.fusion) == (1e-4, 60, 100, "mul")
    with pytest.raises(ValueError, match="fusion"):
        DSSNConfig(fusion="max")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stream A"):
        DSSN()(torch.randn(1, 3, 227, 227))
