"""Clips: run the face detector every `DETECT_PERIOD_MS` and follow each face in between.

Between detections each face is re-localised by dlib's 5-point shape predictor (DeepFace's
`client.model["sp"]`, 0.2-1 ms a call) started on the face's previous box, or, with BlazeFace, by the
face mesh run on the region of the face's previous box and eye line (MediaPipe's own way of following
a face; the mesh is needed on every frame anyway). The landmarks found give the face's movement, and
the box is the detector's box at the last detection moved by the similarity that takes that
detection's landmarks onto the new ones, so it never drifts from a chain of frame-to-frame
estimates. A face counts as lost, and the detector runs on that very frame, when its eye-aligned patch
stops resembling the one taken at the detection (normalised cross-correlation below
`MIN_PATCH_SIMILARITY`), when the box leaves the picture or changes size implausibly, or when the mesh
sees no face. A detection that fails to find a followed face is repeated on the next frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from api.engine.geometry import fit_similarity
from api.engine.mesh import FaceMesh, five_points
from api.engine.preprocess import eye_line_degrees

# Detect at least 5 times per second of video: a face entering the picture is found within
# 200 ms, and every followed face is re-anchored on a detector box at that rate.
DETECT_PERIOD_MS = 200.0
# Eye-aligned patches (PATCH_SIZE px) compared with the patch taken at the last detection.
# Measured with `python bench/follow_calibration.py` (every detection in the 4 real clips followed
# for 6 frames = 200 ms at 30 fps, one landmark pass): the same face scores 0.70 at worst (p0.1
# 0.74, median 0.97, n=3633); once the face has gone (face_noface.mov) at most 0.00; followed
# across a cut into another clip at most 0.61 (a face cut to another face in the same place).
# A false "lost" only costs one extra detection, so the threshold sits nearer the same-face side.
PATCH_SIZE = 32
MIN_PATCH_SIMILARITY = 0.65
# Shape-predictor passes per followed frame, started from the previous box. A second pass, from
# the box the first pass implies, changed nothing measurable (bench/follow_calibration.py
# --passes 2: followed-vs-detector box IoU median 0.960 and p5 0.689 either way) and cost 11% of
# clip throughput (the predictor's trees miss the cache between frames: ~1 ms a call in the pipeline).
LANDMARK_PASSES = 1
# Between two detections (200 ms) a face changes size by far less than this factor.
MAX_SCALE_CHANGE = 1.5

# dlib's 5 points onto a PATCH_SIZE patch: eye corners and nose base, same layout as micro.TEMPLATE
# but kept here so the loss test does not move when the spotter's template is tuned.
_PATCH_TEMPLATE = np.array([(0.70, 0.36), (0.58, 0.37), (0.30, 0.36), (0.42, 0.37), (0.5, 0.6)], np.float64)


def move_box(box: np.ndarray, old_points: np.ndarray, new_points: np.ndarray) -> np.ndarray:
    """The axis-aligned box (x, y, w, h) moved and scaled as the landmarks moved.

    The centre goes where the similarity takes it; width and height scale with it. Rotation
    moves the centre but leaves the box axis-aligned, like the detector's boxes.
    """
    scale, matrix, shift = fit_similarity(old_points, new_points)
    x, y, w, h = (float(v) for v in box)
    cx, cy = matrix @ np.array([x + w / 2, y + h / 2]) + shift
    w, h = w * scale, h * scale
    return np.array([cx - w / 2, cy - h / 2, w, h], np.float32)


def aligned_patch(gray: np.ndarray, points: np.ndarray, size: int = PATCH_SIZE) -> np.ndarray:
    """(size, size) float32 patch of the face, eyes on fixed positions, zero mean and unit norm."""
    _, matrix, shift = fit_similarity(points, _PATCH_TEMPLATE * size)
    warp = np.hstack([matrix, shift[:, None]])
    patch = cv2.warpAffine(gray, warp, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    patch = patch.astype(np.float32)
    patch -= patch.mean()
    norm = float(np.linalg.norm(patch))
    return patch / norm if norm > 1e-6 else patch


def patch_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised cross-correlation of two `aligned_patch` results, in [-1, 1]."""
    return float((a * b).sum())


