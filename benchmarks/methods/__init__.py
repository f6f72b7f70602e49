"""Registrations of the built-in methods: importing this package registers them (one module each)."""

from benchmarks.methods import biwoof, dssn, lbptop, mfvan, off_apexnet, ststnet  # noqa: F401
