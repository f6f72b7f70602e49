"""Measured hot paths (pytest-benchmark): ``python -m benchmarks.perf [--json PATH]``.

``test_hot_paths.py`` holds the benchmarks (marker ``perf``, outside the default suite): LBP-TOP per clip,
LBP per XY plane beside scikit-image, TV-L1 per frame pair beside OpenCV called directly, optical strain,
Bi-WOOF, and forward / train step of each deep model. ``report.py`` turns the saved JSON into the table of
medians with the ratio to each reference; ``__main__.py`` runs both.
"""
