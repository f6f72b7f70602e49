"""Compact table of a pytest-benchmark JSON: median per call, and the ratio to the reference beside a hot path.

A benchmark names itself with ``extra_info["label"]`` (default: its test name). A hot path with a reference
implementation sets ``extra_info["reference"]`` to the reference's label; the reference benchmark sets
``extra_info["role"] = "reference"``. The ratio is ``median / median of the reference`` (< 1: faster than it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Row:
    """One benchmark of the table."""

    label: str
    median_s: float
    iqr_s: float
    rounds: int
    reference: str | None = None  # label of the reference implementation, if any
    ratio: float | None = None  # median / reference median; None without a (measured) reference
    is_reference: bool = False


def load(path: str | Path) -> dict[str, Any]:
    """The pytest-benchmark JSON at ``path``."""
    return json.loads(Path(path).read_text())


def rows(data: Mapping[str, Any]) -> list[Row]:
    """Rows in run order, each reference right after the first hot path that names it."""
    bench = data.get("benchmarks", [])
    base: list[Row] = []
    for b in bench:
        info, stats = b.get("extra_info", {}), b["stats"]
        base.append(Row(label=str(info.get("label", b.get("name", "?"))), median_s=float(stats["median"]),
                        iqr_s=float(stats.get("iqr", 0.0)), rounds=int(stats.get("rounds", 0)),
                        reference=info.get("reference"), is_reference=info.get("role") == "reference"))
    by_label = {r.label: r for r in base}
    placed: set[str] = set()
    out: list[Row] = []
    for r in base:
        if r.is_reference:
            continue
        ref = by_label.get(r.reference) if r.reference else None
        ratio = r.median_s / ref.median_s if ref is not None and ref.median_s > 0 else None
        out.append(Row(r.label, r.median_s, r.iqr_s, r.rounds, r.reference, ratio))
        if ref is not None and ref.label not in placed:
            out.append(ref)
            placed.add(ref.label)
    out += [r for r in base if r.is_reference and r.label not in placed]  # references nothing points to
    return out


def format_seconds(s: float) -> str:
    """``s`` seconds with 3 significant digits in s, ms or us (0.9996 s is "1 s", not "1e+03 ms")."""
    s = float(f"{s:.3g}")
    for unit, scale in (("s", 1.0), ("ms", 1e-3)):
        if abs(s) >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-6:.3g} us"


def format_table(table: list[Row]) -> str:
    """Plain-text table: hot path, median, IQR, rounds, ratio to the reference (references indented below)."""
    header = ("hot path", "median", "IQR", "rounds", "vs reference (median ratio)")
    lines = []
    for r in table:
        if r.is_reference:
            vs = "(reference)"
        elif r.reference is None:
            vs = ""
        elif r.ratio is None:
            vs = f"- ({r.reference} not measured)"
        else:
            vs = f"{r.ratio:.3g}x {r.reference}"
        label = f"  ref: {r.label}" if r.is_reference else r.label
        lines.append((label, format_seconds(r.median_s), format_seconds(r.iqr_s), str(r.rounds), vs))
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    right = (False, True, True, True, False)  # numbers right-aligned

    def fmt(row: tuple[str, ...]) -> str:
        cells = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right)]
        return "  ".join(cells).rstrip()

    return "\n".join([fmt(header), "  ".join("-" * w for w in widths), *map(fmt, lines)])


def summary(data: Mapping[str, Any]) -> str:
    """The table with a one-line header (machine, threads) and the ratio's meaning as a footer."""
    machine = data.get("machine_info", {})
    cpu = machine.get("cpu", {}).get("brand_raw", machine.get("processor", "")) if machine else ""
    threads = sorted({b.get("extra_info", {}).get("threads") for b in data.get("benchmarks", [])} - {None})
    head = ", ".join(p for p in (cpu and f"cpu: {cpu}", threads and f"threads: {threads}",
                                 data.get("datetime") and f"at {data['datetime']}") if p)
    foot = "ratio = median / reference median (< 1: faster than the reference)"
    return "\n".join(p for p in (head, format_table(rows(data)), foot) if p)
