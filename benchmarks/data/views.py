"""Cached views of a clip: the inputs methods consume (key frames, flow, strain, TIM sequences).

A method names the view it needs as a :class:`ViewSpec` (a name in :data:`VIEWS` plus parameters);
:func:`get_view` returns it for one clip (a row position of a :class:`ClipDataset`) and
:func:`view_array` stacks it over clips. The views:

=========================  =====================================================  ========================
name                       value                                                  parameters (defaults)
=========================  =====================================================  ========================
``onset_frame``            onset frame, uint8 (H, W, 3) RGB or (H, W) gray        size=224, color="rgb"
``apex_frame``             apex frame, same                                       size=224, color="rgb"
``flow``                   TV-L1 flow onset -> apex, float32 (2, H, W) = (u, v)   size=28
``strain``                 optical-strain magnitude, float32 (H, W)               size=28
``flow_uvs``               float32 (3, H, W) = (u, v, strain)                     size=28, scale="minmax"
``magnitude_orientation``  float32 (2, H, W) = (|flow|, atan2(v, u))              size=28
``tim_sequence``           float32 (N, H, W) gray or (N, H, W, 3) RGB             n_frames=10, size=128,
                                                                                  color="gray",
                                                                                  method="tim",
                                                                                  span="onset_offset"
``face_landmarks``         five points, float32 (5, 2) (x, y); NaN if no face      frame="apex", size=28,
                                                                                  detect_size=None
``face_box``               per-clip face crop (cx, cy, side, angle, found)        template="auto"
``flow_roi_mosaic``        Dual-ATME's ROI puzzle of flow_uvs, float32 (3, H, W)  size=28, source_size=None,
                                                                                  scale="minmax", rois
``landmark_patches``       HTNet's four 14x14 flow windows at the landmarks       size=28, patch=14,
                                                                                  landmarks="fixed",
                                                                                  centres="reference"
``frame_sequence``         the first N frames, uint8 (N, H, W, 3)                 n_frames=30, size=128,
                                                                                  color="rgb", start="clip",
                                                                                  pad="repeat_last"
``magnified_apex``         apex magnified against onset (linear Eulerian)         size=224, color="rgb",
                                                                                  alpha=10.0, lambda_c=16.0,
                                                                                  levels=6
=========================  =====================================================  ========================

``face_landmarks`` and ``face_box`` are registered by :mod:`benchmarks.data.landmark_views` (detector:
:mod:`benchmarks.data.landmarks`), the last four by :mod:`benchmarks.data.roi_views`,
:mod:`benchmarks.data.patch_views`, :mod:`benchmarks.data.sequence_views` and
:mod:`benchmarks.data.magnify_views`. Face crop: a clip whose ``face_crop`` column is not ``release``
(raw CASME II / SMIC-HS, SAMM) has every frame read through its ``face_box`` (a square crop,
rotated so the eyes are level, fitted on the onset frame's landmarks); no column means ``release``.

``size`` is None (the frames' native size), an int s (s x s) or (H, W). Frames are resized with
pixel-area averaging when shrinking and bilinearly when enlarging. Flow is computed by TV-L1
(:class:`benchmarks.data.flow.TVL1Params`, OpenCV defaults) on the grayscale onset and apex at the
frames' own (crop) resolution, then resized with the vectors rescaled (u by W'/W, v by H'/H), so
``flow`` is in pixels of the requested grid. ``strain`` is computed from the native-resolution
flow (formula in :func:`benchmarks.data.flow.optical_strain`) and the scalar map is then resized.
``magnitude_orientation`` is taken from the resized ``flow`` (orientation in (-pi, pi], y down).
``flow_uvs`` stacks resized u, v and strain; ``scale="minmax"`` rescales each channel of each clip
to [0, 1] (the representation of the published STSTNet/OFF-ApexNet inputs, no absolute
magnitude), ``scale="none"`` keeps pixels and strain units. ``tim_sequence`` takes the frames from
onset to offset (``span="onset_offset"``; an unknown onset/offset (-1) opens that end) or the whole
clip (``span="clip"``), resizes them and resamples them to ``n_frames`` by TIM
(:mod:`benchmarks.data.tim`) or, labelled as such, by ``method="linear"`` interpolation.

Data sources: a clip with frames gets every view computed from its frames. A dataset without
frames (the public MEGC2019 composite) may publish stored views (``ds.stored_views``: a name
``<kind>_<size>`` -> the clip-table column with the file path): ``flow_uvs_<s>`` (an RGB PNG whose
channels are u, v, strain, each min-max scaled to 0..255 per clip) provides ``flow_uvs`` with
``scale="minmax"`` and ``apex_<s>`` (an RGB JPEG apex crop) provides ``apex_frame``, at the stored
size or smaller. Anything else raises :class:`ViewUnavailable`, naming the dataset and view.

Derived views (``ViewDef.bases``, e.g. ``flow_roi_mosaic`` of :mod:`benchmarks.data.roi_views`) are computed
from other views only: they are available wherever their base views are (frames or stored views), and their
cache key covers the base views' keys instead of a storage fingerprint (plus ``ViewDef.version``).

Cache: each computed view is saved as ``<root>/<view name>/<key[:2]>/<key>.npz`` with
:func:`benchmarks.atomic.atomic_save_npz` (atomic, checksummed). ``<root>`` is the ``cache_dir``
argument, else the folder set by :func:`set_cache_dir`, else ``benchmarks.paths.cache_dir()/"views"``
(``$MER_CACHE_DIR`` or ``~/.cache/mer-bench``, outside the source tree). The key hashes the clip
identity (source dataset, subject, clip; not the name of the dataset that lists it, so a composite reuses
its sources' views), the frame storage (path, size and mtime), the face crop (detector, template) where one applies,
a view's own ``version`` (the detector's name and version for the landmark views),
onset/apex/offset, the stored file when one is read, the view name, its canonical parameters,
:data:`VIEW_CODE_VERSION`, the OpenCV version and, for flow-based views, the TV-L1 parameters.
An unreadable or corrupt entry is detected by its checksum, recomputed and overwritten.
``cache=False`` bypasses the cache (no read, no write).

HTNet's landmark-centred flow windows (``landmark_patches``) are a derived view of
:mod:`benchmarks.data.patch_views`, imported at the end of this module. ``VIEW_CODE_VERSION`` covers the
derived views' modules too.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks import paths
from benchmarks.atomic import atomic_save_npz, load_npz_checked, stable_hash
from benchmarks.data import flow as _flow
from benchmarks.data import frames as _frames
from benchmarks.data import landmarks as _lm
from benchmarks.data import tim as _tim
from benchmarks.data.clips import ClipDataset
from benchmarks.data.errors import DataError

log = logging.getLogger(__name__)

VIEW_CODE_VERSION = "1"
"""Bump whenever a change to this module, flow.py, tim.py or a derived-view module (landmark_views.py)
changes any view's numbers."""

