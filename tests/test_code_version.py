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


LIBRARY = {  # a library package of the test's own: a model, the helper it imports, and a module it does not reach
    "__init__.py": "",
    "model.py": "from mertestlib import helper\n\n\ndef build(cfg):\n    return helper.features\n",
    "helper.py": "def features(views):\n    return views\n",
    "other.py": "def unrelated():\n    return 1\n",
}


@pytest.fixture
def test_library(tmp_path, monkeypatch):
    """Package ``mertestlib`` (written under ``tmp_path``, counted as a library package) and a method whose
    build function lives in it; the code-version caches are cleared around the test."""
    import sys

    from benchmarks import units
    from benchmarks.data.views import ViewSpec
    from benchmarks.registry import MethodSpec, register_method, unregister_method

    pkg = tmp_path / "mertestlib"
    pkg.mkdir()
    for name, text in LIBRARY.items():
        (pkg / name).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(units, "LIBRARY_PACKAGES", (*units.LIBRARY_PACKAGES, "mertestlib"))
    from mertestlib import model

    register_method(MethodSpec(name="codeversion_probe", family="handcrafted",
                               views=(ViewSpec.of("apex_frame", size=4),), defaults={"c": 1}, build=model.build,
                               classifier=lambda cfg: None, citation="test", paper="test",
                               sources={"c": "test"}))
    units._module_digest.cache_clear()
    code_version.cache_clear()
    yield pkg
    unregister_method("codeversion_probe")
    for m in [m for m in sys.modules if m.split(".")[0] == "mertestlib"]:
        del sys.modules[m]
    units._module_digest.cache_clear()
    code_version.cache_clear()


def _version_after_edit(pkg, name: str) -> str:
    from benchmarks import units

    path = pkg / name
    path.write_text(path.read_text() + "# edited\n")
    units._module_digest.cache_clear()
    code_version.cache_clear()
    return code_version("codeversion_probe")


def test_editing_a_reached_module_changes_the_version_and_an_unrelated_one_does_not(test_library):
    mods = code_modules("codeversion_probe")
    assert {"mertestlib.model", "mertestlib.helper"} <= mods and "mertestlib.other" not in mods
    v0 = code_version("codeversion_probe")
    assert len(v0) == 12 and v0 not in (code_version("ststnet"), code_version("off_apexnet"))
    ststnet = code_version("ststnet")
    assert _version_after_edit(test_library, "other.py") == v0           # not reached: units stay valid
    v1 = _version_after_edit(test_library, "helper.py")                  # reached through model's import
    assert v1 != v0
    v2 = _version_after_edit(test_library, "model.py")                   # the build function's own module
    assert v2 not in (v0, v1)
    assert code_version("ststnet") == ststnet                             # other methods are not affected
