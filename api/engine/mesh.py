"""MediaPipe's 468-point face mesh (run by LiteRT) and the head pose read from it.

The mesh model sees a square region around the face, 1.5 times the detector's box and turned so
the eyes are level, as MediaPipe's own pipeline feeds it. It returns x, y in that region's pixels
and a relative depth z in the same units, so the 3-D points map back to the picture by inverting
the region's affine transform (z only scales).

Head pose needs no 3-D face model: the mesh is already 3-D. The face's own axes are taken from
it, eye corner to eye corner and eyes to mouth, and turned into angles. The outer eye corners and
the mouth corners lie close to one plane that faces the camera when the head does: over the 56
faces BlazeFace finds in the 52 real photos (portraits, mostly facing the camera) the median pitch
is +0.5 degrees this way, against -9.5 degrees with the forehead-to-chin line, which leans back.

Pose convention, in degrees, with (0, 0, 0) looking straight into the camera, upright:
- yaw > 0: the face turns towards the picture's right (the person's left);
- pitch > 0: the face tilts up (chin forward);
- roll > 0: the face leans clockwise as seen in the picture (towards the person's left shoulder).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from api.engine.litert import LiteRTModel

MESH_MANIFEST_NAME = "face_mesh"
INPUT_SIDE = 192
ROI_SCALE = 1.5
POINTS = 468
# Canonical mesh indices (MediaPipe's topology).
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263  # the person's right and left
RIGHT_MOUTH_CORNER, LEFT_MOUTH_CORNER = 61, 291
# dlib's 5 points (api.engine.preprocess): outer and inner corner of the eye on the picture's right
# (the person's left eye), outer and inner corner of the other eye, base of the nose. On the 56 faces
# dlib finds in the 52 real photos, these mesh points lie 2.5-4% of the eye distance (median) from
# dlib's own; their neighbours 4-13%.
FIVE_POINTS = (263, 362, 33, 133, 2)
# Facing the camera (or a screen beside it): a viewer 60 cm from a 50 cm wide screen sees its edges
# 22 degrees off centre, and people turn their heads through only part of a gaze shift; the
# remainder allows for this estimate's spread on faces that do face the camera (10th-90th
# percentile of yaw -7 to +6, pitch -9 to +11 degrees over the real photos above).
FACING_MAX_YAW, FACING_MAX_PITCH = 30.0, 25.0
# BlazeFace's box side over the mesh's width across the eye line and its height along it, and how far the
# box's centre lies below the mesh's, in box sides: medians over the 48 upright faces (roll within 10, yaw
# within 20 degrees) BlazeFace finds in the 52 real photos; 10th-90th percentiles 1.07-1.16, 0.95-1.02 and
# 0.00-0.05. Taking the larger of the two sides keeps a face turned (narrower) or nodding (shorter) whole.
MESH_BOX_WIDTH, MESH_BOX_HEIGHT, MESH_BOX_DROP = 1.12, 0.99, 0.02
# The presence score below which the region holds no face (MediaPipe's own cut-off).
MIN_PRESENCE = 0.5
_EPS = 1e-6


@dataclass(frozen=True)
class HeadPose:
    yaw: float
    pitch: float
    roll: float

    @property
    def facing_camera(self) -> bool:
        return abs(self.yaw) <= FACING_MAX_YAW and abs(self.pitch) <= FACING_MAX_PITCH


@dataclass(frozen=True)
class Mesh:
    points: np.ndarray  # (468, 3) float32: x, y in picture pixels, z relative depth (smaller: nearer)
    presence: float


def _unit(vector: np.ndarray) -> np.ndarray | None:
    norm = float(np.linalg.norm(vector))
    return vector / norm if np.isfinite(norm) and norm > _EPS else None


def head_pose(points: np.ndarray) -> HeadPose | None:
    """Yaw, pitch and roll of a mesh (module docstring for the convention); None when the mesh is
    degenerate, so no NaN or infinite angle ever leaves here."""
    across = _unit(points[LEFT_EYE_OUTER] - points[RIGHT_EYE_OUTER])  # picture-right for a frontal face
    down = (
        points[LEFT_MOUTH_CORNER] + points[RIGHT_MOUTH_CORNER] - points[LEFT_EYE_OUTER] - points[RIGHT_EYE_OUTER]
    ) / 2
    if across is None:
        return None
    down = _unit(down - (down @ across) * across)
    if down is None:
        return None
    # x right, y down, z away from the camera is right-handed: across x down points away from the camera.
    facing = -np.cross(across, down)  # towards the camera for a frontal face: (0, 0, -1)
    yaw = np.degrees(np.arctan2(facing[0], -facing[2]))
    pitch = np.degrees(np.arctan2(-facing[1], np.hypot(facing[0], facing[2])))
    roll = np.degrees(np.arctan2(across[1], across[0]))
    angles = np.array([yaw, pitch, roll], np.float64)
    if not np.isfinite(angles).all():
        return None
    return HeadPose(*(round(float(a), 1) for a in angles))


def face_box(points: np.ndarray) -> np.ndarray | None:
    """The detector's square box (x, y, w, h) around a face, read from its mesh along the face's own axes, so
    that tilting the face does not change it; None for a degenerate mesh. On upright faces its side and
    centre are BlazeFace's own: see MESH_BOX_WIDTH."""
    across = _unit(points[LEFT_EYE_OUTER, :2] - points[RIGHT_EYE_OUTER, :2])
    if across is None:
        return None
    down = np.array([-across[1], across[0]])
    along, below = points[:, :2] @ across, points[:, :2] @ down
    side = max(MESH_BOX_WIDTH * float(np.ptp(along)), MESH_BOX_HEIGHT * float(np.ptp(below)))
    middle = (along.max() + along.min()) / 2, (below.max() + below.min()) / 2 + MESH_BOX_DROP * side
    centre = middle[0] * across + middle[1] * down
    box = np.array([centre[0] - side / 2, centre[1] - side / 2, side, side], np.float32)
    return box if np.isfinite(box).all() and side > _EPS else None


