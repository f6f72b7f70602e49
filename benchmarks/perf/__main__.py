"""``python -m benchmarks.perf [--json PATH] [-k EXPR] [--max-time S] [--min-rounds N] [--from-json PATH]``.

Runs the ``perf`` benchmarks of ``benchmarks/perf/test_hot_paths.py`` through pytest-benchmark, saves its
JSON (default ``runs/perf/<UTC time>.json``) and prints the median of each hot path with the ratio to its
reference implementation. ``--from-json PATH`` only prints the table of a saved run. Exit status: pytest's.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchmarks.perf import report

HOT_PATHS = Path(__file__).with_name("test_hot_paths.py")
DEFAULT_DIR = Path("runs/perf")


def pytest_args(json_path: Path, keyword: str | None, max_time: float, min_rounds: int) -> list[str]:
    """Arguments of the pytest run: only the ``perf`` benchmarks, enabled, JSON saved to ``json_path``."""
    args = [str(HOT_PATHS), "-m", "perf", "--benchmark-enable", f"--benchmark-json={json_path}",
            f"--benchmark-max-time={max_time}", f"--benchmark-min-rounds={min_rounds}",
            "--benchmark-columns=median,iqr,rounds", "-p", "no:cacheprovider", "-q"]
    return args + (["-k", keyword] if keyword else [])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.perf", description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help=f"where to save the JSON (default {DEFAULT_DIR}/<UTC time>.json)")
    ap.add_argument("--from-json", type=Path, help="print the table of a saved JSON; run nothing")
    ap.add_argument("-k", dest="keyword", help="pytest -k expression: run only the matching benchmarks")
    ap.add_argument("--max-time", type=float, default=0.5, help="seconds per benchmark (pytest-benchmark)")
    ap.add_argument("--min-rounds", type=int, default=5, help="rounds per benchmark at least")
    a = ap.parse_args(argv)
    if a.from_json is not None:
        print(report.summary(report.load(a.from_json)))
        return 0
    import pytest  # the test extra; only needed to run

    path = a.json or DEFAULT_DIR / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    rc = int(pytest.main(pytest_args(path, a.keyword, a.max_time, a.min_rounds)))
    if not path.exists():
        print(f"error: pytest (exit {rc}) wrote no JSON to {path}", file=sys.stderr)
        return rc or 1
    print()
    print(report.summary(report.load(path)))
    print(f"saved: {path}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
