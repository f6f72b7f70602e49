"""The MEGC2019 composite ("3DB-combined", See et al. 2019): 442 clips, 68 subjects, 3 classes.

Two data sources:

- ``megc2019-public``: the published derived files (no frames): the organisers' ground truth
  ``combined_3class_gt.csv`` (no header: dataset, subject, clip, class), HTNet's
  ``combined_3_class2_for_optical_flow.csv`` (file naming), 28x28 (u, v, strain) flow PNGs in
  ``flow_uvs_28/`` named ``<sub>_<filename_o> .png`` (a space before ``.png``) and 224x224 apex
  crops in ``apex_224/`` named by the CSV's ``imagename``. Every expected file must exist and no
  other file may sit in those folders; both are reported by name.
- ``megc2019``: the composite built from the licensed releases (CASME II, SAMM, SMIC-HS under one
  data root), restricted to the organisers' list when ``combined_3class_gt.csv`` is found (in the
  root, ``root/megc2019/`` or ``gt_csv=``); without it, the rule-based composite of
  :data:`benchmarks.data.protocols.MEGC_3`, labelled so.

Ids are canonicalised to the releases' spelling: SAMM subjects three digits (``6`` -> ``006``),
SMIC subjects and clips without the zero the organisers add (``s01``/``s01_ne_01`` -> ``s1``/``s1_ne_01``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from benchmarks.data import casme2, samm, smic
from benchmarks.data.clips import CLIP_COLUMNS, ClipDataset, make_exclusions
from benchmarks.data.errors import DataError
from benchmarks.data.protocols import MEGC_3, apply_protocol
from benchmarks.paths import shared_data_dir

GT_CSV = "combined_3class_gt.csv"
NAMING_CSV = "combined_3_class2_for_optical_flow.csv"
FLOW_DIR, APEX_DIR = "flow_uvs_28", "apex_224"
SOURCES = ("casme2", "samm", "smic")
CITATION = ("See J., Yap M. H., Li J., Hong X., Wang S.-J. (2019) MEGC 2019 - the second facial "
            "micro-expressions grand challenge. IEEE FG 2019")
_SMIC_ID = re.compile(r"^s0*(\d+)")


def canonical_ids(dataset: str, subject: str, clip: str) -> tuple[str, str, str]:
    dataset, subject, clip = str(dataset).strip().lower(), str(subject).strip(), str(clip).strip()
    if dataset == "samm":
        subject = samm.subject_id(subject)
    elif dataset == "smic":
        subject, clip = _SMIC_ID.sub(r"s\1", subject), _SMIC_ID.sub(r"s\1", clip)
    return dataset, subject, clip


def read_gt(path: Path) -> pd.DataFrame:
    """The organisers' list: dataset, subject, clip (canonical ids), label, sheet_row."""
    if not path.exists():
        raise DataError(f"megc2019: organisers' list not found: {path}")
    rows = []
    for i, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4:
            raise DataError(f"megc2019: {path} line {i}: expected 4 fields dataset,subject,clip,class; got {line!r}")
        d, s, c = canonical_ids(*parts[:3])
        if d not in SOURCES:
            raise DataError(f"megc2019: {path} line {i}: unknown dataset {parts[0]!r} (known: {', '.join(SOURCES)})")
        if parts[3] not in ("0", "1", "2"):
            raise DataError(f"megc2019: {path} line {i}: class {parts[3]!r} is not 0, 1 or 2")
        rows.append({"dataset": d, "subject": s, "clip": c, "label": int(parts[3]), "sheet_row": i})
    gt = pd.DataFrame(rows)
    dup = gt[gt.duplicated(["dataset", "subject", "clip"], keep=False)]
    if len(dup):
        raise DataError(f"megc2019: {path}: duplicated clips at lines {dup['sheet_row'].tolist()}")
    return gt


def _public_folder(root: Path | None) -> Path:
    if root is None:
        shared = shared_data_dir()
        if shared is None:
            raise DataError("megc2019-public: no folder given and ../shared/data not found "
                            "(pass --data-root PATH to a folder holding the published files)")
        root = shared / "megc2019"
    if (root / "megc2019" / GT_CSV).exists() and not (root / GT_CSV).exists():
        root = root / "megc2019"
    if not root.is_dir():
        raise DataError(f"megc2019-public: folder not found: {root}")
    return root


