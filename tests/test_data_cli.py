"""``python -m benchmarks.data describe``: counts, exclusions, and errors that name the culprit."""

from __future__ import annotations

import json

from benchmarks.data.__main__ import main


def test_describe_public_json(shared_data, capsys):
    assert main(["describe", "megc2019-public", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["clips"], d["subjects"], d["excluded"]) == (442, 68, 0)
    assert d["images_verified"] == 884 and len(d["manifest"]) == 16


def test_describe_text_lists_exclusions_with_reasons(tmp_path, capsys):
    from tests.layouts import smic_layout, write_frames

    smic_layout(tmp_path, [("s1", "negative", "s1_ne_01", [1, 2, 3]), ("s2", "surprise", "s2_sur_01", [5, 6])])
    write_frames(tmp_path / "SMIC_all_cropped/HS/s2/non_micro/s2_x", [1], "reg_image{n}.bmp")
    assert main(["describe", "smic", "--data-root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "clips: 2   subjects: 2" in out
    assert "1 x non-micro clip" in out and "smic/s2/s2_x" in out


def test_describe_errors_name_the_culprit(tmp_path, capsys):
    assert main(["describe", "samm", "--data-root", str(tmp_path / "nope")]) == 2
    assert "data root not found" in capsys.readouterr().err
    assert main(["describe", "samm", "--data-root", str(tmp_path)]) == 2
    assert "SAMM_Micro_FACS_Codes_v2.xlsx" in capsys.readouterr().err
    assert main(["describe", "no-such-set"]) == 2
    assert "unknown dataset 'no-such-set'" in capsys.readouterr().err


def test_list(capsys):
    assert main(["list"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert {"casme2", "samm", "smic", "megc2019", "megc2019-public"} <= set(names)
