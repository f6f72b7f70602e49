"""``python -m benchmarks.list {methods,datasets,tables} [PATTERN] [--json]``: what the harness knows.

- ``methods``: each registered method's family, input views (and fallbacks), default
  hyperparameters with the source of each value, variants, paper and citation.
- ``datasets``: each registered dataset's kind, classes, title, citation and what its root folder
  must hold (nothing is loaded).
- ``tables``: each paper table's title, protocol, rows (implemented / reported only, with the
  method that fills them), columns, and which dataset of each data source fills each column group
  (or why that source cannot).

Text output is a readable table per item; ``--json`` prints one JSON document for scripts.
``PATTERN`` is a shell-style glob over names (table numbers for ``tables``).
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import fnmatch
import json
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tabulate import tabulate

KINDS = ("methods", "datasets", "tables")


# ------------------------------------------------------------------------------------------ records
def method_records(pattern: str = "*") -> list[dict[str, Any]]:
    """One JSON-able record per registered method matching ``pattern``."""
    from benchmarks.registry import get_method, hyperparameters, list_methods

    out = []
    for name in list_methods(pattern):
        s = get_method(name)
        hp = hyperparameters(s.defaults)
        covered: set[str] = set()
        defaults = []
        for k, v in hp.items():
            key = _source_key(k, s.sources)
            if key is not None:
                covered.add(key)
            defaults.append({"name": k, "default": jsonable(v), "source": s.sources.get(key, "") if key else ""})
        out.append({
            "name": s.name, "family": s.family,
            "views": [str(v) for v in s.views],
            "views_depend_on_config": s.views_for is not None,
            "fallbacks": [{"views": [str(v) for v in f.views], "note": f.note} for f in s.fallbacks],
            "defaults": defaults,
            "design_sources": {k: v for k, v in s.sources.items() if k not in covered},
            "variants": {k: jsonable(dict(v)) for k, v in s.variants.items()},
            "paper": s.paper, "citation": s.citation, "notes": s.notes,
        })
    return out


def dataset_records(pattern: str = "*") -> list[dict[str, Any]]:
    """One record per registered dataset matching ``pattern`` (from its spec; no data is read)."""
    from benchmarks.data.registry import dataset_spec, list_datasets

    out = []
    for name in list_datasets(pattern):
        d = dataset_spec(name)
        out.append({"name": d.name, "kind": d.kind, "n_classes": len(d.classes), "classes": list(d.classes),
                    "title": d.title, "citation": d.citation, "root_hint": d.root_hint})
    return out


def table_records(pattern: str = "*") -> list[dict[str, Any]]:
    """One record per paper table whose number matches ``pattern``."""
    from benchmarks.registry import list_methods
    from benchmarks.tablespec import DATA_SOURCES, list_tables, load_table_spec

    registered = set(list_methods())
    out = []
    for n in list_tables():
        if not fnmatch.fnmatch(str(n), pattern):
            continue
        t = load_table_spec(n)
        groups = []
        for g in t.groups:
            fill = {}
            for src in DATA_SOURCES:
                ref = g.sources.get(src)
                fill[src] = ({"dataset": ref.dataset, "scope": ref.scope} if ref is not None
                             else {"unavailable": g.unavailable.get(src, "")})
            groups.append({"id": g.id, "label": g.label, "n_classes": g.n_classes,
                           "class_protocol": g.class_protocol, "sources": fill})
        rows = [{"id": r.id, "label": r.label, "kind": r.kind, "status": r.status, "method": r.method,
                 "variant": r.variant, "registered": r.method in registered if r.method else None,
                 "in_paper": r.in_paper, "year": r.year, "epoch_policy": r.epoch_policy, "selection": r.selection}
                for r in t.rows]
        out.append({"number": t.number, "title": t.title, "source": t.source,
                    "protocol": {"split": t.protocol.split, "pooling": t.protocol.pooling},
                    "rows": rows, "columns": [{"id": c.id, "header": c.header, "unit": c.unit} for c in t.columns],
                    "groups": groups})
    return out


RECORDS = {"methods": method_records, "datasets": dataset_records, "tables": table_records}


# ------------------------------------------------------------------------------------------ text
def methods_text(recs: list[dict[str, Any]]) -> str:
    rows = [[r["name"], r["family"], "\n".join(r["views"]) + (" (per config)" if r["views_depend_on_config"] else ""),
             _wrap(", ".join(r["variants"]), 40) or "-", _wrap(r["citation"], 60)] for r in recs]
    parts = [tabulate(rows, headers=["method", "family", "views", "variants", "citation"], tablefmt="simple")]
    for r in recs:
        parts.append(f"\n{r['name']} ({r['family']}): {r['paper']}")
        hp = [[d["name"], _short(d["default"]), _wrap(d["source"], 80) or "-"] for d in r["defaults"]]
        parts.append(tabulate(hp, headers=["hyperparameter", "default", "source"], tablefmt="simple"))
        for k, v in r["design_sources"].items():
            parts.append(_item(f"{k}: {v}"))
        for k, v in r["variants"].items():
            parts.append(_item(f"variant {k}: {json.dumps(v, sort_keys=True)}"))
        for f in r["fallbacks"]:
            parts.append(_item(f"fallback views {', '.join(f['views'])}: {f['note']}"))
        if r["notes"]:
            parts.append(_item(f"note: {r['notes']}"))
    return "\n".join(parts)


def datasets_text(recs: list[dict[str, Any]]) -> str:
    rows = [[r["name"], r["kind"], f"{r['n_classes']}: " + ", ".join(r["classes"]), _wrap(r["title"], 40),
             _wrap(r["root_hint"], 50), _wrap(r["citation"], 50)] for r in recs]
    return tabulate(rows, headers=["dataset", "kind", "classes", "title", "root must hold", "citation"],
                    tablefmt="simple")


def tables_text(recs: list[dict[str, Any]]) -> str:
    parts = []
    for t in recs:
        n_impl = sum(r["status"] == "implemented" for r in t["rows"])
        parts.append(f"Table {t['number']}: {t['title']}\n  source: {t['source']}; protocol: "
                     f"{t['protocol']['split']}, pooling {t['protocol']['pooling']}; {len(t['rows'])} rows "
                     f"({n_impl} implemented, {len(t['rows']) - n_impl} reported only)")
        rows = [[r["id"], r["label"], r["kind"], r["status"],
                 (r["method"] + (f"[{r['variant']}]" if r["variant"] else "")) if r["method"] else "-",
                 {True: "yes", False: "NO", None: "-"}[r["registered"]]] for r in t["rows"]]
        parts.append(tabulate(rows, headers=["row", "label", "kind", "status", "method", "registered"],
                              tablefmt="simple"))
        parts.append("  columns: " + ", ".join(f"{c['header']} ({c['id']}, {c['unit']})" for c in t["columns"]))
        grows = [[g["id"], f"{g['label']} ({g['n_classes']} classes)"]
                 + [_fill_text(g["sources"][s]) for s in g["sources"]] for g in t["groups"]]
        srcs = list(t["groups"][0]["sources"]) if t["groups"] else []
        parts.append(tabulate(grows, headers=["group", "dataset"] + srcs, tablefmt="simple"))
        parts.append("")
    return "\n".join(parts)


TEXT = {"methods": methods_text, "datasets": datasets_text, "tables": tables_text}


# ------------------------------------------------------------------------------------------ helpers
def jsonable(v: Any) -> Any:
    """A JSON-able copy of a hyperparameter value (tuples -> lists, dataclasses -> dicts, enums -> values)."""
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return jsonable(dataclasses.asdict(v))
    if isinstance(v, enum.Enum):
        return jsonable(v.value)
    if isinstance(v, Mapping):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple | set | frozenset):
        return [jsonable(x) for x in v]
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, str | int | float | bool | type(None)):
        return v
    if hasattr(v, "item"):  # numpy scalar
        return v.item()
    return repr(v)


def _source_key(name: str, sources: Mapping[str, str]) -> str | None:
    """The ``sources`` key documenting hyperparameter ``name``: itself, or a ``a/b/c`` key naming it."""
    if name in sources:
        return name
    for k in sources:
        if name in k.split("/"):
            return k
    return None


def _fill_text(fill: dict[str, str]) -> str:
    if "dataset" in fill:
        return fill["dataset"] + ("" if fill["scope"] == "all" else f" (scope {fill['scope']})")
    return _wrap("unavailable: " + fill["unavailable"], 40)


def _short(v: Any) -> str:
    return json.dumps(v) if not isinstance(v, str) else v


def _wrap(s: str, width: int) -> str:
    return "\n".join(textwrap.wrap(s, width)) if s else ""


def _item(s: str, width: int = 110) -> str:
    return textwrap.fill(s, width, initial_indent="  - ", subsequent_indent="    ")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.list", description=__doc__.splitlines()[0])
    p.add_argument("kind", choices=KINDS)
    p.add_argument("pattern", nargs="?", default="*", help="glob over names (table numbers for 'tables')")
    p.add_argument("--json", action="store_true", help="print JSON instead of text tables")
    a = p.parse_args(argv)
    recs = RECORDS[a.kind](a.pattern)
    if not recs:
        print(f"error: no {a.kind} match {a.pattern!r}", file=sys.stderr)
        return 2
    if a.json:
        print(json.dumps({a.kind: recs}, indent=2, default=repr))
    else:
        print(TEXT[a.kind](recs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
