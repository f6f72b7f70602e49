"""Work items on a Dask cluster (``benchmarks.run --executor dask --address ADDR``).

Why Dask (``distributed``) rather than Ray: it is a pure-Python install from PyPI, a cluster is one
``dask scheduler`` and any number of ``dask worker ADDR`` processes (or a ``LocalCluster`` the tests start
and stop in-process), its futures API matches ``concurrent.futures`` (``submit``, ``as_completed``), and
it needs no object store or per-node daemon. Work items are small (one cell's folds; results are a few
hundred prediction rows), so Ray's shared-memory object store would buy nothing here.

Workers must run the same installation of this package (same code version: the units' keys hash the
source) and see the data under the same ``--data-root``; they send their predictions back, and the
driver writes the cache and MLflow, so workers need no shared file system.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any


def dask_results(fn: Callable[..., Any], items: Sequence[Sequence[Any]], data_root: Any, device: str,
                 address: str | None, jobs: int = 1, datasets: Mapping[str, Any] | None = None) -> Iterator[Any]:
    """``fn(item, data_root, device, 1, dataset)`` for every work item (a list of units) on the cluster at
    ``address`` (a local cluster of ``jobs`` single-threaded worker processes when None), yielded as they
    complete. Each planned dataset (``datasets``, by name) is sent to the cluster once."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as e:  # pragma: no cover - distributed is a declared dependency
        raise RuntimeError("--executor dask needs the 'distributed' package (pip install distributed)") from e
    cluster = None
    if address is None:
        cluster = LocalCluster(n_workers=max(1, jobs), threads_per_worker=1, processes=True,
                               dashboard_address=None)
    try:
        with Client(address or cluster) as client:
            sent = {name: client.scatter(ds, broadcast=True) for name, ds in (datasets or {}).items()}
            futures = [client.submit(fn, item, data_root, device, 1, sent.get(item[0].dataset), pure=False)
                       for item in items]
            for fut in as_completed(futures):
                yield fut.result()
                fut.release()
    finally:
        if cluster is not None:
            cluster.close()
