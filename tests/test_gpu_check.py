"""``python -m benchmarks.perf.gpu_check`` on the CPU: reduced run and its reports, data staging, bad input,
and the extrapolation arithmetic on a hand example."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmarks import trainer
from benchmarks.methods import mfvan
from benchmarks.perf import gpu_check as gc

pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------------------------------- arithmetic
def test_batches_per_epoch_merge_a_trailing_single_sample():
    assert [gc.n_batches(n, 32) for n in (0, 1, 31, 32, 33, 34, 64, 65)] == [0, 1, 1, 1, 1, 2, 2, 2]
    assert gc.stage_batches(160, 32, use_ri=True) == {"main": 5, "pre": 10, "ri": 5}
    assert gc.stage_batches(160, 32, use_ri=False) == {"main": 5, "pre": 0, "ri": 0}


def test_extrapolation_on_a_hand_example():
    """Two folds of 160 and 128 fitted clips, batch 32, measured on a fold of 160 (5 / 10 / 5 batches):
    fold 1 = 40 x 2 x 5/5 + 10 x 3 x 10/10 + 5 x 1 x 5/5 + 0.5 = 115.5 s;
    fold 2 = 40 x 2 x 4/5 + 10 x 3 x 8/10 + 5 x 1 x 4/5 + 0.5 = 92.5 s; the cell 208 s.
    Fold-batched with a main-loop speed-up of 4: 20 + 30 + 5 + 0.5 = 55.5 and 16 + 24 + 4 + 0.5 = 44.5."""
    measured = {"k": {"epoch_s": {"main": 2.0, "pre": 3.0, "ri": 1.0}, "fixed_s": 0.5,
                      "batches": {"main": 5, "pre": 10, "ri": 5}}}
    config = {"epochs": 40, "pretrain_epochs": 10, "ri_epochs": 5, "use_ri": True, "batch_size": 32}
    cell = {"method": "mfvan", "variant": "full", "dataset": "d", "key": "k", "config": config,
            "n_fit": [160, 128], "computation": "A"}
    twin = {**cell, "variant": "global+s123+ri"}  # same computation: counted once
    other = {**cell, "method": "dssn", "variant": "", "key": "missing", "computation": "B"}
    est = gc.extrapolate([cell, twin, other], measured, {"mfvan": 4.0})
    assert est["sequential_s"] == pytest.approx(208.0)
    assert est["fold_batched_s"] == pytest.approx(100.0)
    assert [c["counted"] for c in est["cells"]] == [True, False]
    assert est["missing"] == ["dssn[] d"] and not est["complete"]
    no_ri = {**cell, "config": {**config, "use_ri": False}, "computation": "C"}
    assert gc.extrapolate([no_ri], measured, {})["sequential_s"] == pytest.approx(40 * 2 + 0.5 + 40 * 2 * 4 / 5 + 0.5)
    assert gc.stage_epochs({"epochs": 800, "batch_size": 256}) == {"main": 800, "pre": 0, "ri": 0}


def test_measurement_key_ignores_epochs_and_classes_only():
    a = {"epochs": 40, "pretrain_epochs": 10, "num_classes": 3, "scales": [1, 2, 3], "use_ri": True}
    assert gc.measure_key("mfvan", a) == gc.measure_key("mfvan", {**a, "epochs": 1, "num_classes": 5})
    assert gc.measure_key("mfvan", a) != gc.measure_key("mfvan", {**a, "use_ri": False})


def test_stage_timers_time_each_call_and_restore_the_functions():
    saved = (trainer._fit_epoch, mfvan.pretrain_teacher, mfvan.warm_up_ri)
    with gc.stage_timers(torch.device("cpu")) as calls:
        assert trainer._fit_epoch is not saved[0]
        x, y = torch.randn(12, 4), torch.arange(12) % 2
        trainer.train_fold(lambda: torch.nn.Linear(4, 2), x, y, x, None,
                           trainer.TrainConfig(epochs=3, batch_size=4, device="cpu"), seed=0, n_classes=2)
    assert (trainer._fit_epoch, mfvan.pretrain_teacher, mfvan.warm_up_ri) == saved
    assert len(calls["main"]) == 3 and all(t > 0 for t in calls["main"]) and calls["pre"] == calls["ri"] == []


# ---------------------------------------------------------------------------------------------- staging
def fake_release(root: Path) -> Path:
    src = root / "megc2019"
    for d in gc.MEGC_FOLDERS:
        (src / d).mkdir(parents=True)
        (src / d / "a .png").write_bytes(b"x" * 10)
    for f in gc.MEGC_FILES:
        (src / f).write_text("h\n")
    (src / "notes.txt").write_text("not read by the loader")
    return src


def test_stage_data_copies_the_loader_files(tmp_path):
    src = fake_release(tmp_path / "shared")
    tree = tmp_path / "tree"
    tree.mkdir()
    dest, size = gc.stage_data(src, tree)
    assert dest == tree / ".gpu_data" / "megc2019"
    got = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert got == sorted([*gc.MEGC_FILES, "apex_224/a .png", "flow_uvs_28/a .png"])
    assert size == 2 * 10 + 2 * 2 and not list((tree / ".gpu_data").glob(".staging-*"))
    gc.stage_data(src, tree)  # again: replaced, not nested
    assert sorted(p.name for p in (tree / ".gpu_data").iterdir()) == ["megc2019"]


def test_staged_folder_is_ignored_by_git():
    gitignore = (Path(gc.__file__).resolve().parents[2] / ".gitignore").read_text().splitlines()
    assert f"/{gc.STAGE_DIR}/" in gitignore


def test_staged_copy_of_the_published_files_loads(shared_data, tmp_path):
    from benchmarks.data.registry import load_dataset

    dest, size = gc.stage_data(shared_data / "megc2019", tmp_path)
    assert size < gc.STAGE_LIMIT_BYTES
    ds = load_dataset("megc2019-public", dest)
    assert len(ds.clips) == 442 and len(set(ds.groups())) == 68


@pytest.mark.parametrize("argv,names", [
    (["--stage-data", "--from", "{tmp}/absent"], "--from"),
    (["--out", "{tmp}/o", "--sections", "env,bogus"], "--sections"),
    (["--out", "{tmp}/o", "--fold-methods", "lbptop"], "--fold-methods"),
    (["--out", "{tmp}/o", "--throughput-models", "mfvan[nope]"], "--throughput-models"),
    (["--out", "{tmp}/o", "--tables", "9"], "--tables"),
    (["--out", "{tmp}/o", "--data", "raw"], "--data"),
    (["--out", "{tmp}/o", "--ststnet-epochs", "0"], "--ststnet-epochs"),
    (["--sections", "env"], "--out"),
])
def test_bad_input_is_one_error_line_and_exit_2(argv, names, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    try:
        rc = gc.main(argv)
    except SystemExit as e:  # argparse's own checks (type=)
        rc = e.code
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and names in err[0]
    assert not (tmp_path / "o").exists()


def test_device_must_be_auto_cpu_or_an_existing_cuda(tmp_path, capsys):
    bad = ["tpu"] + ([] if torch.cuda.is_available() else ["cuda"])
    for device in bad:
        assert gc.main(["--out", str(tmp_path / "o"), "--device", device]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: --device")


def test_run_finds_the_staged_copy_when_shared_data_is_absent(tmp_path, monkeypatch):
    """The GPU machine has the tree only: the loaders are pointed at <tree>/.gpu_data."""
    from benchmarks import paths

    monkeypatch.setenv(paths.SHARED_DATA_ENV, "unset-by-the-test")
    monkeypatch.delenv(paths.SHARED_DATA_ENV)
    monkeypatch.setattr(paths, "shared_data_dir", lambda: None)
    assert gc.use_staged_data(tmp_path).startswith("none")
    gc.stage_data(fake_release(tmp_path / "shared"), tmp_path / "tree")
    line = gc.use_staged_data(tmp_path / "tree")
    assert "staged copy" in line and gc.os.environ[paths.SHARED_DATA_ENV] == str(tmp_path / "tree" / ".gpu_data")


def test_stage_data_refuses_a_source_without_the_published_files(tmp_path, capsys):
    (tmp_path / "megc2019").mkdir()
    assert gc.main(["--stage-data", "--from", str(tmp_path / "megc2019")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "lacks combined_3class_gt.csv" in err[0]


def test_stage_data_refuses_more_than_travels_with_the_tree(tmp_path, monkeypatch, capsys):
    src = fake_release(tmp_path / "shared")
    monkeypatch.setattr(gc, "STAGE_LIMIT_BYTES", 10)
    assert gc.main(["--stage-data", "--from", str(src)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "MiB" in err[0] and not (tmp_path / "shared" / ".gpu_data").exists()


def test_out_that_is_a_file_is_one_error_line(tmp_path, capsys):
    (tmp_path / "f").write_text("")
    assert gc.main(["--out", str(tmp_path / "f" / "o"), "--sections", "env"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --out")


def test_junit_counts_read_every_outcome(tmp_path):
    xml = tmp_path / "r.xml"
    xml.write_text('<testsuites><testsuite><testcase name="a" time="0.5"/>'
                   '<testcase name="b"><skipped message="no CUDA"/></testcase>'
                   '<testcase name="c"><failure message="boom"/></testcase>'
                   '<testcase name="d"><error message="bad fixture"/></testcase></testsuite></testsuites>')
    got = gc.junit_counts(xml)
    assert (got["passed"], got["skipped"], got["failed"], got["errors"]) == (1, 1, 1, 1)
    assert [(c["test"], c["outcome"], c["reason"]) for c in got["cases"]] == [
        ("a", "passed", ""), ("b", "skipped", "no CUDA"), ("c", "failed", "boom"), ("d", "error", "bad fixture")]


# --------------------------------------------------------------------------------------------- CPU run
def test_reduced_cpu_run_writes_json_and_markdown(tmp_path, monkeypatch):
    """Every section in a reduced mode; on a CPU the CUDA tests skip with their reason and targets are not
    judged. With ../shared/data the STSTNet fold comparison and Table 2's megc2019-public estimate run;
    without it they are skipped with the reason."""
    from benchmarks import paths
    from benchmarks.data import views

    monkeypatch.setenv(paths.CACHE_ENV, str(tmp_path / "cache"))
    views.set_cache_dir(None)
    out = tmp_path / "out"
    model = "ststnet" if paths.shared_data_dir() is not None else "mfvan[global]"  # no synthetic set to generate
    rc = gc.main(["--out", str(out), "--quick", "--fold-methods", "ststnet", "--ststnet-folds", "2",
                  "--ststnet-epochs", "1", "--throughput-models", model, "--throughput-steps", "1",
                  "--tables", "2", "--data", "megc2019-public", "--extrap-epochs", "2", "--budget", "300"])
    views.set_cache_dir(None)
    assert rc == 0
    report = json.loads((out / "gpu_check.json").read_text())
    assert set(report["sections"]) == set(gc.SECTIONS)
    assert {"command", "mode", "wall_s", "budget_s", "targets", "notes", "sizes", "section_wall_s"} <= set(report)
    assert report["mode"].startswith("quick")
    sec = report["sections"]
    assert sec["env"]["torch"] == torch.__version__
    tests = sec["tests"]
    assert tests["status"] == "ran" and tests["failed"] == tests["errors"] == 0 and len(tests["cases"]) >= 4
    cuda = torch.cuda.is_available()
    if not cuda:
        assert tests["skipped"] == len(tests["cases"]) and all("no CUDA" in c["reason"] for c in tests["cases"])
        assert report["targets"]["status"] == "not judged" and "GPU numbers were not measured" in report["notes"][0]
        assert sec["throughput"]["peak"]["flops"] == {} and "CPU" in sec["throughput"]["peak"]["reason"]
    assert [m["method"] + (f"[{m['variant']}]" if m["variant"] else "") for m in sec["throughput"]["models"]] \
        == [model]
    for m in sec["throughput"]["models"]:
        assert m["samples_per_s"] > 0 and m["forward_flops_per_sample"] > 0
        assert m["train_flops_per_sample"] == pytest.approx(3 * m["forward_flops_per_sample"])
    case = sec["folds"]["cases"][0]
    table = sec["extrapolation"]["tables"][0]
    assert table["table"] == 2 and table["data"] == "megc2019-public"
    if paths.shared_data_dir() is None:
        assert case["status"] == "skipped" and "megc2019-public" in case["reason"]
        assert table["status"] == "skipped"
    else:
        assert case["status"] == "ran" and case["folds"] == 2 and case["agreement"]["clips"] > 0
        assert case["ratio"] == pytest.approx(case["sequential_s"] / case["fold_batched_s"], rel=1e-2)
        assert table["status"] == "ran" and table["complete"]
        cells = {c["method"]: c for c in table["cells"]}
        assert set(cells) == {"ststnet", "off_apexnet", "apex_cnn"} and cells["ststnet"]["epochs"]["main"] == 800
        assert cells["ststnet"]["folds"] == 68
        assert table["sequential_s"] == pytest.approx(sum(c["sequential_s"] for c in table["cells"]), abs=0.2)
        assert table["handcrafted_excluded"] == ["biwoof megc2019-public"]
        not_runnable = " ".join(sec["extrapolation"]["not_runnable"])
        assert "mfvan[full]" in not_runnable and "lbptop" in not_runnable  # no onset frames, no sequences
    md = (out / "gpu_check.md").read_text()
    for heading in ("## Targets", "## CUDA tests", "## Sequential vs fold-batched training",
                    "## Throughput against the arithmetic limit", "## Extrapolated wall time of each table"):
        assert heading in md
    assert "Formula: " in md
