"""Seeds derived from the unit of work, and seeded generators that leave global RNG state alone.

Every random draw of a training run is a function of ``(unit_key, fold_index)`` only:

* ``fold_seed = derive_seed(unit_key, fold_index)`` (sha256, never Python's salted ``hash()``);
* named sub-streams ``derive_seed(fold_seed, "init" | "shuffle" | "dropout" | "val_split")``, each
  feeding its own ``torch.Generator`` (or the forked global generator for model construction and dropout).

A fold-batched trainer that reproduces the sequential one only needs these functions.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import torch

SEED_BITS = 63  # seeds are non-negative and fit int64, numpy and torch.Generator.manual_seed


def derive_seed(*parts: Any) -> int:
    """A seed in ``[0, 2**63)`` from JSON-serialisable parts (str, int, float, bool, None, lists, dicts).

    Stable across processes, platforms and Python versions: the parts are written as canonical JSON
    (sorted keys, tuples as lists) and hashed with sha256.
    """
    if not parts:
        raise ValueError("derive_seed needs at least one part (e.g. the unit key and the fold index)")
    try:
        text = json.dumps(list(parts), sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"derive_seed parts must be JSON-serialisable, got {parts!r}: {exc}") from exc
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> (64 - SEED_BITS)


def seeded_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` on ``device`` seeded with ``seed``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    return gen


def _cuda_devices() -> list[int]:
    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []


@contextlib.contextmanager
def forked_global_rng(seed: int) -> Iterator[None]:
    """Seed torch's global generators (CPU and every CUDA device) inside a block, then restore them.

    Code that draws from the global generator (``nn.Module`` initialisers, dropout) becomes a function of
    ``seed`` alone, and the caller's RNG state is the same after the block as before it.
    """
    with torch.random.fork_rng(devices=_cuda_devices()):
        torch.manual_seed(int(seed))
        yield
