"""The 468-point mesh and the head pose read from it, on real faces turned in known ways."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from api.engine import detection
from api.engine.analyzer import AnalysisOptions
from api.engine.blazeface import BlazeFaceClient
from api.engine.mesh import POINTS, face_box, five_points, head_pose
from api.engine.preprocess import eye_line_degrees
from tests.conftest import FACES
from tests.test_blazeface import rotated

pytestmark = pytest.mark.data


def poses(analyzer, image: np.ndarray) -> list:
    """Head poses of the faces BlazeFace finds, left to right."""
    found = sorted(detection.detect(analyzer.detectors["blazeface"], image), key=lambda d: d.box[0])
    return [head_pose(d.mesh) for d in found]


def test_a_face_looking_into_the_camera_has_a_pose_near_zero(analyzer):
    (pose,) = poses(analyzer, cv2.imread(str(FACES / "img1.jpg")))
    assert max(abs(pose.yaw), abs(pose.pitch), abs(pose.roll)) < 10 and pose.facing_camera


def test_a_mirror_image_turns_the_other_way(analyzer):
    image = cv2.imread(str(FACES / "couple.jpg"))
    turned, mirrored = poses(analyzer, image), poses(analyzer, cv2.flip(image, 1))[::-1]
    assert len(turned) == len(mirrored) == 2
    for pose, mirror in zip(turned, mirrored):
        assert pose.yaw > 10 and mirror.yaw < -10  # both people look towards the picture's right
        assert abs(pose.yaw + mirror.yaw) < 6 and abs(pose.roll + mirror.roll) < 6


@pytest.mark.parametrize("degrees", [-30, 30])
def test_turning_the_picture_shows_as_roll(analyzer, degrees):
    (upright,) = poses(analyzer, cv2.imread(str(FACES / "img1.jpg")))
    (turned,) = poses(analyzer, rotated(cv2.imread(str(FACES / "img1.jpg")), degrees))
    # cv2 turns counter-clockwise for positive angles; roll counts clockwise.
    assert turned.roll - upright.roll == pytest.approx(-degrees, abs=5)


def test_a_face_cut_by_the_edge_never_gets_a_nan_angle(analyzer):
    image = cv2.imread(str(FACES / "img1.jpg"))
    (face,) = detection.detect(analyzer.detectors["blazeface"], image)
    x, y, w, h = face.box.astype(int)
    for cut in (image[:, x + w // 2 :], image[y + h // 2 :, :], image[:, : x + w // 3]):
        for pose in poses(analyzer, np.ascontiguousarray(cut)):
            assert all(math.isfinite(v) for v in (pose.yaw, pose.pitch, pose.roll))


def test_a_degenerate_mesh_has_no_pose():
    assert head_pose(np.zeros((POINTS, 3), np.float32)) is None
    assert head_pose(np.full((POINTS, 3), np.nan, np.float32)) is None


def test_the_api_gives_pose_always_and_the_mesh_on_request(client, auth, assert_contract):
    def analyze(**fields):
        with (FACES / "img1.jpg").open("rb") as photo:
            response = client.post("/v1/analyze", headers=auth, data={"file": photo, "detector": "blazeface", **fields})
        assert response.status_code == 200, response.get_data(as_text=True)
        assert_contract(response)
        return response.json["faces"][0]

    plain = analyze()
    assert "mesh" not in plain and plain["facing_camera"] is True
    assert set(plain["head_pose"]) == {"yaw", "pitch", "roll"}
    with_mesh = analyze(return_mesh="true")
    assert len(with_mesh["mesh"]) == POINTS and len(with_mesh["mesh"][0]) == 3


def test_blazeface_faces_take_their_five_points_from_the_mesh_and_dlib_sized_crops(analyzer):
    """On BlazeFace's boxes the named points are the mesh's, run levelled by the eyes of the mesh that confirmed
    the face (they sit on dlib's own within a few percent of the eye distance), and the emotion crop has the
    size dlib's box gives the same face."""
    pixels = cv2.imread(str(FACES / "img1.jpg"))
    found = {name: analyzer._find_faces(pixels, AnalysisOptions(detector=name)) for name in ("dlib", "blazeface")}
    ((dlib_face,), (dlib_crop,)), ((blaze_face,), (blaze_crop,)) = found["dlib"], found["blazeface"]
    (detected,) = detection.detect(analyzer.detectors["blazeface"], pixels)
    levelled = analyzer.mesh(pixels, detected.box, eye_line_degrees(five_points(detected.mesh)))
    np.testing.assert_allclose(blaze_face.landmarks, five_points(levelled.points), atol=1e-3)
    eye_distance = np.linalg.norm(dlib_face.landmarks[0:2].mean(axis=0) - dlib_face.landmarks[2:4].mean(axis=0))
    assert np.linalg.norm(blaze_face.landmarks - dlib_face.landmarks, axis=1).max() < 0.1 * eye_distance
    assert blaze_crop.shape[0] == pytest.approx(dlib_crop.shape[0], rel=0.05)


def test_blazeface_keeps_only_the_faces_the_mesh_confirms(analyzer):
    image = cv2.imread(str(FACES / "img1.jpg"))
    client = analyzer.detectors["blazeface"]
    assert len(client.detect_faces(image)) == 1
    assert BlazeFaceClient(client.looks, lambda *args: None).detect_faces(image) == []


def test_a_degenerate_mesh_has_no_box():
    assert face_box(np.zeros((POINTS, 3), np.float32)) is None
    assert face_box(np.full((POINTS, 3), np.nan, np.float32)) is None
