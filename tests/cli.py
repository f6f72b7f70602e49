"""Running the command-line tools as a user does, in a subprocess (for the end-to-end tests).

The subprocesses inherit the session's private cache (``tests/conftest.py``) and find this tree first on
``PYTHONPATH``; MLflow logs to ``<out>/mlflow.db`` (``MLFLOW_TRACKING_URI`` is unset for them)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
# the smallest real cell: MFVAN's global branch at the smoke preset on the synthetic SMIC-like set (2 folds)
CELL = ("--table", "3", "--preset", "smoke", "--methods", "mfvan[global]", "--datasets", "synthetic-smic",
        "--jobs", "1")


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    e["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    e["PYTHONUNBUFFERED"] = "1"
    return e


def run_cli(module: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, env=env(), timeout=timeout)


def _interruptible() -> None:
    """In the child, before Python starts: SIGINT back to its default, as at a terminal. A shell that runs
    pytest in the background without job control ignores SIGINT, and the ignore is inherited; Python then
    never raises KeyboardInterrupt and a Ctrl-C test would test nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_cli(module: str, *args: str, log: Path) -> subprocess.Popen:
    """Start a command in a session of its own (a signal to its group reaches it as Ctrl-C would), output
    (stdout and stderr) to ``log``."""
    fh = open(log, "w")
    return subprocess.Popen([sys.executable, "-m", module, *map(str, args)], stdout=fh, stderr=subprocess.STDOUT,
                            cwd=REPO, env=env(), start_new_session=True, text=True, preexec_fn=_interruptible)


def markers(out: Path) -> dict[str, tuple[int, bytes]]:
    """Done markers of the unit store under ``out``: name -> (mtime in ns, content)."""
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted((out / "units").glob("*/*.json"))}


def temp_files(out: Path) -> list[Path]:
    return sorted(out.rglob("*.tmp-*"))


def wait_for_markers(proc: subprocess.Popen, out: Path, more_than: int, timeout: float = 300) -> int:
    """Poll until the store holds more than ``more_than`` done markers (or the process ends); their number."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        n = len(list((out / "units").glob("*/*.json")))
        if n > more_than or proc.poll() is not None:
            return n
        time.sleep(0.02)
    raise TimeoutError(f"no unit finished in {timeout} s")


def interrupt(proc: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 120) -> int:
    """Send ``sig`` to the process group (as a terminal's Ctrl-C does) and wait for the exit status."""
    os.killpg(proc.pid, sig)
    return proc.wait(timeout=timeout)


def predictions(out: Path) -> pd.DataFrame:
    df = pd.read_parquet(out / "predictions.parquet")
    return df.sort_values(["seed", "fold", "group", "clip"]).reset_index(drop=True)


def one_error_line(text: str) -> str:
    """The ``error:`` line of a failed command; asserts there is exactly one and no traceback."""
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if "error:" in line]
    assert len(lines) == 1, text
    return lines[0]
