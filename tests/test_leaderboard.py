"""The leaderboard table (tables/leaderboard.toml): one method under several epoch policies, each row run and
scored under its own policy, beside the published value and its authors' epoch rule."""

from __future__ import annotations

import pandas as pd
import pytest

from benchmarks.cli_args import table_choice
from benchmarks.presets import Preset
from benchmarks.render import RenderContext, cell_scores, render
from benchmarks.runner import plan, table_cells
from benchmarks.tablespec import TableSpecError, load_spec_file, load_table_spec
from tests.test_runner import tiny_dataset, tiny_method  # noqa: F401  (fixture)

POLICIES = ("last", "val", "oracle")


@pytest.fixture(scope="module")
def board():
    return load_table_spec("leaderboard")


def test_every_deep_method_has_one_row_per_policy_with_one_published_value(board):
    assert board.stem == "leaderboard" and board.heading == "Leaderboard" and board.reported_header == "published"
    by_method: dict[tuple, list] = {}
    for r in board.rows:
        by_method.setdefault((r.method, r.variant), []).append(r)
    assert ("biwoof", None) in by_method and by_method[("biwoof", None)][0].epoch_policy is None
    for key, rows in by_method.items():
        if key[0] == "biwoof":
            continue
        assert tuple(r.epoch_policy for r in rows) == POLICIES, key
        assert len({tuple((c.column, c.reported) for c in r.cells) for r in rows}) == 1, key  # same published
        assert all(r.selection for r in rows), key
    htnet = board.row("htnet_oracle")
    assert (htnet.cell("composite.uf1").reported, htnet.cell("composite.uar").reported) == (0.8603, 0.8475)
    assert "best test epoch" in htnet.selection


def test_table_cells_carry_each_rows_policy(board):
    cells = table_cells([board], "megc2019-public", methods=["off_apexnet", "biwoof"])
    assert cells == [("biwoof", "", "megc2019-public"), *[("off_apexnet", "", "megc2019-public", p)
                                                           for p in POLICIES]]
    assert table_choice("leaderboard") == ["leaderboard"] and "leaderboard" not in table_choice("all")


def test_a_row_policy_must_be_known_and_only_on_run_rows(tmp_path, board):
    text = board.path.read_text().replace('epoch_policy = "val"', 'epoch_policy = "best"', 1)
    (tmp_path / "leaderboard.toml").write_text(text)
    with pytest.raises(TableSpecError, match=r"row \d+ \('off_apexnet_val'\): epoch_policy 'best' is not one of"):
        load_spec_file(tmp_path / "leaderboard.toml")


def _pred(policy: str, wrong: bool) -> pd.DataFrame:
    rows = []
    for s in range(4):
        for c in range(3):
            rows.append({"method": "off_apexnet", "variant": "", "dataset": "megc2019-public", "source": "smic",
                         "subject": f"s{s}", "group": f"smic/s{s}", "clip": f"c{c}", "fold": s, "seed": 0,
                         "y_true": c, "y_pred": (c + 1) % 3 if wrong else c, "epoch_policy": policy,
                         "policy_label": policy, "chosen_epoch": 1})
    return pd.DataFrame(rows)


def test_each_row_scores_only_the_predictions_of_its_policy(board, tmp_path):
    pred = pd.concat([_pred("last", wrong=False), _pred("oracle", wrong=True)], ignore_index=True)
    scores = cell_scores(pred, board, "megc2019-public", n_boot=20)
    got = scores.set_index(["row", "group"])["uf1"]
    assert got[("off_apexnet_last", "composite")] == 1.0 and got[("off_apexnet_last", "smic")] == 1.0
    assert got[("off_apexnet_oracle", "composite")] == 0.0
    assert "off_apexnet_val" not in set(scores["row"])
    paths = render(board, pred, RenderContext("megc2019-public", "default", "last"), tmp_path, n_boot=20)
    md = paths["md"].read_text()
    assert paths["md"].name == "leaderboard.md" and md.startswith("### Leaderboard: ")
    line = next(x for x in md.splitlines() if x.startswith("| OFF-ApexNet") and "| oracle " in x)
    assert "0.0000" in line and "0.7196" in line and "| not stated " in line
    assert "Epoch policy: per row" in md and "the published value. Table protocol" in md


