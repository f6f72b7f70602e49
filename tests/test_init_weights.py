"""Initial weights come only from a local file the user names; results say so; the default is from scratch."""

from __future__ import annotations

import pytest
import torch

from benchmarks.evaluate import file_sha256, load_weights, model_factory
from benchmarks.presets import Preset
from benchmarks.registry import get_method
from benchmarks.render import training_lines
from benchmarks.runner import collect, execute, plan
from benchmarks.units import UnitStore
from tests.test_runner import tiny_dataset

PRESET = Preset("test", "test", overrides={"ststnet": {"epochs": 1, "batch_size": 8}})


@pytest.fixture
def weights(tmp_path):
    spec = get_method("ststnet")
    torch.manual_seed(7)
    model = spec.build(spec.config())
    path = tmp_path / "ststnet_init.pt"
    torch.save(model.state_dict(), path)
    return path, model.state_dict()


def test_factory_loads_the_file_strictly(weights, tmp_path):
    path, state = weights
    spec = get_method("ststnet")
    built = model_factory(spec, spec.config(), path)()
    for k, v in built.state_dict().items():
        torch.testing.assert_close(v, state[k], rtol=0, atol=0)
    torch.save({"state_dict": state}, tmp_path / "wrapped.pt")  # a training checkpoint holding the state dict
    assert load_weights(tmp_path / "wrapped.pt").keys() == state.keys()
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt do not fit method ststnet"):
        model_factory(spec, spec.config(), tmp_path / "other.pt")()
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_weights(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        load_weights(tmp_path / "junk.pt")


def test_units_and_rows_record_the_weights(weights, tmp_path, monkeypatch):
    monkeypatch.setenv("MER_CACHE_DIR", str(tmp_path / "cache"))
    path, _ = weights
    ds = tiny_dataset(tmp_path)
    loader = lambda name: ds  # noqa: E731
    scratch = plan([("ststnet", "", "tiny")], [0], PRESET, "last", dataset_loader=loader, fold_batching=False)
    warm = plan([("ststnet", "", "tiny")], [0], PRESET, "last", dataset_loader=loader, fold_batching=False,
                init_weights={"ststnet": str(path)})
    assert {u.weights for u in warm.units} == {file_sha256(path)} and {u.weights for u in scratch.units} == {""}
    assert not {u.key for u in warm.units} & {u.key for u in scratch.units}  # cached apart
    store = UnitStore(tmp_path / "units")
    assert execute(warm.units[:1], store, datasets=warm.datasets) == []
    pred = collect(warm.units[:1], store)
    label = f"ststnet_init.pt (sha256 {file_sha256(path)[:12]})"
    assert set(pred["init_weights"]) == {label}
    assert training_lines(pred, "test")[0].startswith(f"Training: from scratch except ststnet from {label}")
    with pytest.raises(ValueError, match="lbptop is not a deep method"):
        plan([("ststnet", "", "tiny")], [0], PRESET, "last", dataset_loader=loader, init_weights={"lbptop": str(path)})
    with pytest.raises(ValueError, match="no such file"):
        plan([("ststnet", "", "tiny")], [0], PRESET, "last", dataset_loader=loader,
             init_weights={"ststnet": str(tmp_path / "nope.pt")})
