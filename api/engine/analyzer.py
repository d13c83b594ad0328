"""The analysis pipeline: decoded pixels in, faces with emotions (and tracks for clips) out.

An `Analyzer` holds every model, loaded and warmed once per process; requests only read it.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from importlib.metadata import version
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from api.engine import detection, micro
from api.engine.emotion import EmotionModel
from api.config import Limits
from api.engine.media import DecodedImage, DecodedVideo, VideoFrame, decode
from api.engine.preprocess import crop_face, faces_to_batch, to_grayscale
from api.engine.results import Face, Frame, ImageAnalysis, MicroExpression, Track, VideoAnalysis
from api.engine.tracking import assign_tracks
from api.engine.weights import load_manifest, prepare_deepface_home

log = logging.getLogger(__name__)

# Model files this pipeline needs beyond the emotion model (names in models/manifest.json).
# dlib's 68-point model is not used: its training data (iBUG 300-W) forbids commercial use.
WEIGHT_NAMES = [
    "dlib_shape_predictor_5",
    "haarcascade_frontalface_default",
    "haarcascade_eye",
]


@dataclass(frozen=True)
class AnalysisOptions:
    detector: str = "dlib"
    min_face_size: int = 0
    max_faces: int = 20
    return_landmarks: bool = True
    fps: float | None = None
    micro_expressions: bool = True
    micro_sensitivity: float = 0.5


class Analyzer:
    def __init__(self, deepface_home: Path, emotion_model: str, threads: int = 1) -> None:
        paths = prepare_deepface_home(deepface_home, WEIGHT_NAMES, emotion_model)
        self.emotion_model_name = emotion_model
        self.emotion_model_sha256 = load_manifest()[emotion_model].sha256
        self.detectors = {name: detection.load_detector(name) for name in detection.DETECTORS}
        self.landmarks = detection.LandmarkPredictor(str(paths["dlib_shape_predictor_5"]))
        self.emotion = EmotionModel(str(paths[emotion_model]), threads)
        self._warm_up()

    def model_versions(self, detector: str) -> dict:
        return {"detector": detector, "emotion": self.emotion_model_name,
                "emotion_sha256": self.emotion_model_sha256, "deepface": version("deepface")}

    def _warm_up(self) -> None:
        blank = np.zeros((64, 64, 3), np.uint8)
        for client in self.detectors.values():
            detection.detect(client, blank)
        self.emotion.predict(faces_to_batch([blank]))

    def analyze_image(self, image: DecodedImage, options: AnalysisOptions) -> ImageAnalysis:
        started = time.perf_counter()
        faces, crops = self._find_faces(image.pixels, options, keep_aligned=False)
        detected = time.perf_counter()
        self._classify(faces, crops)
        finished = time.perf_counter()
        timing = {"detect": _ms(started, detected), "classify": _ms(detected, finished)}
        return ImageAnalysis(image.info, faces, timing)

    def analyze_video(self, video: DecodedVideo, options: AnalysisOptions,
                      progress: Callable[[int], None] | None = None) -> VideoAnalysis:
        """`progress(frames_done)` is called after each analysed frame."""
        started = time.perf_counter()
        frames, crops = self._find_faces_in_frames(video.frames, options, progress)
        detected = time.perf_counter()
        self._classify([face for frame in frames for face in frame.faces], crops)
        tracks = assign_tracks(frames)
        tracked = time.perf_counter()
        events = self._spot(tracks, options) if options.micro_expressions else []
        finished = time.perf_counter()
        timing = {"decode_and_detect": _ms(started, detected), "classify_and_track": _ms(detected, tracked),
                  "micro_expressions": _ms(tracked, finished)}
        return VideoAnalysis(video.info, frames, tracks, video.sample_fps, timing, events)

    @staticmethod
    def _spot(tracks: list[Track], options: AnalysisOptions) -> list[MicroExpression]:
        events = []
        for track in tracks:
            pairs = [(frame.timestamp_ms, face) for frame, face in zip(track.frames, track.faces)
                     if face.aligned is not None]
            if len(pairs) < 3:
                continue
            faces = [face for _, face in pairs]
            found = micro.spot_micro_expressions(np.stack([f.aligned for f in faces]), np.array([t for t, _ in pairs]),
                                                 np.stack([f.emotions for f in faces]), options.micro_sensitivity)
            for event in found:
                event.track_id = track.track_id
            events.extend(found)
        return sorted(events, key=lambda e: (e.onset_ms, e.track_id))

    def _find_faces_in_frames(self, decoded: Iterable[VideoFrame], options: AnalysisOptions, progress):
        frames, crops = [], []
        for frame in decoded:
            faces, frame_crops = self._find_faces(frame.pixels, options, keep_aligned=options.micro_expressions)
            frames.append(Frame(frame.index, frame.timestamp_ms, faces))
            crops.extend(frame_crops)
            if progress is not None:
                progress(len(frames))
        return frames, crops

    def _find_faces(self, pixels: np.ndarray, options: AnalysisOptions,
                    keep_aligned: bool) -> tuple[list[Face], list[np.ndarray]]:
        if options.detector == detection.SKIP:
            h, w = pixels.shape[:2]
            return [Face(np.array([0, 0, w, h], np.float32), None, None)], [pixels]
        found = detection.detect(self.detectors[options.detector], pixels)
        found = [d for d in found if min(d.box[2], d.box[3]) >= options.min_face_size]
        # Largest faces first: with a cap, the people nearest the camera are kept.
        found.sort(key=lambda d: d.box[2] * d.box[3], reverse=True)
        found = found[: options.max_faces]
        gray = to_grayscale(pixels)
        faces, crops = [], []
        for d in found:
            points = self.landmarks(gray, d.box)
            crops.append(crop_face(pixels, d.box, points))
            aligned = micro.align_face(gray, points) if keep_aligned else None
            faces.append(Face(d.box, d.confidence, points if options.return_landmarks else None, aligned=aligned))
        return faces, crops

    def _classify(self, faces: list[Face], crops: list[np.ndarray]) -> None:
        probabilities = self.emotion.predict(faces_to_batch(crops))
        for face, p in zip(faces, probabilities):
            face.emotions = p


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 2)


def analyze_bytes(analyzer: Analyzer, data: bytes, options: AnalysisOptions, limits: Limits,
                  progress: Callable[[int], None] | None = None):
    """Decode (limits first) and analyse one upload; `timing_ms` covers every stage."""
    started = time.perf_counter()
    decoded = decode(data, limits, options.fps)
    if isinstance(decoded, DecodedImage):
        decoded_at = time.perf_counter()
        analysis = analyzer.analyze_image(decoded, options)
        analysis.timing_ms = {"decode": _ms(started, decoded_at), **analysis.timing_ms}
    else:
        # Clip frames are decoded lazily while faces are found, so decoding is inside that stage.
        analysis = analyzer.analyze_video(decoded, options, progress)
    analysis.timing_ms["total"] = _ms(started, time.perf_counter())
    return analysis