def test_plan_runs_one_cell_per_policy_and_a_method_without_epochs_once(tiny_method, tmp_path):  # noqa: F811
    ds = tiny_dataset(tmp_path)
    p = plan([("tiny_mean", "", "tiny", "last"), ("tiny_mean", "", "tiny", "oracle")], [0],
             Preset("test", "test"), "last", dataset_loader=lambda name: ds)
    assert len(p.units) == 4 and {u.epoch_policy for u in p.units} == {"n/a"}


def test_plan_gives_a_deep_method_one_set_of_units_per_policy(tmp_path):
    ds = tiny_dataset(tmp_path)
    p = plan([("off_apexnet", "", "tiny", "last"), ("off_apexnet", "", "tiny", "oracle")], [0],
             Preset("test", "test"), "val", dataset_loader=lambda name: ds)
    assert len(p.units) == 8 and sorted({u.epoch_policy for u in p.units}) == ["last", "oracle"]
    assert len({u.key for u in p.units}) == 8 and len({u.label for u in p.units}) == 8
    assert {c.epoch_policy for c in p.cells()} == {"last", "oracle"}


def test_a_method_without_epochs_shows_no_policy(board, tmp_path):
    md = render(board, pd.DataFrame(), RenderContext("megc2019-public", "default", "last"), tmp_path, n_boot=0)
    line = next(x for x in md["md"].read_text().splitlines() if x.startswith("| Bi-WOOF"))
    assert line.split("|")[2].strip() == "n/a" and "| not run " in line


def test_last_and_oracle_share_one_training_with_the_standalone_last_result(tmp_path):
    """A fold planned under last and oracle is one work item; its last rows equal a run under last alone."""
    from benchmarks.runner import run_units, work_items

    ds = tiny_dataset(tmp_path)
    p = plan([("off_apexnet", "", "tiny", "last"), ("off_apexnet", "", "tiny", "oracle")], [0],
             Preset("test", "test", overrides={"off_apexnet": {"epochs": 3}}), "last",
             dataset_loader=lambda name: ds, fold_batching=False)
    items = work_items(p.units)
    assert len(items) == 4 and all(sorted(u.epoch_policy for u in it) == ["last", "oracle"] for it in items)
    out = {u.epoch_policy: df for u, df, _ in run_units(items[0], None, "cpu", ds)}
    assert set(out["oracle"]["epoch_policy"]) == {"oracle"} and set(out["last"]["epoch_policy"]) == {"last"}
    last_unit = next(u for u in items[0] if u.epoch_policy == "last")
    (_, alone, _), = run_units([last_unit], None, "cpu", ds)
    cols = ["clip", "y_pred", "chosen_epoch", "policy_label"]
    pd.testing.assert_frame_equal(out["last"][cols], alone[cols])
    assert (out["last"]["chosen_epoch"] == 3).all() and out["oracle"]["chosen_epoch"].between(1, 3).all()


def test_leaderboard_preset_cuts_every_leaderboard_method_with_a_reason(board):
    from benchmarks.presets import get_preset
    from benchmarks.registry import get_method

    preset = get_preset("leaderboard")
    deep = {r.method for r in board.implemented_rows if get_method(r.method).family == "deep"}
    assert deep <= set(preset.overrides) and set(preset.overrides) <= set(preset.reasons)
    for m in deep - {"mfvan", "apex_cnn"}:  # a cut below the registered (paper) budget, and the full budget's wall
        assert preset.overrides[m]["epochs"] < get_method(m).defaults.epochs and " h on 2 cores" in preset.reasons[m]


def test_rows_without_predictions_are_named_in_the_footer(board, tmp_path):
    pred = _pred("last", wrong=False)
    md = render(board, pred, RenderContext("megc2019-public", "default", "last"), tmp_path, n_boot=20)["md"]
    line = next(x for x in md.read_text().splitlines() if x.startswith("- Not run here"))
    assert "htnet (oracle)" in line and "off_apexnet (oracle)" in line and "off_apexnet (last)" not in line


def test_a_configuration_the_batched_trainer_refuses_trains_fold_after_fold(tmp_path):
    ds = tiny_dataset(tmp_path)
    p = plan([("off_apexnet", "", "tiny")], [0], Preset("t", "t", overrides={"off_apexnet": {"optimizer": "adan"}}),
             "last", dataset_loader=lambda name: ds, fold_batching=True)
    q = plan([("off_apexnet", "", "tiny")], [0], Preset("t", "t"), "last", dataset_loader=lambda name: ds,
             fold_batching=True)
    assert {u.trainer for u in p.units} == {"sequential"} and {u.trainer for u in q.units} == {"fold-batched"}
