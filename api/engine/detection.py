"""Face detection through DeepFace's detector clients, plus dlib's 5-point landmarks."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import dlib
import numpy as np
from deepface.modules import modeling

DETECTORS = ("dlib", "opencv")
SKIP = "skip"
# Detectors run on a downscaled copy: cost grows with pixels, and faces smaller than
# ~1/16 of a 640 px frame carry too little expression to classify anyway.
DETECT_MAX_SIDE = 640


@dataclass
class Detection:
    box: np.ndarray  # (x, y, w, h) in source pixels
    confidence: float


def load_detector(name: str):
    """DeepFace's own client, built once and cached by DeepFace."""
    return modeling.build_model(task="face_detector", model_name=name)


def detect(client, image: np.ndarray) -> list[Detection]:
    scale = min(1.0, DETECT_MAX_SIDE / max(image.shape[:2]))
    small = image if scale == 1.0 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    height, width = image.shape[:2]
    detections = []
    for region in client.detect_faces(small):
        x0, y0 = max(0.0, region.x / scale), max(0.0, region.y / scale)
        x1, y1 = min(width, (region.x + region.w) / scale), min(height, (region.y + region.h) / scale)
        if x1 <= x0 or y1 <= y0:
            continue
        box = np.array([x0, y0, x1 - x0, y1 - y0], np.float32)
        confidence = float(np.clip(region.confidence or 0.0, 0.0, 1.0))
        detections.append(Detection(box, confidence))
    return detections


class LandmarkPredictor:
    def __init__(self, model_path: str) -> None:
        self._predictor = dlib.shape_predictor(model_path)

    def __call__(self, gray: np.ndarray, box: np.ndarray) -> np.ndarray:
        x, y, w, h = (int(round(v)) for v in box)
        shape = self._predictor(gray, dlib.rectangle(x, y, x + w, y + h))
        return np.array([(p.x, p.y) for p in shape.parts()], np.float32)
