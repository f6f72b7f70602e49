"""Readers of the prediction logs MER repositories publish, as they are, into the harness's prediction table.

Formats (:data:`FORMATS`; :func:`detect_format` tells them apart from the content):

- ``csv``: columns ``dataset, subject, clip, y_true, y_pred`` (:func:`benchmarks.score.read_predictions`).
- ``megc-blocks``: the MEGC-style per-subject block log, e.g. ``STSTNet_logfile.txt`` of
  christy1206/STSTNet: a ``<dataset> <subject>`` header line, then one ``<clip> <true> <pred>`` line per
  clip of that subject, whitespace-separated, integer class indices.
- ``lists``: per-subject lists with no clip names, e.g. ``STSTNet_python_logfile.txt`` of the same
  repository: ``Subject: <id>``, then ``Predicted : [...]`` and ``Ground Truth: [...]`` (a list may wrap
  over lines; other lines, such as running UF1/UAR, are ignored). Clips are numbered ``#1, #2, ...`` in list
  order. Such a log names no dataset: pooled scores need none; per-source scores need a subject-to-dataset
  list (:func:`read_subject_map`, a CSV with columns ``subject, dataset``).

Blank lines and lines starting with ``#`` are skipped. A malformed line raises
:class:`PredictionFileError` naming the file and the line (1-based). Rows carry the ``line`` they come from.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

FORMATS = ("csv", "megc-blocks", "lists")
NO_DATASET = "-"  # the dataset of a list log's clips when no subject-to-dataset list is given

_LIST_KEY = re.compile(r"^\s*(predicted|ground\s*truth)\s*:\s*(.*)$", re.I)
_SUBJECT = re.compile(r"^\s*subject\s*:?\s*(\S+)\s*$", re.I)
_INT = re.compile(r"^[+]?\d+$")


class PredictionFileError(ValueError):
    """A prediction file is missing, unreadable or malformed; the message names the file and line."""


def read_lines(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise PredictionFileError(f"{path}: no such file")
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as e:
        raise PredictionFileError(f"{path}: not a text file ({e.reason} at byte {e.start})") from None


def _content(lines: list[str]) -> list[tuple[int, str]]:
    return [(n, s.strip()) for n, s in enumerate(lines, start=1) if s.strip() and not s.lstrip().startswith("#")]


def detect_format(path: str | Path) -> str:
    """``csv``, ``megc-blocks`` or ``lists`` from the file's content; PredictionFileError when none fits."""
    lines = read_lines(path)
    content = _content(lines)
    if not content or "," in content[0][1]:
        return "csv"  # (an empty file is reported by the CSV reader)
    first = content[0][1]
    if any(_LIST_KEY.match(s) for _, s in content):
        return "lists"
    tokens = first.split()
    if len(tokens) == 2 or (len(tokens) == 3 and all(_INT.match(t) for t in tokens[1:])):
        return "megc-blocks"
    raise PredictionFileError(f"{path}: line {content[0][0]}: cannot tell the format from {first[:60]!r} (not a "
                              "CSV header, a '<dataset> <subject>' block header or a 'Subject:' list log); "
                              f"pass --format {{{','.join(FORMATS)}}}")


def _label(path: Path, n: int, token: str, what: str) -> int:
    if not _INT.match(token):
        raise PredictionFileError(f"{path}: line {n}: {what} {token!r} is not a class index (a non-negative "
                                  "integer)")
    return int(token)


def read_block_log(path: str | Path) -> pd.DataFrame:
    """A MEGC-style block log: ``<dataset> <subject>`` headers, each followed by ``<clip> <true> <pred>`` lines."""
    path = Path(path)
    rows: list[dict] = []
    header: tuple[str, str, int] | None = None
    n_in_block = 0
    seen: dict[tuple[str, str], int] = {}
    clips: set[tuple[str, str, str]] = set()

    def close_block(at: int | None, text: str = "") -> None:
        if header is None or n_in_block:
            return
        if at is None:
            raise PredictionFileError(f"{path}: line {header[2]}: subject block '{header[0]} {header[1]}' has no "
                                      "clip lines (the file ends)")
        raise PredictionFileError(f"{path}: line {at}: {text!r} follows the header '{header[0]} {header[1]}' "
                                  f"(line {header[2]}) with no clip line between: a header of an empty block, or "
                                  "a '<clip> <true> <pred>' line missing a field")

    content = _content(read_lines(path))
    for n, s in content:
        tokens = s.split()
        if len(tokens) == 2:
            dataset, subject = tokens
            if not dataset[0].isalpha():
                raise PredictionFileError(f"{path}: line {n}: {s!r} is neither a '<dataset> <subject>' header "
                                          "(the dataset starts with a letter) nor a '<clip> <true> <pred>' line")
            close_block(n, s)
            if (dataset, subject) in seen:
                raise PredictionFileError(f"{path}: line {n}: subject {dataset}/{subject} appears a second time "
                                          f"(first at line {seen[dataset, subject]})")
            seen[dataset, subject] = n
            header, n_in_block = (dataset, subject, n), 0
        elif len(tokens) == 3:
            if header is None:
                raise PredictionFileError(f"{path}: line {n}: clip line before any '<dataset> <subject>' header")
            clip = tokens[0]
            y_true = _label(path, n, tokens[1], "true label")
            y_pred = _label(path, n, tokens[2], "predicted label")
            if (header[0], header[1], clip) in clips:
                raise PredictionFileError(f"{path}: line {n}: clip {header[0]}/{header[1]}/{clip} appears more "
                                          "than once")
            clips.add((header[0], header[1], clip))
            rows.append({"dataset": header[0], "subject": header[1], "clip": clip, "y_true": y_true,
                         "y_pred": y_pred, "line": n})
            n_in_block += 1
        else:
            raise PredictionFileError(f"{path}: line {n}: expected '<dataset> <subject>' or '<clip> <true> <pred>', "
                                      f"got {len(tokens)} fields: {s[:60]!r}")
    close_block(None)
    if not rows:
        raise PredictionFileError(f"{path}: no prediction lines")
    return pd.DataFrame(rows)


