"""Figures of a run (``--figures``): confusion matrices (the paper's Figure 5) and MFVAN attention maps per
scale over apex frames (after the paper's Figure 6), as PNG files. Matplotlib with the Agg backend.

- :func:`confusion_figures`: one row-normalised confusion matrix per (method, variant, dataset), pooled
  over every LOSO fold and every seed (each clip counted once per seed), cells annotated with the
  fraction of the true class and the clip count. :func:`confusion_matrix_for` returns the counts drawn.
- :func:`attention_figure`: a grid with one row per image; first column the apex frame, then one column
  per scale with the attention map upsampled bilinearly to the image size and overlaid. The paper's
  Figure 6 shows Grad-CAM maps of the features of scale 1 (the image), 2 and 3 (the first and second
  convolutional feature maps); this figure shows MFVAN's own class-token attention over the patch grid
  of each scale (``MFVAN(..., return_attention=True)["attention"]``), which needs no gradients. Each map
  is min-max scaled to [0, 1] before colouring (the raw weights sum to 1 over the s x s patches), so the
  colours compare positions within a map, not magnitudes across maps.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after selecting the backend)

from benchmarks import metrics as M  # noqa: E402

DPI = 150


def _save(fig, out_path: str | Path) -> Path:
    """Lay out and write ``fig`` as PNG at ``out_path`` (parents created); returns the path."""
    fig.tight_layout()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=DPI)
    return out_path
SCALE_TITLES = {1: "scale 1 (image)", 2: "scale 2 (conv map 1)", 3: "scale 3 (conv map 2)"}


# ------------------------------------------------------------------------------ confusion matrices
def confusion_matrix_for(pred: pd.DataFrame, method: str, variant: str | None, dataset: str,
                         n_classes: int) -> np.ndarray:
    """``(n_classes, n_classes)`` counts (rows true, columns predicted) of ``method[variant]`` on ``dataset``,
    pooled over folds and seeds. Raises ValueError when there is no such prediction."""
    m = (pred["method"] == method) & (pred["variant"].fillna("") == (variant or "")) & (pred["dataset"] == dataset)
    d = pred.loc[m]
    if d.empty:
        raise ValueError(f"no predictions of {method}[{variant or ''}] on {dataset}")
    return M.confusion_matrix(d["y_true"].to_numpy(), d["y_pred"].to_numpy(), n_classes)


def row_normalise(cm: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (the recall of each true class along the diagonal); an empty row stays 0."""
    cm = np.asarray(cm, dtype=np.float64)
    s = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, s, out=np.zeros_like(cm), where=s > 0)


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s.replace("+", "-")).strip("_") or "x"


def confusion_file_name(method: str, variant: str | None, dataset: str) -> str:
    """``confusion_<method>[_<variant>]_<dataset>.png``, '+' written '-' and other unsafe characters '_'."""
    parts = [method] + ([variant] if variant else []) + [dataset]
    return "confusion_" + "_".join(_safe(p) for p in parts) + ".png"


