"""The one registry of recognition methods (timm-style): a name -> a :class:`MethodSpec`.

A spec says what a method is (library class or feature function, its paper and citation), what it
consumes (views of a clip, :class:`benchmarks.data.views.ViewSpec`), its default hyperparameters
(the library's config dataclass) with the source of each value, and its named variants (overrides of
the defaults, e.g. ablations). :func:`benchmarks.evaluate.run_loso` runs any registered method.

Registering a method takes one module and one call::

    from benchmarks.registry import MethodSpec, register_method

    register_method(MethodSpec(
        name="mynet", family="deep", views=(ViewSpec.of("flow_uvs", size=28),),
        defaults=MyNetConfig(), build=MyNet.from_config,
        inputs=lambda views, cfg: views["flow_uvs"],
        citation="...", paper="...", sources={"lr": "paper, Sec. 4"}))

Deep methods (``family="deep"``): ``build(config)`` returns an ``nn.Module`` and ``inputs(views,
config)`` turns the stacked views (view name -> array with one row per clip) into the model input;
the config carries ``epochs``, ``batch_size``, ``lr``, ``optimizer``, ``weight_decay`` (and
``num_classes``, set from the dataset). Handcrafted methods (``family="handcrafted"``):
``build(config)`` returns a feature function of one clip's views (view name -> array) giving a 1-D
vector, classified by ``classifier(config)`` (an unfitted scikit-learn estimator) fitted per fold.
A deep method with stages before the shared training loop (e.g. self-supervised pretraining) gives
``pre_fit(config, x, fold)``: ``x`` is the model input of every clip of the dataset, ``fold`` the LOSO fold;
it returns the trainer's hook ``hook(model, x_fit, y_fit, seed)`` (``benchmarks.trainer.train_fold``) or
None. ``config_note(config)`` labels results when a setting changes the protocol (e.g. transductive
pretraining); "" when it does not. ``dataset_defaults(ds)`` gives hyperparameters that depend on the
dataset (e.g. a frame count per source database); :func:`benchmarks.evaluate.method_config` applies them over
the defaults, below the variant's and the caller's overrides (which win).

Some data sources cannot provide the preferred views (the public MEGC2019 composite publishes only
min-max-scaled 28x28 flow): ``fallbacks`` lists alternative view sets, each with the note that labels
results obtained from it (an approximation of the method's input).
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from benchmarks.data.clips import ClipDataset
from benchmarks.data.views import ViewSpec

FAMILIES = ("handcrafted", "deep")


@dataclass(frozen=True)
class ViewSet:
    """An alternative set of input views and the note that labels results obtained from it."""

    views: tuple[ViewSpec, ...]
    note: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "views", tuple(self.views))


@dataclass(frozen=True)
class MethodSpec:
    """A registered method. ``defaults`` is a (frozen) config dataclass or a dict of hyperparameters;
    ``sources`` maps each hyperparameter (or design choice) to where its value comes from; ``variants``
    maps a variant name to overrides of ``defaults``."""

    name: str
    family: str
    views: tuple[ViewSpec, ...]
    defaults: Any
    build: Callable[[Any], Any]
    citation: str
    paper: str
    sources: Mapping[str, str]
    inputs: Callable[[Mapping[str, Any], Any], Any] | None = None
    classifier: Callable[[Any], Any] | None = None
    fallbacks: tuple[ViewSet, ...] = ()
    views_for: Callable[..., tuple[ViewSpec, ...]] | None = None
    variants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    notes: str = ""
    pre_fit: Callable[[Any, Any, Any], Callable[..., None] | None] | None = None
    config_note: Callable[[Any], str] | None = None
    dataset_defaults: Callable[[ClipDataset], Mapping[str, Any]] | None = None

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"MethodSpec.name must be a non-empty string, got {self.name!r}")
        if self.family not in FAMILIES:
            raise ValueError(f"method {self.name}: family must be one of {FAMILIES}, got {self.family!r}")
        object.__setattr__(self, "views", tuple(self.views))
        object.__setattr__(self, "fallbacks", tuple(self.fallbacks))
        if not self.views or not all(isinstance(v, ViewSpec) for v in self.views):
            raise ValueError(f"method {self.name}: views must be a non-empty sequence of ViewSpec")
        for v in self.views:
            v.canonical()  # unknown view or parameter -> error at registration
        if not (dataclasses.is_dataclass(self.defaults) or isinstance(self.defaults, Mapping)):
            raise TypeError(f"method {self.name}: defaults must be a config dataclass instance or a dict")
        if self.family == "deep" and self.inputs is None:
            raise ValueError(f"method {self.name}: a deep method needs inputs(views, config)")
        if self.family == "handcrafted" and self.classifier is None:
            raise ValueError(f"method {self.name}: a handcrafted method needs classifier(config)")
        known = set(hyperparameters(self.defaults))
        for variant, overrides in self.variants.items():
            unknown = sorted(set(overrides) - known)
            if unknown:
                raise ValueError(f"method {self.name}: variant {variant!r} overrides unknown "
                                 f"hyperparameter(s) {unknown}; known: {sorted(known)}")

    # ------------------------------------------------------------------ configuration
    def config(self, variant: str | None = None, overrides: Mapping[str, Any] | None = None) -> Any:
        """Defaults, then the variant's overrides, then ``overrides`` (same type as ``defaults``)."""
        merged: dict[str, Any] = {}
        if variant is not None:
            if variant not in self.variants:
                raise KeyError(f"method {self.name}: unknown variant {variant!r}; "
                               f"known: {', '.join(sorted(self.variants)) or '(none)'}")
            merged.update(self.variants[variant])
        merged.update(overrides or {})
        return with_overrides(self.defaults, merged, f"method {self.name}")

    def input_views(self, config: Any, ds: ClipDataset | None = None, i: int | None = None) -> tuple[ViewSpec, ...]:
        """The preferred views for ``config``: ``views_for(config, ds, i)`` when they depend on the config or
        on the clip (row ``i`` of ``ds``; None asks for the clip-independent form), else ``views``."""
        return tuple(self.views_for(config, ds, i)) if self.views_for is not None else self.views


