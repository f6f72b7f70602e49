"""Registrations of the methods: one module each; importing this package imports every module in it, so
a new method is one new file here (it calls ``benchmarks.registry.register_method`` at import)."""

import importlib
import pkgutil

for _m in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_m}")