def draw_confusion(cm: np.ndarray, class_names: Sequence[str], title: str, out_path: str | Path) -> Path:
    """Write one row-normalised confusion matrix (cells: fraction of the true class, count) as PNG."""
    cm = np.asarray(cm)
    k = len(class_names)
    if cm.shape != (k, k):
        raise ValueError(f"{out_path}: confusion matrix {cm.shape} does not match {k} class names")
    norm = row_normalise(cm)
    side = 1.0 + 0.9 * k
    fig, ax = plt.subplots(figsize=(side + 1.4, side + 0.6), dpi=DPI)
    try:
        im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{norm[i, j]:.2f}\n({int(cm[i, j])})", ha="center", va="center", fontsize=8,
                        color="white" if norm[i, j] > 0.5 else "black")
        ax.set_xticks(range(k), labels=list(class_names), rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(k), labels=list(class_names), fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        return _save(fig, out_path)
    finally:
        plt.close(fig)


def confusion_figures(pred: pd.DataFrame, class_names: Mapping[str, Sequence[str]], out: str | Path) -> list[Path]:
    """One PNG per (method, variant, dataset) of ``pred`` under ``out`` (see :func:`confusion_file_name`).

    ``class_names`` maps each dataset to its class names in label order (``ClipDataset.classes``).
    Returns the written paths, sorted by (method, variant, dataset).
    """
    missing = [c for c in ("method", "variant", "dataset", "y_true", "y_pred") if c not in pred.columns]
    if missing:
        raise ValueError(f"predictions: missing column(s) {missing}")
    out = Path(out)
    keys = pred[["method", "variant", "dataset"]].fillna("").astype(str).drop_duplicates()
    paths, seen = [], {}
    for method, variant, dataset in sorted(keys.itertuples(index=False, name=None)):
        if dataset not in class_names:
            raise KeyError(f"class_names has no entry for dataset {dataset!r} (given: {', '.join(class_names)})")
        names = list(class_names[dataset])
        cm = confusion_matrix_for(pred, method, variant, dataset, len(names))
        name = confusion_file_name(method, variant, dataset)
        if name in seen:
            raise ValueError(f"file name {name} would hold both {seen[name]} and {(method, variant, dataset)}")
        seen[name] = (method, variant, dataset)
        d = pred[(pred["method"] == method) & (pred["variant"].fillna("") == variant) & (pred["dataset"] == dataset)]
        n_seeds = d["seed"].nunique() if "seed" in d.columns else 1
        title = (f"{method}{f' [{variant}]' if variant else ''} on {dataset}\n"
                 f"{int(cm.sum())} predictions, all LOSO folds, {n_seeds} seed(s) pooled; rows normalised")
        paths.append(draw_confusion(cm, names, title, out / name))
    return paths


# ------------------------------------------------------------------------------ attention maps
def upsample_attention(att: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(B, s, s)`` maps -> ``(B, H, W)`` float32 by bilinear interpolation (``cv2.INTER_LINEAR``,
    half-pixel centres, as ``align_corners=False``); ``size`` is (H, W)."""
    att = np.asarray(att, dtype=np.float32)
    if att.ndim != 3:
        raise ValueError(f"attention: expected (B, s, s), got shape {att.shape}")
    h, w = int(size[0]), int(size[1])
    return np.stack([cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR) for a in att])


def _unit_range(a: np.ndarray) -> np.ndarray:
    lo, hi = float(a.min()), float(a.max())
    return np.zeros_like(a) if hi - lo <= 0 else (a - lo) / (hi - lo)


def attention_figure(apex_images: np.ndarray, attention: Mapping[int, np.ndarray], out_path: str | Path,
                     titles: Sequence[str] | None = None, alpha: float = 0.5, cmap: str = "jet") -> Path:
    """Write the grid of apex frames and their per-scale attention overlays as PNG; returns ``out_path``.

    ``apex_images``: ``(B, H, W, 3)`` uint8, RGB. ``attention``: scale -> ``(B, s, s)`` finite maps (any
    s per scale), columns in ascending scale order. ``titles``: one label per image (row), e.g. the clip.
    """
    imgs = np.asarray(apex_images)
    if imgs.ndim != 4 or imgs.shape[-1] != 3 or imgs.dtype != np.uint8:
        raise ValueError(f"apex_images: expected (B, H, W, 3) uint8 RGB, got shape {imgs.shape} dtype {imgs.dtype}")
    b, h, w = imgs.shape[:3]
    if b == 0:
        raise ValueError("apex_images: no image")
    if not attention:
        raise ValueError("attention: no scale given")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if titles is not None and len(titles) != b:
        raise ValueError(f"titles: {len(titles)} given for {b} images")
    scales = sorted(attention)
    maps = {}
    for s in scales:
        a = np.asarray(attention[s])
        if a.ndim != 3 or a.shape[0] != b or a.shape[1] != a.shape[2]:
            raise ValueError(f"attention[{s}]: expected ({b}, s, s), got shape {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"attention[{s}]: non-finite values")
        maps[s] = upsample_attention(a, (h, w))
    ncol = 1 + len(scales)
    cell = 2.0
    fig, axes = plt.subplots(b, ncol, figsize=(cell * ncol, cell * b + 0.4), dpi=DPI, squeeze=False)
    try:
        for i in range(b):
            axes[i, 0].imshow(imgs[i])
            if titles is not None:
                axes[i, 0].set_ylabel(str(titles[i]), fontsize=7)
            for j, s in enumerate(scales, 1):
                axes[i, j].imshow(imgs[i])
                axes[i, j].imshow(_unit_range(maps[s][i]), cmap=cmap, alpha=alpha, vmin=0.0, vmax=1.0)
        axes[0, 0].set_title("apex", fontsize=8)
        for j, s in enumerate(scales, 1):
            axes[0, j].set_title(SCALE_TITLES.get(s, f"scale {s}"), fontsize=8)
        for ax in axes.ravel():
            ax.set_xticks([])
            ax.set_yticks([])
        return _save(fig, out_path)
    finally:
        plt.close(fig)
