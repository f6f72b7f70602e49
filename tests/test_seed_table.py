"""The seed systems' table (tables/seeds.toml): every system of the seed documents has a row, DSTAN as reported
only with its reason, the ICIP 2024 network under its authors' rule (oracle) and under last."""

from __future__ import annotations

import pytest

from benchmarks.registry import list_methods
from benchmarks.runner import table_cells
from benchmarks.tablespec import load_table_spec


@pytest.fixture(scope="module")
def seeds():
    return load_table_spec("seeds")


def test_every_seed_system_has_a_row(seeds):
    methods = {r.method for r in seeds.implemented_rows}
    assert {"mfdan", "micro_attention", "icip3d_gru", "mfvan"} <= methods <= set(list_methods())
    dstan = seeds.row("dstan")
    assert dstan.reported_only and "architecture unpublished" in dstan.note
    assert [r.epoch_policy for r in seeds.rows if r.method == "icip3d_gru"] == ["oracle", "last"]
    assert seeds.row("icip3d_gru_oracle").cell("smic.uf1").reported == 0.732
    assert seeds.row("mfdan").cell("composite.uar").reported == 0.8688


def test_frame_based_systems_are_asked_of_every_data_source(seeds):
    public = table_cells([seeds], "megc2019-public")
    assert ("mfdan", "", "megc2019-public") in public and ("icip3d_gru", "", "megc2019-public", "oracle") in public
    assert ("micro_attention", "", "synthetic-megc2019") in table_cells([seeds], "synthetic")


@pytest.mark.parametrize("preset_name", ["smoke", "default"])
def test_cpu_presets_size_every_seed_system_below_its_paper_budget(seeds, preset_name):
    """The seed systems' registered defaults are paper-scale (days here): the CPU presets cut their inputs (and the
    default its epochs, with the measured reason) to configurations that build."""
    from dataclasses import replace

    from benchmarks.presets import get_preset
    from benchmarks.registry import get_method

    preset = get_preset(preset_name)
    for m in ("micro_attention", "icip3d_gru", "mfdan"):
        spec = get_method(m)
        over = preset.overrides_for(m, spec.family)
        cfg = replace(spec.defaults, **over)  # raises on an invalid combination (e.g. MFDAN's windows)
        size = next(k for k in ("input_size", "image_size") if k in over)
        assert getattr(cfg, size) < getattr(spec.defaults, size) and cfg.epochs < spec.defaults.epochs
        assert m in preset.reasons
        if preset_name == "default":
            assert "per fold-epoch" in preset.reasons[m] and " h" in preset.reasons[m]


def test_mfdan_cpu_window_keeps_the_papers_fraction_of_the_token_side():
    from benchmarks.presets import get_preset

    over = get_preset("default").overrides["mfdan"]
    side = over["input_size"] // 4  # patch 4 (Sec. III-B)
    assert over["window"] / side == 7 / (224 // 4)
