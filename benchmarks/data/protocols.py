"""Emotion -> class protocols of the MFVAN paper (section 2.1) and of MEGC2019.

A loader first builds the table of *coded* clips with their native emotions; a protocol then
maps emotions to class indices and lists every clip it leaves out with the reason.

- CASME II, 5 classes: happiness, surprise, disgust, repression, others (fear and sadness, 9
  clips, are left out: 246 of the 255 coded clips).
- SAMM, 5 classes: anger, contempt, happiness, surprise, other (disgust, fear and sadness are left
  out: 136 of the 159 micro clips).
- SMIC-HS, 3 classes: negative, positive, surprise (all 164 clips).
- MEGC2019 composite, 3 classes (See et al. 2019): negative (CASME II disgust, repression; SAMM
  anger, contempt, disgust, fear, sadness; SMIC negative), positive (happiness / positive),
  surprise. The organisers' list (``combined_3class_gt.csv``, 442 clips) is authoritative where
  available; class indices follow it (0 negative, 1 positive, 2 surprise).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from benchmarks.data.clips import CLIP_COLUMNS, make_exclusions


@dataclass(frozen=True)
class Protocol:
    name: str
    classes: tuple[str, ...]
    # source dataset -> native emotion (lower case) -> class name
    mapping: dict[str, dict[str, str]]

    def class_of(self, dataset: str, emotion: str) -> str | None:
        return self.mapping.get(dataset, {}).get(str(emotion).strip().lower())


def _identity(names: tuple[str, ...]) -> dict[str, str]:
    return {n: n for n in names}


CASME2_CLASSES = ("happiness", "surprise", "disgust", "repression", "others")
SAMM_CLASSES = ("anger", "contempt", "happiness", "surprise", "other")
SMIC_CLASSES = ("negative", "positive", "surprise")
MEGC_CLASSES = ("negative", "positive", "surprise")

CASME2_5 = Protocol("casme2-5class", CASME2_CLASSES, {"casme2": _identity(CASME2_CLASSES)})
SAMM_5 = Protocol("samm-5class", SAMM_CLASSES, {"samm": _identity(SAMM_CLASSES)})
SMIC_3 = Protocol("smic-3class", SMIC_CLASSES, {"smic": _identity(SMIC_CLASSES)})
MEGC_3 = Protocol(
    "megc2019-3class",
    MEGC_CLASSES,
    {
        "casme2": {"disgust": "negative", "repression": "negative", "happiness": "positive",
                   "surprise": "surprise"},
        "samm": {"anger": "negative", "contempt": "negative", "disgust": "negative", "fear": "negative",
                 "sadness": "negative", "happiness": "positive", "surprise": "surprise"},
        "smic": _identity(SMIC_CLASSES),
    },
)

PROTOCOLS = {p.name: p for p in (CASME2_5, SAMM_5, SMIC_3, MEGC_3)}


def apply_protocol(coded: pd.DataFrame, protocol: Protocol,
                   source_alias: dict[str, str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split coded clips into (clips with ``label``, exclusions with ``reason``).

    ``coded`` has the clip-table columns except ``label``. ``source_alias`` maps a clip's
    ``dataset`` value to the protocol's source key (synthetic presets use their own names).
    """
    alias = source_alias or {}
    keep, labels, excluded = [], [], []
    for i, r in enumerate(coded.itertuples(index=False)):
        src = alias.get(r.dataset, r.dataset)
        cls = protocol.class_of(src, r.emotion)
        if cls is None:
            excluded.append({"dataset": r.dataset, "subject": r.subject, "clip": r.clip, "emotion": r.emotion,
                             "reason": f"emotion '{r.emotion}' is not a class of {protocol.name}"})
        else:
            keep.append(i)
            labels.append(protocol.classes.index(cls))
    clips = coded.iloc[keep].copy()
    clips["label"] = labels
    cols = CLIP_COLUMNS + [c for c in clips.columns if c not in CLIP_COLUMNS]
    return clips[cols].reset_index(drop=True), make_exclusions(excluded)
