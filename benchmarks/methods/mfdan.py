"""MFDAN (Cai et al., IEEE TCSVT 2024): ``baselines.mfdan.MFDAN`` on the TV-L1 (u, v, strain) flow image at 224
(each channel min-max scaled per clip, view ``flow_uvs``) and the motion-magnified apex frame at 224
(view ``magnified_apex`` of :mod:`benchmarks.data.magnify_views`, values / 255).

The magnified frame is a SUBSTITUTE: the paper feeds onset and apex to the learning-based MagNet (Oh et al.
2018) with a randomised amplification factor; here linear Eulerian magnification (Wu et al. 2012) with a fixed
factor, and every result carries that note. It needs the onset frame, so the public MEGC2019 composite (stored
flow and apex crops only) cannot run MFDAN: no fallback is offered (an image branch on the bare apex would
remove what the method's image branch is about). Adan has no fold-batched implementation: train with
``--no-fold-batching`` on CUDA (the CPU default trains fold after fold).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from baselines.mfdan import MFDAN, PAPER, MFDANConfig
from benchmarks.data.views import ViewSpec
from benchmarks.registry import MethodSpec, register_method

PDF = ("YongjinLiu/YongjinLiu.github.io files/2024-MFDAN_Multi-level_Flow-Driven_Attention_Network_for_Micro-"
       "Expression_Recognition.pdf (commit e81aa49f80c3865d997ed9b66349f54599029b8b)")


def views_for(cfg: MFDANConfig, ds=None, i=None) -> tuple[ViewSpec, ...]:
    return (ViewSpec.of("flow_uvs", size=cfg.input_size, scale="minmax"),
            ViewSpec.of("magnified_apex", size=cfg.input_size, color="rgb", alpha=float(cfg.magnify_alpha),
                        lambda_c=float(cfg.magnify_lambda_c), levels=int(cfg.magnify_levels)))


def config_note(cfg: MFDANConfig) -> str:
    return (f"substitute magnification: linear Eulerian (Wu et al. 2012, alpha {cfg.magnify_alpha:g}, lambda_c "
            f"{cfg.magnify_lambda_c:g} px) instead of MagNet with a random factor")


def mfdan_inputs(views: Mapping[str, np.ndarray], cfg: MFDANConfig) -> dict[str, np.ndarray]:
    """{"flow": (N, 3, S, S) min-max (u, v, strain), "image": (N, 3, S, S) magnified apex / 255}."""
    flow = np.ascontiguousarray(views["flow_uvs"], dtype=np.float32)
    image = np.asarray(views["magnified_apex"], dtype=np.float32).transpose(0, 3, 1, 2) / np.float32(255.0)
    return {"flow": flow, "image": np.ascontiguousarray(image)}


SPEC = register_method(MethodSpec(
    name="mfdan",
    family="deep",
    views=views_for(MFDANConfig()),
    views_for=views_for,
    defaults=MFDANConfig(),
    build=MFDAN.from_config,
    inputs=mfdan_inputs,
    config_note=config_note,
    variants={"dropkey0.3": {"dropkey": 0.3}},
    citation=("W. Cai, J. Zhao, R. Yi, M. Yu, F. Duan, Z. Pan, Y.-J. Liu. MFDAN: Multi-level Flow-Driven Attention "
              "Network for Micro-Expression Recognition. IEEE TCSVT 34(12), 2024, pp. 12823-12836."),
    paper="MFDAN: Multi-level Flow-Driven Attention Network for Micro-Expression Recognition",
    sources={
        "architecture": (f"{PDF}: Sec. III, Figs. 2-4, Eqs. 4-15 (no public code); 54,845,527 parameters for 3 "
                         "classes (hand count in tests/test_mfdan.py; the paper prints none)"),
        "flow_encoder": f"{PAPER} Sec. III-A, Fig. 3: SSSN of Khor et al. [14] (baselines.dssn stream), FC, dropout",
        "flow_input": f"{PAPER} Sec. III-A, Eqs. 1-3: TV-L1 u, v and optical strain, normalised, 224x224x3",
        "patch_size": f"{PAPER} Sec. III-B: 4x4 patches, 48 values per token, Linear Embedding to C",
        "embed_dim": f"{PAPER} Sec. IV-D: embedding size 96",
        "heads": f"{PAPER} Sec. IV-D: 3 and 6 heads",
        "window": f"{PAPER} Sec. IV-D: window 7x7",
        "merges": f"{PAPER} Sec. III-B ('down-sample the feature map three times') and Fig. 2 (H/32 x 8C)",
        "attention": f"{PAPER} Eqs. 9-15, Fig. 4: shared W_qkv, flow query, cosine / tau, shared bias b, sum",
        "tau_init": "paper silent: Swin V2's logit-scale start log(10) (tau = 0.1), clamped at log(100)",
        "dropkey": f"{PAPER} Sec. III-D, Eq. 12, Table VII: 0.4 (CASME II); variant dropkey0.3 (SAMM, SMIC)",
        "share_embedding": f"{PAPER} Eq. 8 (one F) and Fig. 2 (one Patch Embed, one Patch Merging box)",
        "optimizer": f"{PAPER} Sec. IV-D: Adan [60] (baselines.adan: Algorithm 1, betas (0.98, 0.92, 0.99))",
        "lr": f"{PAPER} Sec. IV-D: 0.0001",
        "batch_size": f"{PAPER} Sec. IV-D: 16",
        "loss": f"{PAPER} Sec. III-E, Eq. 16: focal loss",
        "focal_gamma": f"{PAPER} Sec. IV-D: gamma 2.0",
        "epochs": "paper silent: 100, a choice",
        "weight_decay": "paper silent on a value: 0",
        "image_input": (f"{PAPER} Sec. III-B: MagNet [54] on onset and apex, random factor in training; here the "
                        "substitute benchmarks.data.magnify_views (linear Eulerian, fixed alpha), / 255"),
        "magnify_alpha": "choice (the paper gives no factor): 10",
        "magnify_lambda_c": "choice: 16 px at 224 (Wu et al. 2012 Eq. 14 attenuation below it)",
        "silent": ("MLP ratio 4, qkv bias, GELU, patch-embedding LayerNorm, trunc-normal(0.02) init, no drop path "
                   "(Swin-T); flow FC 768 + ReLU, dropout 0.5 (DSSN); LRN after pooling (SSSN code, not Fig. 3)"),
    },
    notes=("Published (paper Tables III-IV, LOSO, 3 classes), UF1 / UAR: composite 0.8453 / 0.8688, SMIC-HS "
           "0.6815 / 0.7043, CASME II 0.9134 / 0.9326, SAMM 0.7871 / 0.8196 (DropKey 0.4 on CASME II, 0.3 on SAMM "
           "and SMIC: Table VII). Results here use a SUBSTITUTE motion magnification (linear Eulerian, fixed "
           "factor; MagNet's weights are not available) and cannot run on megc2019-public (no onset frames). "
           "Cost estimated on the 2-core CPU (load 3.9, one thread): one training step of batch 16 at the defaults "
           "(54.8M parameters, 224 px) 11 s steady (the first 19 s), so one epoch of one synthetic-casme2 fold "
           "(~236 training clips, 15 batches) about 165 s and the 100 epochs x 26 folds about 120 h here."),
))
