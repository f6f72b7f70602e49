"""Shared pieces of the loaders for licensed releases: locating files, reading coding sheets,
and checking that a clip's key frames exist. Errors name the file, sheet row or folder."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from benchmarks.data.errors import DataError
from benchmarks.data.frames import folder_index


def require_root(root: Path | None, dataset: str, env_hint: str = "MER_DATA_ROOT") -> Path:
    if root is None:
        raise DataError(f"{dataset}: no data root given (pass --data-root PATH or set ${env_hint})")
    if not root.is_dir():
        raise DataError(f"{dataset}: data root not found: {root}")
    return root


def find_first(root: Path, candidates: Iterable[str], what: str, dataset: str) -> Path:
    """The first of ``root/candidate`` that exists; DataError listing every place looked at."""
    tried = []
    for c in candidates:
        p = root / c
        tried.append(str(p))
        if p.exists():
            return p
    raise DataError(f"{dataset}: {what} not found; looked for: " + ", ".join(tried))


def read_sheet(path: Path, header_first_cell: str, dataset: str, sheet: str | int = 0,
               required: Iterable[str] = ()) -> pd.DataFrame:
    """Read an .xlsx coding sheet whose header row starts with ``header_first_cell``.

    The header may sit below a free-text preamble (SAMM). Each returned row carries ``sheet_row``,
    its 1-based row number in the spreadsheet, so errors can name it.
    """
    try:
        raw = pd.read_excel(path, sheet_name=sheet, header=None, dtype=object)
    except FileNotFoundError:
        raise DataError(f"{dataset}: coding sheet not found: {path}") from None
    except Exception as e:  # noqa: BLE001 - openpyxl raises many types for a bad file
        raise DataError(f"{dataset}: cannot read coding sheet {path}: {e}") from None
    first = raw.iloc[:, 0].astype(str).str.strip().str.lower()
    hits = first.index[first == header_first_cell.lower()]
    if len(hits) == 0:
        raise DataError(f"{dataset}: {path}: no header row starting with {header_first_cell!r}")
    h = hits[0]
    header = [str(c).strip() if pd.notna(c) else f"_blank{j}" for j, c in enumerate(raw.iloc[h])]
    body = raw.iloc[h + 1:].copy()
    body.columns = header
    body["sheet_row"] = body.index + 1  # spreadsheet rows are 1-based
    body = body.dropna(how="all", subset=[c for c in header if not c.startswith("_blank")])
    missing = [c for c in required if c not in body.columns]
    if missing:
        raise DataError(f"{dataset}: {path}: header (row {h + 1}) lacks column(s) {missing}; has {header}")
    return body.reset_index(drop=True)


def as_frame_number(value, path: Path, row: int, column: str, dataset: str) -> int | None:
    """An integer frame number from a sheet cell; None when the cell is not a number."""
    try:
        f = float(str(value).strip())
    except ValueError:
        return None
    if f != int(f) or f < 0:
        raise DataError(f"{dataset}: {path} row {row}: {column} = {value!r} is not a frame number")
    return int(f)


def check_key_frames(folder: Path, numbers: dict[str, int], dataset: str, where: str) -> None:
    """Raise DataError naming the folder when a key frame (onset/apex/offset) has no image."""
    if not folder.is_dir():
        raise DataError(f"{dataset}: clip folder missing: {folder} ({where})")
    index = folder_index(folder)
    missing = {k: n for k, n in numbers.items() if n >= 0 and n not in index}
    if missing:
        have = f"{min(index)}..{max(index)}" if index else "none"
        raise DataError(f"{dataset}: {folder}: missing frame(s) {missing} ({where}); frames present: {have}")


def check_order(onset: int, apex: int, offset: int, dataset: str, where: str) -> None:
    if not onset <= apex <= offset:
        raise DataError(f"{dataset}: {where}: apex {apex} outside onset..offset {onset}..{offset}")
