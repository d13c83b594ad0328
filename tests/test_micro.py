"""Micro-expression spotting: MEGC scoring, template alignment, and real-face clips end to end.

The clips are real photos animated by construction (bench/micro_clips.py), so the truth is known
to the frame; they go through `analyze_bytes` exactly as an upload would.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from api.engine import micro
from api.engine.analyzer import AnalysisOptions, analyze_bytes
from api.engine.detection import LandmarkPredictor
from api.engine.weights import load_manifest, verified_path
from api.wiring.config import Limits
from bench.micro_clips import (
    ClipSpec,
    Event,
    Nuisance,
    event_clip,
    locate_face,
    render_clip,
    single_event_clip,
)
from bench.micro_expressions import (
    Counts,
    interval_iou,
    match_intervals,
    score_clip,
    to_frames,
)
from tests.conftest import FACES

pytestmark = pytest.mark.data

# --- MEGC scoring ---------------------------------------------------------------------------------


def test_iou_counts_frames_inclusively():
    assert interval_iou((10, 19), (10, 19)) == 1.0
    assert interval_iou((0, 9), (5, 14)) == pytest.approx(5 / 15)
    assert interval_iou((0, 4), (5, 9)) == 0.0  # adjacent, no shared frame
    assert interval_iou((3, 3), (3, 3)) == 1.0  # a single frame is one frame long


def test_matching_is_one_to_one_best_iou_first():
    truth = [(10, 20), (40, 50)]
    # Two predictions on the first event: only one can match it; the worse one is a false positive.
    predicted = [(11, 20), (9, 21), (41, 52)]
    pairs = match_intervals(predicted, truth)
    assert sorted(pairs) == [(0, 0), (2, 1)]
    # Below IoU 0.5 nothing matches.
    assert match_intervals([(10, 14)], [(10, 20)]) == []
    assert match_intervals([(10, 15)], [(10, 20)]) == [(0, 0)]  # 6/11 frames


def test_clip_scores_split_micro_and_macro_by_duration():
    fps = 30.0
    truth = [(1000.0, 1300.0), (3000.0, 4500.0)]  # micro (300 ms), macro (1.5 s)
    # The micro prediction matches; the macro one is too short to reach IoU 0.5 (and is micro-sized).
    predicted = [(1033.3, 1300.0), (3000.0, 3400.0), (6000.0, 6200.0)]
    counts = score_clip(predicted, truth, fps)
    assert (counts["micro"].tp, counts["micro"].n_pred, counts["micro"].n_true) == (1, 3, 1)
    assert (counts["macro"].tp, counts["macro"].n_pred, counts["macro"].n_true) == (0, 0, 1)
    overall = counts["overall"]
    assert (overall.tp, overall.fp, overall.fn) == (1, 2, 1)
    assert overall.precision == pytest.approx(1 / 3) and overall.recall == pytest.approx(1 / 2)
    assert overall.f1 == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    assert to_frames(1033.3, 1300.0, fps) == (31, 39)


def test_counts_edge_cases():
    assert Counts(0, 0, 0).f1 == 1.0  # nothing to find, nothing found
    assert Counts(0, 2, 0).precision == 0.0 and Counts(0, 0, 3).recall == 0.0
    total = Counts(1, 2, 3)
    total += Counts(2, 2, 2)
    assert (total.tp, total.n_pred, total.n_true) == (3, 4, 5)


# --- Alignment ------------------------------------------------------------------------------------


def _landmarks(gray: np.ndarray) -> np.ndarray:
    import dlib

    predictor = LandmarkPredictor(str(verified_path(load_manifest()["dlib_shape_predictor_5"])))
    (box,) = dlib.get_frontal_face_detector()(gray, 1)
    return predictor(gray, np.array([box.left(), box.top(), box.width(), box.height()], np.float32))


def test_alignment_undoes_shift_rotation_and_scale():
    photo = cv2.imread(str(FACES / "img43.jpg"))
    photo = cv2.resize(photo, None, fx=480 / photo.shape[1], fy=480 / photo.shape[1], interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
    reference = micro.align_face(gray, _landmarks(gray))
    h, w = gray.shape
    for angle, scale, shift in [(12.0, 0.8, (30, -20)), (-9.0, 1.15, (-25, 15))]:
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
        matrix[:, 2] += shift
        moved = cv2.warpAffine(gray, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)
        aligned = micro.align_face(moved, _landmarks(moved))
        centre = (slice(14, 112), slice(14, 98))  # the face, without the background corners
        diff = np.abs(aligned[centre].astype(float) - reference[centre].astype(float))
        assert np.median(diff) < 5, (angle, scale)
        # What is left is the landmarks' own error: about half a pixel of the 112 px crop.
        flow = cv2.calcOpticalFlowFarneback(reference, aligned, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        assert np.median(np.hypot(flow[14:, 14:98, 0], flow[14:, 14:98, 1])) < 1.2, (angle, scale)


def test_similarity_fit_is_exact_for_a_similar_face():
    template = micro.TEMPLATE * micro.ALIGNED_SIZE
    a = np.radians(20)
    points = 1.7 * template @ np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]]) + [100.0, 40.0]
    matrix = micro.similarity_to_template(points)
    assert np.abs(points @ matrix[:, :2].T + matrix[:, 2] - template).max() < 1e-4


def test_short_or_still_tracks_have_no_events():
    still = np.full((40, 112, 112), 128, np.uint8)
    times = np.arange(40) * 33.3
    assert micro.spot_micro_expressions(still[:4], times[:4], np.zeros((4, 7)), 0.5) == []
    assert micro.spot_micro_expressions(still, times, np.zeros((40, 7)), 1.0) == []


# --- Real faces, end to end ------------------------------------------------------------------------

MILD = Nuisance(head_motion=0.6, jerks_per_min=0.0, blinks_per_min=0.0, brightness=0.5, noise_sigma=2.0, crf=23)


def _analyse(analyzer, spec: ClipSpec, sensitivity: float = 0.5):
    clip = render_clip(spec)
    options = AnalysisOptions(fps=None, micro_expressions=True, micro_sensitivity=sensitivity)
    return analyze_bytes(analyzer, clip.data, options, Limits())


@pytest.mark.parametrize("pattern", ["smile", "brow_raise"])
def test_one_brief_expression_is_one_micro_event_within_two_frames(analyzer, pattern):
    spec = single_event_clip(
        "img43.jpg",
        fps=30.0,
        seconds=3.0,
        pattern=pattern,
        amplitude="high",
        nuisance=MILD,
        onset_s=1.2,
        duration_s=0.3,
    )
    truth = spec.events[0]
    analysis = _analyse(analyzer, spec)
    assert len(analysis.tracks) == 1
    (event,) = analysis.micro_expressions
    assert event.kind == "micro" and event.track_id == analysis.tracks[0].track_id
    frame = 1000.0 / spec.fps
    assert abs(event.onset_ms - truth.onset_ms) <= 2 * frame + 1
    assert abs(event.apex_ms - truth.apex_ms) <= 2 * frame + 1
    assert abs(event.offset_ms - truth.offset_ms) <= 2 * frame + 1
    assert 0.0 < event.intensity <= 1.0
    expected_region = {"smile": "mouth", "brow_raise": "brows"}[pattern]
    assert event.regions[0].name == expected_region
    assert {"smile": "AU12", "brow_raise": "AU1"}[pattern] in event.regions[0].action_units


def test_no_event_clip_with_blinks_and_head_motion_has_no_events(analyzer):
    nuisance = Nuisance(
        head_motion=1.0, jerks_per_min=6.0, blinks_per_min=20.0, brightness=1.0, noise_sigma=2.5, crf=23
    )
    spec = ClipSpec("quiet-test", "img43.jpg", 30.0, 5.0, [], seed=3, nuisance=nuisance)
    analysis = _analyse(analyzer, spec)
    assert len(analysis.tracks) == 1
    assert analysis.micro_expressions == []


def test_locate_face_finds_the_one_face():
    points, box = locate_face(cv2.imread(str(FACES / "img43.jpg")))
    assert points.shape == (5, 2) and box[2] > 50


def test_events_are_known_frames():
    event = Event("smile", "mid", 30, 34, 39, 30.0, (34, 34))
    assert event.onset_ms == 1000.0 and event.kind == "micro" and event.emotion == "happy"


def test_one_draw_gives_the_same_events_in_seconds_at_any_frame_rate():
    # bench/micro_frame_rate.py compares frame rates on these clips: only the rate may differ. Each rate rounds
    # times to its own frames, and the next event starts after the rounded offset: two frames at 30 fps.
    clips = [event_clip(np.random.default_rng(5), "c", "img43.jpg", fps, 8.0, 0) for fps in (30.0, 120.0)]
    slow, fast = (c.events for c in clips)
    assert len(slow) == len(fast) >= 2
    for a, b in zip(slow, fast):
        assert (a.pattern, a.amplitude) == (b.pattern, b.amplitude)
        assert abs(a.onset_ms - b.onset_ms) <= 2000 / 30 and abs(a.offset_ms - b.offset_ms) <= 2000 / 30
    assert clips[0].nuisance == clips[1].nuisance and clips[0].seed == clips[1].seed


def test_spotted_event_in_the_api_response_matches_the_contract(client, auth, assert_contract):
    import io

    spec = single_event_clip(
        "img43.jpg",
        fps=30.0,
        seconds=3.0,
        pattern="brow_raise",
        amplitude="high",
        nuisance=MILD,
        onset_s=1.2,
        duration_s=0.3,
    )
    data = render_clip(spec).data
    response = assert_contract(
        client.post(
            "/v1/analyze",
            headers=auth,
            data={"file": (io.BytesIO(data), "clip.mp4"), "micro_expressions": '{"enabled": true, "sensitivity": 0.5}'},
        )
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.json
    (event,) = body["micro_expressions"]
    assert event["kind"] == "micro" and event["regions"][0]["name"] == "brows"
    assert event["onset_ms"] < event["apex_ms"] < event["offset_ms"]
    assert body["temporal_resolution_ms"] == pytest.approx(33.3, abs=0.1)


def test_high_fps_clip_is_spotted_at_its_own_rate_by_default(analyzer):
    # 120 ms would be under 4 frames at 30 fps; the default keeps all 60 frames a second.
    spec = single_event_clip(
        "img43.jpg",
        fps=60.0,
        seconds=2.5,
        pattern="smile",
        amplitude="high",
        nuisance=MILD,
        onset_s=1.0,
        duration_s=0.12,
    )
    truth = spec.events[0]
    analysis = _analyse(analyzer, spec)
    assert analysis.sample_fps == pytest.approx(60.0, rel=0.01)
    (event,) = analysis.micro_expressions
    frame = 1000.0 / spec.fps
    assert abs(event.apex_ms - truth.apex_ms) <= 2 * frame + 1
    without_spotting = AnalysisOptions(micro_expressions=False)
    assert analyze_bytes(analyzer, render_clip(spec).data, without_spotting, Limits()).sample_fps == 30.0
