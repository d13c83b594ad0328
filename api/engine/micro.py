"""Micro-expression spotting on face tracks (onset, apex, offset, regions, emotion at apex).

Input per track: face crops aligned to one canonical template, so head translation, scale and
in-plane rotation are removed before any motion is measured.
"""
from __future__ import annotations

import cv2
import numpy as np

from api.engine.results import MicroExpression

ALIGNED_SIZE = 112
# Where dlib's 5 points land in the aligned crop (fractions of its side): outer and inner corner
# of the eye on the image's right, outer and inner corner of the other eye, base of the nose.
# Measured on real photos, with margins that keep brows and chin inside the crop.
TEMPLATE = np.array([(0.707, 0.375), (0.579, 0.38), (0.293, 0.375), (0.421, 0.38), (0.5, 0.6)], np.float32)


def align_face(gray: np.ndarray, landmarks: np.ndarray, size: int = ALIGNED_SIZE) -> np.ndarray:
    """Similarity-warp a face onto the template: (size, size) uint8 grayscale."""
    matrix, _ = cv2.estimateAffinePartial2D(landmarks.astype(np.float32), TEMPLATE * size, method=cv2.LMEDS)
    if matrix is None:  # degenerate points: fall back to the eye-and-nose triangle
        matrix = cv2.getAffineTransform(landmarks[[0, 2, 4]].astype(np.float32), TEMPLATE[[0, 2, 4]] * size)
    return cv2.warpAffine(gray, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def spot_micro_expressions(aligned: np.ndarray, timestamps_ms: np.ndarray, emotions: np.ndarray,
                           sensitivity: float) -> list[MicroExpression]:
    """(T, S, S) aligned crops of one track, their times and (T, 7) emotions -> events.

    `track_id` on the returned events is left for the caller to set.
    """
    return []
