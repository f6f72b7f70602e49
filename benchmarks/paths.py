"""Where the harness keeps its caches and where it looks for data."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "MER_CACHE_DIR"
DATA_ROOT_ENV = "MER_DATA_ROOT"
SHARED_DATA_ENV = "MER_SHARED_DATA"


def cache_dir() -> Path:
    """Cache root: ``$MER_CACHE_DIR`` or ``$XDG_CACHE_HOME/mer-bench`` (``~/.cache/mer-bench``).

    Defaults outside the source tree so that a checkout never carries derived data.
    """
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "mer-bench"


def data_root(explicit: str | os.PathLike | None = None) -> Path | None:
    """The root of the licensed datasets: the explicit argument, else ``$MER_DATA_ROOT``, else None."""
    if explicit is not None:
        return Path(explicit).expanduser()
    env = os.environ.get(DATA_ROOT_ENV)
    return Path(env).expanduser() if env else None


def shared_data_dir() -> Path | None:
    """``../shared/data`` beside the checkout (or ``$MER_SHARED_DATA``), when it exists."""
    env = os.environ.get(SHARED_DATA_ENV)
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve().parents[1]
    candidates += [here.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    for c in candidates:
        if c.is_dir():
            return c
    return None
