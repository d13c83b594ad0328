"""Speed-ups keep the answers: detector settings on real photos, following faces between
detections on real clips, and the pure functions behind both. No timing is asserted here
(figures come from bench/)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from api.engine import detection, face_following, micro
from api.engine.analyzer import AnalysisOptions, analyze_bytes
from api.engine.geometry import fit_similarity
from api.engine.track_building import iou
from api.wiring.config import Limits
from tests.conftest import FACES, VIDEOS
from tests.samples import reencode

pytestmark = pytest.mark.data

# --- detector setting ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, faces", [("couple.jpg", 2), ("img1.jpg", 1), ("selfie-many-people.jpg", 4), ("img10.jpg", 1)]
)
def test_chosen_dlib_setting_finds_the_faces_in_real_photos(analyzer, name, faces):
    result = analyze_bytes(analyzer, (FACES / name).read_bytes(), AnalysisOptions(detector="dlib"), Limits())
    assert len(result.faces) == faces


def test_the_same_faces_as_deepfaces_upsampled_client_on_the_640px_copy(analyzer):
    """The setting replaced DeepFace's `detect_faces` (upsample x1); boxes still match one to one."""
    import cv2

    client = analyzer.detectors["dlib"]
    for name in ("couple.jpg", "img1.jpg", "selfie-many-people.jpg"):
        image = cv2.imread(str(FACES / name))
        scale = 640 / max(image.shape[:2])
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        reference = [np.array([r.x, r.y, r.w, r.h], np.float32) / scale for r in client.detect_faces(small)]
        found = [d.box for d in detection.detect(client, image)]
        assert len(found) == len(reference), name
        for box in reference:
            assert max(iou(box, f) for f in found) >= 0.5, name


def test_min_face_size_enlarges_the_copy_so_small_faces_are_found(analyzer):
    # couple.jpg at 300 px on a grey 1280 px canvas: the faces are ~40 px on the 640 px copy,
    # below dlib's 80 px window, so only the enlarged copy finds them.
    import cv2

    photo = cv2.imread(str(FACES / "couple.jpg"))
    small = cv2.resize(photo, (300, round(300 * photo.shape[0] / photo.shape[1])), interpolation=cv2.INTER_AREA)
    canvas = np.full((960, 1280, 3), 128, np.uint8)
    canvas[100 : 100 + small.shape[0], 100:400] = small
    client = analyzer.detectors["dlib"]
    assert len(detection.detect(client, canvas)) < 2
    assert len(detection.detect(client, canvas, min_face_size=40)) == 2


def test_detection_scale():
    assert detection.detection_scale(1588, 2280) == pytest.approx(640 / 2280)
    assert detection.detection_scale(480, 640) == 1.0
    assert detection.detection_scale(240, 320) == 2.0  # small pictures are enlarged to 640 px
    # a 200 px face on the 2280 px photo is 56 px on the 640 px copy: enlarge until it is 80 px (912 px copy)
    assert detection.detection_scale(1588, 2280, 200) == pytest.approx(0.4)
    # ... but never beyond the 1280 px copy (the old upsample x1 on 640 px)
    assert detection.detection_scale(1588, 2280, 10) == pytest.approx(1280 / 2280)
    # a face size the 640 px copy already covers changes nothing
    assert detection.detection_scale(1588, 2280, 400) == pytest.approx(640 / 2280)


def test_grayscale_input_gives_the_same_detections(analyzer):
    import cv2

    client = analyzer.detectors["dlib"]
    image = cv2.imread(str(FACES / "couple.jpg"))
    bgr = [d.box for d in detection.detect(client, image)]
    gray = [d.box for d in detection.detect(client, cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))]
    np.testing.assert_allclose(bgr, gray)


# --- following faces between detections ----------------------------------------------------------


def test_similarity_and_move_box():
    points = np.array([(60, 40), (52, 41), (30, 40), (38, 41), (45, 60)], np.float32)
    box = np.array([20, 20, 50, 50], np.float32)
    np.testing.assert_allclose(face_following.move_box(box, points, points), box, atol=1e-4)
    np.testing.assert_allclose(face_following.move_box(box, points, points + (7, -3)), box + (7, -3, 0, 0), atol=1e-4)
    centre = points.mean(axis=0)
    scaled = (points - centre) * 2 + centre
    scale, matrix, _ = fit_similarity(points, scaled)
    assert scale == pytest.approx(2.0)
    np.testing.assert_allclose(matrix, 2 * np.eye(2), atol=1e-6)
    moved = face_following.move_box(box, points, scaled)
    np.testing.assert_allclose(moved[2:], box[2:] * 2, atol=1e-4)
    np.testing.assert_allclose(moved[:2] + moved[2:] / 2, (box[:2] + box[2:] / 2 - centre) * 2 + centre, atol=1e-3)


def test_detection_due_runs_the_detector_five_times_a_second():
    due, last = [], None
    for i in range(30):  # one second at 30 fps
        t = i * 1000 / 30
        if face_following.detection_due(t, last):
            due.append(i)
            last = t
    assert due == [0, 6, 12, 18, 24]
    assert face_following.detection_due(0.0, None)
    assert all(face_following.detection_due(t, 0.0, 0.0) for t in (0.0, 1.0))  # period 0: every frame


