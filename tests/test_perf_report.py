"""The table of ``python -m benchmarks.perf`` on a hand-made pytest-benchmark JSON (nothing is timed)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from benchmarks.perf import report
from benchmarks.perf.__main__ import main, pytest_args


def _bench(name: str, median: float, **extra: str) -> dict:
    return {"name": name, "stats": {"median": median, "iqr": median / 10, "rounds": 7}, "extra_info": extra}


JSON = {
    "machine_info": {"cpu": {"brand_raw": "Test CPU"}},
    "datetime": "2026-01-01T00:00:00",
    "benchmarks": [
        _bench("test_ref_a", 0.002, label="ref A", role="reference"),  # listed before its hot path
        _bench("test_a", 0.006, label="hot A", reference="ref A", threads=1),
        _bench("test_b", 2.5e-5, label="hot B", reference="ref A"),  # same reference: placed once
        _bench("test_plain", 1.5),  # no extra_info label: the test name
        _bench("test_orphan", 0.1, label="orphan", reference="ref never run"),
        _bench("test_unused", 0.01, label="unused ref", role="reference"),
    ],
}


def test_rows_order_and_ratios() -> None:
    rows = report.rows(JSON)
    assert [r.label for r in rows] == ["hot A", "ref A", "hot B", "test_plain", "orphan", "unused ref"]
    by = {r.label: r for r in rows}
    assert by["hot A"].ratio == pytest.approx(3.0) and by["hot B"].ratio == pytest.approx(0.0125)
    assert by["test_plain"].ratio is None and by["orphan"].ratio is None and by["ref A"].is_reference
    assert by["hot A"].median_s == 0.006 and by["hot A"].rounds == 7


@pytest.mark.parametrize("s, text", [(2.5, "2.5 s"), (0.006, "6 ms"), (0.0123456, "12.3 ms"), (2.5e-5, "25 us"),
                                     (0.9996, "1 s"), (0.0, "0 us")])
def test_format_seconds(s: float, text: str) -> None:
    assert report.format_seconds(s) == text


EXPECTED = """\
cpu: Test CPU, threads: [1], at 2026-01-01T00:00:00
hot path           median     IQR  rounds  vs reference (median ratio)
-----------------  ------  ------  ------  ------------------------------
hot A                6 ms  600 us       7  3x ref A
  ref: ref A         2 ms  200 us       7  (reference)
hot B               25 us  2.5 us       7  0.0125x ref A
test_plain          1.5 s  150 ms       7
orphan             100 ms   10 ms       7  - (ref never run not measured)
  ref: unused ref   10 ms    1 ms       7  (reference)
ratio = median / reference median (< 1: faster than the reference)
"""


def test_from_json_prints_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "run.json"
    path.write_text(json.dumps(JSON))
    assert main(["--from-json", str(path)]) == 0
    assert capsys.readouterr().out == EXPECTED


def test_run_arguments_select_only_perf_and_save_json(tmp_path: Path) -> None:
    args = pytest_args(tmp_path / "x.json", "lbp", 0.5, 5)
    assert args[0].endswith("test_hot_paths.py") and Path(args[0]).is_file()
    assert args[args.index("-m") + 1] == "perf" and "--benchmark-enable" in args
    assert f"--benchmark-json={tmp_path / 'x.json'}" in args and args[-2:] == ["-k", "lbp"]


def test_default_suite_excludes_perf() -> None:
    ini = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "not perf" in ini["addopts"] and any(m.startswith("perf:") for m in ini["markers"])
