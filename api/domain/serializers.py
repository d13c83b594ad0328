"""Engine results -> JSON-ready dicts shaped as openapi.yaml's AnalyzeResponse."""

from __future__ import annotations

import base64

import numpy as np

from api.engine.preprocess import EMOTIONS, LEFT_IMAGE_EYE, NOSE, RIGHT_IMAGE_EYE
from api.engine.results import Face, ImageAnalysis, MediaInfo, MicroExpression, Track, VideoAnalysis


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def _point(p: np.ndarray) -> list[float]:
    return [round(float(p[0]), 1), round(float(p[1]), 1)]


def emotions_json(probabilities: np.ndarray) -> dict[str, float]:
    return {label: _round(p) for label, p in zip(EMOTIONS, probabilities)}


def landmarks_json(points: np.ndarray) -> dict:
    # Named from the person's point of view, as DeepFace does: their left eye is on the image's right.
    return {
        "left_eye": _point(points[RIGHT_IMAGE_EYE].mean(axis=0)),
        "right_eye": _point(points[LEFT_IMAGE_EYE].mean(axis=0)),
        "nose": _point(points[NOSE]),
    }


def face_json(face: Face) -> dict:
    x, y, w, h = (int(round(v)) for v in face.box)
    body = {
        "box": {"x": x, "y": y, "w": w, "h": h},
        "confidence": _round(face.confidence),
        "landmarks": None if face.landmarks is None else landmarks_json(face.landmarks),
        "emotions": emotions_json(face.emotions),
        "dominant_emotion": face.dominant_emotion,
        "head_pose": None
        if face.head_pose is None
        else {"yaw": face.head_pose.yaw, "pitch": face.head_pose.pitch, "roll": face.head_pose.roll},
        "facing_camera": None if face.head_pose is None else face.head_pose.facing_camera,
    }
    if face.mesh is not None:
        body["mesh"] = [[round(float(v), 1) for v in point] for point in face.mesh]
    if face.track_id is not None:
        body["track_id"] = face.track_id
    return body


def media_json(info: MediaInfo, frames_analyzed: int) -> dict:
    return {
        "type": info.kind,
        "format": info.format,
        "width": info.width,
        "height": info.height,
        "duration_ms": _round(info.duration_ms, 1),
        "fps": _round(info.fps, 3),
        "frames_analyzed": frames_analyzed,
    }


def track_json(track: Track) -> dict:
    mean = track.mean_emotions
    return {
        "track_id": track.track_id,
        "start_ms": _round(track.frames[0].timestamp_ms, 1),
        "end_ms": _round(track.frames[-1].timestamp_ms, 1),
        "frame_count": len(track.faces),
        "summary": {"emotions": emotions_json(mean), "dominant_emotion": EMOTIONS[int(np.argmax(mean))]},
        "timeline": [
            {
                "timestamp_ms": _round(frame.timestamp_ms, 1),
                "frame_index": frame.index,
                "emotions": emotions_json(face.emotions),
                "dominant_emotion": face.dominant_emotion,
            }
            for frame, face in zip(track.frames, track.faces)
        ],
    }


def micro_expression_json(event: MicroExpression) -> dict:
    return {
        "track_id": event.track_id,
        "kind": event.kind,
        "onset_ms": _round(event.onset_ms, 1),
        "apex_ms": _round(event.apex_ms, 1),
        "offset_ms": _round(event.offset_ms, 1),
        "duration_ms": _round(event.duration_ms, 1),
        "intensity": _round(event.intensity),
        "regions": [
            {"name": r.name, "magnitude": _round(r.magnitude), "action_units": r.action_units} for r in event.regions
        ],
        "emotion": event.emotion,
        "emotion_probability": _round(event.emotion_probability),
    }


def analysis_json(analysis: ImageAnalysis | VideoAnalysis, request_id: str, models: dict) -> dict:
    body = {"request_id": request_id, "model": models, "timing_ms": analysis.timing_ms}
    if isinstance(analysis, ImageAnalysis):
        body["media"] = media_json(analysis.media, 1)
        body["faces"] = [face_json(f) for f in analysis.faces]
        return body
    body["media"] = media_json(analysis.media, len(analysis.frames))
    body["sample_fps"] = _round(analysis.sample_fps, 3)
    # Events shorter than about two frame intervals cannot be resolved at this sampling rate.
    body["temporal_resolution_ms"] = _round(1000.0 / analysis.sample_fps, 1)
    body["frames"] = [
        {"index": fr.index, "timestamp_ms": _round(fr.timestamp_ms, 1), "faces": [face_json(f) for f in fr.faces]}
        for fr in analysis.frames
    ]
    body["tracks"] = [track_json(t) for t in analysis.tracks]
    body["micro_expressions"] = [micro_expression_json(e) for e in analysis.micro_expressions]
    if analysis.stills:
        body["stills"] = [
            {
                "frame_index": still.frame_index,
                "timestamp_ms": _round(still.timestamp_ms, 1),
                "jpeg_base64": base64.b64encode(still.jpeg).decode(),
            }
            for still in analysis.stills
        ]
    return body
