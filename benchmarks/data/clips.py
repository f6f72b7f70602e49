"""The clip table: one row per clip, the common currency of the harness.

Columns (``CLIP_COLUMNS``):

- ``dataset``: the source dataset of the clip (``casme2``, ``samm``, ``smic``, or a synthetic
  preset's source name). In a composite, clips keep their source here.
- ``subject``: the subject id as the source writes it (string). Ids collide across datasets, so
  a subject's identity is the pair (dataset, subject): ``group`` = ``"dataset/subject"``.
- ``clip``: the clip id (folder or file name as released).
- ``emotion``: the native emotion label of the source; ``label``: the class index in the protocol.
- ``onset``, ``apex``, ``offset``: frame numbers (see :mod:`benchmarks.data.frames`); -1 when unknown.
- ``apex_source``: ``sheet``, or how the apex was estimated.
- ``frames``: where the frames are (a clip folder or a ``.npy`` stack); empty when no frames exist.

- ``face_crop`` (optional; licensed loaders set it): ``release`` when the released frames are face crops,
  ``detector:<name>`` when each clip is cropped by the face detector, ``none`` when no face was found
  (:func:`benchmarks.data.landmark_views.label_face_crops`; centred-square fallback). Absent = ``release``.

Loaders may add columns (for example stored-view paths of the public composite).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.data import frames as _frames

CLIP_COLUMNS = [
    "dataset", "subject", "clip", "emotion", "label",
    "onset", "apex", "offset", "apex_source", "frames",
]
EXCLUSION_COLUMNS = ["dataset", "subject", "clip", "emotion", "reason"]


def group_key(dataset: str, subject: str) -> str:
    """Subject identity across datasets."""
    return f"{dataset}/{subject}"


def make_exclusions(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=EXCLUSION_COLUMNS)
    return df.astype({c: str for c in EXCLUSION_COLUMNS})


@dataclass
class ClipDataset:
    """A dataset under one protocol: its clip table, its exclusions and how to read its data.

    ``kind`` is ``raw`` (licensed release on disk), ``public`` (published derived files) or
    ``synthetic``. ``stored_views`` maps a view name to the clip-table column holding its file
    path (the public composite has no frames, only stored flow and apex crops).
    """

    name: str
    title: str
    classes: tuple[str, ...]
    clips: pd.DataFrame
    exclusions: pd.DataFrame
    kind: str
    root: str = ""
    stored_views: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    _manifest: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        missing = [c for c in CLIP_COLUMNS if c not in self.clips.columns]
        if missing:
            raise ValueError(f"dataset {self.name}: clip table lacks columns {missing}")
        self.clips = self.clips.reset_index(drop=True)
        self.clips["subject"] = self.clips["subject"].astype(str)
        self.clips["clip"] = self.clips["clip"].astype(str)
        self.clips["label"] = self.clips["label"].astype(int)
        for c in ("onset", "apex", "offset"):
            self.clips[c] = self.clips[c].astype(int)
        self.clips["group"] = [group_key(d, s) for d, s in zip(self.clips["dataset"], self.clips["subject"])]

    # ---------------------------------------------------------------- structure
    @property
    def has_frames(self) -> bool:
        """True when every clip has frames to read (sequence and onset-based views possible)."""
        return bool(len(self.clips)) and bool((self.clips["frames"].astype(str) != "").all())

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def groups(self) -> np.ndarray:
        return self.clips["group"].to_numpy()

    def labels(self) -> np.ndarray:
        return self.clips["label"].to_numpy()

    def row(self, i: int) -> pd.Series:
        return self.clips.iloc[i]

    # ---------------------------------------------------------------- frames
    def read_frames(self, i: int, numbers=None) -> np.ndarray:
        """Frames of clip ``i`` (row position) as uint8 RGB (T, H, W, 3)."""
        r = self.clips.iloc[i]
        if not r["frames"]:
            raise ValueError(f"{self.name}: clip {r['dataset']}/{r['subject']}/{r['clip']} has no frames "
                             f"(this data source publishes only {sorted(self.stored_views) or 'labels'})")
        return _frames.read_frames(r["frames"], numbers)

    def key_frames(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(onset, apex) frames of clip ``i``."""
        r = self.clips.iloc[i]
        f = self.read_frames(i, [int(r["onset"]), int(r["apex"])])
        return f[0], f[1]

    def verify(self) -> int:
        """Decode every clip's onset, apex and offset frames (or its stored-view files).

        Returns the number of images read; raises DataError naming the first unreadable one.
        """
        n = 0
        for r in self.clips.itertuples(index=False):
            if r.frames:
                key = sorted({int(r.onset), int(r.apex), int(r.offset)} - {-1})
                n += len(_frames.read_frames(r.frames, key or None))
            for col in self.stored_views.values():
                _frames.read_image(getattr(r, col))
                n += 1
        return n

    # ---------------------------------------------------------------- identity
    def manifest_hash(self) -> str:
        """Hash of labels, protocol and frame identity; changes when labels or frames change, not when the
        data folder moves.

        Frames are identified by their file names and sizes plus the bytes of the onset, apex and
        offset frames (hashing every frame of a licensed release would take minutes); stacks and
        stored views by their file names and bytes. Paths (the ``frames`` column, the stored-view columns,
        ``root``) are left out, so cached units stay valid when the data is moved or mounted elsewhere.
        """
        if self._manifest is None:
            h = hashlib.sha256()
            h.update(repr((self.name, self.classes)).encode())
            paths = {"frames", "group", *self.stored_views.values()}
            cols = [c for c in self.clips.columns if c not in paths]
            table = self.clips[cols].astype(str).sort_values(["dataset", "subject", "clip"])
            h.update(pd.util.hash_pandas_object(table, index=False).values.tobytes())
            for _, r in self.clips.sort_values(["dataset", "subject", "clip"]).iterrows():
                if r["frames"]:
                    _hash_frames(h, Path(r["frames"]), (int(r["onset"]), int(r["apex"]), int(r["offset"])))
                for col in self.stored_views.values():
                    _hash_file(h, Path(r[col]))
            self._manifest = h.hexdigest()[:16]
        return self._manifest

    def subset(self, mask) -> ClipDataset:
        """A dataset restricted to the rows where ``mask`` is true (same name, protocol and reader)."""
        return ClipDataset(self.name, self.title, self.classes, self.clips.loc[mask].copy(), self.exclusions,
                           self.kind, self.root, dict(self.stored_views), list(self.notes))

    # ---------------------------------------------------------------- report
    def describe(self) -> dict:
        c = self.clips
        per_source = {
            d: {"clips": int(len(g)), "subjects": int(g["subject"].nunique()),
                "class_counts": {self.classes[k]: int((g["label"] == k).sum()) for k in range(self.n_classes)}}
            for d, g in c.groupby("dataset", sort=True)
        }
        return {
            "name": self.name,
            "title": self.title,
            "kind": self.kind,
            "root": self.root,
            "clips": int(len(c)),
            "subjects": int(c["group"].nunique()),
            "classes": list(self.classes),
            "class_counts": {self.classes[k]: int((c["label"] == k).sum()) for k in range(self.n_classes)},
            "per_source": per_source,
            "has_frames": self.has_frames,
            "stored_views": sorted(self.stored_views),
            "apex_sources": {str(k): int(v) for k, v in c["apex_source"].value_counts().items()},
            "excluded": int(len(self.exclusions)),
            "exclusions": self.exclusions.to_dict(orient="records"),
            "notes": list(self.notes),
        }


def _hash_file(h, path: Path) -> None:
    h.update(path.name.encode())
    with open(path, "rb") as fh:
        h.update(hashlib.sha256(fh.read()).digest())


def _hash_frames(h, frames: Path, key_numbers: tuple[int, ...]) -> None:
    if frames.suffix == ".npy":
        _hash_file(h, frames)
        return
    index = _frames.folder_index(frames)
    for n in sorted(index):
        h.update(f"{Path(index[n]).name}:{os.path.getsize(index[n])};".encode())
    for n in key_numbers:
        if n in index:
            _hash_file(h, Path(index[n]))
