"""MFVAN attention maps per scale over apex frames (``benchmarks.run --figures``, after the paper's Figure 6).

The runner stores predictions, not models, so a figure retrains one LOSO fold of the cell: the first fold
(its held-out subject's apex frames are drawn), with the seed, data and trainer of that fold's unit (the
sequential trainer, so the model is exactly the one whose predictions the sequential unit stores; the
fold-batched unit's agrees up to floating-point rounding). The trained model is taken from the shared
trainer through its ``pre_fit`` hook (the hook receives the very module the trainer then fits), so the
training code is the one every unit runs. Maps are the class token's attention over each scale's patch
grid on the unmasked pass (``MFVAN.forward(return_attention=True)``), for up to ``n_images`` test clips.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks import evaluate
from benchmarks.data.clips import ClipDataset
from benchmarks.data.views import view_array
from benchmarks.figures import _safe, attention_figure
from benchmarks.registry import get_method
from benchmarks.seeding import derive_seed
from benchmarks.splits import loso_splits
from benchmarks.trainer import resolve_device, train_fold


def trained_fold_model(ds: ClipDataset, variant: str, seed: int = 0, overrides: dict | None = None,
                       fold: int = 0, epoch_policy: str = "last", device: str = "auto"
                       ) -> tuple[Any, Any, Any, dict[str, np.ndarray]]:
    """(trained ``MFVANFold`` in eval mode, the fold, the resolved config, every clip's model inputs) of fold
    ``fold`` of the MFVAN cell (variant, seed, overrides) on ``ds``, trained as
    :func:`benchmarks.evaluate.run_loso` trains it."""
    spec = get_method("mfvan")
    cfg = evaluate.method_config(spec, ds, variant, overrides, None)
    views, _, _ = evaluate.resolve_views(spec, cfg, ds)
    x = evaluate.deep_inputs(spec, cfg, ds, views)
    y, groups = ds.labels(), ds.groups()
    f = loso_splits(groups)[fold]
    tr, te = f.train_idx, f.test_idx
    captured: list[torch.nn.Module] = []
    method_hook = spec.pre_fit(cfg, x, f)

    def capture(model, x_fit, y_fit, pre_seed):
        captured.append(model)
        if method_hook is not None:
            method_hook(model, x_fit, y_fit, pre_seed)

    key = evaluate.unit_key(spec, cfg, ds, seed)
    train_fold(lambda: spec.build(cfg), evaluate._take(x, tr), y[tr], evaluate._take(x, te),
               y[te] if epoch_policy == "oracle" else None, evaluate.train_config(cfg, epoch_policy, device),
               derive_seed(key, f.k), groups_train=groups[tr], n_classes=ds.n_classes, pre_fit=capture)
    return captured[0].eval(), f, cfg, x


@torch.inference_mode()
def attention_for(model: Any, apex: np.ndarray, device: str = "auto") -> dict[int, np.ndarray]:
    """Scale -> (B, s, s) class-token attention of ``model`` (an ``MFVANFold``) on apex inputs (B, 3, S, S)."""
    dev = resolve_device(device)
    out = model.to(dev).net(torch.as_tensor(apex, device=dev), return_attention=True)
    return {int(k): v.float().cpu().numpy() for k, v in out["attention"].items()}


def attention_figures(ds: ClipDataset, variants: list[str], out: str | Path, seed: int = 0,
                      overrides: dict | None = None, n_images: int = 4, epoch_policy: str = "last",
                      device: str = "auto") -> list[Path]:
    """One PNG per MFVAN variant with scales: ``attention_mfvan_<variant>_<dataset>.png`` under ``out``."""
    paths = []
    for variant in variants:
        cfg = evaluate.method_config(get_method("mfvan"), ds, variant, overrides, None)
        if not cfg.scales:
            continue  # the Global variants have no attention
        model, f, cfg, x = trained_fold_model(ds, variant, seed, overrides, 0, epoch_policy, device)
        rows = f.test_idx[:n_images]
        att = attention_for(model, x["apex"][rows], device)
        images = view_array(ds, "apex_frame", rows, size=cfg.img_size, color="rgb", progress=False)
        c = ds.clips.iloc[rows]
        titles = [f"{s}/{k} ({ds.classes[int(lab)]})" for s, k, lab in zip(c["subject"], c["clip"], c["label"])]
        name = f"attention_mfvan_{_safe(variant.replace('+', '-'))}_{_safe(ds.name)}.png"
        paths.append(attention_figure(np.asarray(images, dtype=np.uint8), att, Path(out) / name, titles=titles))
    return paths
