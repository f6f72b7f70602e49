"""The data layer: clip tables, protocols, loaders of the releases, synthetic default, cached views.

Start with :func:`benchmarks.data.registry.load_dataset` or ``python -m benchmarks.data describe NAME``.
"""
