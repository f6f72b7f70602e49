"""``python -m tests.cli_probe ARGS``: ``benchmarks.run`` with two test-only methods registered, as a user's
module in ``benchmarks/methods/`` would register them (README, "Adding a method").

``probe_ok`` is a logistic regression on the 8x8 grey apex frame; ``probe_fail`` is the same method whose
feature function raises, so each of its units fails honestly inside the harness (reported, not cached).
Spawned worker processes import this module too, so the methods exist there as well.
"""

from __future__ import annotations

import sys

from sklearn.linear_model import LogisticRegression

from benchmarks import registry
from benchmarks.data.views import ViewSpec
from benchmarks.run import main

PROBE_ERROR = "probe failure (a test-only method that always fails)"


def _features(cfg):
    def features(views):
        if cfg["fail"]:
            raise RuntimeError(PROBE_ERROR)
        return views["apex_frame"].astype(float).ravel() / 255.0
    return features


registry._ensure_loaded()
for _name, _fail in (("probe_ok", False), ("probe_fail", True)):
    registry.register_method(registry.MethodSpec(
        name=_name, family="handcrafted", views=(ViewSpec.of("apex_frame", size=8, color="gray"),),
        defaults={"c": 1.0, "fail": _fail}, build=_features,
        classifier=lambda cfg: LogisticRegression(C=cfg["c"], max_iter=300),
        citation="test", paper="test", sources={"c": "test", "fail": "test"}))

if __name__ == "__main__":
    sys.exit(main())
