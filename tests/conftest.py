"""Shared fixtures: ../shared/data when present (skipped with a reason otherwise), a private cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.paths import shared_data_dir

SHARED_REASON = "../shared/data is absent (a fresh clone has no real data; see README, 'Data')"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    d = shared_data_dir()
    if d is None:
        pytest.skip(SHARED_REASON)
    return d


@pytest.fixture(scope="session")
def annotations(shared_data: Path) -> Path:
    return shared_data / "annotations"
