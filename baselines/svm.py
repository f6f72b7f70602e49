"""Linear SVM classifier shared by the handcrafted baselines (LBP-TOP, Bi-WOOF).

The reference scripts use LIBSVM's linear SVC (``IcedDoggie/ME_Autoencoders`` ``lbptop_baseline.py``:
``SVC(kernel='linear', C=10000, decision_function_shape='ovr')`` on unscaled features). scikit-learn's
``SVC`` wraps the same LIBSVM solver (one-vs-one training for multi-class). Features are standardised by a
``StandardScaler`` fitted inside the pipeline, so when the harness fits the pipeline on a training fold only,
the scaling statistics never see the test subject. ``standardize=False`` gives the reference's unscaled input.
The pipeline is deterministic (LIBSVM's randomness is only used for probability estimates, which are off).
"""

from __future__ import annotations

from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC


def linear_svm(c: float, *, standardize: bool = True, class_weight: str | dict | None = None) -> Pipeline:
    """Unfitted ``[StandardScaler ->] SVC(kernel='linear', C=c)``; fit it on one training fold."""
    if not c > 0:
        raise ValueError(f"linear_svm: C must be > 0, got {c!r}")
    svc = SVC(kernel="linear", C=float(c), class_weight=class_weight, decision_function_shape="ovr")
    return make_pipeline(StandardScaler(), svc) if standardize else make_pipeline(svc)
