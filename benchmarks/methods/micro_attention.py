"""Micro-Attention (Wang et al., Neurocomputing 2020): ``baselines.micro_attention.MicroAttentionNet`` on the grey
apex frame (view ``apex_frame``, ``color="gray"``, 224 px; the published 224 px crops on the public composite),
raw 0..255 intensities as the authors' data layer gives them. Crop and augmentation are training-time
transforms inside the model's forward (``baselines/micro_attention.py``); batches are class-balanced by
oversampling (``batch_order="balanced"``), which the fold-batched trainer refuses: train fold after fold
(``--no-fold-batching``). Trained from scratch by default: the authors fine-tuned an unpublished
macro-expression model; a user who has weights passes ``--init-weights micro_attention=PATH``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from baselines.micro_attention import (
    EPOCH_SAMPLES,
    ITERATIONS,
    STEP_ITERATIONS,
    MicroAttentionConfig,
    MicroAttentionNet,
)
from benchmarks.data.views import ViewSpec
from benchmarks.registry import MethodSpec, register_method

MA = "Mvrjustid/Micro-Attention-for-Micro-Expression (commit acffd462212ed3fea7807addee0e4e5113fe7b7e)"
ATN = "Trunpm/ACII19-Apex-Time-Network (commit 81789f16bed79d4a1bd09c84e2519a50d349058e)"
CDE = f"{ATN} MicroAttentionNet/CDE/CASMEII_sub01"
EPOCHS_WHY = (f"{CDE}/prototxt/solver.prototxt max_iter {ITERATIONS}, stepsize {STEP_ITERATIONS}, batch 16 "
              f"(prototxt/train.prototxt) over the {EPOCH_SAMPLES}-entry TrainBalance_Apex.txt of that fold: "
              "round(iterations x 16 / 744) passes (baselines.micro_attention.iterations_to_epochs)")


def views_for(cfg: MicroAttentionConfig, ds=None, i=None) -> tuple[ViewSpec, ...]:
    return (ViewSpec.of("apex_frame", size=cfg.input_size, color="gray"),)


def gray_inputs(views: Mapping[str, np.ndarray], cfg: MicroAttentionConfig) -> np.ndarray:
    """(N, 1, S, S) float32 in 0..255 from the (N, S, S) uint8 grey apex frames (mean 0, scale 1, as ATN's layer)."""
    x = np.asarray(views["apex_frame"])
    if x.ndim != 3:
        raise ValueError(f"micro_attention expects grey apex frames (N, S, S), got {x.shape}")
    return x[:, None].astype(np.float32)


SPEC = register_method(MethodSpec(
    name="micro_attention",
    family="deep",
    views=views_for(MicroAttentionConfig()),
    views_for=views_for,
    defaults=MicroAttentionConfig(),
    build=MicroAttentionNet.from_config,
    inputs=gray_inputs,
    citation=("C. Wang, M. Peng, T. Bi, T. Chen. Micro-attention for micro-expression recognition. "
              "Neurocomputing 410 (2020) 354-362. arXiv:1811.02360."),
    paper="Micro-Attention for Micro-Expression Recognition",
    sources={
        "architecture": f"{MA} train_test.prototxt (same layers in {CDE}/prototxt/train.prototxt): ResNet-10, "
                        "micro-attention after each of its 4 blocks (baselines/micro_attention.py)",
        "attention": f"{MA} train_test.prototxt mask_Concat_<C>*: concat(shortcut, conv1, conv2) -> 1x1 conv C "
                     "-> fixed 1x1 conv to 1 channel, weights 1/C, lr_mult 0 -> sigmoid -> Tile -> F + F*M",
        "init": f"{MA} train_test.prototxt fillers: msra (conv1 FAN_OUT), FC xavier, FC bias 0.2",
        "views": f"{CDE}/prototxt/train.prototxt: color False (grey), new_height/new_width 224, mean 0, scale 1",
        "input_size": f"{CDE}/prototxt/train.prototxt and test.prototxt: 224; {MA} train_test.prototxt crop 224",
        "train_resize": f"{CDE}/prototxt/train.prototxt crop_height 0 (no crop): 224; {MA} train_test.prototxt "
                        "resizes to 240 and crops 224 at random (variant ma_crop)",
        "augment_p": f"{CDE}/prototxt/train.prototxt probability_value 0.5; {ATN} Add_python_layers.py reads the "
                     "key 'probability' (default 0), so the authors' runs had none (variant as_run)",
        "mirror": f"{CDE}/prototxt/train.prototxt mirror True ({MA}: mirror false)",
        "max_rotation": f"{CDE}/prototxt/train.prototxt maxrotation 5; {ATN} Add_python_layers.py randint(0, 5) "
                        "degrees, cv2.getRotationMatrix2D about the centre",
        "max_shift": f"{CDE}/prototxt/train.prototxt maxcolorshift 10; {ATN} Add_python_layers.py subtracts "
                     "randint(0, 10)",
        "batch_order": f"{CDE}/get_samples_Train_Test_TXT.py: each class oversampled (random.randint) to the "
                       "majority count; the list reshuffled at every pass (Add_python_layers.py)",
        "optimizer": f"{CDE}/prototxt/solver.prototxt: Caffe SGD, momentum 0.9",
        "momentum": f"{CDE}/prototxt/solver.prototxt momentum 0.9",
        "lr": f"{CDE}/prototxt/solver.prototxt base_lr 0.01",
        "weight_decay": f"{CDE}/prototxt/solver.prototxt weight_decay 0.000005",
        "batch_size": f"{CDE}/prototxt/train.prototxt batch_size 16 ({MA} train_test.prototxt: 10)",
        "lr_schedule": f"{CDE}/prototxt/solver.prototxt lr_policy step, gamma 0.1",
        "lr_gamma": f"{CDE}/prototxt/solver.prototxt gamma 0.1",
        "epochs": EPOCHS_WHY + ": 54",
        "lr_step_size": EPOCHS_WHY + ": 11",
        "widths": f"{MA} train_test.prototxt layer_64_1 ... layer_512_1 (num_output 64, 128, 256, 512)",
        "bn_average_fraction": "Caffe BatchNorm default moving_average_fraction 0.999 (the prototxts set none)",
        "bn_eps": "Caffe BatchNorm default eps 1e-5 (the prototxts set none)",
        "init_weights": f"{CDE}/prototxt/train_net.sh --weights=Data/facia_expression_iter_50000.caffemodel "
                        "(macro-expression model, not published): trained from scratch here",
    },
    variants={
        "as_run": {"augment_p": 0.0},  # what ATN's data layer applied (module docstring of the library)
        "ma_crop": {"train_resize": 240, "augment_p": 0.0, "mirror": False},  # MA train_test.prototxt's data
    },
    notes=("Trained from scratch (the authors fine-tuned an unpublished macro-expression Caffe model; "
           "--init-weights micro_attention=PATH loads a user's own). Defaults: the authors' composite "
           f"configuration ({CDE}); 54 epochs of the balanced list = the solver's 2500 iterations. Cost measured "
           "on the 2-core CPU (one thread, load about 4): one epoch of composite fold casme2/sub01 (439 training "
           "clips, balanced list 744 = 3 x 248, as the authors' TrainBalance_Apex.txt; 47 batches of 16) 130 s, "
           "so 54 epochs x 68 folds is about 130 h here."),
))
