"""``python -m benchmarks.run`` end to end, as a user runs it: a smoke run, a rerun that reuses every unit
(with figures), a failing unit, and crash safety under Ctrl-C and SIGKILL; marked slow (``-m slow``): a dry
run, ``--force`` with MLflow and ``benchmarks.render``, Ctrl-C stopping worker processes, two runs sharing one
``--out``, and bad values as subprocesses."""

from __future__ import annotations

import json
import shutil
import signal

import pandas as pd
import pytest

from tests.cli import (
    CELL,
    interrupt,
    markers,
    one_error_line,
    predictions,
    run_cli,
    start_cli,
    temp_files,
    wait_for_markers,
)

SEEDS = ("--seeds", "0,1")  # 2 folds x 2 seeds: 4 units


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted smoke run (4 units) without MLflow: its folder and its completed process."""
    out = tmp_path_factory.mktemp("reference") / "out"
    r = run_cli("benchmarks.run", *CELL, *SEEDS, "--no-mlflow", "--out", out)
    assert r.returncode == 0, r.stderr
    return out, r


def test_smoke_run_writes_units_tables_and_no_mlflow(reference):
    out, r = reference
    assert "Traceback" not in r.stderr
    assert len(markers(out)) == 4 and not temp_files(out) and not list((out / "units").rglob("*.lock"))
    pred = predictions(out)
    assert len(pred) and set(pred["seed"]) == {0, 1} and set(pred["fold"]) == {0, 1}
    assert set(pred["method"]) == {"mfvan"} and set(pred["variant"]) == {"global"}
    assert pred.groupby(["seed", "fold"])["unit_key"].nunique().eq(1).all()
    assert len(pd.read_parquet(out / "results.parquet")) == 4
    row = next(line for line in (out / "table3.md").read_text().splitlines() if line.startswith("| Global "))
    assert " ± " in row.split("|")[2]  # two seeds: mean ± std in the SMIC accuracy cell
    assert "- Dataset synthetic-smic: synthetic face clips, generator v4" in (out / "table3.md").read_text()
    meta = json.loads((out / "run.json").read_text())
    assert meta["tables"] == [3] and meta["seeds"] == [0, 1] and meta["n_units"] == 4 and meta["n_failed"] == 0
    assert not (out / "mlflow.db").exists() and "MLflow" not in r.stdout
    assert "done: 4 units (0 reused)" in r.stdout and r.stdout.rstrip().endswith(f"outputs in {out}")
    assert r.stderr.count("] done: mfvan[global] synthetic-smic") == 4


def test_rerun_reuses_every_unit_and_adds_figures(reference, tmp_path):
    src, _ = reference
    out = tmp_path / "out"
    shutil.copytree(src, out)
    before = markers(out)
    r = run_cli("benchmarks.run", *CELL, *SEEDS, "--figures", "--no-mlflow", "--out", out)
    assert r.returncode == 0, r.stderr
    assert "done: 4 units (4 reused)" in r.stdout and "] done:" not in r.stderr
    assert markers(out) == before                                        # not one unit rewritten
    pd.testing.assert_frame_equal(predictions(out), predictions(src))
    pngs = sorted((out / "figures").glob("*.png"))
    assert len(pngs) == 1 and "figures: 1 confusion matrices" in r.stdout


def test_shuffled_label_control_is_cached_apart_and_labelled(reference, tmp_path):
    src, _ = reference
    out = tmp_path / "out"
    shutil.copytree(src, out)
    before = markers(out)
    r = run_cli("benchmarks.run", *CELL, *SEEDS, "--label-control", "shuffled", "--no-mlflow", "--out", out)
    assert r.returncode == 0, r.stderr
    assert "SHUFFLED-LABEL CONTROL: 4 units, 0 done" in r.stdout and "done: 4 units (0 reused)" in r.stdout
    after = markers(out)
    assert len(after) == 8 and all(after[k] == v for k, v in before.items())  # the real units untouched
    assert "Note: shuffled-label control" in (out / "table3.md").read_text()
    assert json.loads((out / "run.json").read_text())["label_control"] == "shuffled"
    pred = predictions(out)
    assert pred["protocol_note"].str.contains("shuffled-label control").all()


@pytest.mark.slow
def test_dry_run_prints_the_grid_and_writes_nothing(reference):
    out, _ = reference
    before = sorted((p, p.stat().st_mtime_ns) for p in out.rglob("*"))
    r = run_cli("benchmarks.run", *CELL, *SEEDS, "--dry-run", "--out", out)
    assert r.returncode == 0, r.stderr
    assert "seeds [0, 1]: 4 units, 4 done" in r.stdout and "mfvan  global synthetic-smic" in r.stdout
    assert sorted((p, p.stat().st_mtime_ns) for p in out.rglob("*")) == before


@pytest.mark.slow
def test_force_recomputes_the_matching_units_and_logs_to_mlflow(reference, tmp_path):
    src, _ = reference
    out = tmp_path / "out"
    shutil.copytree(src, out)
    before = markers(out)
    r = run_cli("benchmarks.run", *CELL, *SEEDS, "--force", "mfvan*", "--out", out)
    assert r.returncode == 0, r.stderr
    assert "--force mfvan*: 4 unit(s) will be recomputed" in r.stdout and "done: 4 units (0 reused)" in r.stdout
    after = markers(out)
    assert set(after) == set(before) and all(after[k][0] > before[k][0] for k in before)   # rewritten ...
    pd.testing.assert_frame_equal(predictions(out), predictions(src))                     # ... to the same
    assert (out / "mlflow.db").is_file() and "MLflow: run " in r.stdout
    r = run_cli("benchmarks.render", "--table", "3", "--out", out, "--to", tmp_path / "again", "--n-boot", "50")
    assert r.returncode == 0, r.stderr
    def global_row(path):
        return next(line for line in path.read_text().splitlines() if line.startswith("| Global "))
    assert global_row(tmp_path / "again" / "table3.md") == global_row(out / "table3.md")  # mean ± std of 2 seeds


def test_failing_unit_is_reported_not_cached_and_exits_1(tmp_path):
    out = tmp_path / "out"
    r = run_cli("tests.cli_probe", "--table", "3", "--preset", "smoke", "--add-methods", "probe_ok,probe_fail",
                "--methods", "probe_*", "--datasets", "synthetic-smic", "--jobs", "1", "--no-mlflow", "--out", out)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and "2 unit(s) FAILED (not cached; rerun to retry):" in r.stderr
    assert "probe_fail synthetic-smic fold 0 (synthetic-smic/s1) seed 0: RuntimeError: probe failure" in r.stderr
    report = json.loads((out / "failures.json").read_text())
    assert [f["unit"].split()[0] for f in report] == ["probe_fail", "probe_fail"]
    assert all("probe failure" in f["error"] and "Traceback" in f["trace"] for f in report)
    assert len(markers(out)) == 2                                         # probe_ok's two units, cached
    assert set(predictions(out)["method"]) == {"probe_ok"}
    assert any(line.startswith("| probe_ok") for line in (out / "table3.md").read_text().splitlines())


SLOW = ("--epochs", "30")  # units of a few seconds each: the signals land while units are still running


def test_ctrl_c_then_sigkill_lose_no_finished_unit(tmp_path):
    """Ctrl-C after the first unit: one clean line, exit 130, no temporary file. SIGKILL after the next one.
    The rerun recomputes only what was not finished and its predictions equal an uninterrupted run's."""
    ref = tmp_path / "ref"
    assert run_cli("benchmarks.run", *CELL, *SEEDS, *SLOW, "--no-mlflow", "--out", ref).returncode == 0
    out = tmp_path / "out"
    proc = start_cli("benchmarks.run", *CELL, *SEEDS, *SLOW, "--no-mlflow", "--out", out, log=tmp_path / "1.log")
    n = wait_for_markers(proc, out, 0)
    assert interrupt(proc, signal.SIGINT) == 130, (tmp_path / "1.log").read_text()
    log = (tmp_path / "1.log").read_text()
    assert "Traceback" not in log and 1 <= n < 4
    k = len(markers(out))
    assert log.rstrip().splitlines()[-1] == (f"interrupted: {k} of 4 units finished and cached in {out / 'units'}; "
                                             "rerun the same command to continue")
    assert not temp_files(out) and not (out / "predictions.parquet").exists()
    first = markers(out)

    proc = start_cli("benchmarks.run", *CELL, *SEEDS, *SLOW, "--no-mlflow", "--out", out, log=tmp_path / "2.log")
    wait_for_markers(proc, out, len(first))
    assert interrupt(proc, signal.SIGKILL) == -signal.SIGKILL
    second = markers(out)
    assert {k: second[k] for k in first} == first and len(second) < 4, "finished units changed or run completed"

    r = run_cli("benchmarks.run", *CELL, *SEEDS, *SLOW, "--no-mlflow", "--out", out)
    assert r.returncode == 0, r.stderr
    assert f"done: 4 units ({len(second)} reused)" in r.stdout
    assert r.stderr.count("] done:") == 4 - len(second)                  # only the unfinished ones computed
    final = markers(out)
    assert {k: final[k] for k in second} == second and len(final) == 4
    assert not temp_files(out) and not list((out / "units").rglob("*.lock"))
    pd.testing.assert_frame_equal(predictions(out), predictions(ref))


