"""Atomic file writes: write to a temporary sibling, fsync, then rename into place.

A reader never sees a half-written file; a crash leaves at most a stray ``<name>.tmp-<host>.<pid>-*``,
which :func:`remove_stale_temps` deletes once its writer is gone (a run does so at start).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def atomic_write(path: str | os.PathLike, writer: Callable[[Path], None]) -> Path:
    """Call ``writer(tmp_path)`` and move the result to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{path.name}.tmp-{_HOST}.{os.getpid()}-", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        writer(tmp_path)
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


_HOST = socket.gethostname().replace("/", "_")
_TEMP = re.compile(r"\.tmp-(?:(?P<host>.+)\.(?P<pid>\d+)-)?[^.]*$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temps(folder: str | os.PathLike, older_than_s: float = 600.0) -> int:
    """Delete the temporary files under ``folder`` that :func:`atomic_write` left behind in a crash: those of a
    process of this host that no longer runs (a live writer's are kept: a concurrent run may be writing);
    files of another host or of the older unnamed form only once ``older_than_s`` old. Returns how many."""
    import time

    n = 0
    for p in Path(folder).rglob("*.tmp-*"):
        m = _TEMP.search(p.name)
        if m is None or not p.is_file():
            continue
        try:
            if m["pid"] is not None and m["host"] == _HOST:
                stale = not _alive(int(m["pid"]))
            else:
                stale = time.time() - p.stat().st_mtime > older_than_s
            if stale:
                p.unlink()
                n += 1
        except OSError:
            continue
    return n


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda p: p.write_bytes(data))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=True, default=str)
    return atomic_write(path, lambda p: p.write_text(text))


def _save_npz(p: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(p, "wb") as fh:
        np.savez(fh, **arrays)


def atomic_save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """Save arrays with a checksum entry so that a corrupt file is detected on load."""
    digest = array_digest(arrays)
    payload = {**arrays, "__sha256__": np.frombuffer(digest.encode(), np.uint8)}
    return atomic_write(path, lambda p: _save_npz(p, payload))


def load_npz_checked(path: str | os.PathLike) -> dict[str, np.ndarray] | None:
    """Load an npz written by :func:`atomic_save_npz`; None if missing, unreadable or corrupt."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception:
        return None
    stored = arrays.pop("__sha256__", None)
    if stored is None or bytes(stored).decode(errors="replace") != array_digest(arrays):
        return None
    return arrays


def array_digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(k.encode())
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def stable_hash(obj: Any, n: int = 16) -> str:
    """Short sha256 of a JSON-serialisable object (sorted keys), used for cache keys."""
    text = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:n]