def plausible(box: np.ndarray, anchor_box: np.ndarray, width: int, height: int) -> bool:
    """The followed box still lies mostly in the picture and has not jumped in size."""
    x, y, w, h = (float(v) for v in box)
    if not np.all(np.isfinite(box)) or w < 1 or h < 1:
        return False
    ratio = w / max(float(anchor_box[2]), 1e-6)
    if not 1 / MAX_SCALE_CHANGE <= ratio <= MAX_SCALE_CHANGE:
        return False
    cx, cy = x + w / 2, y + h / 2
    return 0 <= cx < width and 0 <= cy < height


def clip_box(box: np.ndarray, width: int, height: int) -> np.ndarray:
    """Clamp (x, y, w, h) to the picture, as detector boxes are."""
    x0, y0 = max(0.0, float(box[0])), max(0.0, float(box[1]))
    x1, y1 = min(float(width), float(box[0] + box[2])), min(float(height), float(box[1] + box[3]))
    return np.array([x0, y0, max(0.0, x1 - x0), max(0.0, y1 - y0)], np.float32)


@dataclass
class Followed:
    """A face between detections: where the detector last saw it, and where it is now."""

    anchor_box: np.ndarray  # detector box at the last detection (source pixels, unclipped)
    anchor_points: np.ndarray  # landmarks at that detection
    anchor_patch: np.ndarray  # aligned_patch at that detection
    confidence: float  # detector confidence at that detection
    box: np.ndarray  # current box
    points: np.ndarray  # current landmarks
    mesh: np.ndarray | None = None  # current face mesh (468, 3), when the mesh follows the face


def start(
    gray: np.ndarray, box: np.ndarray, points: np.ndarray, confidence: float, mesh: np.ndarray | None = None
) -> Followed:
    box = np.asarray(box, np.float32)
    return Followed(box, points, aligned_patch(gray, points), confidence, box, points, mesh)


def relocate(
    landmarks: Callable[[np.ndarray, np.ndarray], np.ndarray],
    gray: np.ndarray,
    face: Followed,
    passes: int | None = None,
) -> Followed | None:
    """Find `face` in the next frame (`gray`); None when it is lost.

    `landmarks(gray, box) -> (5, 2)` is the 5-point predictor, started from the previous box; with
    `passes` > 1 each further pass starts from the box the previous pass implies.
    """
    height, width = gray.shape[:2]
    box = face.box
    for _ in range(passes or LANDMARK_PASSES):
        points = landmarks(gray, box)
        box = move_box(face.anchor_box, face.anchor_points, points)
        if not plausible(box, face.anchor_box, width, height):
            return None
    return _still_the_face(gray, face, box, points)


def relocate_by_mesh(mesh: FaceMesh, gray: np.ndarray, face: Followed) -> Followed | None:
    """Find `face` in the next frame (`gray`) by its mesh, run on the region of its previous box turned by
    its previous eye line; None when it is lost (the mesh sees no face there, or as in `relocate`)."""
    found = mesh(gray, face.box, eye_line_degrees(face.points))
    if found is None:
        return None
    points = five_points(found.points)
    box = move_box(face.anchor_box, face.anchor_points, points)
    height, width = gray.shape[:2]
    if not plausible(box, face.anchor_box, width, height):
        return None
    return _still_the_face(gray, face, box, points, found.points)


def _still_the_face(
    gray: np.ndarray, face: Followed, box: np.ndarray, points: np.ndarray, mesh: np.ndarray | None = None
) -> Followed | None:
    """`face` moved to `box` and `points`, unless its eye-aligned patch no longer resembles the detection's."""
    if patch_similarity(aligned_patch(gray, points), face.anchor_patch) < MIN_PATCH_SIMILARITY:
        return None
    return Followed(face.anchor_box, face.anchor_points, face.anchor_patch, face.confidence, box, points, mesh)


def detection_due(timestamp_ms: float, last_detection_ms: float | None, period_ms: float = DETECT_PERIOD_MS) -> bool:
    """Whether the schedule calls for the detector on a frame at `timestamp_ms`.

    The 1 ms slack keeps a 30 fps clip (33.33 ms frames) on every 6th frame despite rounding.
    """
    return last_detection_ms is None or timestamp_ms - last_detection_ms >= period_ms - 1.0
