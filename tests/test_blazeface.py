"""MediaPipe's BlazeFace through LiteRT: anchors, decoding, and what it finds that dlib's HOG does not."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from api.engine import detection
from api.engine.blazeface import FULL_RANGE, SHORT_RANGE, anchor_centres, blend, find_faces
from api.engine.track_building import iou
from tests.conftest import FACES

pytestmark = pytest.mark.data


@pytest.mark.parametrize(("spec", "count"), [(SHORT_RANGE, 896), (FULL_RANGE, 2304)])
def test_anchor_grids_match_the_models_outputs(spec, count):
    centres = anchor_centres(spec)
    assert centres.shape == (count, 2) and (0 < centres).all() and (centres < 1).all()


def test_overlapping_candidates_blend_into_one_weighted_box():
    corners = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    blended = blend(corners, np.zeros((3, 6, 2), np.float32), np.array([0.9, 0.3, 0.8], np.float32))
    assert [round(score, 1) for _, _, score in blended] == [0.9, 0.8]
    np.testing.assert_allclose(blended[0][0], [0.25, 0.25, 10.25, 10.25])


def rotated(image: np.ndarray, degrees: float) -> np.ndarray:
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)


def test_blazeface_finds_what_dlib_finds_on_frontal_faces(analyzer):
    for name in ("img1.jpg", "couple.jpg"):
        image = cv2.imread(str(FACES / name))
        dlib_boxes = [d.box for d in detection.detect(analyzer.detectors["dlib"], image)]
        blaze_boxes = [d.box for d in detection.detect(analyzer.detectors["blazeface"], image)]
        assert dlib_boxes and len(blaze_boxes) == len(dlib_boxes), name
        assert all(max(iou(a, b) for b in blaze_boxes) > 0.4 for a in dlib_boxes), name


def test_blazeface_finds_a_face_tilted_by_60_degrees_that_dlib_misses(analyzer):
    tilted = rotated(cv2.imread(str(FACES / "img1.jpg")), 60)
    assert detection.detect(analyzer.detectors["dlib"], tilted) == []
    (face,) = detection.detect(analyzer.detectors["blazeface"], tilted)
    assert face.confidence > 0.5


def test_the_api_answers_with_blazeface_by_default_and_finds_every_face_of_the_demo_photo(
    client, auth, assert_contract
):
    """All 7 faces of the group photo the demo shows: dlib's HOG finds 4 (turned, cut-off, darker faces)."""
    with (FACES / "selfie-many-people.jpg").open("rb") as photo:
        response = client.post("/v1/analyze", headers=auth, data={"file": photo})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert_contract(response)
    assert response.json["model"]["detector"] == "blazeface" and len(response.json["faces"]) == 7


@pytest.mark.parametrize("photo", ["img1.jpg", "img2.jpg"])
def test_a_face_cut_through_the_middle_by_the_edge_is_found(analyzer, photo):
    image = cv2.imread(str(FACES / photo))
    (whole,) = detection.detect(analyzer.detectors["blazeface"], image)
    x, y, w, h = whole.box.astype(int)
    for cut, kept in ((image[:, : x + w // 2], (x, y, w // 2, h)), (image[:, x + w // 2 :], (0, y, w - w // 2, h))):
        (face,) = detection.detect(analyzer.detectors["blazeface"], np.ascontiguousarray(cut))
        assert iou(face.box, np.array(kept, np.float32)) > 0.5


def test_clip_frames_fall_back_to_the_full_range_model_for_a_distant_face(analyzer):
    """The short-range model looks for webcam-sized faces; a face of ~90 px in a 640x480 frame is too
    small for it and is found by the full-range model it falls back to."""
    image = cv2.imread(str(FACES / "img1.jpg"))
    (whole,) = detection.detect(analyzer.detectors["blazeface"], image)
    x, y, w, h = whole.box.astype(int)
    face = image[max(0, y - h // 2) : y + h + h // 2, max(0, x - w // 2) : x + w + w // 2]
    scale = 90 / w
    small = cv2.resize(face, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    frame = np.full((480, 640), 110, np.uint8)
    frame[200 : 200 + small.shape[0], 300 : 300 + small.shape[1]] = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    client = analyzer.clip_detectors["blazeface"]
    assert find_faces(frame, client.looks, client.shrink) == []  # the short-range model
    (found,) = detection.detect(client, frame)
    assert 70 < found.box[2] < 130


@pytest.mark.parametrize("degrees", [-35, 35])
def test_a_tilted_face_keeps_the_box_of_the_same_face_upright(analyzer, degrees):
    """The box comes from the mesh, measured along the face's own axes (mesh.face_box): BlazeFace's own box
    on a face tilted by 20-45 degrees is about a quarter smaller, and misses the face at IoU 0.5."""
    image = cv2.imread(str(FACES / "img1.jpg"))
    (upright,) = detection.detect(analyzer.detectors["blazeface"], image)
    (tilted,) = detection.detect(analyzer.detectors["blazeface"], rotated(image, degrees))
    assert tilted.box[2] == pytest.approx(upright.box[2], rel=0.06)
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    centre = matrix @ [upright.box[0] + upright.box[2] / 2, upright.box[1] + upright.box[3] / 2, 1.0]
    assert np.hypot(*(tilted.box[:2] + tilted.box[2:] / 2 - centre)) < 0.06 * upright.box[2]