def _parse_list(path: Path, start: int, text: str, more: list[tuple[int, str]]) -> tuple[list[int], int]:
    """The integers of a ``[...]`` list starting in ``text`` (line ``start``), continued on the lines of ``more``
    until ``]``; returns them and how many of ``more`` were used."""
    used = 0
    while "]" not in text:
        if used == len(more) or _LIST_KEY.match(more[used][1]) or _SUBJECT.match(more[used][1]):
            raise PredictionFileError(f"{path}: line {start}: list not closed with ']'")
        text += " " + more[used][1]
        used += 1
    if "[" not in text:
        raise PredictionFileError(f"{path}: line {start}: expected a list '[...]', got {text[:60]!r}")
    inner = text[text.index("[") + 1:text.index("]")]
    values = []
    for token in re.split(r"[,\s]+", inner.strip()):
        if token:
            values.append(_label(path, start, token, "label"))
    return values, used


def read_list_log(path: str | Path, subjects: dict[str, str] | None = None,
                  subjects_source: str = "--subjects") -> pd.DataFrame:
    """A log of per-subject ``Predicted`` / ``Ground Truth`` lists. ``subjects`` maps subject -> dataset
    (every subject of the log must be in it); without it every clip gets dataset :data:`NO_DATASET`."""
    path = Path(path)
    lines = read_lines(path)
    content = _content(lines)
    blocks: list[dict] = []
    i = 0
    while i < len(content):
        n, s = content[i]
        i += 1
        if m := _SUBJECT.match(s):
            blocks.append({"subject": m.group(1), "line": n})
            continue
        m = _LIST_KEY.match(s)
        if not m:
            continue  # running scores, headers and other prose of the log
        key = "pred" if m.group(1).lower().startswith("pred") else "true"
        if not blocks:
            raise PredictionFileError(f"{path}: line {n}: {m.group(1)} list before any 'Subject:' line")
        block = blocks[-1]
        if key in block:
            raise PredictionFileError(f"{path}: line {n}: a second {m.group(1)} list for subject "
                                      f"{block['subject']} (line {block['line']})")
        values, used = _parse_list(path, n, m.group(2), content[i:])
        i += used
        block[key], block[f"{key}_line"] = values, n
    rows: list[dict] = []
    seen: dict[str, int] = {}
    for b in blocks:
        subject, n = b["subject"], b["line"]
        if subject in seen:
            raise PredictionFileError(f"{path}: line {n}: subject {subject} appears a second time "
                                      f"(first at line {seen[subject]})")
        seen[subject] = n
        for key, name in (("pred", "Predicted"), ("true", "Ground Truth")):
            if key not in b:
                raise PredictionFileError(f"{path}: line {n}: subject {subject} has no {name} list")
        if len(b["pred"]) != len(b["true"]):
            raise PredictionFileError(f"{path}: line {b['true_line']}: subject {subject}: {len(b['true'])} "
                                      f"ground-truth labels but {len(b['pred'])} predictions "
                                      f"(line {b['pred_line']})")
        if subjects is not None and subject not in subjects:
            raise PredictionFileError(f"{path}: line {n}: subject {subject} is not in {subjects_source}")
        dataset = subjects[subject] if subjects is not None else NO_DATASET
        rows += [{"dataset": dataset, "subject": subject, "clip": f"#{k + 1}", "y_true": t, "y_pred": p,
                  "line": b["pred_line"]} for k, (t, p) in enumerate(zip(b["true"], b["pred"]))]
    if not rows:
        raise PredictionFileError(f"{path}: no 'Subject:' block with Predicted / Ground Truth lists")
    return pd.DataFrame(rows)


def read_subject_map(path: str | Path) -> dict[str, str]:
    """Subject -> dataset from a CSV with columns ``subject, dataset`` (other columns ignored)."""
    path = Path(path)
    if not path.is_file():
        raise PredictionFileError(f"{path}: no such file")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True, comment="#")
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise PredictionFileError(f"{path}: not a readable CSV ({e})") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in ("subject", "dataset") if c not in df.columns]
    if missing:
        raise PredictionFileError(f"{path}: missing column {missing[0]!r} (columns found: {list(df.columns)}; "
                                  "required: subject, dataset)")
    out: dict[str, str] = {}
    for i, (s, d) in enumerate(zip(df["subject"].str.strip(), df["dataset"].str.strip()), start=2):
        if not s or not d:
            raise PredictionFileError(f"{path}: line {i}: empty {'subject' if not s else 'dataset'}")
        if s in out and out[s] != d:
            raise PredictionFileError(f"{path}: line {i}: subject {s} is given as {out[s]} and as {d}")
        out[s] = d
    return out
