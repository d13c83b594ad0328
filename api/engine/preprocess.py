"""Face crop -> emotion-model input. Training and serving both call this, so they cannot drift.

The model contract is DeepFace's emotion interface: a float32 batch shaped (n, 48, 48, 1),
grayscale scaled to [0, 1], scored over ``EMOTIONS`` in this order.
"""

from __future__ import annotations

import cv2
import numpy as np

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
MODEL_INPUT_SIZE = 48


def to_grayscale(image: np.ndarray) -> np.ndarray:
    """uint8 BGR (h, w, 3) or grayscale (h, w) -> grayscale (h, w)."""
    if image.ndim == 2:
        return image
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def face_to_model_input(face: np.ndarray) -> np.ndarray:
    """One face crop (uint8, BGR or grayscale, any size) -> (48, 48) float32 in [0, 1].

    INTER_AREA because crops are almost always downscaled and it avoids aliasing;
    FER2013 crops are already 48x48 and pass through unchanged.
    """
    gray = to_grayscale(face)
    if gray.shape != (MODEL_INPUT_SIZE, MODEL_INPUT_SIZE):
        gray = cv2.resize(gray, (MODEL_INPUT_SIZE, MODEL_INPUT_SIZE), interpolation=cv2.INTER_AREA)
    return gray.astype(np.float32) / 255.0


def faces_to_batch(faces: list[np.ndarray]) -> np.ndarray:
    """Face crops -> (n, 48, 48, 1) float32 batch, the shape DeepFace's emotion model takes."""
    if not faces:
        return np.zeros((0, MODEL_INPUT_SIZE, MODEL_INPUT_SIZE, 1), np.float32)
    return np.stack([face_to_model_input(f) for f in faces])[..., None]


# dlib's 5-point layout: 0-1 corners of the eye on the image's right (the person's left eye),
# 2-3 corners of the eye on the image's left, 4 the base of the nose.
RIGHT_IMAGE_EYE = slice(0, 2)
LEFT_IMAGE_EYE = slice(2, 4)
NOSE = 4
# Detector boxes are tight around brows-to-chin; FER2013-style crops show a little more face.
CROP_SCALE = 1.2


def eye_line_degrees(landmarks: np.ndarray) -> float:
    """The turn (cv2.getRotationMatrix2D's angle) that levels the eyes of dlib's 5 points."""
    dx, dy = landmarks[RIGHT_IMAGE_EYE].mean(axis=0) - landmarks[LEFT_IMAGE_EYE].mean(axis=0)
    return float(np.degrees(np.arctan2(dy, dx)))


def crop_face(
    image: np.ndarray, box: np.ndarray, landmarks: np.ndarray | None, scale: float = CROP_SCALE
) -> np.ndarray:
    """Square crop around `box` (its longer side times `scale`), rotated so the eyes are level when
    landmarks are known.

    The crop keeps source resolution; `face_to_model_input` does the one downscale, so large
    faces are area-averaged rather than aliased by the warp.
    """
    x, y, w, h = (float(v) for v in box)
    center = (x + w / 2, y + h / 2)
    side = max(1, int(round(max(w, h) * scale)))
    angle = eye_line_degrees(landmarks) if landmarks is not None else 0.0
    matrix = cv2.getRotationMatrix2D(center, angle, 1.0)
    matrix[:, 2] += np.array([side / 2 - center[0], side / 2 - center[1]])
    return cv2.warpAffine(image, matrix, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
