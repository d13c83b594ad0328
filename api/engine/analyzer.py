"""The analysis pipeline: decoded pixels in, faces with emotions (and tracks for clips) out.

An `Analyzer` holds every model, loaded and warmed once per process; requests only read it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from api.engine import detection, face_following, micro, stills
from api.engine.blazeface import (
    DLIB_BOX_RATIO,
    FULL_RANGE,
    PHOTO_TILES,
    SHORT_RANGE,
    BlazeFace,
    BlazeFaceClient,
    area_shrink,
)
from api.engine.emotion import EmotionModel
from api.engine.limits import Limits
from api.engine.media import DecodedImage, DecodedVideo, VideoFrame, decode, sampling_target
from api.engine.mesh import MESH_MANIFEST_NAME, FaceMesh, HeadPose, five_points, head_pose
from api.engine.preprocess import (
    CROP_SCALE,
    crop_face,
    eye_line_degrees,
    face_to_model_input,
    faces_to_batch,
    to_grayscale,
)
from api.engine.results import Face, Frame, ImageAnalysis, MicroExpression, Still, VideoAnalysis
from api.engine.track_building import group_tracks, iou, track_ids
from api.engine.weights import load_manifest, prepare_deepface_home

log = logging.getLogger(__name__)

# Model files this pipeline needs beyond the emotion model (names in models/manifest.json).
# dlib's 68-point model is not used: its training data (iBUG 300-W) forbids commercial use.
WEIGHT_NAMES = [
    "dlib_shape_predictor_5",
    "haarcascade_frontalface_default",
    "haarcascade_eye",
    SHORT_RANGE.manifest_name,
    FULL_RANGE.manifest_name,
    MESH_MANIFEST_NAME,
]

# A detection overlapping a followed face this much is that face (track_building.IOU_THRESHOLD).
LOST_IOU = 0.3


def configure_deepface(deepface_home: Path, threads: int) -> None:
    """Process-wide settings the models depend on; the `Analyzer` makes this call when it is built."""
    # DeepFace finds (never fetches) the files `prepare_deepface_home` linked there.
    os.environ["DEEPFACE_HOME"] = str(deepface_home)
    # DeepFace prefers TensorFlow or PyTorch when importable; only its ONNX engine loads our file.
    os.environ["DEEPFACE_BACKEND_ENGINE"] = "onnx"
    # OpenCV's default pool has one thread per core; with a worker per core that oversubscribes.
    cv2.setNumThreads(max(1, threads))


@dataclass(frozen=True)
class AnalysisOptions:
    detector: str = detection.DEFAULT_DETECTOR
    min_face_size: int = 0
    max_faces: int = 20
    return_landmarks: bool = True
    return_mesh: bool = False
    return_stills: bool = False
    fps: float | None = None
    micro_expressions: bool = True
    micro_sensitivity: float = 0.5

    @property
    def sample_fps(self) -> float:
        """Frames per second to analyse at most (media.sampling_target)."""
        return sampling_target(self.fps, self.micro_expressions)


class Analyzer:
    """`threads`: intra-op threads for onnxruntime and OpenCV's pool in this process. One per
    process with one gunicorn worker per core (see gunicorn.conf.py and README, Performance).

    `detect_period_ms`: in clips the detector runs on a frame at least this often (and whenever
    a followed face is lost); faces are followed in between (api.engine.face_following). 0 detects on
    every frame.
    """

    def __init__(self, deepface_home: Path, emotion_model: str, threads: int = 1) -> None:
        paths = prepare_deepface_home(deepface_home, WEIGHT_NAMES, emotion_model)
        configure_deepface(deepface_home, threads)
        self.emotion_model_name = emotion_model
        self.emotion_model_sha256 = load_manifest()[emotion_model].sha256
        # Read once: importlib.metadata parses the package's METADATA on every call (~1.5 ms a request).
        self.deepface_version = version("deepface")
        self.detectors = {name: detection.load_detector(name) for name in detection.DEEPFACE_DETECTORS}
        self.mesh = FaceMesh(paths[MESH_MANIFEST_NAME])
        full_range = BlazeFace(FULL_RANGE, paths[FULL_RANGE.manifest_name])
        short_range = BlazeFace(SHORT_RANGE, paths[SHORT_RANGE.manifest_name])
        # Photos: the full-range model on the whole picture and its parts, and the short-range model on the
        # whole, for faces that fill much of it (api/engine/blazeface.py gives what each adds).
        self.detectors[detection.BLAZEFACE] = BlazeFaceClient(((full_range, PHOTO_TILES), (short_range, 0)), self.mesh)
        # Clip frames: the whole picture only, the short-range model first (webcam faces are large; it finds
        # them in a third of the time), the full-range one when it finds nothing. The detector runs several
        # times a second, and a face it misses once is followed from the last detection.
        # They keep OpenCV's area filter to shrink: the photos' faster halvings find the same faces, but spotted
        # micro-expressions with a lower F1 on both of the benchmark's draws (models/face_detection/MODEL_CARD.md).
        self.clip_detectors = {
            **self.detectors,
            detection.BLAZEFACE: BlazeFaceClient(((short_range, 0),), self.mesh, ((full_range, 0),), area_shrink),
        }
        # DeepFace's dlib client already holds the 5-point model (the same verified file); reuse it.
        self.landmarks = detection.LandmarkPredictor(self.detectors["dlib"].model["sp"])
        self.emotion = EmotionModel(str(paths[emotion_model]), threads)
        self.detect_period_ms = face_following.DETECT_PERIOD_MS
        self._warm_up()

    def model_versions(self, detector: str) -> dict[str, str]:
        return {
            "detector": detector,
            "emotion": self.emotion_model_name,
            "emotion_sha256": self.emotion_model_sha256,
            "deepface": self.deepface_version,
        }

    def _warm_up(self) -> None:
        blank = np.zeros((64, 64, 3), np.uint8)
        for client in (*self.detectors.values(), self.clip_detectors[detection.BLAZEFACE]):
            detection.detect(client, blank)
        self.mesh(blank, np.array([0, 0, 64, 64], np.float32))
        self.emotion.predict(faces_to_batch([blank]))

    def analyze_image(self, image: DecodedImage, options: AnalysisOptions) -> ImageAnalysis:
        started = time.perf_counter()
        found, crops = self._find_faces(image.pixels, options)
        detected = time.perf_counter()
        faces = [candidate.face(p) for candidate, p in zip(found, self.emotion.predict(faces_to_batch(crops)))]
        finished = time.perf_counter()
        timing = {"detect": _ms(started, detected), "classify": _ms(detected, finished)}
        return ImageAnalysis(image.info, faces, timing)

    def analyze_video(
        self, video: DecodedVideo, options: AnalysisOptions, progress: Callable[[int], None] | None = None
    ) -> VideoAnalysis:
        """`progress(frames_done)` is called after each analysed frame."""
        started = time.perf_counter()
        kept: list[Still] = []
        decoded = (
            stills.keeping_stills(video.frames, video.info.duration_ms or 0.0, kept)
            if options.return_stills
            else video.frames
        )
        found, inputs = self._find_faces_in_frames(decoded, options, progress)
        detected = time.perf_counter()
        batch = np.stack(inputs)[..., None] if inputs else faces_to_batch([])
        probabilities = iter(self.emotion.predict(batch))
        ids = track_ids((timestamp_ms, [c.box for c in candidates]) for _, timestamp_ms, candidates in found)
        frames = []
        # Per track, in time order: the aligned crops and emotions the spotter reads.
        spotted: dict[int, list[tuple[float, np.ndarray, np.ndarray]]] = {}
        for (index, timestamp_ms, candidates), frame_ids in zip(found, ids):
            faces = [
                candidate.face(next(probabilities), track_id) for candidate, track_id in zip(candidates, frame_ids)
            ]
            frames.append(Frame(index, timestamp_ms, faces))
            for candidate, face, track_id in zip(candidates, faces, frame_ids):
                if candidate.aligned is not None:
                    spotted.setdefault(track_id, []).append((timestamp_ms, candidate.aligned, face.emotions))
        tracks = group_tracks(frames)
        tracked = time.perf_counter()
        events = self._spot(spotted, options) if options.micro_expressions else []
        finished = time.perf_counter()
        timing = {
            "decode_and_detect": _ms(started, detected),
            "classify_and_track": _ms(detected, tracked),
            "micro_expressions": _ms(tracked, finished),
        }
        return VideoAnalysis(video.info, frames, tracks, video.sample_fps, timing, events, kept)

    @staticmethod
    def _spot(
        spotted: dict[int, list[tuple[float, np.ndarray, np.ndarray]]], options: AnalysisOptions
    ) -> list[MicroExpression]:
        events: list[MicroExpression] = []
        for track_id in sorted(spotted):
            seen = spotted[track_id]
            if len(seen) < 3:
                continue
            found = micro.spot_micro_expressions(
                np.stack([aligned for _, aligned, _ in seen]),
                np.array([t for t, _, _ in seen]),
                np.stack([emotions for _, _, emotions in seen]),
                options.micro_sensitivity,
            )
            events.extend(replace(event, track_id=track_id) for event in found)
        return sorted(events, key=lambda e: (e.onset_ms, e.track_id))

    def _find_faces_in_frames(
        self, decoded: Iterable[VideoFrame], options: AnalysisOptions, progress: Callable[[int], None] | None
    ) -> tuple[list[tuple[int, float, list[_Candidate]]], list[np.ndarray]]:
        """Detect on schedule, follow faces in between. Returns (index, timestamp_ms, faces found) per
        frame and the model inputs (48x48 each) of all those faces in order."""
        frames: list[tuple[int, float, list[_Candidate]]] = []
        inputs: list[np.ndarray] = []
        keep_aligned = options.micro_expressions
        followed: list[face_following.Followed] = []
        last_detection_ms: float | None = None
        detect_next = False
        for frame in decoded:
            pixels = frame.pixels
            faces = None
            if (
                options.detector != detection.SKIP
                and self.detect_period_ms > 0
                and not detect_next
                and not face_following.detection_due(frame.timestamp_ms, last_detection_ms, self.detect_period_ms)
            ):
                gray = to_grayscale(pixels)
                moved = [
                    face_following.relocate_by_mesh(self.mesh, gray, f)
                    if f.mesh is not None
                    else face_following.relocate(self.landmarks, gray, f)
                    for f in followed
                ]
                if all(m is not None for m in moved):  # a lost face sends this frame to the detector
                    followed = [m for m in moved if m is not None]
                    height, width = gray.shape[:2]
                    faces, crops = [], []
                    for f in followed:
                        box = face_following.clip_box(f.box, width, height)
                        face, crop = self._describe(
                            pixels, gray, box, f.confidence, f.points, options, keep_aligned, f.mesh
                        )
                        faces.append(face)
                        crops.append(crop)
            if faces is None:
                gray = None if options.detector == detection.SKIP else to_grayscale(pixels)
                found = self._detect(pixels, gray, options, self.clip_detectors)
                faces, crops = self._describe_all(pixels, gray, found, options, keep_aligned)
                if gray is not None:
                    # A face followed until now that the detector did not find: look again next frame.
                    detect_next = any(
                        max((iou(f.box, d.box) for d, _ in found), default=0.0) < LOST_IOU for f in followed
                    )
                    followed = [face_following.start(gray, d.box, points, d.confidence, d.mesh) for d, points in found]
                    last_detection_ms = frame.timestamp_ms
            frames.append((frame.index, frame.timestamp_ms, faces))
            inputs.extend(face_to_model_input(crop) for crop in crops)
            if progress is not None:
                progress(len(frames))
        return frames, inputs

    def _find_faces(self, pixels: np.ndarray, options: AnalysisOptions) -> tuple[list[_Candidate], list[np.ndarray]]:
        gray = None if options.detector == detection.SKIP else to_grayscale(pixels)
        return self._describe_all(
            pixels, gray, self._detect(pixels, gray, options, self.detectors), options, keep_aligned=False
        )

    def _detect(
        self, pixels: np.ndarray, gray: np.ndarray | None, options: AnalysisOptions, detectors: dict[str, Any]
    ) -> list[tuple[detection.Detection, np.ndarray | None]]:
        """Detections to keep (size filter, largest first, capped), each with its 5 landmarks."""
        if options.detector == detection.SKIP:
            h, w = pixels.shape[:2]
            return [(detection.Detection(np.array([0, 0, w, h], np.float32), None), None)]
        assert gray is not None  # made whenever a detector runs
        # dlib's HOG runs on grey (the same faces, less time); DeepFace's OpenCV client wants BGR.
        image = gray if options.detector == "dlib" else pixels
        found = detection.detect(detectors[options.detector], image, options.min_face_size)
        found = [d for d in found if min(d.box[2], d.box[3]) >= options.min_face_size]
        # Largest faces first: with a cap, the people nearest the camera are kept.
        found.sort(key=lambda d: d.box[2] * d.box[3], reverse=True)
        # The named points of a face the mesh confirmed are the mesh's own (models/face_detection/MODEL_CARD.md).
        return [
            (d, self.landmarks(gray, d.box) if d.mesh is None else five_points(d.mesh))
            for d in found[: options.max_faces]
        ]

    def _describe_all(
        self,
        pixels: np.ndarray,
        gray: np.ndarray | None,
        found: list[tuple[detection.Detection, np.ndarray | None]],
        options: AnalysisOptions,
        keep_aligned: bool,
    ) -> tuple[list[_Candidate], list[np.ndarray]]:
        faces, crops = [], []
        for d, points in found:
            # A detected face's mesh is run again, levelled by the named points: the mesh that confirmed it was
            # levelled by BlazeFace's coarser eye points, and emotion crops from it lost 0.7 points on CK+48
            # and 0.9 on FER2013 (bench/emotion_on_detected_faces.py).
            face, crop = self._describe(pixels, gray, d.box, d.confidence, points, options, keep_aligned)
            faces.append(face)
            crops.append(crop)
        return faces, crops

    def _describe(
        self,
        pixels: np.ndarray,
        gray: np.ndarray | None,
        box: np.ndarray,
        confidence: float | None,
        points: np.ndarray | None,
        options: AnalysisOptions,
        keep_aligned: bool,
        mesh: np.ndarray | None = None,
    ) -> tuple[_Candidate, np.ndarray]:
        """A found face and its crop for the emotion model; `mesh`, where following the face already ran it."""
        if points is None:  # detector "skip": the picture is the face
            return _Candidate(box, None, None), pixels
        assert gray is not None  # landmarks are found on grey
        if mesh is None:
            found = self.mesh(pixels, box, eye_line_degrees(points))
            mesh = None if found is None else found.points
        crop_scale = CROP_SCALE
        if options.detector == detection.BLAZEFACE:
            # The named points are the mesh's own (models/face_detection/MODEL_CARD.md). The emotion model was
            # validated on crops of dlib's box size: the same face's crop is taken at that size.
            points = points if mesh is None else five_points(mesh)
            crop_scale = CROP_SCALE / DLIB_BOX_RATIO
        crop = crop_face(pixels, box, points, crop_scale)
        # The spotter needs every tracked face aligned on every frame, followed or detected.
        aligned = micro.align_face(gray, points) if keep_aligned else None
        return _Candidate(
            box,
            confidence,
            points if options.return_landmarks else None,
            head_pose=None if mesh is None else head_pose(mesh),
            mesh=mesh if options.return_mesh else None,
            aligned=aligned,
        ), crop


@dataclass(frozen=True)
class _Candidate:
    """A face found but not yet classified, with the working crop only this module reads."""

    box: np.ndarray
    confidence: float | None
    landmarks: np.ndarray | None
    head_pose: HeadPose | None = None
    mesh: np.ndarray | None = None
    # Clips with micro-expressions on: the face warped onto the spotter's 112x112 template (api.engine.micro).
    aligned: np.ndarray | None = None

    def face(self, emotions: np.ndarray, track_id: int | None = None) -> Face:
        return Face(self.box, self.confidence, self.landmarks, emotions, track_id, self.head_pose, self.mesh)


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 2)


def analyze_bytes(
    analyzer: Analyzer,
    data: bytes,
    options: AnalysisOptions,
    limits: Limits,
    progress: Callable[[int], None] | None = None,
) -> ImageAnalysis | VideoAnalysis:
    """Decode (limits first) and analyse one upload; `timing_ms` covers every stage."""
    started = time.perf_counter()
    return analyze_decoded(analyzer, decode(data, limits, options.sample_fps), options, progress, started)


def analyze_decoded(
    analyzer: Analyzer,
    decoded: DecodedImage | DecodedVideo,
    options: AnalysisOptions,
    progress: Callable[[int], None] | None = None,
    started: float | None = None,
) -> ImageAnalysis | VideoAnalysis:
    """Analyse what `decode(data, limits, options.sample_fps)` returned; `started` is when decoding began."""
    started = time.perf_counter() if started is None else started
    analysis: ImageAnalysis | VideoAnalysis
    if isinstance(decoded, DecodedImage):
        decoded_at = time.perf_counter()
        analysis = analyzer.analyze_image(decoded, options)
        timing = {"decode": _ms(started, decoded_at), **analysis.timing_ms}
    else:
        # Clip frames are decoded lazily while faces are found, so decoding is inside that stage.
        analysis = analyzer.analyze_video(decoded, options, progress)
        timing = dict(analysis.timing_ms)
    return replace(analysis, timing_ms={**timing, "total": _ms(started, time.perf_counter())})
