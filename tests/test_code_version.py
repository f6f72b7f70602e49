"""Which modules decide a method's cached units (``benchmarks.units.code_modules``)."""

from __future__ import annotations

import pytest

import benchmarks.methods  # noqa: F401  (registers every method)
from benchmarks.units import _HARNESS_MODULES, code_modules, code_version


@pytest.mark.parametrize("method, own, library", [
    ("ststnet", "benchmarks.methods.ststnet", {"baselines.ststnet"}),
    ("off_apexnet", "benchmarks.methods.off_apexnet", {"baselines.off_apexnet"}),
    ("biwoof", "benchmarks.methods.biwoof", {"baselines.biwoof", "baselines.svm"}),
    ("lbptop", "benchmarks.methods.lbptop", {"baselines.lbptop", "baselines.svm"}),
    ("mfvan", "benchmarks.methods.mfvan", {"mfvan_core.model", "mfvan_core.config", "mfvan_core.losses",
                                           "mfvan_core.attention", "mfvan_core.identity"}),
])
def test_a_method_depends_on_its_own_modules_and_the_harness_only(method, own, library):
    mods = code_modules(method)
    assert own in mods and library <= mods and set(_HARNESS_MODULES) <= mods
    others = {"benchmarks.render", "benchmarks.run", "benchmarks.runner", "benchmarks.figures",
              "benchmarks.registry", "benchmarks.tablespec"}
    assert not mods & others
    other_models = {f"baselines.{m}" for m in ("ststnet", "off_apexnet", "dssn", "biwoof", "lbptop")} - library
    assert not mods & other_models, f"{method} would be invalidated by another model's edits"
    if method != "mfvan":
        assert not any(m.startswith("mfvan_core") for m in mods)


def test_code_version_is_a_stable_short_hash():
    assert code_version("ststnet") == code_version("ststnet")
    assert len(code_version("ststnet")) == 12 and code_version("ststnet") != code_version("off_apexnet")