def hyperparameters(config: Any) -> dict[str, Any]:
    """The hyperparameters of a config dataclass or dict, as a plain dict."""
    if dataclasses.is_dataclass(config):
        return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    return dict(config)


def with_overrides(config: Any, overrides: Mapping[str, Any], what: str = "config") -> Any:
    """``config`` with ``overrides`` applied; an unknown name raises, listing the known ones."""
    known = hyperparameters(config)
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise KeyError(f"{what}: unknown hyperparameter(s) {unknown}; known: {sorted(known)}")
    if dataclasses.is_dataclass(config):
        return dataclasses.replace(config, **overrides)
    return {**known, **overrides}


_METHODS: dict[str, MethodSpec] = {}


def register_method(spec: MethodSpec) -> MethodSpec:
    """Add ``spec`` to the registry (returns it); a name may be registered once."""
    if not isinstance(spec, MethodSpec):
        raise TypeError(f"register_method expects a MethodSpec, got {type(spec).__name__}")
    if spec.name in _METHODS:
        raise ValueError(f"method {spec.name!r} registered twice")
    _METHODS[spec.name] = spec
    return spec


def unregister_method(name: str) -> None:
    """Remove a method (tests register temporary ones)."""
    _METHODS.pop(name, None)


def get_method(name: str) -> MethodSpec:
    """The spec of method ``name``; an unknown name raises KeyError listing the known ones."""
    _ensure_loaded()
    try:
        return _METHODS[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; known: {', '.join(sorted(_METHODS))}") from None


def list_methods(pattern: str = "*", family: str | None = None) -> list[str]:
    """Sorted names matching the shell-style ``pattern`` (and ``family`` when given)."""
    _ensure_loaded()
    return sorted(n for n, s in _METHODS.items()
                  if fnmatch.fnmatch(n, pattern) and (family is None or s.family == family))


def _ensure_loaded() -> None:
    # Importing the package registers the built-in methods.
    import benchmarks.methods  # noqa: F401
