"""The method registry: lookups, patterns, errors, and what every registered baseline must declare."""

from __future__ import annotations

import dataclasses

import pytest

from baselines.ststnet import STSTNetConfig
from benchmarks.data.views import VIEWS, ViewSpec
from benchmarks.registry import (
    FAMILIES,
    MethodSpec,
    get_method,
    hyperparameters,
    list_methods,
    register_method,
    unregister_method,
)

BASELINES = ("biwoof", "dssn", "htnet", "lbptop", "off_apexnet", "ststnet")


def _toy_spec(name: str = "toy_method", **kw) -> MethodSpec:
    base = dict(name=name, family="handcrafted", views=(ViewSpec.of("flow_uvs", size=28),), defaults={"c": 1.0},
                build=lambda cfg: (lambda v: v["flow_uvs"].ravel()), classifier=lambda cfg: None,
                citation="toy", paper="toy", sources={"c": "test"})
    return MethodSpec(**{**base, **kw})


def test_every_baseline_is_registered():
    assert set(BASELINES) <= set(list_methods())
    assert list_methods() == sorted(list_methods())


def test_patterns_and_family_filter():
    assert list_methods("*net") == ["htnet", "off_apexnet", "ststnet"]
    assert list_methods("lbp*") == ["lbptop"]
    assert list_methods("nothing*") == []
    assert set(list_methods(family="handcrafted")) >= {"biwoof", "lbptop"}
    assert set(list_methods(family="deep")) >= {"dssn", "off_apexnet", "ststnet"}
    assert not set(list_methods(family="deep")) & set(list_methods(family="handcrafted"))


def test_unknown_name_lists_known_names():
    with pytest.raises(KeyError) as e:
        get_method("stst")
    assert "unknown method 'stst'" in str(e.value)
    for name in BASELINES:
        assert name in str(e.value)


def test_duplicate_name_is_refused():
    register_method(_toy_spec())
    try:
        with pytest.raises(ValueError, match="registered twice"):
            register_method(_toy_spec())
        assert get_method("toy_method").paper == "toy"
    finally:
        unregister_method("toy_method")
    assert "toy_method" not in list_methods()


def test_bad_specs_are_refused_at_construction():
    with pytest.raises(ValueError, match="family"):
        _toy_spec(family="shallow")
    with pytest.raises(ValueError, match="views"):
        _toy_spec(views=())
    with pytest.raises(TypeError, match="unknown parameter"):
        _toy_spec(views=(ViewSpec.of("flow_uvs", sise=28),))
    with pytest.raises(ValueError, match="classifier"):
        _toy_spec(classifier=None)
    with pytest.raises(ValueError, match="inputs"):
        _toy_spec(family="deep")
    with pytest.raises(ValueError, match=r"variant 'ablate' overrides unknown hyperparameter\(s\) \['gamma'\]"):
        _toy_spec(variants={"ablate": {"gamma": 2}})


@pytest.mark.parametrize("name", BASELINES)
def test_baseline_declares_views_citation_and_sources(name):
    spec = get_method(name)
    assert spec.family in FAMILIES
    assert spec.views and all(v.name in VIEWS for v in spec.views)
    assert len(spec.citation) > 40 and spec.paper
    hp = hyperparameters(spec.defaults)
    if spec.family == "deep":
        for key in ("lr", "batch_size", "epochs"):
            assert key in hp and key in spec.sources, f"{name}: {key} value or source missing"
        assert spec.inputs is not None
    else:
        assert "svm_c" in hp and "svm_c" in spec.sources
        assert spec.classifier is not None
    # every source names where the value comes from (a repository, the paper, the issue or the harness)
    for key, src in spec.sources.items():
        assert len(src) > 10, f"{name}: source of {key} is too short: {src!r}"


def test_published_training_settings():
    """Reference values: STSTNet port (Adam 5e-5, batch 256, 800 epochs); OFF-ApexNet lr 1e-4; DSSN 227x227."""
    s = get_method("ststnet").defaults
    assert (s.lr, s.batch_size, s.epochs, s.optimizer) == (5e-5, 256, 800, "adam")
    assert get_method("off_apexnet").defaults.lr == 1e-4
    assert get_method("dssn").defaults.input_size == 227
    assert get_method("lbptop").defaults.n_frames is None  # MEGC 2019: no TIM
    assert (get_method("biwoof").defaults.grid, get_method("biwoof").defaults.n_bins) == (5, 8)


def test_config_variants_and_overrides():
    spec = MethodSpec(name="ststnet_variants", family="deep", views=get_method("ststnet").views,
                      defaults=STSTNetConfig(), build=get_method("ststnet").build, inputs=get_method("ststnet").inputs,
                      citation="x", paper="x", sources={}, variants={"short": {"epochs": 10, "lr": 1e-3}})
    assert spec.config() == STSTNetConfig()
    assert spec.config("short") == dataclasses.replace(STSTNetConfig(), epochs=10, lr=1e-3)
    assert spec.config("short", {"epochs": 3}).epochs == 3       # explicit overrides win over the variant
    with pytest.raises(KeyError, match="unknown variant 'long'; known: short"):
        spec.config("long")
    with pytest.raises(KeyError, match="unknown hyperparameter"):
        spec.config(overrides={"learning_rate": 1.0})
    assert _toy_spec().config(overrides={"c": 2.0}) == {"c": 2.0}


def test_view_depends_on_config_and_clip():
    lbp = get_method("lbptop")
    tim = dataclasses.replace(lbp.defaults, n_frames=10)
    (v,) = lbp.input_views(tim)
    assert v.kwargs["n_frames"] == 10 and v.kwargs["method"] == "tim"
    dssn = get_method("dssn")
    cfg = dataclasses.replace(dssn.defaults, input_size=112)
    assert {v.kwargs["size"] for v in dssn.input_views(cfg)} == {112}
