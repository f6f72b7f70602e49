"""The dataset manifest hash (part of every unit key) names labels and file names and bytes, never where the
data folder sits: moving the data keeps every cached unit valid; editing a file's bytes does not."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from benchmarks.data.clips import CLIP_COLUMNS, ClipDataset, make_exclusions
from benchmarks.data.registry import load_dataset
from benchmarks.presets import PRESETS
from benchmarks.runner import plan
from tests.test_runner import tiny_dataset


def stored_view_dataset(root: Path) -> ClipDataset:
    """A frameless set of published flow images (as the public composite), paths absolute under ``root``."""
    rows = []
    for s in range(2):
        for k in range(2):
            path = root / "flow" / f"s{s}_c{k}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                cv2.imwrite(str(path), np.full((28, 28, 3), 40 * s + 10 * k + 5, np.uint8))
            rows.append({"dataset": "pub", "subject": f"s{s}", "clip": f"c{k}", "emotion": "x", "label": k,
                         "onset": -1, "apex": -1, "offset": -1, "apex_source": "published", "frames": "",
                         "flow_path": str(path)})
    return ClipDataset("pub", "stored flow", ("x", "y"), pd.DataFrame(rows)[[*CLIP_COLUMNS, "flow_path"]],
                       make_exclusions([]), "public", str(root), stored_views={"flow_uvs_28": "flow_path"})


def test_moving_a_stored_view_folder_keeps_the_manifest(tmp_path):
    a = stored_view_dataset(tmp_path / "a")
    before = a.manifest_hash()
    shutil.move(tmp_path / "a", tmp_path / "elsewhere" / "b")
    b = stored_view_dataset(tmp_path / "elsewhere" / "b")
    assert b.clips["flow_path"].iloc[0] != a.clips["flow_path"].iloc[0]
    assert b.manifest_hash() == before
    edited = tmp_path / "elsewhere" / "b" / "flow" / "s1_c0.png"
    edited.write_bytes(edited.read_bytes() + b"\0")                       # same name, other bytes
    assert stored_view_dataset(tmp_path / "elsewhere" / "b").manifest_hash() != before


def test_moving_frame_stacks_keeps_the_manifest_and_the_unit_keys(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = tiny_dataset(tmp_path / "a"), tiny_dataset(tmp_path / "b")   # the same bytes in two places
    assert a.manifest_hash() == b.manifest_hash()
    keys = [[u.key for u in plan([("lbptop", "", "tiny")], [0], PRESETS["smoke"], "last",
                                 dataset_loader=lambda name, ds=ds: ds).units] for ds in (a, b)]
    assert keys[0] == keys[1] and len(keys[0]) == 2
    stack = Path(b.clips["frames"].iloc[3])
    arr = np.load(stack)
    arr[1, 0, 0, 0] ^= 1
    np.save(stack, arr)
    assert b.subset(np.ones(len(b.clips), bool)).manifest_hash() != a.manifest_hash()  # a fresh hash


def test_public_composite_moved_elsewhere_has_the_same_manifest(shared_data, tmp_path):
    here = load_dataset("megc2019-public", shared_data / "megc2019")
    shutil.copytree(shared_data / "megc2019", tmp_path / "copy" / "megc2019")
    moved = load_dataset("megc2019-public", tmp_path / "copy" / "megc2019")
    assert moved.root != here.root and moved.manifest_hash() == here.manifest_hash()