@pytest.mark.slow  # tests/test_cli_errors.py checks every bad value in-process; these two as a user sees them
@pytest.mark.parametrize("argv, message", [
    (["--table", "9"], "argument --table: no table '9'; known: 1, 2, 3 or all"),
    (["--epochs", "-3"], "argument --epochs: -3 is not a positive integer"),
])
def test_bad_values_as_a_subprocess_are_one_error_line(tmp_path, argv, message):
    args = [a for a in CELL if a not in ("--table", "3")] if argv[0] == "--table" else list(CELL)
    r = run_cli("benchmarks.run", *args, *argv, "--out", tmp_path / "out")
    assert r.returncode == 2 and message in one_error_line(r.stderr), r.stderr


@pytest.mark.slow
def test_ctrl_c_stops_the_worker_processes(tmp_path):
    psutil = pytest.importorskip("psutil")
    out = tmp_path / "out"
    args = [a if a != "1" else "2" for a in CELL]  # --jobs 2: worker processes
    proc = start_cli("benchmarks.run", *args, *SLOW, "--seeds", "0,1,2", "--no-mlflow", "--out", out,
                     log=tmp_path / "log")
    wait_for_markers(proc, out, 0)
    children = psutil.Process(proc.pid).children(recursive=True)
    assert children, "no worker processes"
    assert interrupt(proc, signal.SIGINT) == 130
    log = (tmp_path / "log").read_text()
    assert "Traceback" not in log and log.rstrip().splitlines()[-1].startswith("interrupted: ")
    gone, alive = psutil.wait_procs(children, timeout=20)
    assert not alive, alive
    assert not temp_files(out)


