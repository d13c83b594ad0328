"""Plain result types, complete when built and never changed after. Arrays stay numpy inside; the API
layer turns them into JSON."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from api.engine.mesh import HeadPose
from api.engine.preprocess import EMOTIONS


@dataclass(frozen=True)
class Face:
    """One detected and classified face. `box` is (x, y, w, h) in source pixels; `landmarks` is dlib's
    5 points (5, 2) or None; `emotions` holds one probability per class of `EMOTIONS`."""

    box: np.ndarray
    confidence: float | None
    landmarks: np.ndarray | None
    emotions: np.ndarray
    track_id: int | None = None
    head_pose: HeadPose | None = None
    mesh: np.ndarray | None = None  # (468, 3) when the request asked for it (return_mesh)

    @property
    def dominant_emotion(self) -> str:
        return EMOTIONS[int(np.argmax(self.emotions))]


@dataclass(frozen=True)
class Frame:
    index: int
    timestamp_ms: float
    faces: list[Face]


@dataclass(frozen=True)
class Track:
    """A face followed across frames: `frames[i]` holds `faces[i]`."""

    track_id: int
    frames: list[Frame]
    faces: list[Face]

    @property
    def mean_emotions(self) -> np.ndarray:
        mean: np.ndarray = np.mean([f.emotions for f in self.faces], axis=0)
        return mean


# Movements up to half a second are micro-expressions; longer ones are macro-expressions.
MICRO_MAX_MS = 500.0


def expression_kind(duration_ms: float) -> str:
    return "micro" if duration_ms <= MICRO_MAX_MS else "macro"


@dataclass(frozen=True)
class RegionMovement:
    """A facial region that moved during an event, with the action units its motion suggests."""

    name: str  # brows, eyes, nose, mouth, chin
    magnitude: float  # 0-1, relative to the event's strongest region
    action_units: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MicroExpression:
    onset_ms: float
    apex_ms: float
    offset_ms: float
    intensity: float  # 0-1
    regions: list[RegionMovement]
    emotion: str | None  # the class that rose most from onset to apex
    emotion_probability: float | None
    track_id: int = 0

    @property
    def duration_ms(self) -> float:
        return self.offset_ms - self.onset_ms

    @property
    def kind(self) -> str:
        return expression_kind(self.duration_ms)


@dataclass(frozen=True)
class MediaInfo:
    kind: str  # "image" or "video"
    format: str
    width: int
    height: int
    duration_ms: float | None = None
    fps: float | None = None
    frame_count: int | None = None


@dataclass(frozen=True)
class ImageAnalysis:
    media: MediaInfo
    faces: list[Face]
    timing_ms: dict[str, float]


@dataclass(frozen=True)
class Still:
    """A small JPEG of one analysed frame (api.engine.stills)."""

    frame_index: int
    timestamp_ms: float
    jpeg: bytes


@dataclass(frozen=True)
class VideoAnalysis:
    media: MediaInfo
    frames: list[Frame]
    tracks: list[Track]
    sample_fps: float
    timing_ms: dict[str, float]
    micro_expressions: list[MicroExpression] = field(default_factory=list)
    stills: list[Still] = field(default_factory=list)  # when the request asked for them (return_stills)
