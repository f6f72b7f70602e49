"""Registry of datasets: a name -> a loader that returns a :class:`ClipDataset`.

Loaders take ``root`` (a folder, or None for the default location) and keyword options.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.data.clips import ClipDataset


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str
    kind: str                      # "raw" | "public" | "synthetic"
    loader: Callable[..., ClipDataset]
    classes: tuple[str, ...]
    citation: str = ""
    root_hint: str = ""            # what the root folder must hold


_DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    if spec.name in _DATASETS:
        raise ValueError(f"dataset {spec.name!r} registered twice")
    _DATASETS[spec.name] = spec
    return spec


def dataset_spec(name: str) -> DatasetSpec:
    _ensure_loaded()
    try:
        return _DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(_DATASETS))}") from None


def list_datasets(pattern: str = "*", kind: str | None = None) -> list[str]:
    _ensure_loaded()
    return sorted(n for n, s in _DATASETS.items()
                  if fnmatch.fnmatch(n, pattern) and (kind is None or s.kind == kind))


def load_dataset(name: str, root: str | Path | None = None, **options) -> ClipDataset:
    """Load dataset ``name``; ``root`` is the data root (licensed releases) or the public folder."""
    return dataset_spec(name).loader(Path(root).expanduser() if root is not None else None, **options)


def _ensure_loaded() -> None:
    # Importing the loader modules registers their datasets.
    import benchmarks.data.loaders  # noqa: F401
