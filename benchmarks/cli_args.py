"""Argument types and checks shared by the command-line tools.

Each type raises :class:`argparse.ArgumentTypeError`, so a bad value ends in argparse's one
``error: argument --NAME: ...`` line and exit status 2; :func:`writable_folder` and :func:`fail`
give the same for checks made after parsing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import NoReturn


def positive_int(text: str) -> int:
    """An integer >= 1 (``--jobs``, ``--epochs``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0 (``--n-boot``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 0") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is not an integer >= 0")
    return value


def seed_list(text: str) -> list[int]:
    """Comma-separated distinct non-negative integers, e.g. ``0,1,2``."""
    items = [s.strip() for s in text.split(",")]
    if not any(items):
        raise argparse.ArgumentTypeError("no seed given (expected e.g. 0 or 0,1,2)")
    seeds = []
    for s in items:
        if not s.isdigit():
            raise argparse.ArgumentTypeError(f"{s!r} in {text!r} is not a non-negative integer (expected e.g. 0,1,2)")
        if int(s) in seeds:
            raise argparse.ArgumentTypeError(f"seed {int(s)} is given twice in {text!r}")
        seeds.append(int(s))
    return seeds


def table_choice(text: str) -> list[int | str]:
    """``all`` (the paper's tables), or the number or name of a table spec under ``tables/``."""
    from benchmarks.tablespec import list_tables, table_id

    known = list_tables()
    if text.strip().lower() == "all":
        return [t for t in known if isinstance(t, int)]
    t = table_id(text.strip())
    if t not in known:
        raise argparse.ArgumentTypeError(f"no table {text!r}; known: {', '.join(map(str, known))} or all")
    return [t]


def writable_folder(path: str | os.PathLike, arg: str) -> Path:
    """``path`` as a folder this process can write in (created if missing); else :func:`fail` naming ``arg``."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        fail(f"{arg} {p}: is a file, not a folder")
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=p)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        fail(f"{arg} {p}: not writable ({e.strerror or e})")
    return p


class CliError(Exception):
    """A bad argument found after parsing; the CLI prints ``error: <message>`` and exits 2."""


def fail(message: str) -> NoReturn:
    raise CliError(message)


def report(e: CliError) -> int:
    print(f"error: {e}", file=sys.stderr)
    return 2
