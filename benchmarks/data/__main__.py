"""``python -m benchmarks.data describe NAME [--data-root PATH] [--json]``: check a dataset install.

Prints clips, subjects, class counts (overall and per source), the apex sources, and every clip
the protocol leaves out with its reason. A missing or malformed file, sheet row or folder ends the
command with exit code 2 and a message that names it.
"""

from __future__ import annotations

import argparse
import json
import sys

from benchmarks.data.errors import DataError
from benchmarks.data.registry import dataset_spec, list_datasets, load_dataset
from benchmarks.paths import DATA_ROOT_ENV, data_root


def format_description(d: dict) -> str:
    lines = [f"{d['name']}: {d['title']}  [{d['kind']}]", f"  root: {d['root'] or '-'}",
             f"  clips: {d['clips']}   subjects: {d['subjects']}   classes: {len(d['classes'])}",
             "  class counts: " + ", ".join(f"{k} {v}" for k, v in d["class_counts"].items())]
    if len(d["per_source"]) > 1:
        lines.append("  per source:")
        for src, s in d["per_source"].items():
            counts = ", ".join(f"{k} {v}" for k, v in s["class_counts"].items())
            lines.append(f"    {src:<18} clips {s['clips']:>4}  subjects {s['subjects']:>3}  ({counts})")
    lines.append("  frames: " + ("yes (sequences, onset and apex)" if d["has_frames"] else "no")
                 + (f"; stored views: {', '.join(d['stored_views'])}" if d["stored_views"] else ""))
    lines.append("  apex: " + ", ".join(f"{k} ({v})" for k, v in d["apex_sources"].items()))
    lines.append(f"  excluded: {d['excluded']}")
    by_reason: dict[str, list[dict]] = {}
    for e in d["exclusions"]:
        by_reason.setdefault(e["reason"], []).append(e)
    for reason, rows in by_reason.items():
        lines.append(f"    {len(rows):>4} x {reason}")
        for e in rows:
            lines.append(f"           {e['dataset']}/{e['subject']}/{e['clip']} ({e['emotion']})")
    for n in d["notes"]:
        lines.append(f"  note: {n}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.data", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("describe", help="describe a dataset and check its files")
    d.add_argument("name", help="dataset name (see `list`)")
    d.add_argument("--data-root", help=f"folder of the licensed releases (default ${DATA_ROOT_ENV}); for "
                   "megc2019-public the folder of the published files (default ../shared/data/megc2019)")
    d.add_argument("--json", action="store_true", help="print JSON")
    d.add_argument("--seed", type=int, default=None, help="seed of a synthetic dataset (default 0)")
    sub.add_parser("list", help="list dataset names")
    a = p.parse_args(argv)
    if a.cmd == "list":
        for name in list_datasets():
            s = dataset_spec(name)
            print(f"{name:<20} {s.kind:<10} {s.title}")
        return 0
    try:
        spec = dataset_spec(a.name)
        root = data_root(a.data_root) if spec.kind == "raw" else a.data_root
        options = {"seed": a.seed} if a.seed is not None else {}
        ds = load_dataset(a.name, root, **options)
        n_read = ds.verify()
    except (DataError, KeyError, ValueError) as e:
        print(f"error: {e.args[0] if e.args else e}", file=sys.stderr)
        return 2
    desc = ds.describe()
    desc["manifest"] = ds.manifest_hash()
    desc["images_verified"] = n_read
    if a.json:
        print(json.dumps(desc, indent=2))
    else:
        print(format_description(desc) + f"\n  images decoded: {n_read}\n  manifest: {desc['manifest']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
