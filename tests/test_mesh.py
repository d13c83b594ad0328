"""The 468-point mesh and the head pose read from it, on real faces turned in known ways."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from api.engine import detection
from api.engine.mesh import POINTS, head_pose
from api.engine.preprocess import eye_line_degrees, to_grayscale
from tests.conftest import FACES
from tests.test_blazeface import rotated

pytestmark = pytest.mark.data


def poses(analyzer, image: np.ndarray) -> list:
    """Head poses of the faces BlazeFace finds, left to right."""
    found = sorted(detection.detect(analyzer.detectors["blazeface"], image), key=lambda d: d.box[0])
    gray = to_grayscale(image)
    meshes = [analyzer.mesh(image, d.box, eye_line_degrees(analyzer.landmarks(gray, d.box))) for d in found]
    return [head_pose(m.points) for m in meshes if m is not None]


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
    for cut in (image[:, x + w // 2:], image[y + h // 2:, :], image[:, : x + w // 3]):
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