def load_public(root: Path | None, **_) -> ClipDataset:
    """The published MEGC2019 composite: stored flow (u, v, strain at 28x28) and 224x224 apex crops."""
    root = _public_folder(root)
    gt = read_gt(root / GT_CSV)
    naming_path = root / NAMING_CSV
    if not naming_path.exists():
        raise DataError(f"megc2019-public: naming list not found: {naming_path}")
    naming = pd.read_csv(naming_path, dtype=str, keep_default_na=False)
    need = {"dataset", "sub", "filename_o", "label", "imagename"}
    if not need <= set(naming.columns):
        raise DataError(f"megc2019-public: {naming_path} lacks columns {sorted(need - set(naming.columns))}")
    files = {}
    for i, r in enumerate(naming.to_dict("records"), start=2):
        key = canonical_ids(r["dataset"], r["sub"], r["filename_o"])
        files[key] = (f"{r['sub'].strip()}_{r['filename_o'].strip()} .png", r["imagename"].strip(), r["label"], i)
    rows, missing = [], []
    for g in gt.to_dict("records"):
        key = (g["dataset"], g["subject"], g["clip"])
        if key not in files:
            raise DataError(f"megc2019-public: {GT_CSV} line {g['sheet_row']}: {'/'.join(key)} "
                            f"has no row in {NAMING_CSV}")
        flow_name, apex_name, label, nrow = files[key]
        if str(label).strip() != str(g["label"]):
            raise DataError(f"megc2019-public: {'/'.join(key)}: class {g['label']} in {GT_CSV} line {g['sheet_row']} "
                            f"but {label} in {NAMING_CSV} row {nrow}")
        flow_path, apex_path = root / FLOW_DIR / flow_name, root / APEX_DIR / apex_name
        missing += [str(p) for p in (flow_path, apex_path) if not p.exists()]
        rows.append({**{k: g[k] for k in ("dataset", "subject", "clip", "label")},
                     "emotion": MEGC_3.classes[g["label"]], "onset": -1, "apex": -1, "offset": -1,
                     "apex_source": "published apex crop", "frames": "",
                     "flow_path": str(flow_path), "apex_path": str(apex_path)})
    if missing:
        raise DataError(f"megc2019-public: {len(missing)} missing file(s): " + "; ".join(repr(m) for m in missing[:10]))
    clips = pd.DataFrame(rows)
    for folder, col in ((FLOW_DIR, "flow_path"), (APEX_DIR, "apex_path")):
        expected = {Path(p).name for p in clips[col]}
        unexpected = sorted(p.name for p in (root / folder).iterdir() if p.name not in expected)
        if unexpected:
            raise DataError(f"megc2019-public: unexpected file(s) in {root / folder}: "
                            + ", ".join(repr(u) for u in unexpected[:10]))
    clips = clips[CLIP_COLUMNS + ["flow_path", "apex_path"]]
    notes = [f"published derived files at {root}: flow (u, v, strain) 28x28 PNG, min-max scaled per clip "
             "(no absolute magnitude); apex crops 224x224; no onset frames, no sequences",
             f"labels from the organisers' {GT_CSV}"]
    return ClipDataset("megc2019-public", "MEGC2019 composite, published flow + apex crops (3 classes)",
                       MEGC_3.classes, clips, make_exclusions([]), kind="public", root=str(root),
                       stored_views={"flow_uvs_28": "flow_path", "apex_224": "apex_path"}, notes=notes)


def _find_gt(root: Path, gt_csv: Path | None) -> Path | None:
    if gt_csv is not None:
        if not gt_csv.exists():
            raise DataError(f"megc2019: organisers' list not found: {gt_csv}")
        return gt_csv
    for p in (root / GT_CSV, root / "megc2019" / GT_CSV, root / "MEGC2019" / GT_CSV):
        if p.exists():
            return p
    return None


def load_raw(root: Path | None, gt_csv: str | Path | None = None, casme2_release: str = "auto",
             smic_release: str = "auto", smic_apex: str = "middle", **_) -> ClipDataset:
    """The composite from the licensed releases under one root (CASME II, SAMM, SMIC-HS)."""
    from benchmarks.data.release import require_root

    root = require_root(root, "megc2019")
    c_coded, c_notes = casme2.coded_clips(root, casme2_release)
    s_coded, s_notes = samm.coded_clips(root)
    m_coded, _, m_notes = smic.coded_clips(root, smic_release, smic_apex)
    coded = pd.concat([c_coded, s_coded, m_coded], ignore_index=True)
    clips, excl = apply_protocol(coded, MEGC_3)
    notes = c_notes + s_notes + m_notes
    gt_path = _find_gt(root, Path(gt_csv) if gt_csv else None)
    if gt_path is None:
        notes.append(f"organisers' list {GT_CSV} not found under {root}: rule-based composite "
                     f"({len(clips)} clips), not the official 442")
    else:
        gt = read_gt(gt_path)
        keys = list(zip(clips["dataset"], clips["subject"], clips["clip"]))
        listed = {(r.dataset, r.subject, r.clip): r.label for r in gt.itertuples()}
        have = set(keys)
        absent = [k for k in listed if k not in have]
        if absent:
            raise DataError(f"megc2019: {len(absent)} clip(s) of {gt_path} not found among the releases' "
                            f"3-class clips: " + ", ".join("/".join(k) for k in absent[:10]))
        inside = [k in listed for k in keys]
        out = clips.loc[[not x for x in inside]]
        excl = pd.concat([excl, make_exclusions([
            {"dataset": r.dataset, "subject": r.subject, "clip": r.clip, "emotion": r.emotion,
             "reason": f"not in the organisers' list {GT_CSV}"} for r in out.itertuples()])], ignore_index=True)
        clips = clips.loc[inside].copy()
        relabel = [(k, lab, listed[k]) for k, lab in zip(keys, clips["label"]) if k in listed and lab != listed[k]]
        clips["label"] = [listed[k] for k in zip(clips["dataset"], clips["subject"], clips["clip"])]
        notes.append(f"restricted to the organisers' list {gt_path} ({len(gt)} clips)")
        notes += [f"label of {'/'.join(k)} taken from the organisers' list ({new}), rule gave {old}"
                  for k, old, new in relabel]
    return ClipDataset("megc2019", "MEGC2019 composite from the licensed releases (3 classes)", MEGC_3.classes,
                       clips, excl, kind="raw", root=str(root), notes=notes)
