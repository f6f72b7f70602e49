"""The embedded synthetic datasets: determinism, shapes and counts, and the properties that make them
a plausible stand-in (identity dominates pixel variance; onset->apex flow carries the class)."""

from __future__ import annotations

from collections import Counter

import cv2
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GroupKFold, LeaveOneGroupOut, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from benchmarks.data import synthetic as S
from benchmarks.data import synthetic_faces as sf
from benchmarks.data.errors import DataError
from benchmarks.data.frames import read_frames
from benchmarks.data.protocols import CASME2_5, MEGC_3, SAMM_5, SMIC_3, apply_protocol
from benchmarks.data.registry import list_datasets, load_dataset


def _stack_bytes(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------ determinism
def test_same_seed_identical_bytes_different_seed_differs(tmp_path):
    a = S.generate_release("samm", tmp_path / "a", seed=3, n_subjects=2, clips_per_subject=2)
    b = S.generate_release("samm", tmp_path / "b", seed=3, n_subjects=2, clips_per_subject=2)
    c = S.generate_release("samm", tmp_path / "c", seed=4, n_subjects=2, clips_per_subject=2)
    fa, fb, fc = _stack_bytes(a), _stack_bytes(b), _stack_bytes(c)
    assert len([k for k in fa if k.endswith(".npy")]) == 4
    assert fa == fb
    assert fa.keys() == fc.keys()
    assert all(fa[k] != fc[k] for k in fa if k.endswith(".npy"))


def test_reduced_release_keeps_the_identities_of_the_full_one():
    full = S.plan_release("casme2", 0)
    reduced = S.plan_release("casme2", 0, n_subjects=3)
    assert reduced == [c for c in full if c.subject in ("sub01", "sub02", "sub03")]
    assert S.identity("casme2", 0, 1) == S.identity("casme2", 0, 1)
    assert S.identity("casme2", 0, 1) != S.identity("casme2", 0, 2)
    assert S.identity("casme2", 0, 1) != S.identity("samm", 0, 1)


# ------------------------------------------------------------------------------ shapes and counts
@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("preset,n_clips,n_subjects,first_subject", [
    ("casme2", 255, 26, "sub01"), ("samm", 159, 28, "006"), ("smic", 164, 16, "s1")])
def test_coded_table_shape(preset, n_clips, n_subjects, first_subject, seed):
    table = S.coded_table(S.plan_release(preset, seed))
    p = S.PRESETS[preset]
    assert len(table) == n_clips and table["subject"].nunique() == n_subjects
    assert table["subject"].iloc[0] == first_subject
    assert dict(Counter(table["emotion"])) == p.emotions
    assert (table["dataset"] == f"synthetic-{preset}").all()
    per_subject = table.groupby("subject").size()
    assert per_subject.min() >= 1 and per_subject.max() <= p.max_per_subject
    assert per_subject.max() >= 4 * per_subject.min()          # uneven, as in the real sets
    assert not table.duplicated(["subject", "clip"]).any()
    n = table["gen_frames"]
    assert n.between(*S.FRAMES_RANGE).all()
    assert (table["onset"] == 0).all() and (table["offset"] == n - 1).all()
    assert (3 * table["apex"] >= n - 1).all() and (3 * table["apex"] <= 2 * (n - 1)).all()
    assert (table["apex_source"] == "generator").all()


def test_protocol_counts_match_the_real_sets():
    tables = {p: S.coded_table(S.plan_release(p, 0)) for p in S.PRESETS}
    for preset, protocol, kept, excluded in [("casme2", CASME2_5, 246, {"fear": 2, "sadness": 7}),
                                             ("samm", SAMM_5, 136, {"disgust": 9, "fear": 8, "sadness": 6}),
                                             ("smic", SMIC_3, 164, {})]:
        clips, excl = apply_protocol(tables[preset], protocol, source_alias=S.SOURCE_ALIAS)
        assert len(clips) == kept
        assert dict(Counter(excl["emotion"])) == excluded
        assert excl["reason"].str.contains("not a class of").all()
    clips, excl = apply_protocol(pd.concat(tables.values(), ignore_index=True), MEGC_3,
                                 source_alias=S.SOURCE_ALIAS)
    assert len(clips) == 444 and len(excl) == 99 + 2 + 7 + 26
    assert np.bincount(clips["label"]).tolist() == [90 + 92 + 70, 32 + 26 + 51, 25 + 15 + 43]
    assert clips.groupby(["dataset", "subject"]).ngroups <= 70


# ------------------------------------------------------------------------------ motion
def test_apex_amplitude_and_ambiguity():
    plans = [c for p in S.PRESETS for c in S.plan_release(p, 0)]
    kinds = Counter(c.ambiguity.split(":")[0] for c in plans)
    assert 0.08 * len(plans) < kinds["weak"] + kinds["blend"] < 0.25 * len(plans)
    for c in plans[::4]:
        peak = float(np.sqrt((S.apex_field(c, 0) ** 2).sum(-1)).max())
        assert peak == pytest.approx(c.amplitude, rel=1e-4)
        if c.ambiguity == "weak":
            assert peak < 0.75
        else:
            assert 0.75 <= peak <= 2.5, (c.release, c.subject, c.clip, peak)


def test_temporal_profile_neutral_onset_apex_offset():
    prof = sf.temporal_profile(13, 6, 0.1)
    assert prof[0] == 0.0 and prof[6] == pytest.approx(1.0) and prof[-1] == pytest.approx(0.1)
    assert (np.diff(prof[:7]) > 0).all() and (np.diff(prof[6:]) < 0).all()


def test_clean_clip_motion_is_the_field_and_flow_recovers_it():
    """Geometry alone (version 2: no appearance change, which breaks brightness constancy on purpose)."""
    plans = S.plan_release("casme2", 0, n_subjects=1, clips_per_subject=4,
                           emotions=["happiness", "surprise", "disgust", "repression"])
    face = S.neutral_face("casme2", 0, 0, version=2)
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
    for c in plans:
        frames = S.render_planned_clip(c, 0, nuisance=False, version=2)
        assert frames.shape == (c.n_frames, 128, 128, 3) and frames.dtype == np.uint8
        # neutral onset: the face itself
        assert np.abs(frames[0].astype(float) - np.clip(face, 0, 255)).max() <= 1.0
        gray = [cv2.cvtColor(frames[i], cv2.COLOR_RGB2GRAY) for i in (0, c.apex)]
        flow = tvl1.calc(gray[0], gray[1], None)
        field = S.apex_field(c, 0)
        moving = np.sqrt((field**2).sum(-1)) > 0.3 * c.amplitude
        assert np.corrcoef(flow[moving].ravel(), field[moving].ravel())[0, 1] > 0.7
        assert 0.4 * c.amplitude < np.percentile(np.sqrt((flow**2).sum(-1)), 99.9) < 1.5 * c.amplitude


# ------------------------------------------------------------------------------ appearance change (v3)
def test_appearance_change_sits_where_its_action_unit_is():
    f = S.identity("casme2", 0, 0)
    lm = f.landmarks()
    assert not sf.appearance_map(f, {}, 1.0).any()
    brows = sf.appearance_map(f, {"AU1": 1.0, "AU2": 1.0}, 1.0)   # forehead furrows: above the brows, dark
    ys, _ = np.nonzero(np.abs(brows) > 0.02)
    assert ys.max() < lm["brow_inner_L"][1] and brows.min() < -0.05 and brows.max() <= 0
    smile = sf.appearance_map(f, {"AU12": 1.0}, 1.0)               # nasolabial folds: between nose and mouth
    dark = np.argwhere(smile < -0.05)
    assert lm["ala_L"][1] - 3 < dark[:, 0].mean() < lm["corner_L"][1] + 3
    left = sf.appearance_map(f, {"AU14L": 1.0}, 1.0)               # one-sided AU: one side of the face
    assert np.abs(left[:, : int(f.cx)]).sum() > 20 * np.abs(left[:, int(f.cx) + 1:]).sum()
    np.testing.assert_allclose(sf.appearance_map(f, {"AU9": 1.0}, 2.0),
                               np.clip(2 * sf.appearance_map(f, {"AU9": 1.0}, 1.0), -0.5, 0.5), atol=1e-6)


def test_version_3_adds_appearance_to_version_2_motion():
    c = S.plan_release("smic", 0, n_subjects=1, clips_per_subject=3)[1]
    v2 = S.render_planned_clip(c, 0, nuisance=False, version=2).astype(float)
    v3 = S.render_planned_clip(c, 0, nuisance=False, version=3).astype(float)
    static = S.neutral_face("smic", 0, 0, version=3) / np.maximum(S.neutral_face("smic", 0, 0, version=2), 1)
    onset_ratio = (v3[0] + 0.5) / (v2[0] + 0.5)
    face = S.neutral_face("smic", 0, 0, version=2) > 40
    assert np.abs(onset_ratio - static)[face].mean() < 0.02      # onset: the subject's static folds only
    change3 = np.abs(v3[c.apex] - v3[0]).mean()
    change2 = np.abs(v2[c.apex] - v2[0]).mean()
    assert change3 > 1.3 * change2                               # apex: motion and appearance
    with pytest.raises(ValueError, match="version"):
        S.render_planned_clip(c, 0, version=1)
    assert S.release_folder("smic", 0, "/x", version=2).name == "smic-seed0-v2"


def test_version_4_is_the_default_and_version_3_at_a_higher_gain():
    assert S.GENERATOR_VERSION == 4 and S.appearance_gain(4) > S.appearance_gain(3) > S.appearance_gain(2) == 0
    c = S.plan_release("smic", 0, n_subjects=1, clips_per_subject=3)[1]
    v3, v4 = (S.clip_appearance(c, 0, v) for v in (3, 4))
    np.testing.assert_allclose(v4, np.clip(v3 / S.appearance_gain(3) * S.appearance_gain(4), -0.5, 0.5),
                               atol=1e-5)  # the same map, rescaled and clipped
    assert S.release_folder("smic", 0, "/x").name == "smic-seed0-v4"


def test_apex_frame_alone_carries_the_class_in_version_3_not_in_version_2():
    """A linear read-out of the grey apex frame (32 px, no onset) under leave-subjects-out: near chance on v2
    (1-2 px motion, no reference frame), clearly above it on v3 and v4 (appearance change)."""
    classes = list(SMIC_3.classes)
    plans = S.plan_release("smic", 0, n_subjects=8, clips_per_subject=9)
    y = np.array([classes.index(c.emotion) for c in plans])
    groups = np.array([c.subject for c in plans])
    uar = {}
    for version in (2, 3, 4):
        faces = {s: S.neutral_face("smic", 0, s, version) for s in range(8)}
        x = np.stack([cv2.resize(cv2.cvtColor(S.render_planned_clip(c, 0, face=faces[c.subject_index],
                                                                    version=version)[c.apex], cv2.COLOR_RGB2GRAY),
                                 (32, 32), interpolation=cv2.INTER_AREA).ravel() for c in plans]).astype(float)
        uar[version] = _uar(x, y, groups)
    assert uar[2] < 1 / 3 + 0.12
    assert uar[3] > uar[2] + 0.12 and uar[4] > uar[2] + 0.12


# ------------------------------------------------------------------------------ statistical properties
def test_identity_explains_more_pixel_variance_than_expression():
    emotions = list(CASME2_5.classes)
    plans = S.plan_release("casme2", 0, n_subjects=6, clips_per_subject=10, emotions=emotions)
    faces = {s: S.neutral_face("casme2", 0, s) for s in range(6)}
    x = np.stack([S.render_planned_clip(c, 0, face=faces[c.subject_index])[c.apex] for c in plans])
    x = x.reshape(len(plans), -1).astype(np.float64)
    subj = np.array([c.subject_index for c in plans])
    emo = np.array([emotions.index(c.emotion) for c in plans])
    grand = x.mean(0)
    total = ((x - grand) ** 2).sum()
    subject_means = np.stack([x[subj == s].mean(0) for s in range(6)])
    identity_ss = sum((subj == s).sum() * ((subject_means[s] - grand) ** 2).sum() for s in range(6))
    resid = x - subject_means[subj]
    expression_ss = sum((emo == e).sum() * (resid[emo == e].mean(0) ** 2).sum() for e in range(5))
    identity_share, expression_share = identity_ss / total, expression_ss / total
    assert identity_share > 0.5
    assert 0 < expression_share < identity_share


def _flow_features(plans, seed: int) -> np.ndarray:
    """Farneback onset->apex flow, median (head motion) removed, averaged onto an 8x8 grid."""
    feats = []
    for c in plans:
        frames = S.render_planned_clip(c, seed)
        g0, g1 = (cv2.cvtColor(frames[i], cv2.COLOR_RGB2GRAY) for i in (0, c.apex))
        flow = cv2.calcOpticalFlowFarneback(g0, g1, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        flow -= np.median(flow, axis=(0, 1))
        feats.append(cv2.resize(flow, (8, 8), interpolation=cv2.INTER_AREA).ravel())
    return np.stack(feats)


def _uar(x, y, groups) -> float:
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    pred = cross_val_predict(clf, x, y, groups=groups, cv=GroupKFold(n_splits=4))
    return balanced_accuracy_score(y, pred)


def _shuffle_within(y, groups, rng) -> np.ndarray:
    out = y.copy()
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        out[idx] = y[rng.permutation(idx)]
    return out


def test_flow_classifier_beats_chance_and_shuffled_labels_stay_at_chance():
    classes = list(SMIC_3.classes)
    plans = S.plan_release("smic", 0, n_subjects=8, clips_per_subject=9)   # 3 clips per class per subject
    x = _flow_features(plans, 0)
    y = np.array([classes.index(c.emotion) for c in plans])
    groups = np.array([c.subject for c in plans])
    chance = 1 / 3
    assert _uar(x, y, groups) > chance + 0.15
    rng = np.random.default_rng(0)
    shuffled = [_uar(x, _shuffle_within(y, groups, rng), groups) for _ in range(5)]
    assert abs(np.mean(shuffled) - chance) < 0.1


# ------------------------------------------------------------------------------ loaders and cache
@pytest.fixture
def tiny_presets(monkeypatch):
    """Shrink the presets so the registered loaders run in a second."""
    tiny = {
        "casme2": S.Preset("casme2", "casme2", ("sub01", "sub02"),
                           {"happiness": 2, "disgust": 2, "others": 1, "fear": 1}, 4, "casme2"),
        "samm": S.Preset("samm", "samm", ("006", "007"), {"anger": 2, "contempt": 1, "sadness": 1}, 4, "samm"),
        "smic": S.Preset("smic", "smic", ("s1", "s2"), {"negative": 2, "positive": 2, "surprise": 2}, 4, "smic"),
    }
    monkeypatch.setattr(S, "PRESETS", tiny)
    return tiny


def test_registered_loaders_and_cache(tiny_presets, tmp_path, monkeypatch):
    assert {"synthetic-casme2", "synthetic-samm", "synthetic-smic", "synthetic-megc2019"} <= set(
        list_datasets("synthetic-*", kind="synthetic"))
    ds = load_dataset("synthetic-smic", root=tmp_path, seed=5)
    folder = tmp_path / f"smic-seed5-v{S.GENERATOR_VERSION}"
    assert (folder / "DONE").exists() and (folder / "coded.csv").exists()
    assert ds.kind == "synthetic" and ds.classes == SMIC_3.classes and len(ds.clips) == 6
    assert ds.has_frames and len(ds.exclusions) == 0
    assert any("seed 5" in n and f"v{S.GENERATOR_VERSION}" in n for n in ds.notes)
    r = ds.row(0)
    frames = read_frames(r["frames"])
    assert frames.shape == (r["offset"] + 1, 128, 128, 3) and frames.dtype == np.uint8
    onset, apex = ds.key_frames(0)
    assert onset.shape == apex.shape == (128, 128, 3)

    # cached: a second load reads the release instead of generating it
    monkeypatch.setattr(S, "generate_release", lambda *a, **k: pytest.fail("regenerated a cached release"))
    again = load_dataset("synthetic-smic", root=tmp_path, seed=5)
    assert again.manifest_hash() == ds.manifest_hash()
    assert not list(tmp_path.glob(".*tmp-*"))


def test_composite_loader_and_exclusions(tiny_presets, tmp_path):
    ds = load_dataset("synthetic-megc2019", root=tmp_path)
    assert ds.classes == MEGC_3.classes
    assert set(ds.clips["dataset"]) == {"synthetic-casme2", "synthetic-samm", "synthetic-smic"}
    assert len(ds.clips) == 4 + 4 + 6
    assert sorted(ds.exclusions["emotion"]) == ["fear", "others"]
    assert 4 <= ds.clips["group"].nunique() <= 6
    casme = load_dataset("synthetic-casme2", root=tmp_path)
    assert len(casme.clips) == 5 and casme.exclusions["emotion"].tolist() == ["fear"]


def test_incomplete_release_is_an_error(tiny_presets, tmp_path):
    (tmp_path / f"smic-seed0-v{S.GENERATOR_VERSION}").mkdir()
    with pytest.raises(DataError, match="no DONE marker"):
        load_dataset("synthetic-smic", root=tmp_path)
    with pytest.raises(ValueError, match="unknown synthetic preset"):
        S.plan_release("casme3")
    with pytest.raises(ValueError, match="n_subjects"):
        S.plan_release("smic", n_subjects=17)


@pytest.mark.slow
def test_tvl1_flow_classifier_on_the_full_smic_release(tmp_path):
    """The default release as a user gets it: TV-L1 onset->apex flow, leave-one-subject-out."""
    ds = load_dataset("synthetic-smic", root=tmp_path)
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
    feats = []
    for i in range(len(ds.clips)):
        onset, apex = (cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in ds.key_frames(i))
        flow = tvl1.calc(onset, apex, None)
        flow -= np.median(flow, axis=(0, 1))
        feats.append(cv2.resize(flow, (8, 8), interpolation=cv2.INTER_AREA).ravel())
    x, y, groups = np.stack(feats), ds.labels(), ds.groups()
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))

    def uar(labels):
        pred = cross_val_predict(clf, x, labels, groups=groups, cv=LeaveOneGroupOut())
        return balanced_accuracy_score(labels, pred)

    chance = 1 / ds.n_classes
    assert uar(y) > chance + 0.15
    rng = np.random.default_rng(0)
    assert abs(np.mean([uar(_shuffle_within(y, groups, rng)) for _ in range(5)]) - chance) < 0.1


@pytest.mark.parametrize("preset,protocol,n_subjects", [("casme2", "casme2-5class", 26), ("samm", "samm-5class", 28)])
def test_every_subject_keeps_a_clip_under_its_own_protocol(preset, protocol, n_subjects):
    """As in the real sets, the 5-class protocols drop clips but no subject (CASME II keeps 26 subjects)."""
    from benchmarks.data.protocols import PROTOCOLS, apply_protocol

    table = S.coded_table(S.plan_release(preset, 0))
    table["dataset"] = preset
    clips, excluded = apply_protocol(table, PROTOCOLS[protocol])
    assert clips["subject"].nunique() == n_subjects and len(excluded) > 0