def test_patch_similarity_and_plausible():
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 255, (200, 200), np.uint8)
    points = np.array([(120, 80), (108, 81), (80, 80), (92, 81), (100, 110)], np.float32)
    patch = face_following.aligned_patch(gray, points)
    assert patch.shape == (face_following.PATCH_SIZE, face_following.PATCH_SIZE)
    assert face_following.patch_similarity(patch, patch) == pytest.approx(1.0)
    other = face_following.aligned_patch(rng.integers(0, 255, (200, 200), np.uint8), points)
    assert face_following.patch_similarity(patch, other) < face_following.MIN_PATCH_SIMILARITY
    anchor = np.array([50, 50, 100, 100], np.float32)
    assert face_following.plausible(anchor + (10, 0, 0, 0), anchor, 200, 200)
    assert not face_following.plausible(np.array([50, 50, 200, 200], np.float32), anchor, 200, 200)  # doubled in size
    assert not face_following.plausible(
        np.array([-150, 50, 100, 100], np.float32), anchor, 200, 200
    )  # left the picture
    np.testing.assert_allclose(
        face_following.clip_box(np.array([-10, 190, 50, 50], np.float32), 200, 200), [0, 190, 40, 10]
    )


def counting_detector(monkeypatch) -> list[int]:
    calls = []
    real = detection.detect

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(detection, "detect", counted)
    return calls


def spotter_inputs(monkeypatch) -> list[np.ndarray]:
    """The aligned crops of each track the micro-expression spotter is given."""
    seen = []
    real = micro.spot_micro_expressions

    def recorded(aligned, *args, **kwargs):
        seen.append(aligned)
        return real(aligned, *args, **kwargs)

    monkeypatch.setattr(micro, "spot_micro_expressions", recorded)
    return seen


def no_shape_predictor(gray, box):
    raise AssertionError("BlazeFace's faces are followed by their mesh, not by dlib's shape predictor")


@pytest.mark.parametrize("detector", ["dlib", "blazeface"])
def test_following_keeps_one_stable_track_on_the_real_clip(analyzer, monkeypatch, detector):
    calls = counting_detector(monkeypatch)
    spotted = spotter_inputs(monkeypatch)
    if detector == "blazeface":
        monkeypatch.setattr(analyzer, "landmarks", no_shape_predictor)
    options = AnalysisOptions(detector=detector)
    data = (VIDEOS / "single_face.mp4").read_bytes()  # 72 frames at 30 fps, one man
    followed = analyze_bytes(analyzer, data, options, Limits())
    detections = len(calls)
    assert len(followed.frames) == 72
    assert detections <= 72 / 5  # detector every 200 ms (6 frames), not on every frame
    assert [t.track_id for t in followed.tracks] == [1]
    assert all(len(frame.faces) == 1 and frame.faces[0].track_id == 1 for frame in followed.frames)
    # micro-expressions on: every followed face was aligned for the spotter too
    assert [len(aligned) for aligned in spotted] == [72]
    # followed boxes stay on the face the detector finds on every frame
    monkeypatch.setattr(analyzer, "detect_period_ms", 0.0)
    every = analyze_bytes(analyzer, data, options, Limits())
    overlaps = [iou(a.faces[0].box, b.faces[0].box) for a, b in zip(followed.frames, every.frames)]
    assert np.median(overlaps) >= 0.8 and min(overlaps) >= 0.5


@pytest.mark.parametrize("detector", ["dlib", "blazeface"])
def test_a_face_that_leaves_is_dropped_within_one_detection_period(analyzer, detector):
    # face_noface.mov: the man for 72 frames, then an animated title with no face
    data = (VIDEOS / "face_noface.mov").read_bytes()
    followed = analyze_bytes(analyzer, data, AnalysisOptions(detector=detector, micro_expressions=False), Limits())
    with_face = [f.timestamp_ms for f in followed.frames if f.faces]
    without_face = [f.timestamp_ms for f in followed.frames if not f.faces]
    assert with_face and without_face
    last_face = max(with_face)
    assert last_face < min(t for t in without_face if t > 1000) + face_following.DETECT_PERIOD_MS
    assert all(not f.faces for f in followed.frames if f.timestamp_ms > last_face)
    assert len(followed.tracks) == 1


def test_skip_detector_and_fps_option_still_work_with_following(analyzer):
    data = (VIDEOS / "single_face.mp4").read_bytes()
    result = analyze_bytes(analyzer, data, AnalysisOptions(detector="skip", fps=10), Limits())
    assert all(len(f.faces) == 1 and f.faces[0].landmarks is None for f in result.frames)
    result = analyze_bytes(analyzer, data, AnalysisOptions(fps=5, return_landmarks=False), Limits())
    assert [t.track_id for t in result.tracks] == [1]
    assert all(f.faces[0].landmarks is None for f in result.frames)


def test_analysis_options_fields_are_unchanged():
    assert [f.name for f in dataclasses.fields(AnalysisOptions)] == [
        "detector",
        "min_face_size",
        "max_faces",
        "return_landmarks",
        "return_mesh",
        "return_stills",
        "fps",
        "micro_expressions",
        "micro_sensitivity",
    ]


def test_small_picture_is_enlarged_not_missed(analyzer):
    # img1.jpg thumbnailed to 320 px: the face is ~70 px, below the window at source size
    result = analyze_bytes(analyzer, reencode(FACES / "img1.jpg", "JPEG", max_side=320), AnalysisOptions(), Limits())
    assert len(result.faces) == 1
