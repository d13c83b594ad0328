"""Vision results are complete when built and never change after; geometry and the sampling policy live once."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from api.engine import face_following, media, micro, results
from api.engine.analyzer import AnalysisOptions
from api.engine.geometry import fit_similarity

BOX = np.array([10, 10, 40, 40], np.float32)
POINTS = np.array([(60, 40), (52, 41), (30, 40), (38, 41), (45, 60)], np.float32)


def test_a_face_cannot_be_built_without_its_emotions():
    with pytest.raises(TypeError):
        results.Face(BOX, 0.9, None)  # a zero default would have reported "angry"
    face = results.Face(BOX, 0.9, None, np.eye(7, dtype=np.float32)[3])
    assert face.dominant_emotion == "happy"


def test_results_are_frozen():
    face = results.Face(BOX, 0.9, None, np.eye(7, dtype=np.float32)[3])
    frame = results.Frame(0, 0.0, [face])
    event = results.MicroExpression(
        0.0, 50.0, 100.0, 0.5, [results.RegionMovement("mouth", 1.0, ["AU12"])], "happy", 0.8, track_id=1
    )
    info = results.MediaInfo("video", "mp4", 64, 64, 1000.0, 30.0, 30)
    for value, name in [
        (face, "emotions"),
        (face, "track_id"),
        (frame, "faces"),
        (results.Track(1, [frame], [face]), "faces"),
        (event, "track_id"),
        (event.regions[0], "magnitude"),
        (results.ImageAnalysis(info, [face], {}), "timing_ms"),
        (results.VideoAnalysis(info, [frame], [], 30.0, {}, [event]), "timing_ms"),
    ]:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, name, None)


def test_working_crops_stay_in_the_analyzer():
    assert {f.name for f in dataclasses.fields(results.Face)} == {
        "box",
        "confidence",
        "landmarks",
        "emotions",
        "track_id",
        "head_pose",
        "mesh",
    }


@pytest.mark.parametrize("points", [POINTS, np.full((5, 2), 7.0, np.float32)], ids=["face", "degenerate"])
def test_following_and_alignment_use_one_similarity_fit(points):
    template = micro.TEMPLATE.astype(np.float64) * micro.ALIGNED_SIZE
    scale, matrix, shift = fit_similarity(points, template)
    np.testing.assert_allclose(micro.similarity_to_template(points), np.hstack([matrix, shift[:, None]]))
    box = np.array([20, 20, 50, 50], np.float32)
    moved = face_following.move_box(box, points, template)
    np.testing.assert_allclose(moved[:2] + moved[2:] / 2, matrix @ (box[:2] + box[2:] / 2) + shift, rtol=1e-5)
    np.testing.assert_allclose(moved[2:], box[2:] * scale, rtol=1e-5)


def test_the_sampling_policy_is_decided_in_one_place():
    assert media.sampling_target(None, micro_expressions=False) == media.DEFAULT_MAX_SAMPLE_FPS == 30.0
    assert media.sampling_target(None, micro_expressions=True) == media.MAX_SAMPLE_FPS  # every frame of a 120 fps clip
    assert media.sampling_target(12.0, micro_expressions=True) == 12.0
    assert media.sample_rate(25.0, media.sampling_target(None, micro_expressions=True)) == 25.0
    for options in (AnalysisOptions(), AnalysisOptions(micro_expressions=False), AnalysisOptions(fps=5.0)):
        assert options.sample_fps == media.sampling_target(options.fps, options.micro_expressions)
