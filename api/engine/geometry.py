"""The least-squares similarity fit shared by face following (api.engine.face_following)
and alignment (api.engine.micro)."""

from __future__ import annotations

import numpy as np


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity (no reflection) taking points `src` onto `dst` (Umeyama's closed form).

    Returns (scale, 2x2 rotation-and-scale matrix, translation) with dst ~ A @ src + t. Degenerate
    points (all in one place, or not finite) give the identity that centres `src` on `dst`.
    """
    src = np.asarray(src, np.float64).reshape(-1, 2)
    dst = np.asarray(dst, np.float64).reshape(-1, 2)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - src_mean, dst - dst_mean
    variance = float((s**2).sum())
    if not np.isfinite(variance) or variance < 1e-6:
        return 1.0, np.eye(2), dst_mean - (src_mean if np.all(np.isfinite(src_mean)) else 0.0)
    # a = sum(s.d)/|s|^2, b = sum(s x d)/|s|^2.
    a = float((s * d).sum()) / variance
    b = float((s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()) / variance
    matrix = np.array([[a, -b], [b, a]])
    return float(np.hypot(a, b)), matrix, dst_mean - matrix @ src_mean
