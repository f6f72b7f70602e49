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