@pytest.mark.slow
def test_two_runs_at_once_share_units_and_keep_their_own_outputs(tmp_path):
    """A (seeds 0-3) holds --out; B (seeds 3, 4) starts while A runs (A is paused with SIGSTOP meanwhile, so
    that the two overlap whatever the machine's load): B computes seed 4, waits for A's seed-3 units and takes
    them from the store, and writes its tables and predictions to a folder of its own."""
    import os
    import re
    import time

    out = tmp_path / "out"
    a = start_cli("benchmarks.run", *CELL, *SLOW, "--seeds", "0,1,2,3", "--no-mlflow", "--out", out,
                  log=tmp_path / "a.log")
    wait_for_markers(a, out, 0)
    os.kill(a.pid, signal.SIGSTOP)
    try:
        b = start_cli("benchmarks.run", *CELL, *SLOW, "--seeds", "3,4", "--no-mlflow", "--out", out,
                      log=tmp_path / "b.log")
        t0 = time.time()
        while (tmp_path / "b.log").read_text().count("] done: ") < 2 and b.poll() is None:
            assert time.time() - t0 < 600, "B did not compute its own units"
            time.sleep(0.1)
        assert b.poll() is None, "B finished without waiting for A's seed-3 units"
    finally:
        os.kill(a.pid, signal.SIGCONT)
    assert a.wait(timeout=600) == 0 and b.wait(timeout=600) == 0
    la, lb = (tmp_path / "a.log").read_text(), (tmp_path / "b.log").read_text()
    assert "Traceback" not in la + lb
    computed = {name: re.findall(r"\] done: (.+)", log) for name, log in (("a", la), ("b", lb))}
    taken = re.findall(r"\] done by another run: (.+)", lb)
    assert len(computed["a"]) == 8 and {s.split()[-1] for s in computed["a"]} == {"0", "1", "2", "3"}
    assert len(computed["b"]) == 2 and {s.split()[-1] for s in computed["b"]} == {"4"}   # no unit twice
    assert sorted(taken) == sorted(s for s in computed["a"] if s.endswith("seed 3"))
    assert len(markers(out)) == 10 and not temp_files(out) and not list((out / "units").rglob("*.lock"))
    assert f"note: {out} is in use by another run (pid {a.pid}" in lb
    (own,) = (out / "concurrent").glob("*/predictions.parquet")
    pa, pb = predictions(out), predictions(own.parent)
    assert set(pa["seed"]) == {0, 1, 2, 3} and set(pb["seed"]) == {3, 4}
    pd.testing.assert_frame_equal(pa[pa["seed"] == 3].reset_index(drop=True),
                                  pb[pb["seed"] == 3].reset_index(drop=True))
    assert json.loads((own.parent / "run.json").read_text())["seeds"] == [3, 4]
    assert json.loads((out / "run.json").read_text())["seeds"] == [0, 1, 2, 3]


@pytest.mark.slow
@pytest.mark.parametrize("module, argv, message", [
    ("benchmarks.render", ["--table", "x", "--out", "results/mini"], "argument --table: no table 'x'"),
    ("benchmarks.check", ["--golden", "{tmp}/none.json"], "error: --golden: no goldens at {tmp}/none.json"),
    ("benchmarks.score", ["{tmp}/none.csv"], "error: {tmp}/none.csv: no such file"),
])
def test_render_check_and_score_as_subprocesses(tmp_path, module, argv, message):
    r = run_cli(module, *[a.format(tmp=tmp_path) for a in argv])
    assert r.returncode == 2 and message.format(tmp=tmp_path) in one_error_line(r.stderr), r.stderr
