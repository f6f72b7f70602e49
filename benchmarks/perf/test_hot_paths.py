"""Hot paths measured with pytest-benchmark (marker ``perf``; run by ``python -m benchmarks.perf``).

Inputs: one seeded synthetic CASME II-like clip (128 x 128 grey, 10-16 frames), its onset -> apex TV-L1 flow
(128 x 128, and resized to 28 x 28 as the views do), and seeded random batches of 32 at each deep model's
registered input size. One intra-op thread (torch and OpenCV). Each callable runs once before it is timed
(lookup tables, optimiser state, allocator warm-up).

Reference implementations, timed in the same run: scikit-image's ``local_binary_pattern(..., "nri_uniform")``
on the same image as the project's XY-plane code, and ``cv2.optflow.DualTVL1OpticalFlow_create()`` called
directly beside :func:`benchmarks.data.flow.tvl1_flow`; each pair is also checked to give the same answer.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.feature import local_binary_pattern

from baselines.biwoof import bi_woof
from baselines.dssn import DSSN, DSSNConfig
from baselines.lbptop import MEGC_CONFIG, OULU_CONFIG, LBPTOPConfig, lbp_top, plane_codes
from baselines.off_apexnet import OFFApexNet, OFFApexNetConfig
from baselines.ststnet import STSTNet, STSTNetConfig
from benchmarks.data import synthetic
from benchmarks.data.flow import optical_strain, resize_flow, resize_image, tvl1_flow
from benchmarks.data.tim import tim_interpolate
from mfvan_core import MFVAN, make_optimizer, predict_proba, train_step, variant_config

pytestmark = pytest.mark.perf

THREADS = 1
BATCH = 32
LBP_CONFIGS: dict[str, LBPTOPConfig] = {"megc": MEGC_CONFIG, "oulu": OULU_CONFIG}
LBP_TITLES = {"megc": "MEGC R=(1,1,4) P=4 5x5", "oulu": "Oulu R=(3,3,3) P=8 8x8 TIM10"}


def _bench(benchmark: Any, fn: Callable[[], object], label: str, reference: str | None = None,
           role: str | None = None) -> None:
    """Run ``fn`` once untimed, then benchmark it under ``label`` (and the label of its reference)."""
    fn()
    benchmark.extra_info.update(label=label, threads=THREADS)
    if reference is not None:
        benchmark.extra_info["reference"] = reference
    if role is not None:
        benchmark.extra_info["role"] = role
    benchmark(fn)


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    torch_before, cv_before = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(THREADS)
    cv2.setNumThreads(THREADS)
    yield
    torch.set_num_threads(torch_before)
    cv2.setNumThreads(cv_before)


# ------------------------------------------------------------------------------------------------ inputs
@pytest.fixture(scope="module")
def clip() -> tuple[np.ndarray, int]:
    """Grey uint8 ``(T, 128, 128)`` synthetic clip (first CASME II-like subject) and its apex index."""
    plan = synthetic.plan_release("casme2", 0, n_subjects=1, clips_per_subject=1)[0]
    rgb = synthetic.render_planned_clip(plan, 0)
    return np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in rgb]), plan.apex


@pytest.fixture(scope="module")
def lbp_input(clip: tuple[np.ndarray, int]) -> dict[str, np.ndarray]:
    """The volume each LBP config sees: the raw clip (MEGC, no TIM) or its TIM resampling (Oulu)."""
    gray, _ = clip
    assert gray.shape[0] >= 2 * MEGC_CONFIG.border_time + 1
    return {"megc": gray, "oulu": tim_interpolate(gray, OULU_CONFIG.n_frames)}


@pytest.fixture(scope="module")
def flow(clip: tuple[np.ndarray, int]) -> dict[int, np.ndarray]:
    """Onset -> apex TV-L1 flow at 128 px and resized to 28 px."""
    gray, apex = clip
    f128 = tvl1_flow(gray[0], gray[apex])
    return {128: f128, 28: resize_flow(f128, 28)}


# ------------------------------------------------------------------------------------------------ LBP-TOP
@pytest.mark.parametrize("name", list(LBP_CONFIGS))
def test_lbp_top_clip(benchmark: Any, lbp_input: dict[str, np.ndarray], name: str) -> None:
    vol, cfg = lbp_input[name], LBP_CONFIGS[name]
    _bench(benchmark, lambda: lbp_top(vol, cfg), f"LBP-TOP per clip, {LBP_TITLES[name]}, {vol.shape[0]}x128x128")


def _skimage_label(name: str) -> str:
    cfg = LBP_CONFIGS[name]
    return f"skimage nri_uniform P={cfg.points_xy} R={cfg.radius_x:g}"


@pytest.mark.parametrize("name", list(LBP_CONFIGS))
def test_lbp_xy_plane(benchmark: Any, lbp_input: dict[str, np.ndarray], name: str) -> None:
    """The project's XY-plane codes of one frame (interior pixels; float64 conversion included)."""
    cfg, image = LBP_CONFIGS[name], lbp_input[name][lbp_input[name].shape[0] // 2]
    b, (h, w) = cfg.border_space, image.shape

    def project() -> np.ndarray:
        return plane_codes(image[None].astype(np.float64), "xy", cfg, (0, b, b), (1, h - b, w - b))[0]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skimage warns on float images
        expected = local_binary_pattern(image, cfg.points_xy, cfg.radius_x, "nri_uniform")[b:-b, b:-b]
    np.testing.assert_array_equal(project(), expected)
    _bench(benchmark, project, f"LBP XY plane (project), {LBP_TITLES[name].split(' ')[0]}, 128x128 {image.dtype}",
           reference=_skimage_label(name))


@pytest.mark.parametrize("name", list(LBP_CONFIGS))
def test_lbp_xy_plane_skimage(benchmark: Any, lbp_input: dict[str, np.ndarray], name: str) -> None:
    """Reference: scikit-image's Cython LBP on the same frame (all 128 x 128 pixels)."""
    cfg, image = LBP_CONFIGS[name], lbp_input[name][lbp_input[name].shape[0] // 2]

    def reference() -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return local_binary_pattern(image, cfg.points_xy, cfg.radius_x, "nri_uniform")

    _bench(benchmark, reference, _skimage_label(name), role="reference")


# ------------------------------------------------------------------------------------------------- flow
TVL1_REFERENCE = "cv2.optflow DualTVL1 direct"


def test_tvl1_flow(benchmark: Any, clip: tuple[np.ndarray, int]) -> None:
    gray, apex = clip
    onset, apex_frame = gray[0], gray[apex]
    direct = cv2.optflow.DualTVL1OpticalFlow_create().calc(onset, apex_frame, None)
    np.testing.assert_array_equal(tvl1_flow(onset, apex_frame), direct.transpose(2, 0, 1))
    _bench(benchmark, lambda: tvl1_flow(onset, apex_frame), "TV-L1 flow per frame pair (project), 128x128",
           reference=TVL1_REFERENCE)


def test_tvl1_flow_opencv(benchmark: Any, clip: tuple[np.ndarray, int]) -> None:
    """Reference: OpenCV's default Dual TV-L1, created and called directly (no checks, no transpose)."""
    gray, apex = clip
    onset, apex_frame = gray[0], gray[apex]
    _bench(benchmark, lambda: cv2.optflow.DualTVL1OpticalFlow_create().calc(onset, apex_frame, None),
           TVL1_REFERENCE, role="reference")


@pytest.mark.parametrize("size", [128, 28])
def test_optical_strain(benchmark: Any, flow: dict[int, np.ndarray], size: int) -> None:
    f = flow[size]
    _bench(benchmark, lambda: optical_strain(f), f"optical strain, {size}x{size} flow")


def test_bi_woof(benchmark: Any, flow: dict[int, np.ndarray]) -> None:
    u, v = flow[28]
    strain = resize_image(optical_strain(flow[128]), 28)  # as the strain view: native strain, then resized
    _bench(benchmark, lambda: bi_woof(u, v, strain), "Bi-WOOF per clip, 28x28 flow, 5x5 blocks, 8 bins")


# ------------------------------------------------------------------------------------------------ models
def _model(name: str) -> tuple[torch.nn.Module, dict[str, torch.Tensor], str]:
    """Model at its registered default size, a seeded batch of ``BATCH`` and the input's description."""
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    y = torch.randint(0, 3, (BATCH,), generator=g)
    if name.startswith("mfvan:"):
        variant, _, size = name.split(":", 1)[1].partition("@")
        # "@32": the default preset's CPU size (32 px, 4 x 4 patches; benchmarks/presets.py)
        sizes = {"img_size": 32, "patch_grid": 4} if size == "32" else {}
        cfg = variant_config(variant, num_classes=3, **sizes)
        s = cfg.img_size
        batch = {"apex": torch.rand(BATCH, 3, s, s, generator=g), "label": y}
        if cfg.use_ri:
            batch["onset"] = torch.rand(BATCH, 3, s, s, generator=g)
        return MFVAN(cfg), batch, f"3x{s}x{s}"
    if name == "ststnet":
        model, c, s = STSTNet.from_config(STSTNetConfig()), 3, STSTNetConfig().input_size
    elif name == "off_apexnet":
        model, c, s = OFFApexNet.from_config(OFFApexNetConfig()), 2, OFFApexNetConfig().input_size
    elif name == "dssn":
        cfg = DSSNConfig()
        model, c, s = DSSN.from_config(cfg), len(cfg.stream_a) + len(cfg.stream_b), cfg.input_size
    else:
        raise ValueError(f"unknown model {name!r}")
    return model, {"x": torch.rand(BATCH, c, s, s, generator=g), "label": y}, f"{c}x{s}x{s}"


_BASELINE_CONFIGS = {"ststnet": STSTNetConfig(), "off_apexnet": OFFApexNetConfig(), "dssn": DSSNConfig()}
MODELS = ["ststnet", "off_apexnet", "dssn", "mfvan:global+s123+ri", "mfvan:global", "mfvan:global+s123+ri@32",
          "mfvan:global@32"]


@pytest.mark.parametrize("name", MODELS)
def test_forward(benchmark: Any, name: str) -> None:
    """Inference: eval mode, no autograd (MFVAN: ``predict_proba`` on the apex; the student makes the onset)."""
    model, batch, shape = _model(name)
    if name.startswith("mfvan:"):
        def fn() -> torch.Tensor:
            return predict_proba(model, batch["apex"])
    else:
        model.eval()

        def fn() -> torch.Tensor:
            with torch.inference_mode():  # as the shared trainer's prediction
                return model(batch["x"])
    _bench(benchmark, fn, f"{name} forward (eval), batch {BATCH}x{shape}")


@pytest.mark.parametrize("name", MODELS)
def test_train_step(benchmark: Any, name: str) -> None:
    """Training: train mode, forward + loss + backward + Adam step (MFVAN: ``train_step`` on L_all, eq. 9;
    baselines: cross-entropy, Adam with the config's lr and weight decay, as the shared trainer)."""
    model, batch, shape = _model(name)
    if name.startswith("mfvan:"):
        opt = make_optimizer(model.parameters(), model.config)

        def fn() -> object:
            return train_step(model, batch, opt)
    else:
        cfg = _BASELINE_CONFIGS[name]
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        model.train()

        def fn() -> object:
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(batch["x"]), batch["label"])
            loss.backward()
            opt.step()
            return loss
    _bench(benchmark, fn, f"{name} train step (fwd+bwd+Adam), batch {BATCH}x{shape}")
