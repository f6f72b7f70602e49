"""Advisory file locks (``flock``) for runs that share a unit cache or an output folder.

The operating system drops a lock when its holder exits, however it exits (SIGKILL included), so a
lock is never stale; the lock file itself may stay behind and is harmless. Where ``fcntl`` is missing
(Windows), locks always succeed: one invocation per folder is then the user's to keep.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None


class FileLock:
    """An exclusive lock on ``path`` (created if missing), taken with :meth:`acquire`."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, blocking: bool = False) -> bool:
        """Take the lock; without ``blocking``, return False at once when another process holds it."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                return False
        self._fd = fd
        return True

    def write_owner(self, **info) -> None:
        """Record who holds the lock (pid, host, start time and ``info``) in the lock file."""
        if self._fd is None:
            raise RuntimeError(f"{self.path}: lock not held")
        text = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                           "started": time.strftime("%Y-%m-%d %H:%M:%S"), **info})
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, text.encode(), 0)

    def owner(self) -> dict:
        """What the holder recorded (:meth:`write_owner`), or {}."""
        try:
            return json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {}

    def release(self, remove: bool = False) -> None:
        """Drop the lock; ``remove`` deletes the lock file first (only once the guarded work is complete, so
        that a process that opened the old file and then gets its lock re-checks and finds the work done)."""
        if self._fd is None:
            return
        if remove:
            self.path.unlink(missing_ok=True)
        os.close(self._fd)  # closing drops the flock
        self._fd = None