COLORS = ("rgb", "gray")
FLOW_SCALES = ("minmax", "none")
TIM_SPANS = ("onset_offset", "clip")
_FLOW_VIEWS = {"flow", "strain", "flow_uvs", "magnitude_orientation"}
_STORED_KINDS = {"flow_uvs": "flow_uvs", "apex": "apex_frame"}   # stored-view prefix -> view name
_READ_CHUNK = 16                                                # frames read at once for sequences


class ViewUnavailable(Exception):
    """The data source of a dataset cannot provide a view (for example an onset frame when only
    stored flow images were published). The harness reports it as "not runnable on this data"."""

    def __init__(self, dataset: str, view: str, reason: str) -> None:
        self.dataset, self.view, self.reason = dataset, view, reason
        super().__init__(f"view {view} is not available for dataset {dataset}: {reason}")


# ============================================================================================ specs
def _freeze(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


@dataclass(frozen=True)
class ViewSpec:
    """A view request: a view name in :data:`VIEWS` and its parameters (hashable, order-free).

    ``ViewSpec("flow_uvs", {"size": 28})`` or ``ViewSpec.of("flow_uvs", size=28)``. Parameters left
    out take the view's defaults; :meth:`canonical` gives the full, normalised parameter set.
    """

    name: str
    params: Any = field(default=())

    def __post_init__(self) -> None:
        items = self.params.items() if isinstance(self.params, dict) else self.params
        object.__setattr__(self, "params", tuple(sorted((str(k), _freeze(v)) for k, v in items)))

    @classmethod
    def of(cls, name: str, **params: Any) -> ViewSpec:
        return cls(name, params)

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)

    def canonical(self) -> dict[str, Any]:
        """All parameters, defaults filled in and validated; sizes as [H, W] (or None)."""
        return view_def(self.name).canonical(self.kwargs)

    def __str__(self) -> str:
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in self.params)})"


