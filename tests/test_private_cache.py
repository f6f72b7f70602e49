"""The suite never writes into the user's cache: the session's private cache is in place before any dataset
is loaded, and the synthetic releases the tests load are generated there."""

from __future__ import annotations

from pathlib import Path

from benchmarks import paths
from benchmarks.data.registry import load_dataset
from benchmarks.data.views import views_cache_dir


def test_caches_are_the_sessions_own(private_cache):
    home = Path.home() / ".cache" / "mer-bench"
    assert paths.cache_dir() == private_cache != home
    assert views_cache_dir() == private_cache / "views"
    root = Path(load_dataset("synthetic-smic").clips["frames"].iloc[0])
    assert private_cache in root.parents
