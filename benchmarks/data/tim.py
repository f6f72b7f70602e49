"""Temporal interpolation of a frame sequence to a fixed length: the TIM of Zhou et al., and linear.

TIM (temporal interpolation model; Z. Zhou, G. Zhao, M. Pietikainen, "Towards a practical
lipreading system", CVPR 2011; used for micro-expressions by T. Pfister, X. Li, G. Zhao,
M. Pietikainen, "Recognising spontaneous facial micro-expressions", ICCV 2011, before LBP-TOP):

1. The n frames are the vertices of a path graph P_n (frame t joined to frame t+1). The
   eigenvectors of its Laplacian L = D - A (A the adjacency, D the degrees) give a 1-D curve: the
   eigenvector of the k-th smallest eigenvalue 2 - 2 cos(pi k / n) is, up to a scale c_k,
   y_k(t) = sin(pi k t / n + pi (n - k) / (2n)) = cos(pi k (t - 1/2) / n),  t = 1..n,
   a function that extends continuously to any real t in [1, n]. Dropping the constant k = 0,
   frame t is embedded at the curve point y(t) = (c_k y_k(t))_{k=1..n-1}.
2. A linear mapping from the curve to the mean-centred frame vectors, x_t - mu = M^T y(t), is
   fitted to the n (curve point, frame) pairs (least squares; exact here because the embedded
   points are orthonormal columns spanning exactly the centred subspace).
3. N new frames are synthesised at N equally spaced curve positions t_j = 1 + (n - 1) j / (N - 1),
   j = 0..N-1 (the first and last frames are kept): x'_j = mu + M^T y(t_j).

Zhou's reference Matlab code (TrainPGM/synPGM) goes through a PCA of the centred frames first
(x_t - mu = U q_t) and learns W with W^T q_t = y(t), then synthesises mu + U W^{-T} y(t). That
mapping is the same linear map as M^T above whenever the frames are linearly independent (the
only case the reference code accepts); fitting M directly also handles repeated frames (rank
deficiency, common in high-speed clips with a still face), where the reference code stops.
Per pixel, the result is the unique interpolant of the sequence in span{1, y_1(t), ..., y_{n-1}(t)}.
"""

from __future__ import annotations

import numpy as np


def path_graph_laplacian(n: int) -> np.ndarray:
    """Laplacian D - A of the path graph P_n (n vertices, edges t -- t+1), shape (n, n)."""
    if n < 1:
        raise ValueError(f"path graph needs at least one vertex, got n={n}")
    a = np.zeros((n, n))
    idx = np.arange(n - 1)
    a[idx, idx + 1] = a[idx + 1, idx] = 1.0
    return np.diag(a.sum(axis=1)) - a


def curve_functions(t: np.ndarray, n: int) -> np.ndarray:
    """Continuous Laplacian eigenfunctions y_k(t) = cos(pi k (t - 1/2) / n), k = 0..n-1: (len(t), n)."""
    t = np.asarray(t, dtype=np.float64)
    k = np.arange(n, dtype=np.float64)
    return np.cos(np.pi * np.outer(t - 0.5, k) / n)


def path_graph_embedding(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-decomposition of the P_n Laplacian, ordered by eigenvalue, with each eigenvector's scale.

    Returns ``(vectors, scales)``: ``vectors[:, k]`` is the unit eigenvector of the k-th smallest
    eigenvalue and ``vectors[:, k] == scales[k] * y_k(1..n)`` (checked), so the curve extends to
    real t as ``scales * curve_functions(t, n)``.
    """
    evals, vecs = np.linalg.eigh(path_graph_laplacian(n))
    analytic = curve_functions(np.arange(1, n + 1), n)
    expected = 2.0 - 2.0 * np.cos(np.pi * np.arange(n) / n)
    if not np.allclose(evals, expected, atol=1e-8):
        raise AssertionError(f"path-graph spectrum mismatch for n={n}")    # numerical sanity check
    scales = (vecs * analytic).sum(axis=0) / (analytic * analytic).sum(axis=0)
    if not np.allclose(vecs, analytic * scales, atol=1e-8):
        raise AssertionError(f"path-graph eigenvectors are not the analytic curve for n={n}")
    return vecs, scales


def positions(n_in: int, n_out: int) -> np.ndarray:
    """The N curve positions TIM samples: equally spaced from frame 1 to frame n (1-based)."""
    if n_out < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_out}")
    if n_out == 1:
        return np.array([1.0 + (n_in - 1) / 2.0])
    return 1.0 + (n_in - 1) * np.arange(n_out) / (n_out - 1)


def tim_interpolate(frames: np.ndarray, n_frames: int) -> np.ndarray:
    """TIM: resample a (T, ...) sequence to ``n_frames`` frames (float32, same trailing shape).

    A single input frame is repeated (a curve of one point has no direction).
    """
    x, trailing = _flatten(frames)
    n = x.shape[0]
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    if n == 1:
        return np.repeat(x, n_frames, axis=0).reshape((n_frames, *trailing)).astype(np.float32)
    vecs, scales = path_graph_embedding(n)
    y = vecs[:, 1:]                                      # embedded frames, constant vector dropped
    mu = x.mean(axis=0)
    mapping, *_ = np.linalg.lstsq(y, x - mu, rcond=None)  # (n-1, d): curve -> centred frames
    y_new = curve_functions(positions(n, n_frames), n)[:, 1:] * scales[1:]
    out = mu + y_new @ mapping
    return out.reshape((n_frames, *trailing)).astype(np.float32)


def linear_interpolate(frames: np.ndarray, n_frames: int) -> np.ndarray:
    """Plain linear interpolation in time at the same positions as TIM (not TIM; a baseline option)."""
    x, trailing = _flatten(frames)
    n = x.shape[0]
    t = positions(n, n_frames) - 1.0                     # 0-based
    lo = np.clip(np.floor(t).astype(int), 0, n - 1)
    hi = np.minimum(lo + 1, n - 1)
    w = (t - lo)[:, None]
    out = (1.0 - w) * x[lo] + w * x[hi]
    return out.reshape((n_frames, *trailing)).astype(np.float32)


INTERPOLATORS = {"tim": tim_interpolate, "linear": linear_interpolate}


def interpolate(frames: np.ndarray, n_frames: int, method: str = "tim") -> np.ndarray:
    """Resample ``frames`` (T, ...) to ``n_frames`` with ``method`` in :data:`INTERPOLATORS`."""
    try:
        fn = INTERPOLATORS[method]
    except KeyError:
        raise ValueError(f"unknown interpolation method {method!r}; known: {sorted(INTERPOLATORS)}") from None
    return fn(frames, n_frames)


def _flatten(frames: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    frames = np.asarray(frames)
    if frames.ndim < 2 or frames.shape[0] < 1:
        raise ValueError(f"expected a sequence (T, ...) with T >= 1, got shape {frames.shape}")
    return frames.reshape(frames.shape[0], -1).astype(np.float64), frames.shape[1:]
