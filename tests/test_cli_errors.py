"""Every bad value given to the command-line tools ends in one ``error:`` line naming the argument, file or
line, and exit status 2; never a traceback. (The commands' ``main`` is called here in-process: the same code
path as ``python -m``; ``tests/test_run_cli.py`` runs some of them as subprocesses too.)"""

from __future__ import annotations

import json
import os

import pytest
import torch

from benchmarks import check, render, run, score
from tests.cli import one_error_line

CELL = ["--preset", "smoke", "--datasets", "synthetic-smic", "--jobs", "1", "--no-mlflow"]
DEEP = ["--table", "1", "--methods", "off_apexnet", *CELL]  # a deep cell, for --init-weights


def error_of(main, argv, capsys) -> str:
    """Run ``main(argv)``; assert exit status 2 and return its one error line."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, err
    return one_error_line(err)


@pytest.fixture
def files(tmp_path):
    """Bad inputs on disk: a plain file, weights files missing, truncated and of the wrong shape."""
    from benchmarks.registry import get_method

    spec = get_method("off_apexnet")
    good = tmp_path / "off_apexnet.pt"
    torch.save(spec.build(spec.config()).state_dict(), good)
    (tmp_path / "truncated.pt").write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    torch.save({k: torch.zeros(2, *v.shape[1:]) if v.ndim else v
                for k, v in spec.build(spec.config()).state_dict().items()}, tmp_path / "shape.pt")
    (tmp_path / "plain.txt").write_text("not a folder")
    return tmp_path


RUN_CASES = [
    (["--table", "9", *CELL], "argument --table: no table '9'; known: 1, 2, 3, leaderboard, seeds or all"),
    (["--table", "x", *CELL], "argument --table: no table 'x'; known: 1, 2, 3, leaderboard, seeds or all"),
    (["--table", "3", "--seeds", "a", *CELL], "argument --seeds: 'a' in 'a' is not a non-negative integer"),
    (["--table", "3", "--seeds", "", *CELL], "argument --seeds: no seed given (expected e.g. 0 or 0,1,2)"),
    (["--table", "3", "--seeds", "0,,", *CELL], "argument --seeds: '' in '0,,' is not a non-negative integer"),
    (["--table", "3", "--seeds", "-1", *CELL], "argument --seeds: '-1' in '-1' is not a non-negative integer"),
    (["--table", "3", "--seeds", "1,1", *CELL], "argument --seeds: seed 1 is given twice in '1,1'"),
    (["--table", "3", "--epochs", "-3", *CELL], "argument --epochs: -3 is not a positive integer"),
    (["--table", "3", "--epochs", "0", *CELL], "argument --epochs: 0 is not a positive integer"),
    (["--table", "3", "--epochs", "2.5", *CELL], "argument --epochs: '2.5' is not a positive integer"),
    (["--table", "3", *CELL, "--jobs", "0"], "argument --jobs: 0 is not a positive integer"),
    (["--table", "3", *CELL, "--jobs", "-2"], "argument --jobs: -2 is not a positive integer"),
    (["--table", "3", *CELL, "--device", "gpu"], "argument --device: 'gpu' is not one of auto, cpu, cuda, cuda:N"),
    (["--table", "3", *CELL, "--address", "host:8786"], "argument --address: only with --executor dask"),
    (["--table", "3", *CELL, "--preset", "huge"], "argument --preset: invalid choice: 'huge'"),
    (["--table", "3", *CELL, "--add-methods", "nosuch"], "error: --add-methods: unknown method 'nosuch'"),
    (["--table", "3", *CELL, "--methods", "nosuch"], "error: no cell of table(s) [3] matches"),
    ([*DEEP, "--init-weights", "off_apexnet"], "error: --init-weights 'off_apexnet': expected METHOD=PATH"),
    ([*DEEP, "--init-weights", "{m}={d}/missing.pt"], "error: --init-weights {m}={d}/missing.pt: no such file"),
    ([*DEEP, "--init-weights", "{m}={d}/truncated.pt"],
     "error: --init-weights {m}={d}/truncated.pt: init weights: cannot read {d}/truncated.pt as a torch state"),
    ([*DEEP, "--init-weights", "{m}={d}/shape.pt"],
     "error: --init-weights {m}={d}/shape.pt: does not fit off_apexnet as configured here (Error(s) in loading "
     "state_dict for "),
    ([*DEEP, "--init-weights", "{m}={d}/plain.txt"], "error: --init-weights {m}={d}/plain.txt: init weights: "
                                                          "cannot read"),
    ([*DEEP, "--init-weights", "nosuch={d}/shape.pt"], "error: --init-weights nosuch={d}/shape.pt: unknown method"),
    ([*DEEP, "--init-weights", "lbptop={d}/shape.pt"], "lbptop is not a deep method (no model weights)"),
    (["--table", "3", *CELL, "--data-root", "{d}/plain.txt"],
     "error: --data-root {d}/plain.txt: is a file, not a folder"),
    (["--table", "2", "--data", "megc2019-public", "--data-root", "{d}/none", "--no-mlflow"],
     "error: --data-root {d}/none: no such folder"),
    (["--table", "3", *CELL, "--out", "{d}/plain.txt"], "error: --out {d}/plain.txt: is a file, not a folder"),
    (["--table", "3", *CELL, "--out", "{d}/plain.txt/sub"], "error: --out {d}/plain.txt/sub: not writable (Not a "
                                                           "directory)"),
]


@pytest.mark.parametrize("argv, message", RUN_CASES, ids=[" ".join(a[:6]) + "…" for a, _ in RUN_CASES])
def test_run_bad_values(files, capsys, argv, message):
    line = error_of(run.main, [a.format(d=files, m="off_apexnet") for a in argv], capsys)
    assert message.format(d=files, m="off_apexnet") in line, line


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write in a read-only folder")
def test_run_out_not_writable(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    line = error_of(run.main, ["--table", "3", *CELL, "--out", ro / "out"], capsys)
    assert f"--out {ro / 'out'}: not writable (Permission denied)" in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present here")
def test_run_cuda_without_a_gpu(capsys):
    line = error_of(run.main, ["--table", "3", *CELL, "--device", "cuda"], capsys)
    assert "argument --device: cuda requested but no CUDA device is available" in line


@pytest.fixture
def run_folder(tmp_path):
    """A run folder as benchmarks.run leaves it (two clips, table 3's MFVAN row), for benchmarks.render."""
    import pandas as pd

    out = tmp_path / "run"
    out.mkdir()
    rows = [{"method": "mfvan", "variant": "global", "dataset": "synthetic-smic", "source": "synthetic-smic",
             "subject": f"s{s}", "group": f"synthetic-smic/s{s}", "clip": f"c{j}", "fold": s, "seed": 0,
             "y_true": j, "y_pred": j, "epoch_policy": "last", "chosen_epoch": 1, "policy_label": "last",
             "protocol_note": "", "code_version": "abc"} for s in range(2) for j in range(3)]
    pd.DataFrame(rows).to_parquet(out / "predictions.parquet")
    (out / "run.json").write_text(json.dumps({"data": "synthetic", "preset": "smoke", "epoch_policy": "last",
                                              "seeds": [0]}))
    return out


def test_render_good_folder_then_bad_values(run_folder, tmp_path, capsys):
    assert render.main(["--table", "3", "--out", str(run_folder), "--n-boot", "10"]) == 0
    table = (run_folder / "table3.md").read_text()
    assert "| Global " in table and "100.00 [100.00, 100.00]" in table  # every clip right
    capsys.readouterr()
    d = str(run_folder)
    cases = [
        (["--table", "9", "--out", d], "argument --table: no table '9'"),
        (["--table", "x", "--out", d], "argument --table: no table 'x'"),
        (["--table", "3", "--out", d, "--n-boot", "-1"], "argument --n-boot: -1 is not an integer >= 0"),
        (["--table", "3", "--out", str(tmp_path / "none")], f"--out {tmp_path / 'none'}: no such folder"),
        (["--table", "3", "--out", str(tmp_path)], f"--out {tmp_path} has no predictions.parquet"),
        (["--table", "3", "--out", d, "--to", str(run_folder / "run.json")],
         f"--to {run_folder / 'run.json'}: is a file, not a folder"),
    ]
    for argv, message in cases:
        assert message in error_of(render.main, argv, capsys)
    (run_folder / "run.json").write_text("{broken")
    assert f"{run_folder / 'run.json'}: not a run.json written by benchmarks.run (JSONDecodeError" in \
        error_of(render.main, ["--table", "3", "--out", d], capsys)
    (run_folder / "run.json").write_text("{}")
    assert "not a run.json written by benchmarks.run (KeyError: 'data')" in \
        error_of(render.main, ["--table", "3", "--out", d], capsys)
    (run_folder / "predictions.parquet").write_bytes(b"PAR1 truncated")
    assert f"{run_folder / 'predictions.parquet'}: cannot read the stored predictions" in \
        error_of(render.main, ["--table", "3", "--out", d], capsys)


def test_check_and_score_bad_values(tmp_path, capsys):
    assert "argument --jobs: 0 is not a positive integer" in error_of(check.main, ["--jobs", "0"], capsys)
    (tmp_path / "f").write_text("x")
    assert f"--out {tmp_path / 'f'}: is a file, not a folder" in error_of(check.main, ["--out", tmp_path / "f"], capsys)
    assert f"--golden {tmp_path / 'f'}: is not valid JSON" in error_of(check.main, ["--golden", tmp_path / "f"], capsys)
    assert f"{tmp_path / 'none.csv'}: no such file" in error_of(score.main, [str(tmp_path / "none.csv")], capsys)
    assert "argument --format: invalid choice: 'xml'" in error_of(
        score.main, [str(tmp_path / "none.csv"), "--format", "xml"], capsys)
