"""HTNet (Wang et al., Neurocomputing 2024): ``baselines.htnet.HTNet`` on the landmark-centred 2x2 mosaic of
the 28x28 (u, v, strain) flow image (view ``landmark_patches``, :mod:`benchmarks.data.patch_views`).

Landmarks come from the ``face_landmarks`` detector view on the apex frame resized to 28 px (the
reference's MTCNN step) when that view is registered; clips without a face get HTNet's fixed fallback
coordinates, as in the reference. Without a registered detector (or with ``landmarks="fixed"``) every clip
uses the fixed coordinates: the view is then ``landmarks='fixed'`` and the results carry a note.
The reference keeps each subject's best test epoch: run with ``epoch_policy="oracle"`` to reproduce it
(labelled optimistic by the harness; the harness keeps the earliest of tied epochs, the reference the latest).
"""

from __future__ import annotations

import numpy as np

from baselines.htnet import REFERENCE, HTNet, HTNetConfig
from benchmarks.data import views as _views
from benchmarks.data.patch_views import DETECTOR_VIEW
from benchmarks.data.views import ViewSpec
from benchmarks.registry import MethodSpec, ViewSet, register_method

MAIN = f"{REFERENCE} main_HTNet.py"
FIXED_NOTE = "fixed landmarks for every clip (HTNet's no-face fallback coordinates), not detected"
NO_DETECTOR_NOTE = (f"fixed landmarks for every clip (HTNet's no-face fallback coordinates): the "
                    f"{DETECTOR_VIEW} detector view is not registered")


def landmark_source(cfg: HTNetConfig) -> str:
    """The landmarks the view will use: ``cfg.landmarks``, or "fixed" when no detector view is registered."""
    return cfg.landmarks if cfg.landmarks == "fixed" or DETECTOR_VIEW in _views.VIEWS else "fixed"


def views_for(cfg: HTNetConfig, ds=None, i=None) -> tuple[ViewSpec, ...]:
    return (ViewSpec.of("landmark_patches", size=cfg.image_size, patch=cfg.image_size // 2,
                        landmarks=landmark_source(cfg), centres=cfg.centres),)


def config_note(cfg: HTNetConfig) -> str:
    if landmark_source(cfg) == cfg.landmarks:
        return FIXED_NOTE if cfg.landmarks == "fixed" else ""
    return NO_DETECTOR_NOTE


def htnet_inputs(views, cfg: HTNetConfig) -> np.ndarray:
    """The mosaic (N, 3, 28, 28) in [0, 1] -> the reference's input: channels (strain, v, u) when ``bgr``,
    times ``input_scale``."""
    x = np.asarray(views["landmark_patches"], dtype=np.float32)
    if cfg.bgr:
        x = x[:, ::-1]
    return np.ascontiguousarray(x * np.float32(cfg.input_scale))


SPEC = register_method(MethodSpec(
    name="htnet",
    family="deep",
    views=views_for(HTNetConfig()),
    views_for=views_for,
    # a dataset that cannot give the detector's inputs (no apex frame) falls back to the fixed landmarks
    fallbacks=(ViewSet(views_for(HTNetConfig(landmarks="fixed")), FIXED_NOTE),),
    defaults=HTNetConfig(),
    build=HTNet.from_config,
    inputs=htnet_inputs,
    config_note=config_note,
    citation=("Z. Wang, K. Zhang, W. Luo, R. Sankaranarayana. HTNet for micro-expression recognition. "
              "Neurocomputing 602 (2024) 128196."),
    paper="HTNet for micro-expression recognition",
    sources={
        "architecture": (f"{REFERENCE} Model.py: HTNet (patch embedding, Transformer, Aggregate, mlp_head) with "
                         "main_HTNet.py's HTNet(image_size=28, patch_size=7, dim=256, heads=3, num_hierarchies=3, "
                         "block_repeats=(2, 2, 10), num_classes=3); 139,582,982 parameters"),
        "mlp_mult": f"{REFERENCE} Model.py: HTNet default mlp_mult=4",
        "dropout": f"{REFERENCE} Model.py: HTNet default dropout=0.",
        "channels": f"{REFERENCE} Model.py: HTNet default channels=3",
        "input": (f"{MAIN}: the 28x28 (u, v, strain) images of datasets/STSNet_whole_norm_u_v_os (the published "
                  "flow of megc2019-public), four 14x14 windows around MTCNN landmarks in a 2x2 mosaic "
                  "(benchmarks.data.patch_views)"),
        "landmarks": (f"{MAIN} whole_face_block_coordinates: MTCNN(select_largest=True) on the apex image resized "
                      "to 28x28 (cv2.INTER_AREA); no face -> fixed coordinates; clipped to [7, 21], truncated"),
        "centres": f"{MAIN} crop_optical_flow_block: image[x - 7:x + 7, y - 7:y + 7] (row range from x)",
        "lr": f"{MAIN}: learning_rate = 0.00005 (Adam)",
        "optimizer": f"{MAIN}: torch.optim.Adam(model.parameters(), lr=learning_rate)",
        "batch_size": f"{MAIN}: batch_size = 256",
        "epochs": f"{MAIN}: epochs = 800",
        "weight_decay": f"{MAIN}: Adam without weight decay",
        "loss": f"{MAIN}: nn.CrossEntropyLoss()",
        "input_scale": f"{MAIN}: torch.Tensor(np.array(...)) of cv2.imread images: values 0..255, unscaled",
        "bgr": f"{MAIN}: cv2.imread channel order B, G, R = strain, v, u",
        "batch_order": (f"{MAIN}: DataLoader(dataset_train, batch_size=batch_size), no shuffle; training files "
                        "appended expression folder by expression folder"),
        "select_epoch": (f"{MAIN}: best_accuracy_for_each_subject <= val_acc keeps each subject's best test "
                         "epoch (the harness's epoch_policy='oracle'; ties there keep the earliest epoch)"),
    },
    notes="Published (paper, composite of the MEGC2019 public set, 68 folds): UF1 0.8603 / UAR 0.8475, with "
          "each subject's best test epoch (oracle). Cost measured on the 2-core CPU (load 3): one epoch of one "
          "composite fold (439 training clips, batch 256, full model) 34 s (the first 58 s), so the published "
          "800 epochs x 68 folds is about 500 h here.",
))
