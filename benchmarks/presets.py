"""Run presets: how much compute a table gets. Every preset is printed in the tables' footers.

- ``smoke``: a plumbing check that finishes any table in about a minute: the first
  ``max_folds`` LOSO folds of each dataset and one or two epochs. Its numbers mean nothing.
- ``default``: CPU-sized settings (2 cores, no GPU): every fold, the methods' architectures, fewer
  epochs where the paper's count would take hours here (each override names its reason).
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


# MFVAN at CPU size: the paper gives no input size (mfvan_core/README.md, "Values the paper leaves open");
# 64 px with a 4 x 4 patch grid keeps 16-px patches at scale 1 and costs ~1/4 of the 128 px default per step.
_MFVAN_CPU = {"img_size": 64, "patch_grid": 4}

PRESETS = MappingProxyType({
    "smoke": Preset("smoke", "plumbing check: first 2 folds per dataset, 1 epoch; numbers are meaningless",
                    max_folds=2, epochs=1,
                    overrides={"mfvan": {"img_size": 32, "patch_grid": 4, "pretrain_epochs": 1, "ri_epochs": 1},
                               "dssn": {"input_size": 64}},
                    reasons={"mfvan": "smallest valid input so that a table finishes in about a minute",
                             "dssn": "smallest input the streams accept, for speed"}),
    "default": Preset(
        "default", "all folds; CPU-sized epochs and inputs (see reasons)",
        overrides={"off_apexnet": {"epochs": 100}, "dssn": {"epochs": 20, "input_size": 64},
                   "mfvan": {**_MFVAN_CPU, "epochs": 8, "pretrain_epochs": 2, "ri_epochs": 1}},
        reasons={"off_apexnet": "3000 epochs x 68 folds of a 2.7M-parameter net is hours on 2 CPU cores",
                 "dssn": ("two AlexNet-style streams at 227 px take ~1.7 s per batch of 32 on 2 CPU cores "
                          "(python -m benchmarks.perf); 64 px inputs and 20 epochs keep a fold near 20 s"),
                 "mfvan": ("8 variants x 70 folds at 128 px and 40+10+5 epochs is ~40 CPU-hours; 64 px, 4 x 4 "
                           "patches and 8+2+1 epochs (main, teacher pretraining, RI warm-up) fit Table 3 in "
                           "20 minutes on 2 cores")}),
    "paper": Preset("paper", "the methods' paper-scale settings (registered defaults); meant for a GPU"),
})


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}") from None