def five_points(points: np.ndarray) -> np.ndarray:
    """dlib's 5 named points (its order) from a mesh, (5, 2) float32 in picture pixels."""
    return np.ascontiguousarray(points[list(FIVE_POINTS), :2], np.float32)


def region_transform(box: np.ndarray, eye_line_degrees: float) -> np.ndarray:
    """The 2x3 affine map from the picture to the mesh model's input square."""
    x, y, w, h = (float(v) for v in box)
    side = max(w, h) * ROI_SCALE
    matrix = cv2.getRotationMatrix2D((x + w / 2, y + h / 2), eye_line_degrees, INPUT_SIDE / max(side, 1.0))
    matrix[:, 2] += np.array([INPUT_SIDE / 2 - (x + w / 2), INPUT_SIDE / 2 - (y + h / 2)])
    return matrix


class FaceMesh:
    def __init__(self, model_path: Path) -> None:
        self._model = LiteRTModel(model_path)

    def __call__(self, image: np.ndarray, box: np.ndarray, eye_line_degrees: float = 0.0) -> Mesh | None:
        """The mesh of the face in `box` (BGR or grey picture); None when the region holds no face."""
        matrix = region_transform(box, eye_line_degrees)
        region = cv2.warpAffine(
            image, matrix, (INPUT_SIDE, INPUT_SIDE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        rgb = cv2.cvtColor(region, cv2.COLOR_GRAY2RGB if region.ndim == 2 else cv2.COLOR_BGR2RGB)
        local, presence_logit = self._model.run((rgb.astype(np.float32) / 255.0)[None])
        presence = float(0.5 + 0.5 * np.tanh(presence_logit.ravel()[0] / 2))
        if presence < MIN_PRESENCE:
            return None
        local = local.reshape(POINTS, 3)
        inverse = cv2.invertAffineTransform(matrix)
        xy = local[:, :2] @ inverse[:, :2].T + inverse[:, 2]
        z = local[:, 2:] / np.hypot(*matrix[0, :2])  # the region's scale, undone
        points = np.concatenate([xy, z], axis=1).astype(np.float32)
        return Mesh(points, presence) if np.isfinite(points).all() else None