@dataclass(frozen=True)
class ViewDef:
    """A registered view: how to compute it from frames, its defaults and its documentation."""

    name: str
    compute: Callable[[ClipDataset, int, dict, _Ctx], np.ndarray]
    defaults: dict[str, Any]
    doc: str
    bases: Callable[[dict], tuple[ViewSpec, ...]] | None = None
    """A derived view: the views it is computed from (``ctx.get``), given its canonical parameters. Such a view
    is available where its bases are (stored or computed), and its cache key covers theirs."""
    version: str = ""  # in the cache key when set (a derived view's code version, a detector's version)

    def canonical(self, params: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise TypeError(f"view {self.name}: unknown parameter(s) {unknown}; "
                            f"parameters: {sorted(self.defaults)}")
        p = {**self.defaults, **params}
        if "size" in p:
            hw = _flow.as_hw(p["size"])
            p["size"] = None if hw is None else list(hw)
        _check_choice(self.name, p, "color", COLORS)
        _check_choice(self.name, p, "scale", FLOW_SCALES)
        _check_choice(self.name, p, "method", tuple(_tim.INTERPOLATORS))
        _check_choice(self.name, p, "span", TIM_SPANS)
        _check_choice(self.name, p, "frame", ("apex", "onset"))
        if p.get("detect_size") is not None:
            p["detect_size"] = list(_flow.as_hw(p["detect_size"]))
        if "n_frames" in p and (not isinstance(p["n_frames"], (int, np.integer)) or p["n_frames"] < 1):
            raise ValueError(f"view {self.name}: n_frames must be a positive int, got {p['n_frames']!r}")
        return p


def _check_choice(view: str, p: dict, key: str, choices: tuple[str, ...]) -> None:
    if key in p and p[key] not in choices:
        raise ValueError(f"view {view}: {key} must be one of {list(choices)}, got {p[key]!r}")


VIEWS: dict[str, ViewDef] = {}


def register_view(vdef: ViewDef) -> ViewDef:
    if vdef.name in VIEWS:
        raise ValueError(f"view {vdef.name!r} registered twice")
    VIEWS[vdef.name] = vdef
    return vdef


def view_def(name: str) -> ViewDef:
    try:
        return VIEWS[name]
    except KeyError:
        raise KeyError(f"unknown view {name!r}; known: {', '.join(sorted(VIEWS))}") from None


# ============================================================================================ cache
_cache_root: Path | None = None


def set_cache_dir(path: str | os.PathLike | None) -> None:
    """Set the views cache root for this process (None: back to ``paths.cache_dir()/"views"``)."""
    global _cache_root
    _cache_root = None if path is None else Path(path).expanduser()


def views_cache_dir(override: str | os.PathLike | None = None) -> Path:
    """The cache root in effect: ``override``, else :func:`set_cache_dir`'s, else the default."""
    if override is not None:
        return Path(override).expanduser()
    return _cache_root if _cache_root is not None else paths.cache_dir() / "views"


def cache_key(ds: ClipDataset, i: int, spec: ViewSpec) -> str:
    """The cache key of view ``spec`` of clip ``i`` (see the module docstring for what it covers)."""
    params = spec.canonical()
    r = _row(ds, i)
    source = _source(ds, i, spec.name, params)
    payload = {  # no dataset name: a clip shared by several datasets (a composite) is computed once
        "clip": [str(r["dataset"]), str(r["subject"]), str(r["clip"])],
        "frames": str(r["frames"]),
        "key_frames": [int(r["onset"]), int(r["apex"]), int(r["offset"])],
        "source": _fingerprint(ds, i, source),
        "view": spec.name,
        "params": params,
        "code": VIEW_CODE_VERSION,
        "opencv": cv2.__version__,
    }
    if spec.name in _FLOW_VIEWS and source[0] == "frames":
        payload["tvl1"] = _flow.TVL1Params().as_dict()
    vdef = view_def(spec.name)
    if vdef.version:
        payload["view_version"] = vdef.version
    if spec.name == "face_box":
        payload["face_crop"] = _lm.crop_identity(str(r["dataset"]), params["template"])
    elif source[0] == "frames" and needs_face_crop(r):
        payload["face_crop"] = [str(r["face_crop"]), *_lm.crop_identity(str(r["dataset"]))]
    return stable_hash(payload, n=32)


def cache_path(ds: ClipDataset, i: int, spec: ViewSpec, cache_dir: str | os.PathLike | None = None) -> Path:
    key = cache_key(ds, i, spec)
    return views_cache_dir(cache_dir) / spec.name / key[:2] / f"{key}.npz"


@dataclass(frozen=True)
class _Ctx:
    cache: bool
    cache_dir: str | os.PathLike | None

    def get(self, ds: ClipDataset, i: int, name: str, **params: Any) -> np.ndarray:
        return get_view(ds, i, ViewSpec(name, params), cache=self.cache, cache_dir=self.cache_dir)


# ============================================================================================ API
def get_view(ds: ClipDataset, i: int, spec: ViewSpec, *, cache: bool = True,
             cache_dir: str | os.PathLike | None = None) -> np.ndarray:
    """View ``spec`` of clip ``i`` (row position), from the cache or computed (then cached).

    Raises :class:`ViewUnavailable` when the dataset's data source cannot provide it.
    """
    vdef = view_def(spec.name)
    params = spec.canonical()
    source = _source(ds, i, spec.name, params)
    ctx = _Ctx(cache, cache_dir)

    def compute() -> np.ndarray:
        if source[0] == "stored":
            return _read_stored(ds, i, spec.name, params, source)
        return vdef.compute(ds, i, params, ctx)

    if not cache:
        return compute()
    path = cache_path(ds, i, spec, cache_dir)
    hit = load_npz_checked(path)
    if hit is not None and "view" in hit:
        return hit["view"]
    if path.exists():
        log.warning("corrupt view cache entry %s (%s, row %d, %s): recomputing", path, ds.name, i, spec)
    value = compute()
    atomic_save_npz(path, view=value)
    return value


def view_array(ds: ClipDataset, view_name: str, rows: Iterable[int] | None = None, *,
               cache: bool = True, cache_dir: str | os.PathLike | None = None, progress: bool = True,
               **params: Any) -> np.ndarray:
    """The view ``view_name`` (with ``params``) of clips ``rows`` (all by default), stacked on axis 0.

    A tqdm bar appears when the loop takes more than two seconds (``progress=False`` hides it).
    """
    from tqdm.auto import tqdm

    spec = ViewSpec(view_name, params)
    rows = list(range(len(ds.clips))) if rows is None else [int(r) for r in rows]
    if not rows:
        raise ValueError(f"view_array: no rows selected from dataset {ds.name}")
    reason = unavailable_reason(ds, spec, rows)
    if reason:
        raise ViewUnavailable(ds.name, str(spec), reason)
    out = [get_view(ds, i, spec, cache=cache, cache_dir=cache_dir)
           for i in tqdm(rows, desc=f"{ds.name} {spec}", delay=2.0, disable=not progress, leave=False)]
    shapes = {a.shape for a in out}
    if len(shapes) > 1:
        first = out[0].shape
        odd = [rows[k] for k, a in enumerate(out) if a.shape != first][:5]
        raise ValueError(f"view_array: {spec} of dataset {ds.name} has different shapes across clips "
                         f"({sorted(shapes)}; e.g. rows {odd} differ from row {rows[0]}); pass a size")
    return np.stack(out)


def unavailable_reason(ds: ClipDataset, spec: ViewSpec, rows: Iterable[int] | None = None) -> str | None:
    """Why ``ds`` cannot provide ``spec`` for ``rows`` (all by default), or None when it can."""
    params = spec.canonical()
    for i in range(len(ds.clips)) if rows is None else rows:
        try:
            _source(ds, i, spec.name, params)
        except ViewUnavailable as e:
            return e.reason
    return None


def can_provide(ds: ClipDataset, spec: ViewSpec) -> bool:
    """True when every clip of ``ds`` can provide view ``spec`` (no file is read)."""
    return unavailable_reason(ds, spec) is None


# ------------------------------------------------------------------------------- convenience wrappers
def onset_frame(ds: ClipDataset, i: int, size: _flow.Size = 224, color: str = "rgb", **kw) -> np.ndarray:
    """Onset frame of clip ``i``: uint8 (H, W, 3) RGB or (H, W) gray."""
    return get_view(ds, i, ViewSpec.of("onset_frame", size=size, color=color), **kw)


def apex_frame(ds: ClipDataset, i: int, size: _flow.Size = 224, color: str = "rgb", **kw) -> np.ndarray:
    """Apex frame of clip ``i``: uint8 (H, W, 3) RGB or (H, W) gray (a stored apex crop if no frames)."""
    return get_view(ds, i, ViewSpec.of("apex_frame", size=size, color=color), **kw)


def flow(ds: ClipDataset, i: int, size: _flow.Size = 28, **kw) -> np.ndarray:
    """TV-L1 flow onset -> apex of clip ``i``: float32 (2, H, W) = (u, v) in pixels of the size grid."""
    return get_view(ds, i, ViewSpec.of("flow", size=size), **kw)


def strain(ds: ClipDataset, i: int, size: _flow.Size = 28, **kw) -> np.ndarray:
    """Optical-strain magnitude of clip ``i``'s flow: float32 (H, W)."""
    return get_view(ds, i, ViewSpec.of("strain", size=size), **kw)


def flow_uvs(ds: ClipDataset, i: int, size: _flow.Size = 28, scale: str = "minmax", **kw) -> np.ndarray:
    """(u, v, strain) of clip ``i``: float32 (3, H, W); ``scale="minmax"``: each channel in [0, 1]."""
    return get_view(ds, i, ViewSpec.of("flow_uvs", size=size, scale=scale), **kw)


def magnitude_orientation(ds: ClipDataset, i: int, size: _flow.Size = 28, **kw) -> np.ndarray:
    """Flow magnitude and orientation atan2(v, u) of clip ``i``: float32 (2, H, W)."""
    return get_view(ds, i, ViewSpec.of("magnitude_orientation", size=size), **kw)


def tim_sequence(ds: ClipDataset, i: int, n_frames: int = 10, size: _flow.Size = 128, color: str = "gray",
                 method: str = "tim", span: str = "onset_offset", **kw) -> np.ndarray:
    """Clip ``i`` resampled to ``n_frames``: float32 (N, H, W) gray or (N, H, W, 3) RGB, values 0..255."""
    spec = ViewSpec.of("tim_sequence", n_frames=n_frames, size=size, color=color, method=method, span=span)
    return get_view(ds, i, spec, **kw)


# ============================================================================================ sources
def _row(ds: ClipDataset, i: int):
    n = len(ds.clips)
    if not isinstance(i, (int, np.integer)) or not 0 <= i < n:
        raise IndexError(f"dataset {ds.name}: row {i!r} out of range (0..{n - 1})")
    return ds.clips.iloc[int(i)]


def _clip_name(ds: ClipDataset, i: int) -> str:
    r = ds.clips.iloc[int(i)]
    return f"{ds.name} row {i} ({r['dataset']}/{r['subject']}/{r['clip']})"


def _stored_views(ds: ClipDataset) -> dict[str, tuple[str, tuple[int, int]]]:
    """View name -> (clip-table column, stored size) for the stored views the dataset publishes."""
    out: dict[str, tuple[str, tuple[int, int]]] = {}
    for stored, column in ds.stored_views.items():
        prefix, _, size = stored.rpartition("_")
        if prefix in _STORED_KINDS and size.isdigit():
            out[_STORED_KINDS[prefix]] = (column, (int(size), int(size)))
    return out


def _source(ds: ClipDataset, i: int, name: str, params: dict) -> tuple:
    """("frames",), ("stored", column, stored_hw) or ("derived", base specs) for clip ``i``; raise
    ViewUnavailable otherwise (for a derived view: when one of its base views is unavailable)."""
    r = _row(ds, i)
    bases = VIEWS[name].bases if name in VIEWS else None
    if bases is not None:
        specs = tuple(bases(params))
        for b in specs:
            if b.name not in VIEWS:
                raise ViewUnavailable(ds.name, name, f"it needs view {b.name!r}, which is not registered")
            try:
                _source(ds, i, b.name, b.canonical())
            except ViewUnavailable as e:
                raise ViewUnavailable(ds.name, name, f"{e.reason} ({name} is computed from {b})") from None
        return ("derived", specs)
    if str(r["frames"]):
        return ("frames",)
    stored = _stored_views(ds)
    what = (f"clip {r['dataset']}/{r['subject']}/{r['clip']} has no frames and the data source publishes "
            f"only stored views {sorted(ds.stored_views) or '(none)'}")
    if name not in stored:
        needs = ("the onset frame and absolute flow" if name in _FLOW_VIEWS - {"flow_uvs"} else
                 "the onset frame" if name == "onset_frame" else "the frame sequence"
                 if name == "tim_sequence" else "frames")
        raise ViewUnavailable(ds.name, name, f"{what}; {name} needs {needs}")
    column, hw = stored[name]
    if name == "flow_uvs" and params["scale"] != "minmax":
        raise ViewUnavailable(ds.name, name, f"{what}; they are min-max scaled per clip, so flow with "
                                             f"absolute magnitude (scale={params['scale']!r}) is unavailable")
    size = params["size"]
    if size is not None and (size[0] > hw[0] or size[1] > hw[1]):
        raise ViewUnavailable(ds.name, name, f"{what}; stored size {hw[0]}x{hw[1]} is smaller than the "
                                             f"requested {size[0]}x{size[1]}")
    if column not in ds.clips.columns or not str(r[column]):
        raise ViewUnavailable(ds.name, name, f"{what}; column {column!r} is empty for this clip")
    return ("stored", column, hw)


def _stored_path(ds: ClipDataset, i: int, column: str) -> Path:
    p = Path(str(ds.clips.iloc[int(i)][column]))
    return p if p.is_absolute() or not ds.root else Path(ds.root) / p


def _fingerprint(ds: ClipDataset, i: int, source: tuple) -> list:
    """Identity of the storage a view is read from: path, byte size and mtime of the frame stack or
    clip folder (a folder's mtime changes when frames are added, removed or replaced by rename),
    or of the stored view file; for a derived view, the cache keys of its bases."""
    if source[0] == "derived":
        return ["derived", *(cache_key(ds, i, s) for s in source[1])]
    if source[0] == "stored":
        return ["stored", source[1], *_stat(_stored_path(ds, i, source[1]))]
    return ["frames", *_stat(Path(str(ds.clips.iloc[int(i)]["frames"])))]


def _stat(path: Path) -> list:
    try:
        st = path.stat()
    except OSError:
        raise DataError(f"not found: {path}") from None
    return [str(path), int(st.st_size), int(st.st_mtime_ns)]


def _read_stored(ds: ClipDataset, i: int, name: str, params: dict, source: tuple) -> np.ndarray:
    _, column, _ = source
    img = _frames.read_image(_stored_path(ds, i, column))          # uint8 RGB, DataError if unreadable
    if name == "flow_uvs":
        uvs = img.astype(np.float32) / np.float32(255.0)
        if params["size"] is not None and tuple(params["size"]) != uvs.shape[:2]:
            uvs = _flow.minmax_scale(_flow.resize_image(uvs, params["size"]).transpose(2, 0, 1))
            return np.ascontiguousarray(uvs, dtype=np.float32)
        return np.ascontiguousarray(uvs.transpose(2, 0, 1), dtype=np.float32)
    return _to_color(_flow.resize_image(img, params["size"]), params["color"])


# ============================================================================================ compute
def _to_color(rgb: np.ndarray, color: str) -> np.ndarray:
    """uint8 RGB (H, W, 3) -> itself or gray (H, W) (ITU-R BT.601 luma, as cv2.COLOR_RGB2GRAY)."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if color == "gray" else rgb


def needs_face_crop(row) -> bool:
    """True when the clip table's ``face_crop`` says the frames are not face crops (raw releases):
    frame-based views then read them through the clip's ``face_box`` crop. No column: ``release``."""
    return str(row.get("face_crop", _lm.FACE_CROP_RELEASE) or _lm.FACE_CROP_RELEASE) != _lm.FACE_CROP_RELEASE


def _read_frames(ds: ClipDataset, i: int, numbers: list[int], ctx: _Ctx) -> np.ndarray:
    """Frames ``numbers`` of clip ``i``, cropped (and rotated) by its ``face_box`` when it needs a face crop."""
    frames = ds.read_frames(i, numbers)
    if not needs_face_crop(ds.clips.iloc[int(i)]):
        return frames
    box = ctx.get(ds, i, "face_box")
    return np.stack([_lm.crop_frame(f, box) for f in frames])


def _key_frame(ds: ClipDataset, i: int, which: str, ctx: _Ctx) -> np.ndarray:
    n = int(ds.clips.iloc[int(i)][which])
    if n < 0:
        raise DataError(f"{_clip_name(ds, i)}: {which} frame unknown (-1)")
    return _read_frames(ds, i, [n], ctx)[0]


def _frame_view(which: str) -> Callable:
    def compute(ds: ClipDataset, i: int, p: dict, ctx: _Ctx) -> np.ndarray:
        img = _key_frame(ds, i, which, ctx)
        return np.ascontiguousarray(_to_color(_flow.resize_image(img, p["size"]), p["color"]))
    return compute


def _compute_flow(ds: ClipDataset, i: int, p: dict, ctx: _Ctx) -> np.ndarray:
    if p["size"] is not None:
        return _flow.resize_flow(ctx.get(ds, i, "flow", size=None), p["size"])
    onset, apex = (_to_color(_key_frame(ds, i, w, ctx), "gray") for w in ("onset", "apex"))
    if onset.shape != apex.shape:
        raise DataError(f"{_clip_name(ds, i)}: onset {onset.shape} and apex {apex.shape} differ in size")
    return _flow.tvl1_flow(onset, apex)


def _compute_strain(ds: ClipDataset, i: int, p: dict, ctx: _Ctx) -> np.ndarray:
    s = _flow.optical_strain(ctx.get(ds, i, "flow", size=None))
    return np.ascontiguousarray(_flow.resize_image(s, p["size"]), dtype=np.float32)


def _compute_flow_uvs(ds: ClipDataset, i: int, p: dict, ctx: _Ctx) -> np.ndarray:
    uv = ctx.get(ds, i, "flow", size=p["size"])
    s = ctx.get(ds, i, "strain", size=p["size"])
    uvs = np.concatenate([uv, s[None]]).astype(np.float32)
    return _flow.minmax_scale(uvs) if p["scale"] == "minmax" else uvs


def _compute_mag_ori(ds: ClipDataset, i: int, p: dict, ctx: _Ctx) -> np.ndarray:
    return _flow.magnitude_orientation(ctx.get(ds, i, "flow", size=p["size"]))


def _sequence_numbers(ds: ClipDataset, i: int, span: str) -> list[int]:
    r = ds.clips.iloc[int(i)]
    available = _frames.available_frames(r["frames"])
    if span == "onset_offset":
        lo = int(r["onset"]) if int(r["onset"]) >= 0 else -np.inf
        hi = int(r["offset"]) if int(r["offset"]) >= 0 else np.inf
        available = [n for n in available if lo <= n <= hi]
    if not available:
        raise DataError(f"{_clip_name(ds, i)}: no frames between onset {r['onset']} and offset {r['offset']}")
    return available


def _compute_tim(ds: ClipDataset, i: int, p: dict, ctx: _Ctx) -> np.ndarray:
    numbers = _sequence_numbers(ds, i, p["span"])
    seq = []
    for k in range(0, len(numbers), _READ_CHUNK):
        for img in _read_frames(ds, i, numbers[k:k + _READ_CHUNK], ctx):
            img = _to_color(img, p["color"]).astype(np.float32)
            seq.append(_flow.resize_image(img, p["size"]))
    shapes = {a.shape for a in seq}
    if len(shapes) > 1:
        raise DataError(f"{_clip_name(ds, i)}: frames differ in size {sorted(shapes)}; pass a size")
    return _tim.interpolate(np.stack(seq), p["n_frames"], p["method"])


register_view(ViewDef("onset_frame", _frame_view("onset"), {"size": 224, "color": "rgb"},
                      "onset frame, uint8 (H, W, 3) RGB or (H, W) gray"))
register_view(ViewDef("apex_frame", _frame_view("apex"), {"size": 224, "color": "rgb"},
                      "apex frame, uint8 (H, W, 3) RGB or (H, W) gray"))
register_view(ViewDef("flow", _compute_flow, {"size": 28},
                      "TV-L1 optical flow onset -> apex, float32 (2, H, W) = (u, v)"))
register_view(ViewDef("strain", _compute_strain, {"size": 28},
                      "optical-strain magnitude, float32 (H, W)"))
register_view(ViewDef("flow_uvs", _compute_flow_uvs, {"size": 28, "scale": "minmax"},
                      "(u, v, strain), float32 (3, H, W)"))
register_view(ViewDef("magnitude_orientation", _compute_mag_ori, {"size": 28},
                      "flow magnitude and orientation atan2(v, u), float32 (2, H, W)"))
register_view(ViewDef("tim_sequence", _compute_tim,
                      {"n_frames": 10, "size": 128, "color": "gray", "method": "tim", "span": "onset_offset"},
                      "sequence resampled to n_frames by TIM (or linear), float32 (N, H, W[, 3])"))

from benchmarks.data import landmark_views  # noqa: E402,F401  (registers face_landmarks and face_box)
from benchmarks.data import magnify_views as _magnify_views  # noqa: E402, F401  (registers magnified_apex)
from benchmarks.data import patch_views as _patch_views  # noqa: E402, F401  (registers landmark_patches)
from benchmarks.data import roi_views as _roi_views  # noqa: E402, F401  (registers flow_roi_mosaic)
from benchmarks.data import sequence_views as _sequence_views  # noqa: E402, F401  (registers frame_sequence)
