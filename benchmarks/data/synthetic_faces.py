"""Rendering of the synthetic face clips: identities, action-unit-like motion fields, clip frames.

A subject is a :class:`FaceIdentity` (face geometry, skin tone, hair, eyes, lips, a skin texture of
smoothed noise, a lighting direction). :func:`render_face` draws its neutral face, 128x128 RGB.
An expression is a smooth displacement field (:func:`motion_field`): a sum of Gaussian-windowed
constant displacements around action-unit-like regions (brows, lids, cheeks, nose, lips, chin),
scaled so that its largest displacement is the clip's amplitude in pixels. :func:`render_clip` warps
the neutral face by ``profile[t] * field`` (``cv2.remap``), composed with a small rigid head motion,
then applies an illumination drift and sensor noise (:class:`Nuisance`) and rounds to uint8.

The action units follow FACS (Ekman, Friesen & Hager 2002) in their visible 2-D direction of motion
in a frontal view; the emotion -> AU patterns follow the usual prototypes (CASME II and SAMM code
happiness AU6+12, surprise AU1+2(+5), disgust AU9/10, repression AU14/15/17, anger AU4(+7),
contempt unilateral AU14, fear AU1+2+4+20, sadness AU1+15). Region sizes, directions and the
nuisance ranges are this generator's own choices (no source fixes them); they are module constants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

SIZE = 128  # frames are SIZE x SIZE RGB

# Action units: (landmark, (outward dx, dy), sigma in px for a face of half-width 45 px).
# Bilateral landmarks exist on both sides; "outward" is away from the face midline. Midline
# landmarks (nose_root, lower_lip, chin) take dy only.
AU_COMPONENTS: dict[str, tuple[tuple[str, tuple[float, float], float], ...]] = {
    "AU1": (("brow_inner", (-0.2, -1.0), 4.5),),                               # inner brow raiser
    "AU2": (("brow_outer", (0.1, -1.0), 4.5),),                                # outer brow raiser
    "AU4": (("brow_inner", (-0.6, 0.8), 5.0), ("brow_mid", (-0.3, 0.7), 5.0)),  # brow lowerer
    "AU5": (("upper_lid", (0.0, -1.0), 3.0),),                                 # upper lid raiser
    "AU6": (("cheek", (0.2, -1.0), 6.0), ("lower_lid", (0.0, -0.6), 3.0)),     # cheek raiser
    "AU7": (("lower_lid", (0.0, -1.0), 3.0),),                                 # lid tightener
    "AU9": (("ala", (0.1, -1.0), 4.0), ("nose_root", (0.0, 0.5), 4.0)),        # nose wrinkler
    "AU10": (("upper_lip", (0.1, -1.0), 4.5),),                                # upper lip raiser
    "AU12": (("corner", (0.7, -0.7), 5.0),),                                   # lip corner puller
    "AU14": (("corner", (0.9, -0.1), 3.5),),                                   # dimpler
    "AU15": (("corner", (0.2, 1.0), 4.5),),                                    # lip corner depressor
    "AU17": (("chin", (0.0, -1.0), 7.0), ("lower_lip", (0.0, -0.6), 4.5)),     # chin raiser
    "AU20": (("corner", (1.0, 0.3), 5.5),),                                    # lip stretcher
}
MIDLINE = ("nose_root", "lower_lip", "chin")

# Native emotion -> AU weights. "AU14U" is a unilateral AU14 whose side the clip plan chooses
# (written "AU14L" / "AU14R": image left / right).
EMOTION_PATTERNS: dict[str, dict[str, float]] = {
    "happiness": {"AU6": 0.6, "AU12": 1.0},
    "surprise": {"AU1": 1.0, "AU2": 1.0, "AU5": 0.6},
    "disgust": {"AU9": 1.0, "AU10": 0.7},
    "repression": {"AU14": 0.7, "AU17": 1.0},
    "anger": {"AU4": 1.0, "AU7": 0.5},
    "contempt": {"AU14U": 1.0},
    "fear": {"AU1": 0.8, "AU2": 0.6, "AU4": 0.6, "AU20": 0.8},
    "sadness": {"AU1": 1.0, "AU15": 1.0},
}

_SKIN_LIGHT = np.array([232.0, 192.0, 165.0])
_SKIN_DARK = np.array([105.0, 70.0, 50.0])
_HAIR = np.array([[25, 20, 18], [55, 38, 28], [95, 65, 40], [170, 140, 90], [140, 135, 130]], float)
_IRIS = np.array([[70, 45, 25], [35, 25, 20], [100, 80, 45], [70, 95, 120], [70, 95, 70]], float)


@dataclass(frozen=True)
class FaceIdentity:
    """One synthetic subject; lengths in pixels of a 128x128 frame, colours RGB 0..255."""

    cx: float
    cy: float
    a: float            # face half-width
    b: float            # face half-height
    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    background: tuple[float, float, float]
    iris: tuple[float, float, float]
    lip: tuple[float, float, float]
    hairline: float     # y of the hairline
    eye_y: float
    eye_dx: float       # half distance between eye centres
    eye_rx: float
    eye_ry: float
    brow_y: float
    brow_len: float     # half length
    brow_thick: float   # half thickness
    brow_tilt: float    # radians; positive lifts the inner ends
    brow_arch: float
    nose_y: float
    nose_w: float       # half width at the alae
    mouth_y: float
    mouth_w: float      # half width
    lip_up: float
    lip_lo: float
    light: tuple[float, float, float]
    ambient: float
    gradient: tuple[float, float]
    texture_seed: int
    texture_fine: tuple[float, float]    # (sigma px, relative amplitude)
    texture_coarse: tuple[float, float]
    moles: tuple[tuple[float, float, float], ...]  # (x, y, radius)

    def landmarks(self) -> dict[str, tuple[float, float]]:
        """Named points; bilateral ones as ``name_L`` (image left) and ``name_R``."""
        pts: dict[str, tuple[float, float]] = {
            "nose_root": (self.cx, self.eye_y - 2.0),
            "lower_lip": (self.cx, self.mouth_y + self.lip_lo),
            "chin": (self.cx, self.mouth_y + 0.55 * (self.cy + self.b - self.mouth_y)),
        }
        inner_dx = self.eye_dx - 0.8 * self.brow_len
        outer_dx = self.eye_dx + 0.8 * self.brow_len
        lift = self.brow_tilt * self.brow_len
        cheek_y = self.eye_y + 0.55 * (self.mouth_y - self.eye_y)
        for side, sx in (("L", -1.0), ("R", 1.0)):
            pts[f"brow_inner_{side}"] = (self.cx + sx * inner_dx, self.brow_y - lift)
            pts[f"brow_outer_{side}"] = (self.cx + sx * outer_dx, self.brow_y + lift)
            pts[f"brow_mid_{side}"] = (self.cx + sx * self.eye_dx, self.brow_y - self.brow_arch)
            pts[f"upper_lid_{side}"] = (self.cx + sx * self.eye_dx, self.eye_y - self.eye_ry)
            pts[f"lower_lid_{side}"] = (self.cx + sx * self.eye_dx, self.eye_y + self.eye_ry)
            pts[f"cheek_{side}"] = (self.cx + sx * (self.eye_dx + 2.0), cheek_y)
            pts[f"ala_{side}"] = (self.cx + sx * 0.6 * self.nose_w, self.nose_y - 3.0)
            pts[f"upper_lip_{side}"] = (self.cx + sx * 0.4 * self.mouth_w, self.mouth_y - self.lip_up)
            pts[f"corner_{side}"] = (self.cx + sx * self.mouth_w, self.mouth_y)
            pts[f"eye_outer_{side}"] = (self.cx + sx * (self.eye_dx + self.eye_rx), self.eye_y)
        return pts


def sample_identity(rng: np.random.Generator) -> FaceIdentity:
    """Draw a subject: geometry, colours, texture seed, lighting."""
    u = rng.uniform
    cx, cy = 64.0 + u(-2, 2), 68.0 + u(-2, 2)
    a = u(40.0, 49.0)
    b = a * u(1.18, 1.32)
    tone = u(0.0, 1.0)
    skin = (_SKIN_LIGHT * (1 - tone) + _SKIN_DARK * tone) * (1 + rng.normal(0, 0.04, 3))
    hair = _HAIR[rng.integers(len(_HAIR))] * u(0.85, 1.15) * (1 + rng.normal(0, 0.03, 3))
    iris = _IRIS[rng.integers(len(_IRIS))] * (1 + rng.normal(0, 0.08, 3))
    lip = skin * np.array([0.92, 0.66, 0.66]) * u(0.82, 1.0)
    background = np.full(3, u(40.0, 170.0)) * (1 + rng.normal(0, 0.08, 3))
    eye_y = cy - b * u(0.18, 0.28)
    eye_rx = a * u(0.15, 0.20)
    eye_ry = eye_rx * u(0.38, 0.50)
    nose_y = cy + b * u(0.08, 0.16)
    mouth_y = nose_y + b * u(0.20, 0.26)
    az = u(0, 2 * math.pi)
    strength = u(0.15, 0.45)
    light = np.array([strength * math.cos(az), strength * math.sin(az), 1.0])
    light /= np.linalg.norm(light)
    n_moles = int(rng.integers(0, 6))
    moles = tuple((float(cx + u(-0.7, 0.7) * a), float(cy + u(-0.5, 0.7) * b), float(u(0.7, 1.4)))
                  for _ in range(n_moles))
    rgb = lambda v: tuple(float(x) for x in np.clip(v, 0, 255))  # noqa: E731
    return FaceIdentity(
        cx=cx, cy=cy, a=a, b=b, skin=rgb(skin), hair=rgb(hair), background=rgb(background), iris=rgb(iris),
        lip=rgb(lip), hairline=cy - b * u(0.55, 0.80), eye_y=eye_y, eye_dx=a * u(0.38, 0.46),
        eye_rx=eye_rx, eye_ry=eye_ry, brow_y=eye_y - eye_ry - u(4.5, 8.0), brow_len=eye_rx * u(1.1, 1.4),
        brow_thick=u(1.0, 2.0), brow_tilt=u(-0.12, 0.12), brow_arch=u(0.5, 2.5), nose_y=nose_y,
        nose_w=a * u(0.18, 0.26), mouth_y=mouth_y, mouth_w=a * u(0.28, 0.38), lip_up=u(2.0, 3.5),
        lip_lo=u(2.5, 4.5), light=rgb(light), ambient=u(0.85, 1.10), gradient=(u(-0.1, 0.1), u(-0.1, 0.1)),
        texture_seed=int(rng.integers(2**31)), texture_fine=(u(1.0, 2.0), u(0.025, 0.05)),
        texture_coarse=(u(4.0, 8.0), u(0.015, 0.035)), moles=moles,
    )


# ------------------------------------------------------------------------------------- drawing
def _grid() -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    return x, y


def _ellipse(x, y, cx, cy, rx, ry, angle=0.0, edge=1.0) -> np.ndarray:
    """Anti-aliased ellipse coverage in [0, 1] (first-order signed distance, ``edge`` px ramp)."""
    c, s = math.cos(angle), math.sin(angle)
    dx, dy = x - cx, y - cy
    u = (c * dx + s * dy) / rx
    v = (-s * dx + c * dy) / ry
    r = np.sqrt(u * u + v * v)
    grad = np.sqrt((u / rx) ** 2 + (v / ry) ** 2) / np.maximum(r, 1e-6)
    d = (r - 1.0) / np.maximum(grad, 1e-6)
    return np.clip(0.5 - d / edge, 0.0, 1.0).astype(np.float32)


def _gauss(x, y, cx, cy, sx, sy=None) -> np.ndarray:
    sy = sx if sy is None else sy
    return np.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2)).astype(np.float32)


def _blend(img: np.ndarray, alpha: np.ndarray, colour) -> None:
    img *= 1.0 - alpha[..., None]
    img += alpha[..., None] * np.asarray(colour, np.float32)


def _smooth_noise(rng: np.random.Generator, sigma: float) -> np.ndarray:
    n = cv2.GaussianBlur(rng.standard_normal((SIZE, SIZE), dtype=np.float32), (0, 0), sigma,
                         borderType=cv2.BORDER_REFLECT)
    return n / max(float(n.std()), 1e-6)


def render_face(f: FaceIdentity) -> np.ndarray:
    """The neutral face of ``f``: float32 (SIZE, SIZE, 3), values about 0..255."""
    x, y = _grid()
    gx, gy = f.gradient
    img = np.empty((SIZE, SIZE, 3), np.float32)
    img[:] = np.asarray(f.background, np.float32)
    img *= (1.0 + 0.15 * (y / SIZE - 0.5))[..., None]

    hair = _ellipse(x, y, f.cx, f.cy - 0.06 * f.b, 1.1 * f.a, 1.08 * f.b, edge=2.0)
    _blend(img, hair, f.hair)
    face = _ellipse(x, y, f.cx, f.cy, f.a, f.b, edge=1.5)
    face_top = np.clip((y - f.hairline) / 3.0 + 0.5, 0.0, 1.0) \
        + _ellipse(x, y, f.cx, f.hairline, 0.45 * f.a, 4.0)
    face_alpha = face * np.clip(face_top, 0.0, 1.0)

    trng = np.random.default_rng(f.texture_seed)
    texture = 1.0 + f.texture_fine[1] * _smooth_noise(trng, f.texture_fine[0]) \
        + f.texture_coarse[1] * _smooth_noise(trng, f.texture_coarse[0])
    skin = np.asarray(f.skin, np.float32) * texture[..., None]
    lm = f.landmarks()
    blush = np.array([0.4, -0.6, -0.6], np.float32)
    for side in "LR":
        cxs, cys = lm[f"cheek_{side}"]
        skin *= 1.0 + 0.06 * _gauss(x, y, cxs, cys + 2, 7.0)[..., None] * blush
    img *= 1.0 - face_alpha[..., None]
    img += face_alpha[..., None] * skin
    feat = img  # features are drawn in place on the face

    dark = np.zeros((SIZE, SIZE), np.float32)  # multiplicative darkening
    for side, sx in (("L", -1.0), ("R", 1.0)):
        ex = f.cx + sx * f.eye_dx
        dark += 0.12 * _gauss(x, y, ex, f.eye_y - 1.0, 1.3 * f.eye_rx, 1.8 * f.eye_ry)  # socket
        ax, ay = lm[f"ala_{side}"]
        dark += 0.10 * _gauss(x, y, f.cx + sx * 0.55 * f.nose_w, 0.5 * (f.eye_y + f.nose_y), 1.6,
                              0.35 * (f.nose_y - f.eye_y))  # nose side
        cxs, cys = lm[f"corner_{side}"]
        vx, vy = cxs - ax, cys - ay
        t = np.clip(((x - ax) * vx + (y - ay) * vy) / (vx * vx + vy * vy), 0, 1)
        dist2 = (x - (ax + sx * 2.0 + t * (vx + sx * 1.0))) ** 2 + (y - (ay + 2.0 + t * vy)) ** 2
        dark += 0.08 * np.exp(-dist2 / 2.0).astype(np.float32)  # nasolabial fold
    dark += 0.08 * _gauss(x, y, f.cx, f.mouth_y + f.lip_lo + 3.0, 0.5 * f.mouth_w, 1.5)  # below the lip
    feat *= (1.0 - np.clip(dark, 0.0, 0.5) * face_alpha)[..., None]

    for sx in (-1.0, 1.0):
        ex = f.cx + sx * f.eye_dx
        sclera = _ellipse(x, y, ex, f.eye_y, f.eye_rx, f.eye_ry, edge=1.0)
        _blend(feat, sclera, np.array([232.0, 226.0, 216.0]) * 0.9)
        iris_x = ex - sx * 0.5
        iris_r, pupil_r = 0.95 * f.eye_ry + 0.6, 0.4 * f.eye_ry
        _blend(feat, sclera * _ellipse(x, y, iris_x, f.eye_y, iris_r, iris_r), f.iris)
        _blend(feat, sclera * _ellipse(x, y, iris_x, f.eye_y, pupil_r, pupil_r), (15.0, 12.0, 12.0))
        lid = np.clip(_ellipse(x, y, ex, f.eye_y, f.eye_rx + 1.0, f.eye_ry + 1.0) - sclera, 0, 1)
        lid *= np.clip(f.eye_y + 0.5 * f.eye_ry - y, 0, 1)
        _blend(feat, 0.8 * lid, (40.0, 30.0, 28.0))
        crease = _ellipse(x, y, ex, f.eye_y - 0.3 * f.eye_ry, f.eye_rx + 1.0, f.eye_ry + 2.2) \
            - _ellipse(x, y, ex, f.eye_y - 0.3 * f.eye_ry, f.eye_rx + 0.3, f.eye_ry + 1.5)
        crease = np.clip(crease, 0, 1) * (y < f.eye_y - f.eye_ry)
        feat *= (1.0 - 0.18 * crease)[..., None]
        # brow: a tilted, arched thick ellipse
        bx = ex
        arch_y = y + f.brow_arch * (1.0 - ((x - bx) / f.brow_len) ** 2)
        brow = _ellipse(x, arch_y, bx, f.brow_y, f.brow_len, f.brow_thick, angle=-sx * f.brow_tilt, edge=1.2)
        _blend(feat, 0.85 * brow, 0.6 * np.asarray(f.hair) + 0.4 * np.asarray(f.skin) * 0.5)
        # nostril
        nostril = _ellipse(x, y, f.cx + sx * 0.38 * f.nose_w, f.nose_y, 2.2, 1.3)
        _blend(feat, 0.8 * nostril, (45.0, 28.0, 25.0))
    feat += (18.0 * _gauss(x, y, f.cx, f.nose_y - 4.0, 2.5) * face_alpha)[..., None]  # nose-tip highlight
    upper = _ellipse(x, y, f.cx, f.mouth_y - 0.5 * f.lip_up, f.mouth_w, f.lip_up, edge=1.2)
    upper *= y < f.mouth_y + 0.5
    lower = _ellipse(x, y, f.cx, f.mouth_y + 0.5 * f.lip_lo, 0.9 * f.mouth_w, f.lip_lo, edge=1.2)
    lower *= y > f.mouth_y - 0.5
    _blend(feat, np.clip(upper + lower, 0, 1).astype(np.float32), f.lip)
    _blend(feat, 0.9 * _ellipse(x, y, f.cx, f.mouth_y, 0.97 * f.mouth_w, 0.7, edge=1.0), (60.0, 30.0, 30.0))
    for mx, my, mr in f.moles:
        _blend(feat, 0.7 * face_alpha * _ellipse(x, y, mx, my, mr, mr), np.asarray(f.skin) * 0.45)

    # lighting: Lambert on an ellipsoid inside the face, half strength on hair, a global gradient
    nx, ny = (x - f.cx) / f.a, (y - f.cy) / f.b
    nz = np.sqrt(np.clip(1.0 - nx * nx - ny * ny, 0.02, 1.0))
    norm = np.sqrt(nx * nx + ny * ny + nz * nz)
    lx, ly, lz = f.light
    lambert = np.clip((lx * nx + ly * ny + lz * nz) / norm, 0.0, 1.0)
    shade = f.ambient * (0.45 + 0.55 * lambert)
    mix = face_alpha + 0.5 * hair * (1.0 - face_alpha)
    shading = (1.0 - mix) + mix * shade
    shading *= 1.0 + gx * (x - 64.0) / 64.0 + gy * (y - 64.0) / 64.0
    return (feat * shading[..., None]).astype(np.float32)


# ------------------------------------------------------------------------------------- motion
def motion_field(f: FaceIdentity, weights: dict[str, float], amplitude: float) -> np.ndarray:
    """Displacement field (SIZE, SIZE, 2) = (dx, dy) of the AU mix ``weights``, max magnitude ``amplitude``.

    AU names are those of :data:`AU_COMPONENTS`, with a suffix ``L`` / ``R`` for a one-sided AU.
    """
    x, y = _grid()
    lm = f.landmarks()
    field = np.zeros((SIZE, SIZE, 2), np.float32)
    scale = f.a / 45.0
    for name, w in weights.items():
        base, sides = name, ("L", "R")
        if name not in AU_COMPONENTS and name[:-1] in AU_COMPONENTS and name[-1] in "LR":
            base, sides = name[:-1], (name[-1],)
        if base not in AU_COMPONENTS:
            raise ValueError(f"unknown action unit {name!r} (known: {', '.join(AU_COMPONENTS)})")
        for landmark, (out, dy), sigma in AU_COMPONENTS[base]:
            points = [(lm[landmark], 0.0)] if landmark in MIDLINE else \
                [(lm[f"{landmark}_{s}"], -1.0 if s == "L" else 1.0) for s in sides]
            for (px, py), sx in points:
                g = w * _gauss(x, y, px, py, sigma * scale)
                field[..., 0] += g * out * sx
                field[..., 1] += g * dy
    peak = float(np.sqrt((field**2).sum(-1)).max())
    if peak <= 0:
        return field
    return field * np.float32(amplitude / peak)


def temporal_profile(n_frames: int, apex: int, residual: float) -> np.ndarray:
    """Expression intensity per frame: 0 at the onset (frame 0), 1 at ``apex``, ``residual`` at the end."""
    t = np.arange(n_frames, dtype=np.float64)
    rise = 0.5 * (1 - np.cos(np.pi * np.clip(t / max(apex, 1), 0, 1)))
    fall_t = np.clip((t - apex) / max(n_frames - 1 - apex, 1), 0, 1)
    fall = residual + (1 - residual) * 0.5 * (1 + np.cos(np.pi * fall_t))
    return np.where(t <= apex, rise, fall)


# ------------------------------------------------------------------------------------- appearance
# What an action unit does to the skin besides moving it (FACS manual, "appearance changes": Ekman,
# Friesen & Hager 2002): furrows, deepened folds, bulges. Each entry is (landmark, kind, offset, sigma,
# angle, period, depth), lengths in px for a face of half-width 45 px (scaled with the face): ``offset``
# (outward dx, dy) from the landmark, mirrored on the image-left side like the motion; a window of
# ``sigma`` = (along, across) the direction ``angle`` (radians from the image x axis, pointing outward);
# ``kind`` "furrows" = dark parallel lines along ``angle``, ``period`` px apart, inside the window, or
# "shade" = the window alone, dark for depth < 0 and bright for depth > 0. ``depth`` is the relative
# intensity change at full intensity for AU weight 1, before the clip's and the subject's factors.
AU_APPEARANCE: dict[str, tuple[tuple[str, str, tuple[float, float], tuple[float, float], float, float, float],
                               ...]] = {
    "AU1": (("brow_inner", "furrows", (1.0, -9.0), (6.0, 5.0), 0.0, 5.0, -0.10),),       # central forehead
    "AU2": (("brow_outer", "furrows", (-1.0, -9.0), (6.0, 5.0), 0.0, 5.0, -0.09),),      # lateral forehead
    "AU4": (("nose_root", "furrows", (0.0, -4.0), (4.0, 4.5), math.pi / 2, 4.0, -0.12),  # glabellar furrows
            ("brow_inner", "shade", (0.0, 3.0), (4.0, 1.6), 0.0, 0.0, -0.06)),           # brow bulge shadow
    "AU5": (("upper_lid", "shade", (0.0, 1.0), (3.5, 1.2), 0.0, 0.0, 0.08),),            # more sclera shows
    "AU6": (("eye_outer", "furrows", (3.5, 1.0), (3.0, 4.5), 0.35, 3.6, -0.10),          # crow's feet
            ("cheek", "shade", (0.0, -2.0), (6.0, 4.0), 0.0, 0.0, 0.06),                 # raised cheek
            ("lower_lid", "shade", (0.0, 2.5), (4.0, 1.0), 0.0, 0.0, -0.07)),            # lower-lid bag
    "AU7": (("lower_lid", "shade", (0.0, 1.5), (4.0, 0.9), 0.0, 0.0, -0.09),),           # lid bulge line
    "AU9": (("nose_root", "furrows", (0.0, 4.5), (4.5, 3.5), 0.0, 3.8, -0.12),           # nose-root wrinkles
            ("ala", "shade", (1.5, -1.0), (1.6, 3.0), -0.5, 0.0, -0.07)),
    "AU10": (("ala", "shade", (2.5, 3.0), (1.2, 4.0), -0.45, 0.0, -0.10),),               # upper nasolabial fold
    "AU12": (("ala", "shade", (4.0, 7.0), (1.3, 6.0), -0.38, 0.0, -0.12),                 # nasolabial fold deepens
             ("cheek", "shade", (0.0, 1.0), (6.0, 4.0), 0.0, 0.0, 0.05)),
    "AU14": (("corner", "shade", (2.5, 0.0), (1.2, 1.5), 0.0, 0.0, -0.15),),             # dimple
    "AU15": (("corner", "shade", (0.5, 5.0), (1.0, 4.0), 0.0, 0.0, -0.10),),             # marionette line
    "AU17": (("chin", "furrows", (0.0, 0.0), (6.0, 4.0), 0.0, 3.5, -0.08),               # chin boss wrinkling
             ("lower_lip", "shade", (0.0, 3.5), (5.0, 1.2), 0.0, 0.0, -0.08)),           # mentolabial furrow
    "AU20": (("corner", "furrows", (4.5, 0.0), (3.0, 3.5), math.pi / 2, 3.8, -0.08),),   # stretched skin lines
}


def _primitive(x, y, px, py, kind, sigma, angle, period, depth) -> np.ndarray:
    """One appearance primitive centred at (px, py) (see :data:`AU_APPEARANCE`)."""
    c, s = math.cos(angle), math.sin(angle)
    dx, dy = x - px, y - py
    along = c * dx + s * dy       # along the lines
    across = -s * dx + c * dy     # across the lines (their normal)
    window = np.exp(-0.5 * ((along / sigma[0]) ** 2 + (across / sigma[1]) ** 2)).astype(np.float32)
    if kind == "shade":
        return depth * window
    lines = 0.5 * (1.0 + np.cos(2.0 * math.pi * across / period))
    return (depth * window * lines**2).astype(np.float32)


def appearance_map(f: FaceIdentity, weights: dict[str, float], gain: float) -> np.ndarray:
    """Relative intensity change (SIZE, SIZE) of the AU mix ``weights`` at full intensity, times ``gain``.

    Same AU names as :func:`motion_field` (suffix ``L`` / ``R`` for a one-sided AU). Values are clipped to
    [-0.5, 0.5]; multiply the neutral face by ``1 + intensity * map``.
    """
    x, y = _grid()
    lm = f.landmarks()
    out = np.zeros((SIZE, SIZE), np.float32)
    scale = f.a / 45.0
    for name, w in weights.items():
        base, sides = name, ("L", "R")
        if name not in AU_APPEARANCE and name[:-1] in AU_APPEARANCE and name[-1] in "LR":
            base, sides = name[:-1], (name[-1],)
        if base not in AU_APPEARANCE:
            raise ValueError(f"unknown action unit {name!r} (known: {', '.join(AU_APPEARANCE)})")
        for landmark, kind, (ox, oy), sigma, angle, period, depth in AU_APPEARANCE[base]:
            points = [(lm[landmark], 1.0)] if landmark in MIDLINE else \
                [(lm[f"{landmark}_{s}"], -1.0 if s == "L" else 1.0) for s in sides]
            for (px, py), sx in points:
                out += w * _primitive(x, y, px + sx * ox * scale, py + oy * scale, kind,
                                      (sigma[0] * scale, sigma[1] * scale), sx * angle, period * scale, depth)
    return np.clip(out * np.float32(gain), -0.5, 0.5)


# ------------------------------------------------------------------------------------- nuisance
@dataclass(frozen=True)
class Nuisance:
    """Per-frame rigid motion (px, radians), illumination gain and gradient, and noise level."""

    shift: np.ndarray       # (T, 2)
    rotation: np.ndarray    # (T,)
    gain: np.ndarray        # (T,)
    gradient: np.ndarray    # (T, 2) extra linear illumination gradient
    noise_sigma: float      # grey levels


def sample_nuisance(rng: np.random.Generator, n_frames: int) -> Nuisance:
    """Head motion: start offset <= 0.5 px, linear drift 0.1-1 px over the clip, a small wobble, rotation
    within +-0.5 deg plus a drift within +-0.5 deg. Illumination: gain drift +-5 %, flicker 0.4 %, a
    gradient drift up to +-4 %. Sensor noise sigma 1-3 grey levels."""
    u = rng.uniform
    s = np.linspace(0.0, 1.0, n_frames)
    ang = u(0, 2 * math.pi)
    drift = u(0.1, 1.0) * np.array([math.cos(ang), math.sin(ang)])
    wobble, freq, phase = u(0.0, 0.15), u(1.0, 2.0), u(0, 2 * math.pi)
    shift = u(-0.5, 0.5, 2)[None] + s[:, None] * drift[None] \
        + wobble * np.sin(2 * math.pi * freq * s + phase)[:, None] * np.array([[1.0, 0.6]])
    deg = math.pi / 180
    rotation = u(-0.5, 0.5) * deg + s * u(-0.5, 0.5) * deg
    gain = u(0.95, 1.05) * (1 + u(-0.05, 0.05) * s) + rng.normal(0, 0.004, n_frames)
    gradient = s[:, None] * u(-0.04, 0.04, 2)[None]
    return Nuisance(shift, rotation, gain, gradient, float(u(1.0, 3.0)))


def render_clip(face: np.ndarray, f: FaceIdentity, field: np.ndarray, profile: np.ndarray,
                nuisance: Nuisance | None, rng: np.random.Generator | None = None,
                appearance: np.ndarray | None = None) -> np.ndarray:
    """Frames (T, SIZE, SIZE, 3) uint8: ``face`` warped by ``profile[t] * field`` and the nuisance.

    A face point p appears at R(p + s d(p) - c) + c + t: for each output pixel the source is found by
    undoing the rigid motion, then the expression (first order: u - s d(u)). ``nuisance=None`` gives
    a clean clip (no head motion, lighting change or noise). ``appearance`` (SIZE, SIZE), a relative
    intensity change in the neutral face's frame (:func:`appearance_map`), is applied with the same
    intensity as the motion: frame t warps ``face * (1 + profile[t] * appearance)``, so the folds and
    shading ride with the skin.
    """
    x, y = _grid()
    frames = np.empty((len(profile), SIZE, SIZE, 3), np.uint8)
    ramp_x, ramp_y = (x - 64.0) / 64.0, (y - 64.0) / 64.0
    for t, s in enumerate(profile.tolist()):
        if nuisance is None:
            ux, uy = x.copy(), y.copy()
        else:
            theta = float(nuisance.rotation[t])
            c, sn = math.cos(theta), math.sin(theta)
            dx = x - (f.cx + float(nuisance.shift[t, 0]))
            dy = y - (f.cy + float(nuisance.shift[t, 1]))
            ux = c * dx + sn * dy + f.cx
            uy = -sn * dx + c * dy + f.cy
        if s != 0:
            d = cv2.remap(field, ux, uy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            ux -= s * d[..., 0]
            uy -= s * d[..., 1]
        src = face if appearance is None or s == 0 else face * (1.0 + np.float32(s) * appearance)[..., None]
        img = cv2.remap(src, ux, uy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        if nuisance is not None:
            gx, gy = (float(v) for v in nuisance.gradient[t])
            img *= (float(nuisance.gain[t]) * (1.0 + gx * ramp_x + gy * ramp_y))[..., None]
            img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(nuisance.noise_sigma)
        np.rint(img, out=img)
        np.clip(img, 0, 255, out=img)
        frames[t] = img
    return frames
