"""Run presets: how much compute a table gets. Every preset is printed in the tables' footers.

- ``smoke``: a plumbing check that finishes any table in about a minute: the first
  ``max_folds`` LOSO folds of each dataset and one or two epochs. Its numbers mean nothing.
- ``default``: CPU-sized settings (2 cores, no GPU): every fold, the methods' architectures, fewer
  epochs where the paper's count would take hours here (each override names its reason).
- ``long``: the default's inputs with the epochs the apex-only models need to learn on this CPU (hours).
- ``leaderboard``: the budget of the leaderboard table (``--table leaderboard``) on 2 CPU cores: every
  fold, two trainings per fold (``last`` and ``oracle`` share one, ``val`` is its own), about 10 s per
  fold-training for each method; the epoch cuts are printed with the wall time the full budget needs.
- ``paper``: the paper-scale settings of each method (its registered defaults), meant for a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

SAME_AS_MFVAN = ("img_size", "epochs", "batch_size", "lr", "weight_decay", "lr_schedule", "warmup_epochs")


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    max_folds: int | None = None
    epochs: int | None = None                    # for every deep method, unless overridden per method
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)   # method -> hyperparameters
    reasons: dict[str, str] = field(default_factory=dict)                # method -> why overridden

    def __post_init__(self) -> None:
        """The plain apex reference (``apex_cnn``) gets MFVAN's input size and budget at every preset."""
        same = {k: v for k, v in self.overrides.get("mfvan", {}).items() if k in SAME_AS_MFVAN}
        if same and "apex_cnn" not in self.overrides:
            self.overrides["apex_cnn"] = same
            self.reasons["apex_cnn"] = "MFVAN's input size and budget at this preset (identical inputs and budget)"

    def overrides_for(self, method: str, family: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.epochs is not None and family == "deep":
            out["epochs"] = self.epochs
        out.update(self.overrides.get(method, {}))
        return out


# MFVAN at CPU size: the paper gives no input size or schedule (mfvan_core/README.md, "Values the paper leaves
# open"). 32 px with a 4 x 4 patch grid (8-px patches at scale 1) costs 1/2 (Global) to 4/5 (multi-scale) of a
# 64 px step; 6 epochs of batch 32 at Adam 3e-3 with 1 warm-up epoch then cosine decay, RI stages 1 + 1 epochs:
# what fits Table 3 in 20 minutes (mfvan_core/README.md, "Calibration of the synthetic default"); the plain
# reference (apex_cnn) gets the same input and schedule (Preset.__post_init__).
_MFVAN_CPU = {"img_size": 32, "patch_grid": 4, "epochs": 6, "batch_size": 32, "lr": 3e-3,
              "lr_schedule": "cosine", "warmup_epochs": 1, "pretrain_epochs": 1, "ri_epochs": 1}
# What the apex models need to learn on this CPU: the default's inputs and schedule with 30 epochs (RI stages
# 2 + 1). At the default's 6 epochs every apex-only model, MFVAN and the plain reference alike, stays near chance
# (mfvan_core/README.md, "Calibration of the synthetic default"); the drift check's MFVAN cells use these values.
_MFVAN_LONG = {**_MFVAN_CPU, "epochs": 30, "pretrain_epochs": 2, "ri_epochs": 1}
# The seed systems of issue 14 (tables/seeds.toml) at CPU size. Wall per synthetic-megc2019 fold (~437 training
# clips, one torch thread, two workers on the 2 cores; the units' `wall_s` of a seeds-table run): MFDAN 65 s
# for 4 epochs at 64 px, micro-attention 65 s for 8 passes at 64 px (so ~8 s per pass; ~130 s per pass at 224).
_SEEDS_SIZE = {
    # the authors' CDE setting has no random crop (train_resize = input_size)
    "micro_attention": {"input_size": 64, "train_resize": 64},
    # 10 frames: the repository's SMIC setting (SMIC/ME_model.py), for every source here
    "icip3d_gru": {"image_size": 32, "n_frames": 10},
    # window 2 of a 16-token side is Swin's window 7 of 56 at 224 px (an eighth of the side); the substitute
    # magnification's cut-off wavelength scaled from 16 px at 224 to 64 px
    "mfdan": {"input_size": 64, "window": 2, "magnify_lambda_c": round(16 * 64 / 224, 2)},
}
# 4 epochs each: what one seeds-table run (66 folds) and the composite's micro-attention run fit in about 1.5 h
# on 2 cores; micro-attention's x0.1 step every pass keeps four of the solver's five levels (0.01 ... 1e-5).
_SEEDS_CPU = {"micro_attention": {**_SEEDS_SIZE["micro_attention"], "epochs": 4, "lr_step_size": 1},
              "icip3d_gru": {**_SEEDS_SIZE["icip3d_gru"], "epochs": 4},
              "mfdan": {**_SEEDS_SIZE["mfdan"], "epochs": 4}}
_SEEDS_REASONS = {
    "micro_attention": ("64 px, 4 passes with a x0.1 step after each (the solver's 54 with a step every 11): "
                        "~8 s per fold-epoch here; 224 px and 54 passes ~130 h for 66 folds"),
    "icip3d_gru": ("32 px, 10 frames (its SMIC setting), 4 of 200 epochs: ~10 s per fold-epoch here; 128 px "
                   "x 30 frames and 200 epochs ~2200 h (~600 s per fold-epoch)"),
    "mfdan": ("64 px (the flow stream's smallest input), window 2 (an eighth of the token side, as 7 of 56), "
              "4 of 100 epochs: ~16 s per fold-epoch here, 72 CPU-min for 66 folds; 224 px and 100 epochs "
              "~550 h"),
}
_OTHERS_CPU = {"off_apexnet": {"epochs": 100}, "dssn": {"epochs": 20, "input_size": 64}, **_SEEDS_CPU}
_OTHERS_REASONS = {
    "off_apexnet": "3000 epochs x 68 folds of a 2.7M-parameter net is hours on 2 CPU cores",
    "dssn": ("two AlexNet-style streams at 227 px take ~1.7 s per batch of 32 on 2 CPU cores "
             "(python -m benchmarks.perf); 64 px inputs and 20 epochs keep a fold near 20 s"),
    **_SEEDS_REASONS}

# Per fold-epoch wall on the public composite (one fold, ~436 training clips, one torch thread, two such
# processes at once: `python -m benchmarks.perf.epoch_cost`), and the leaderboard's cuts for its two trainings
# x 68 folds per method on 2 cores.
_BOARD = {"off_apexnet": {"epochs": 30}, "ststnet": {"epochs": 100}, "dual_atme": {"epochs": 10},
          "dssn": {"epochs": 8, "input_size": 64}, "off_tanet": {"epochs": 3}, "htnet": {"epochs": 1},
          "micro_attention": dict(_SEEDS_CPU["micro_attention"]),
          "mfvan": dict(_MFVAN_CPU)}
_BOARD_REASONS = {
    "off_apexnet": "0.35 s per fold-epoch: 3000 epochs x 2 trainings x 68 folds is ~20 h on 2 cores",
    "ststnet": "0.12 s per fold-epoch: 800 epochs x 2 trainings x 68 folds is ~1.8 h on 2 cores",
    "dual_atme": ("1.3 s per fold-epoch: 60 epochs x 2 trainings x 68 folds is ~1.5 h on 2 cores; 10 epochs end "
                  "before StepLR's first decay"),
    "dssn": ("64 px (the smallest input the streams accept) at 1.4 s per fold-epoch; 100 epochs at 227 px "
             "(26 s per fold-epoch) would take ~50 h on 2 cores"),
    "off_tanet": "3.8 s per fold-epoch at 112 px: 201 epochs x 2 trainings x 68 folds is ~14 h on 2 cores",
    "htnet": ("139.6M parameters, 26.5 s per fold-epoch: 800 epochs x 2 trainings x 68 folds is ~400 h on 2 cores; "
              "one epoch (31 min for the table) means nothing: run it on a GPU"),
    "mfvan": "the default preset's MFVAN settings (32 px, 6 epochs); Global + scale 1,2,3 has no RI stages",
    "micro_attention": ("the default preset's 64 px and 4 passes (the seeds table's budget): ~8 s per fold-epoch, "
                        "2 trainings x 68 folds ~36 min on 2 cores; 224 px (130 s per fold-epoch) and its 54 "
                        "passes (2500 iterations of 16) x 2 trainings x 68 folds is ~260 h on 2 cores"),
}

PRESETS = MappingProxyType({
    "smoke": Preset("smoke", "plumbing check: first 2 folds per dataset, 1 epoch; numbers are meaningless",
                    max_folds=2, epochs=1,
                    overrides={"mfvan": {"img_size": 32, "patch_grid": 4, "pretrain_epochs": 1, "ri_epochs": 1},
                               "dssn": {"input_size": 64}, **_SEEDS_SIZE},
                    reasons={"mfvan": "smallest valid input so that a table finishes in about a minute",
                             "dssn": "smallest input the streams accept, for speed",
                             **{m: "the default preset's CPU input size, for speed" for m in _SEEDS_SIZE}}),
    "default": Preset(
        "default", "all folds; CPU-sized epochs and inputs (see reasons)",
        overrides={**_OTHERS_CPU, "mfvan": dict(_MFVAN_CPU)},
        reasons={**_OTHERS_REASONS,
                 "mfvan": ("8 variants x 70 folds at 128 px and 40+10+5 epochs is ~40 CPU-hours; 32 px, 4 x 4 "
                           "patches and 6+1+1 epochs (main with 1 warm-up epoch then cosine, teacher "
                           "pretraining, RI warm-up) fit Table 3 in 20 minutes on 2 cores (measured 18.3 min); "
                           "too few steps for any apex model to learn here (see the long preset)")}),
    "long": Preset(
        "long", "all folds; the default's CPU inputs, with the epochs the apex models need to learn here",
        overrides={**_OTHERS_CPU, "mfvan": dict(_MFVAN_LONG)},
        reasons={**_OTHERS_REASONS,
                 "mfvan": ("the default's 32 px inputs and schedule with 30+2+1 epochs: the default's 6 leave "
                           "MFVAN and the plain reference near chance; Table 3 ~1.3 h on 2 cores "
                           "(estimated from the default's measured 18.3 min)")}),
    "leaderboard": Preset(
        "leaderboard", "all folds; the leaderboard's CPU budget (two trainings per fold, ~10 s each per method)",
        overrides=_BOARD, reasons=dict(_BOARD_REASONS)),
    "paper": Preset("paper", "the methods' paper-scale settings (registered defaults); meant for a GPU"),
})


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}") from None
