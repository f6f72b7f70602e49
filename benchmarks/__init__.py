"""MER benchmark harness: data, protocol, metrics, registry and runner."""

__version__ = "0.1.0"
