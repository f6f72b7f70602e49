"""The paper's tables as data: load and validate ``tables/table<N>.toml``.

One TOML file per table of the MFVAN paper (Pan et al. 2023). A file holds:

- ``table`` (its number; or, for a table that is not in the paper, a name such as ``"leaderboard"``, kept
  in ``tables/<name>.toml``), ``title``, ``source`` (where in the paper), optional ``bold_meaning`` and
  ``reported_header`` (the header of the reported-value columns, default ``paper``);
- ``[protocol]``: ``split`` (``loso``), ``pooling`` (``pooled``, ``fold-mean`` or ``not stated``:
  what the paper says about combining the folds), optional ``notes``;
- ``[units]``: metric -> ``percent`` or ``fraction``, the unit the paper prints (the harness's
  metric code returns fractions; :meth:`Column.to_paper_units` converts);
- ``[datasets.<group>]``: one per dataset of the header (``smic``, ``casme2``, ``samm``,
  ``composite``): ``label``, ``n_classes``, ``class_protocol`` (a name in
  :mod:`benchmarks.data.protocols`), one entry per data source (``raw``, ``synthetic``,
  ``megc2019-public``) naming the registered dataset and the score scope that fills the group
  (``scope = "all"``, or a source dataset of a composite: its per-source score), and
  ``unavailable`` (data source -> reason) for the sources that cannot fill it;
- ``[[columns]]``: ``group``, ``metric`` (one of :data:`METRICS`), ``header`` (as printed); the
  column id is ``"<group>.<metric>"``;
- ``[[rows]]``: ``id``, ``label`` (as printed), ``kind``, ``implemented`` (false: the harness does
  not run it, the row is *reported only*), ``method`` (registered method name, required exactly
  when implemented) and optional ``variant``, ``in_paper`` (default true; false for a row the
  harness adds, which then needs ``source``), optional ``year``, ``note``, ``reported``
  (column id -> value as printed; a dash in the paper is an absent key), ``bold`` (column ids),
  ``notes`` (column id -> remark on that cell), ``epoch_policy`` (``last``, ``val`` or ``oracle``: the
  row is run and scored under that policy, whatever the run's ``--epoch-policy``; a table may so hold one
  method under several policies) and ``selection`` (how the reported value's authors chose the epoch);
- for a table whose extracted header is garbled (Table 2): ``printed_header``, ``column_map``
  (printed position -> column id, ``""`` for a position that maps to no column) and
  ``reconstruction`` (the reasoning); each row then keeps its raw ``printed`` numbers (strings,
  exactly as extracted, dashes included) and may override ``column_map``. The loader checks that
  every reported value is the printed number at a mapped position and that no value is invented.

Errors are :class:`TableSpecError` naming the file and the row, column or field.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

TABLES_DIR = Path(__file__).resolve().parents[1] / "tables"
METRICS = ("accuracy", "macro_f1", "uf1", "uar")
"""Metric names, as :mod:`benchmarks.metrics` spells them (``macro_f1``: the paper's "F1-score")."""
UNITS = {"percent": 100.0, "fraction": 1.0}
DATA_SOURCES = ("raw", "synthetic", "megc2019-public")
SPLITS = ("loso",)
POOLINGS = ("pooled", "fold-mean", "not stated")
KINDS = ("handcrafted", "deep", "proposed", "ablation")  # in spec files; "added" rows come from the CLI
IMPLEMENTED, REPORTED_ONLY = "implemented", "reported only"
DASHES = frozenset({"-", "\u2013", "\u2014"})

EPOCH_POLICIES = ("last", "val", "oracle")  # benchmarks.trainer.EPOCH_POLICIES (not imported: no torch here)
_TOP_KEYS = {"table", "title", "source", "bold_meaning", "protocol", "units", "datasets", "columns", "rows",
             "printed_header", "column_map", "reconstruction", "reported_header"}
_PROTOCOL_KEYS = {"split", "pooling", "notes"}
_GROUP_KEYS = {"label", "n_classes", "class_protocol", "unavailable"}
_COLUMN_KEYS = {"group", "metric", "header"}
_ROW_KEYS = {"id", "label", "kind", "implemented", "method", "variant", "in_paper", "source", "year", "note",
             "reported", "bold", "notes", "printed", "column_map", "epoch_policy", "selection"}
_TABLE_FILE = re.compile(r"^table(\d+)\.toml$")
_TABLE_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


class TableSpecError(ValueError):
    """A table spec is malformed; the message names the file and the row, column or field."""


@dataclass(frozen=True)
class DataRef:
    """The registered dataset, and the score scope within it, that fills a column group."""

    dataset: str
    scope: str = "all"


@dataclass(frozen=True)
class ColumnGroup:
    """A dataset of the table header, with how each data source fills it."""

    id: str
    label: str
    n_classes: int
    class_protocol: str
    sources: Mapping[str, DataRef]
    unavailable: Mapping[str, str]

    def source(self, data: str) -> DataRef | None:
        """The dataset and scope for ``--data <data>``, or None when that source cannot fill the group."""
        if data not in DATA_SOURCES:
            raise KeyError(f"unknown data source {data!r} (known: {', '.join(DATA_SOURCES)})")
        return self.sources.get(data)


@dataclass(frozen=True)
class Column:
    group: str
    metric: str
    header: str
    unit: str

    @property
    def id(self) -> str:
        return f"{self.group}.{self.metric}"

    def to_paper_units(self, value: float) -> float:
        """A harness value (a fraction) in the unit the paper prints (percent for accuracy)."""
        return float(value) * UNITS[self.unit]


@dataclass(frozen=True)
class Cell:
    row: str
    column: str
    reported: float | None
    bold: bool = False
    note: str | None = None


@dataclass(frozen=True)
class Row:
    id: str
    label: str
    kind: str
    implemented: bool
    in_paper: bool
    method: str | None
    variant: str | None
    year: int | None
    source: str | None
    note: str | None
    cells: tuple[Cell, ...]
    printed: tuple[str, ...] | None = None
    column_map: tuple[str | None, ...] | None = None
    epoch_policy: str | None = None  # None: the run's --epoch-policy
    selection: str | None = None  # the reported value's epoch-selection rule, as its authors used it

    @property
    def status(self) -> str:
        return IMPLEMENTED if self.implemented else REPORTED_ONLY

    @property
    def reported_only(self) -> bool:
        return not self.implemented

    def cell(self, column_id: str) -> Cell:
        for c in self.cells:
            if c.column == column_id:
                return c
        raise KeyError(f"row {self.id!r} has no column {column_id!r}")


@dataclass(frozen=True)
class TableProtocol:
    split: str
    pooling: str
    notes: str


@dataclass(frozen=True)
class TableSpec:
    number: int | str  # a paper table's number, or the name of a table the harness adds
    title: str
    source: str
    path: Path
    protocol: TableProtocol
    units: Mapping[str, str]
    groups: tuple[ColumnGroup, ...]
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    bold_meaning: str | None = None
    printed_header: tuple[str, ...] | None = None
    column_map: tuple[str | None, ...] | None = None
    reconstruction: str | None = None
    reported_header: str = "paper"

    @property
    def stem(self) -> str:
        """The file stem of the spec and of its rendered outputs: ``table3``, ``leaderboard``."""
        return table_stem(self.number)

    @property
    def heading(self) -> str:
        """``Table 3`` or ``Leaderboard``."""
        return f"Table {self.number}" if isinstance(self.number, int) else self.number.capitalize()

    def row(self, row_id: str) -> Row:
        for r in self.rows:
            if r.id == row_id:
                return r
        raise KeyError(f"{self.path.name}: no row {row_id!r} (rows: {', '.join(r.id for r in self.rows)})")

    def column(self, column_id: str) -> Column:
        for c in self.columns:
            if c.id == column_id:
                return c
        raise KeyError(f"{self.path.name}: no column {column_id!r}")

    def group(self, group_id: str) -> ColumnGroup:
        for g in self.groups:
            if g.id == group_id:
                return g
        raise KeyError(f"{self.path.name}: no dataset group {group_id!r}")

    def value(self, row_id: str, column_id: str) -> float | None:
        return self.row(row_id).cell(column_id).reported

    @property
    def implemented_rows(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if r.implemented)

    @property
    def reported_only_rows(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if not r.implemented)


def with_added_methods(spec: TableSpec, methods: Sequence[str]) -> TableSpec:
    """``spec`` with one row per added method (``name`` or ``name[variant]``) after the paper's rows:
    implemented, not in the paper, no reported values. Lets a new method run under a table's protocol
    beside the paper's rows (``benchmarks.run --add-methods``)."""
    rows = list(spec.rows)
    for m in methods:
        name, _, variant = m.partition("[")
        variant = variant.rstrip("]") or None
        rid = f"added:{m}"
        if any(r.id == rid for r in rows):
            continue
        cells = tuple(Cell(rid, c.id, None) for c in spec.columns)
        rows.append(Row(rid, f"{m} (added)", "added", True, False, name, variant, None, "added by --add-methods",
                        "not in the paper: no reported values", cells))
    return replace(spec, rows=tuple(rows))


# ------------------------------------------------------------------------------------------ loading


def list_tables(root: str | Path | None = None) -> tuple[int | str, ...]:
    """The table specs under ``root`` (default: the repository's ``tables/``): the paper's table numbers in
    order, then the names of the tables the harness adds (``leaderboard.toml`` -> ``"leaderboard"``)."""
    folder = Path(root) if root is not None else TABLES_DIR
    nums = [int(m.group(1)) for p in folder.glob("table*.toml") if (m := _TABLE_FILE.match(p.name))]
    names = [p.stem for p in folder.glob("*.toml") if not _TABLE_FILE.match(p.name) and _TABLE_NAME.match(p.stem)]
    return (*sorted(nums), *sorted(names))


def table_stem(n: int | str) -> str:
    """The file stem of table ``n`` (``3`` or ``"3"`` -> ``table3``; a name is its own stem)."""
    n = table_id(n)
    return f"table{n}" if isinstance(n, int) else n


def table_id(n: int | str) -> int | str:
    """A table given as ``3``, ``"3"`` or ``"leaderboard"``: the number as an int, else the name."""
    return int(n) if isinstance(n, int) or str(n).isdigit() else str(n)


def load_table_spec(n: int | str, root: str | Path | None = None) -> TableSpec:
    """Load and validate ``table<n>.toml`` (or ``<name>.toml``) from ``root`` (default: ``tables/``)."""
    folder = Path(root) if root is not None else TABLES_DIR
    n = table_id(n)
    path = folder / f"{table_stem(n)}.toml"
    if not path.is_file():
        known = ", ".join(map(str, list_tables(folder))) or "none"
        raise TableSpecError(f"{path}: no such table spec (tables in {folder}: {known})")
    spec = load_spec_file(path)
    if spec.number != n:
        raise TableSpecError(f"{path}: field 'table' is {spec.number!r}, expected {n!r} from the file name")
    return spec


def load_spec_file(path: str | Path) -> TableSpec:
    """Load and validate one table spec file."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            doc = tomllib.load(fh)
    except tomllib.TOMLDecodeError as e:
        raise TableSpecError(f"{path}: not valid TOML: {e}") from e
    return _Parser(path).table(doc)


class _Parser:
    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, msg: str) -> TableSpecError:
        return TableSpecError(f"{self.path}: {where}: {msg}" if where else f"{self.path}: {msg}")

    def keys(self, d: Any, allowed: set[str], required: tuple[str, ...], where: str) -> dict:
        if not isinstance(d, dict):
            raise self.fail(where, f"expected a table, got {type(d).__name__}")
        unknown = sorted(set(d) - allowed)
        if unknown:
            raise self.fail(where, f"unknown field(s) {', '.join(map(repr, unknown))} "
                                   f"(allowed: {', '.join(sorted(allowed))})")
        for k in required:
            if k not in d:
                raise self.fail(where, f"missing field {k!r}")
        return d

    def text(self, d: dict, key: str, where: str, optional: bool = False) -> str | None:
        v = d.get(key)
        if v is None and optional:
            return None
        if not isinstance(v, str) or not v.strip():
            raise self.fail(where, f"field {key!r} must be a non-empty string, got {v!r}")
        return v

    def flag(self, d: dict, key: str, where: str, default: bool | None = None) -> bool:
        v = d.get(key, default)
        if not isinstance(v, bool):
            raise self.fail(where, f"field {key!r} must be true or false, got {v!r}")
        return v

    # ------------------------------------------------------------------ sections

    def table(self, doc: dict) -> TableSpec:
        self.keys(doc, _TOP_KEYS, ("table", "title", "source", "protocol", "units", "datasets", "columns", "rows"),
                  "")
        number = doc["table"]
        named = isinstance(number, str) and bool(_TABLE_NAME.match(number)) and not number.startswith("table")
        if not named and (not isinstance(number, int) or isinstance(number, bool) or number < 1):
            raise self.fail("field 'table'", f"must be a positive integer or a lower-case name, got {number!r}")
        protocol = self.protocol(doc["protocol"])
        units = self.units(doc["units"])
        groups = self.groups(doc["datasets"])
        columns = self.columns(doc["columns"], groups, units)
        col_ids = [c.id for c in columns]
        header, cmap = self.printed_layout(doc, col_ids)
        rows = self.rows(doc["rows"], columns, cmap)
        return TableSpec(
            number=number, title=self.text(doc, "title", "field 'title'"),
            source=self.text(doc, "source", "field 'source'"), path=self.path, protocol=protocol,
            units=MappingProxyType(units), groups=tuple(groups.values()), columns=columns, rows=rows,
            bold_meaning=self.text(doc, "bold_meaning", "field 'bold_meaning'", optional=True),
            printed_header=header, column_map=cmap,
            reconstruction=self.text(doc, "reconstruction", "field 'reconstruction'", optional=True),
            reported_header=self.text(doc, "reported_header", "field 'reported_header'", optional=True) or "paper")

    def protocol(self, d: Any) -> TableProtocol:
        where = "[protocol]"
        self.keys(d, _PROTOCOL_KEYS, ("split", "pooling"), where)
        if d["split"] not in SPLITS:
            raise self.fail(where, f"split {d['split']!r} is not one of {', '.join(SPLITS)}")
        if d["pooling"] not in POOLINGS:
            raise self.fail(where, f"pooling {d['pooling']!r} is not one of {', '.join(POOLINGS)}")
        return TableProtocol(d["split"], d["pooling"], self.text(d, "notes", where, optional=True) or "")

    def units(self, d: Any) -> dict[str, str]:
        where = "[units]"
        if not isinstance(d, dict) or not d:
            raise self.fail(where, "expected a non-empty table metric -> unit")
        for metric, unit in d.items():
            if metric not in METRICS:
                raise self.fail(where, f"unknown metric {metric!r} (known: {', '.join(METRICS)})")
            if unit not in UNITS:
                raise self.fail(where, f"metric {metric!r}: unit {unit!r} is not one of {', '.join(UNITS)}")
        return dict(d)

    def groups(self, d: Any) -> dict[str, ColumnGroup]:
        if not isinstance(d, dict) or not d:
            raise self.fail("[datasets]", "expected a non-empty table of dataset groups")
        out = {}
        for gid, g in d.items():
            where = f"[datasets.{gid}]"
            self.keys(g, _GROUP_KEYS | set(DATA_SOURCES), ("label", "n_classes", "class_protocol"), where)
            n = g["n_classes"]
            if not isinstance(n, int) or isinstance(n, bool) or n < 2:
                raise self.fail(where, f"n_classes must be an integer >= 2, got {n!r}")
            sources = {}
            for src in DATA_SOURCES:
                if src in g:
                    ref = self.keys(g[src], {"dataset", "scope"}, ("dataset",), f"{where} {src}")
                    sources[src] = DataRef(self.text(ref, "dataset", f"{where} {src}"),
                                           self.text(ref, "scope", f"{where} {src}", optional=True) or "all")
            unavailable = g.get("unavailable", {})
            if not isinstance(unavailable, dict):
                raise self.fail(where, "unavailable must be a table data source -> reason")
            for src, reason in unavailable.items():
                if src not in DATA_SOURCES:
                    raise self.fail(where, f"unavailable: unknown data source {src!r} "
                                           f"(known: {', '.join(DATA_SOURCES)})")
                if src in sources:
                    raise self.fail(where, f"data source {src!r} is both given and marked unavailable")
                if not isinstance(reason, str) or not reason.strip():
                    raise self.fail(where, f"unavailable.{src}: give the reason as a string")
            missing = [s for s in DATA_SOURCES if s not in sources and s not in unavailable]
            if missing:
                raise self.fail(where, f"data source(s) {', '.join(missing)} neither given nor marked unavailable")
            out[gid] = ColumnGroup(gid, self.text(g, "label", where), n, self.text(g, "class_protocol", where),
                                   MappingProxyType(sources), MappingProxyType(dict(unavailable)))
        return out

    def columns(self, items: Any, groups: dict[str, ColumnGroup], units: dict[str, str]) -> tuple[Column, ...]:
        if not isinstance(items, list) or not items:
            raise self.fail("[[columns]]", "expected a non-empty array of tables")
        out, seen = [], set()
        for i, c in enumerate(items, 1):
            where = f"column {i}"
            self.keys(c, _COLUMN_KEYS, ("group", "metric", "header"), where)
            if c["metric"] not in METRICS:
                raise self.fail(where, f"unknown metric {c['metric']!r} (known: {', '.join(METRICS)})")
            if c["group"] not in groups:
                raise self.fail(where, f"unknown dataset group {c['group']!r} (known: {', '.join(groups)})")
            if c["metric"] not in units:
                raise self.fail(where, f"metric {c['metric']!r} has no unit in [units]")
            col = Column(c["group"], c["metric"], self.text(c, "header", where), units[c["metric"]])
            if col.id in seen:
                raise self.fail(where, f"duplicate column {col.id!r}")
            seen.add(col.id)
            out.append(col)
        return tuple(out)

    def column_map(self, v: Any, col_ids: list[str], n: int | None, where: str) -> tuple[str | None, ...]:
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise self.fail(where, "column_map must be an array of column ids ('' for an unmapped position)")
        if n is not None and len(v) != n:
            raise self.fail(where, f"column_map has {len(v)} positions, printed_header has {n}")
        for x in v:
            if x and x not in col_ids:
                raise self.fail(where, f"column_map names unknown column {x!r} (known: {', '.join(col_ids)})")
        return tuple(x or None for x in v)

    def printed_layout(self, doc: dict, col_ids: list[str]):
        has = [k in doc for k in ("printed_header", "column_map", "reconstruction")]
        if not any(has):
            return None, None
        if not all(has):
            raise self.fail("", "printed_header, column_map and reconstruction go together")
        header = doc["printed_header"]
        if not isinstance(header, list) or not header or not all(isinstance(h, str) for h in header):
            raise self.fail("field 'printed_header'", "must be a non-empty array of strings")
        return tuple(header), self.column_map(doc["column_map"], col_ids, len(header), "field 'column_map'")

    def rows(self, items: Any, columns: tuple[Column, ...], cmap: tuple[str | None, ...] | None) -> tuple[Row, ...]:
        if not isinstance(items, list) or not items:
            raise self.fail("[[rows]]", "expected a non-empty array of tables")
        out, seen = [], set()
        for i, r in enumerate(items, 1):
            rid = r.get("id") if isinstance(r, dict) else None
            where = f"row {i} ({rid!r})" if isinstance(rid, str) else f"row {i}"
            row = self.row(r, columns, cmap, where)
            if row.id in seen:
                raise self.fail(where, f"duplicate row id {row.id!r}")
            seen.add(row.id)
            out.append(row)
        return tuple(out)

    def row(self, r: Any, columns: tuple[Column, ...], cmap, where: str) -> Row:
        self.keys(r, _ROW_KEYS, ("id", "label", "kind", "implemented", "reported"), where)
        rid, label = self.text(r, "id", where), self.text(r, "label", where)
        if r["kind"] not in KINDS:
            raise self.fail(where, f"kind {r['kind']!r} is not one of {', '.join(KINDS)}")
        implemented, in_paper = self.flag(r, "implemented", where), self.flag(r, "in_paper", where, True)
        method = self.text(r, "method", where, optional=True)
        if implemented and method is None:
            raise self.fail(where, "an implemented row must name its registered method ('method')")
        if not implemented and method is not None:
            raise self.fail(where, f"a reported-only row names no method (got method = {method!r})")
        variant = self.text(r, "variant", where, optional=True)
        source = self.text(r, "source", where, optional=True)
        if not in_paper and source is None:
            raise self.fail(where, "a row that is not in the paper must say where its values come from ('source')")
        year = r.get("year")
        if year is not None and (not isinstance(year, int) or isinstance(year, bool)):
            raise self.fail(where, f"year must be an integer, got {year!r}")
        by_id = {c.id: c for c in columns}
        reported = self.reported(r["reported"], by_id, where)
        bold = r.get("bold", [])
        if not isinstance(bold, list) or not all(isinstance(b, str) for b in bold):
            raise self.fail(where, "bold must be an array of column ids")
        for b in bold:
            if b not in reported:
                raise self.fail(where, f"bold names {b!r}, which has no reported value")
        notes = r.get("notes", {})
        if not isinstance(notes, dict):
            raise self.fail(where, "notes must be a table column id -> text")
        for k, v in notes.items():
            if k not in by_id:
                raise self.fail(where, f"notes: unknown column {k!r}")
            if not isinstance(v, str) or not v.strip():
                raise self.fail(where, f"notes.{k}: must be a non-empty string")
        printed, row_map = self.printed(r, reported, list(by_id), cmap, where)
        policy = r.get("epoch_policy")
        if policy is not None and policy not in EPOCH_POLICIES:
            raise self.fail(where, f"epoch_policy {policy!r} is not one of {', '.join(EPOCH_POLICIES)}")
        if policy is not None and not implemented:
            raise self.fail(where, "a reported-only row is not run: it takes no epoch_policy")
        cells = tuple(Cell(rid, c.id, reported.get(c.id), c.id in bold, notes.get(c.id)) for c in columns)
        return Row(rid, label, r["kind"], implemented, in_paper, method, variant, year, source,
                   self.text(r, "note", where, optional=True), cells, printed, row_map, policy,
                   self.text(r, "selection", where, optional=True))

    def reported(self, d: Any, by_id: dict[str, Column], where: str) -> dict[str, float]:
        if not isinstance(d, dict):
            raise self.fail(where, "reported must be a table column id -> value")
        out = {}
        for k, v in d.items():
            if k not in by_id:
                raise self.fail(where, f"reported: unknown column {k!r} (known: {', '.join(by_id)})")
            if not isinstance(v, int | float) or isinstance(v, bool):
                raise self.fail(where, f"reported.{k}: expected a number, got {v!r} (leave a dash out)")
            hi = UNITS[by_id[k].unit]
            if not 0.0 <= float(v) <= hi:
                raise self.fail(where, f"reported.{k} = {v} is outside [0, {hi:g}] for unit {by_id[k].unit!r}")
            out[k] = float(v)
        return out

    def printed(self, r: dict, reported: dict[str, float], col_ids: list[str], cmap, where: str):
        if "printed" not in r:
            if "column_map" in r:
                raise self.fail(where, "column_map without printed")
            if cmap is not None and r.get("in_paper", True):
                raise self.fail(where, "this table keeps each paper row's printed numbers: missing field 'printed'")
            return None, None
        if cmap is None:
            raise self.fail(where, "printed is only meaningful with a table-level printed_header and column_map")
        printed = r["printed"]
        if not isinstance(printed, list) or not all(isinstance(p, str) for p in printed) or len(printed) != len(cmap):
            raise self.fail(where, f"printed must be {len(cmap)} strings, as extracted")
        row_map = self.column_map(r["column_map"], col_ids, len(cmap), where) if "column_map" in r else cmap
        covered = set()
        for pos, (tok, target) in enumerate(zip(printed, row_map), 1):
            tok = tok.strip()
            if tok in DASHES:
                value = None
            else:
                try:
                    value = float(tok)
                except ValueError:
                    raise self.fail(where, f"printed position {pos}: {tok!r} is neither a number nor a dash") from None
            if target is None:
                continue
            covered.add(target)
            if reported.get(target) != value:
                raise self.fail(where, f"printed position {pos} ({tok}) maps to {target}, "
                                       f"but reported.{target} is {reported.get(target)}")
        invented = sorted(set(reported) - covered)
        if invented:
            raise self.fail(where, f"reported {', '.join(invented)} not backed by any printed position")
        return tuple(printed), row_map
