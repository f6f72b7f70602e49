"""Shared fixtures: ../shared/data when present (skipped with a reason otherwise), a private cache."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import pytest

from benchmarks.paths import shared_data_dir

SHARED_REASON = "../shared/data is absent (a fresh clone has no real data; see README, 'Data')"


@pytest.fixture(scope="session", autouse=True)
def private_cache(request, tmp_path_factory) -> Path:
    """``$MER_CACHE_DIR`` for the whole session, set before any test loads a dataset: the synthetic releases,
    views and features the tests make go to pytest's own cache folder (``.pytest_cache``, reused across
    sessions; ``pytest --cache-clear`` empties it), never to the user's ``~/.cache``. Subprocesses that the
    tests start inherit it."""
    from benchmarks import paths
    from benchmarks.data import views

    cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    root = cache.mkdir("mer-bench") if cache is not None else tmp_path_factory.mktemp("mer-bench-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv(paths.CACHE_ENV, str(root))
    views.set_cache_dir(None)
    yield Path(root)
    mp.undo()
    views.set_cache_dir(None)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    d = shared_data_dir()
    if d is None:
        pytest.skip(SHARED_REASON)
    return d


@pytest.fixture(scope="session")
def annotations(shared_data: Path) -> Path:
    return shared_data / "annotations"


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op torch thread for a module (tiny models run fastest so, and do not oversubscribe a shared
    CPU); restored afterwards. Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@contextmanager
def synthetic_subset(tmp_path_factory, groups: Callable[[list[str]], list[str]], name: str = "synthetic-smic"):
    """The clips of ``groups(sorted subject groups)`` of a synthetic set (its release from the session's
    private cache, :func:`private_cache`), views cached in a folder of the module's own (restored on exit):
    for module-scoped dataset fixtures."""
    from benchmarks import paths
    from benchmarks.data import views
    from benchmarks.data.registry import load_dataset

    ds = load_dataset(name)
    keep = groups(sorted(ds.clips["group"].unique()))
    mp = pytest.MonkeyPatch()
    mp.setenv(paths.CACHE_ENV, str(tmp_path_factory.mktemp("cache")))
    views.set_cache_dir(None)
    try:
        yield ds.subset(ds.clips["group"].isin(keep).to_numpy())
    finally:
        mp.undo()
        views.set_cache_dir(None)


@pytest.fixture
def cache(tmp_path) -> Path:
    """A private view-cache root for each test (through ``benchmarks.data.views.set_cache_dir``)."""
    from benchmarks.data import views

    root = tmp_path / "cache"
    views.set_cache_dir(root)
    yield root
    views.set_cache_dir(None)
