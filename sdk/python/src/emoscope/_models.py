"""Typed, immutable views of the API's JSON (see openapi.yaml). Each keeps the dict it came from
in `.raw`, so fields added to the API later are reachable before the SDK learns about them."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple, Union

from ._exceptions import EmoscopeError, error_class

EMOTIONS: Tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def _raw() -> Dict[str, Any]:
    """A view's `.raw`: the dict it came from, left out of repr, equality and hashing."""
    return field(default_factory=dict, repr=False, compare=False, hash=False)


def _dt(value: Optional[str]) -> Optional[datetime]:
    if value is None:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Emotions:
    """Probabilities of the seven classes (summing to 1, to rounding)."""

    angry: float
    disgust: float
    fear: float
    happy: float
    sad: float
    surprise: float
    neutral: float
    raw: Dict[str, Any] = _raw()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Emotions:
        p = [float(data.get(label, 0.0)) for label in EMOTIONS]
        return cls(p[0], p[1], p[2], p[3], p[4], p[5], p[6], raw=dict(data))

    @property
    def dominant(self) -> str:
        """The most probable class (first in EMOTIONS order on a tie)."""
        return max(EMOTIONS, key=lambda label: getattr(self, label))

    def top(self, n: int = 3) -> List[Tuple[str, float]]:
        """The n most probable classes, most probable first."""
        return sorted(self.items(), key=lambda item: -item[1])[:n]

    def items(self) -> List[Tuple[str, float]]:
        return [(label, getattr(self, label)) for label in EMOTIONS]

    def as_dict(self) -> Dict[str, float]:
        return dict(self.items())

    def __getitem__(self, label: str) -> float:
        if label not in EMOTIONS:
            raise KeyError(label)
        value: float = getattr(self, label)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(EMOTIONS)


@dataclass(frozen=True)
class Box:
    """Face box in source pixels."""

    x: int
    y: int
    w: int
    h: int
    raw: Dict[str, Any] = _raw()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Box:
        return cls(int(data["x"]), int(data["y"]), int(data["w"]), int(data["h"]), raw=dict(data))


@dataclass(frozen=True)
class Landmarks:
    """[x, y] points named from the person's point of view (their left eye is on the image's right)."""

    left_eye: Tuple[float, float]
    right_eye: Tuple[float, float]
    nose: Tuple[float, float]
    raw: Dict[str, Any] = _raw()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Landmarks:
        def point(p: Any) -> Tuple[float, float]:
            return float(p[0]), float(p[1])

        return cls(point(data["left_eye"]), point(data["right_eye"]), point(data["nose"]), raw=dict(data))


@dataclass(frozen=True)
class HeadPose:
    """Degrees; (0, 0, 0) looks straight into the camera. yaw > 0 turns towards the picture's right,
    pitch > 0 tilts up, roll > 0 leans clockwise as seen in the picture."""

    yaw: float
    pitch: float
    roll: float

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HeadPose:
        return cls(float(data["yaw"]), float(data["pitch"]), float(data["roll"]))


@dataclass(frozen=True)
class Face:
    box: Box
    confidence: Optional[float]
    landmarks: Optional[Landmarks]
    emotions: Emotions
    dominant_emotion: str
    track_id: Optional[int] = None
    head_pose: Optional[HeadPose] = None
    facing_camera: Optional[bool] = None
    # 468 [x, y, z] points, only when the request asked for them (return_mesh=True).
    mesh: Optional[List[Tuple[float, float, float]]] = None
    raw: Dict[str, Any] = _raw()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Face:
        landmarks, pose, mesh = data.get("landmarks"), data.get("head_pose"), data.get("mesh")
        return cls(
            box=Box.from_dict(data["box"]),
            confidence=data.get("confidence"),
            landmarks=Landmarks.from_dict(landmarks) if landmarks else None,
            emotions=Emotions.from_dict(data["emotions"]),
            dominant_emotion=data["dominant_emotion"],
            track_id=data.get("track_id"),
            head_pose=HeadPose.from_dict(pose) if pose else None,
            facing_camera=data.get("facing_camera"),
            mesh=[(float(x), float(y), float(z)) for x, y, z in mesh] if mesh else None,
            raw=dict(data),
        )


@dataclass(frozen=True)
class Media:
    type: str  # "image" or "video"
    format: str
    width: int
    height: int
    duration_ms: Optional[float]
    fps: Optional[float]
    frames_analyzed: int
    raw: Dict[str, Any] = _raw()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Media:
        return cls(
            data["type"],
            data["format"],
            data["width"],
            data["height"],
            data.get("duration_ms"),
            data.get("fps"),
            data.get("frames_analyzed", 0),
            raw=dict(data),
        )


@dataclass(frozen=True)
class ModelVersions:
    detector: str
    emotion: str
    emotion_sha256: str
    deepface: str
    raw: Dict[str, Any] = _raw()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelVersions:
        return cls(
            data.get("detector", ""),
            data.get("emotion", ""),
            data.get("emotion_sha256", ""),
            data.get("deepface", ""),
            raw=dict(data),
        )


@dataclass(frozen=True)
class Frame:
    index: int
    timestamp_ms: float
    faces: Tuple[Face, ...]
    raw: Dict[str, Any] = _raw()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Frame:
        return cls(
            data["index"], data["timestamp_ms"], tuple(Face.from_dict(f) for f in data.get("faces", ())), raw=dict(data)
        )


@dataclass(frozen=True)
class TimelinePoint:
    timestamp_ms: float
    frame_index: int
    emotions: Emotions
    dominant_emotion: str
    raw: Dict[str, Any] = _raw()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TimelinePoint:
        return cls(
            data["timestamp_ms"],
            data["frame_index"],
            Emotions.from_dict(data["emotions"]),
            data["dominant_emotion"],
            raw=dict(data),
        )


@dataclass(frozen=True)
class TrackSummary:
    """Mean of the track's per-frame probabilities."""

    emotions: Emotions
    dominant_emotion: str
    raw: Dict[str, Any] = _raw()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrackSummary:
        return cls(Emotions.from_dict(data["emotions"]), data["dominant_emotion"], raw=dict(data))


@dataclass(frozen=True)
class Track:
    """One person across frames."""

    track_id: int
    start_ms: float
    end_ms: float
    frame_count: int
    summary: TrackSummary
    timeline: Tuple[TimelinePoint, ...]
    raw: Dict[str, Any] = _raw()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Track:
        return cls(
            data["track_id"],
            data["start_ms"],
            data["end_ms"],
            data["frame_count"],
            TrackSummary.from_dict(data["summary"]),
            tuple(TimelinePoint.from_dict(p) for p in data.get("timeline", ())),
            raw=dict(data),
        )


@dataclass(frozen=True)
class RegionMovement:
    name: str  # brows, eyes, nose, mouth, chin
    magnitude: float
    action_units: Tuple[str, ...]
    raw: Dict[str, Any] = _raw()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RegionMovement:
        return cls(data["name"], data["magnitude"], tuple(data.get("action_units", ())), raw=dict(data))


@dataclass(frozen=True)
class MicroExpression:
    track_id: int
    kind: str  # "micro" (at most 500 ms) or "macro"
    onset_ms: float
    apex_ms: float
    offset_ms: float
    duration_ms: float
    intensity: float
    regions: Tuple[RegionMovement, ...]
    emotion: Optional[str]
    emotion_probability: Optional[float]
    raw: Dict[str, Any] = _raw()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MicroExpression:
        return cls(
            data["track_id"],
            data["kind"],
            data["onset_ms"],
            data["apex_ms"],
            data["offset_ms"],
            data["duration_ms"],
            data["intensity"],
            tuple(RegionMovement.from_dict(r) for r in data.get("regions", ())),
            data.get("emotion"),
            data.get("emotion_probability"),
            raw=dict(data),
        )


class AnalysisResult:
    """Base of ImageResult and VideoResult; `emoscope.parse_analysis(dict)` picks the right one."""

    request_id: str
    media: Media
    raw: Dict[str, Any]
    replayed: bool

    @property
    def is_video(self) -> bool:
        return self.media.type == "video"


@dataclass(frozen=True)
class ImageResult(AnalysisResult):
    request_id: str
    model: ModelVersions
    timing_ms: Dict[str, float]
    media: Media
    faces: Tuple[Face, ...]
    raw: Dict[str, Any] = _raw()
    #: True when the API answered with the stored result of an earlier call with the same Idempotency-Key.
    replayed: bool = field(default=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], replayed: bool = False) -> ImageResult:
        return cls(
            data["request_id"],
            ModelVersions.from_dict(data.get("model", {})),
            dict(data.get("timing_ms", {})),
            Media.from_dict(data["media"]),
            tuple(Face.from_dict(f) for f in data.get("faces", ())),
            raw=dict(data),
            replayed=replayed,
        )


@dataclass(frozen=True)
class Still:
    """A small JPEG of one analysed frame (`return_stills=True`)."""

    frame_index: int
    timestamp_ms: float
    jpeg: bytes

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Still:
        return cls(data["frame_index"], data["timestamp_ms"], base64.b64decode(data["jpeg_base64"]))


@dataclass(frozen=True)
class VideoResult(AnalysisResult):
    request_id: str
    model: ModelVersions
    timing_ms: Dict[str, float]
    media: Media
    sample_fps: float
    temporal_resolution_ms: float
    frames: Tuple[Frame, ...]
    tracks: Tuple[Track, ...]
    micro_expressions: Tuple[MicroExpression, ...]
    #: Only when asked for (`extra_fields={"return_stills": True}`): for showing a clip one cannot decode.
    stills: Tuple[Still, ...] = ()
    raw: Dict[str, Any] = _raw()
    replayed: bool = field(default=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], replayed: bool = False) -> VideoResult:
        return cls(
            data["request_id"],
            ModelVersions.from_dict(data.get("model", {})),
            dict(data.get("timing_ms", {})),
            Media.from_dict(data["media"]),
            data.get("sample_fps", 0.0),
            data.get("temporal_resolution_ms", 0.0),
            tuple(Frame.from_dict(f) for f in data.get("frames", ())),
            tuple(Track.from_dict(t) for t in data.get("tracks", ())),
            tuple(MicroExpression.from_dict(m) for m in data.get("micro_expressions", ())),
            tuple(Still.from_dict(s) for s in data.get("stills", ())),
            raw=dict(data),
            replayed=replayed,
        )


def parse_analysis(data: Mapping[str, Any], replayed: bool = False) -> Union[ImageResult, VideoResult]:
    """An analysis JSON document (from the API, a stored file, or later a job) -> typed result."""
    if data.get("media", {}).get("type") == "video" or "tracks" in data:
        return VideoResult.from_dict(data, replayed)
    return ImageResult.from_dict(data, replayed)


# ---- asynchronous jobs ----------------------------------------------------------------------

JOB_FINAL = ("succeeded", "failed")


@dataclass(frozen=True)
class JobProgress:
    frames_done: int
    frames_total: Optional[int]

    @property
    def fraction(self) -> Optional[float]:
        """0..1, or None while the total is unknown."""
        if not self.frames_total:
            return None
        return min(1.0, self.frames_done / self.frames_total)


@dataclass(frozen=True)
class JobWebhook:
    url: str
    status: Optional[str]  # pending, delivered, failed


@dataclass(frozen=True)
class Job:
    """An asynchronous analysis (`POST /v1/analyze` answered 202, `GET /v1/jobs/{id}`)."""

    id: str
    status: str  # queued, running, succeeded, failed
    progress: JobProgress
    created_at: Optional[datetime]
    started_at: Optional[datetime]
    finished_at: Optional[datetime]
    expires_at: Optional[datetime]
    #: The same typed result as a synchronous analysis, once succeeded (None after it expired).
    result: Optional[Union[ImageResult, VideoResult]]
    result_expired: bool
    #: The problem document of a failed job.
    error: Optional[Dict[str, Any]]
    webhook: Optional[JobWebhook]
    raw: Dict[str, Any] = _raw()
    replayed: bool = field(default=False, compare=False)

    @property
    def done(self) -> bool:
        return self.status in JOB_FINAL

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], replayed: bool = False) -> Job:
        progress = data.get("progress") or {}
        webhook = data.get("webhook")
        result = data.get("result")
        return cls(
            data["id"],
            data["status"],
            JobProgress(progress.get("frames_done", 0), progress.get("frames_total")),
            _dt(data.get("created_at")),
            _dt(data.get("started_at")),
            _dt(data.get("finished_at")),
            _dt(data.get("expires_at")),
            parse_analysis(result) if result else None,
            bool(data.get("result_expired", False)),
            data.get("error"),
            JobWebhook(webhook["url"], webhook.get("status")) if webhook else None,
            raw=dict(data),
            replayed=replayed,
        )

    def result_or_raise(self) -> Union[ImageResult, VideoResult]:
        """The result of a succeeded job; a failed job raises the exception its problem maps to
        (e.g. InvalidRequestError for `media_corrupt`)."""
        if self.status == "failed":
            problem = dict(self.error or {})
            status, code = int(problem.get("status") or 422), problem.get("code")
            detail = problem.get("detail")
            raise error_class(status, code)(
                f"job {self.id} failed: {code}" + (f": {detail}" if detail else ""),
                status=status,
                code=code,
                detail=detail,
                request_id=problem.get("request_id"),
                problem=problem,
            )
        if self.status != "succeeded":
            raise EmoscopeError(f"job {self.id} is still {self.status}")
        if self.result is None:
            raise EmoscopeError(
                f"the result of job {self.id} has expired (results are kept for a retention window)",
                code="result_expired",
            )
        return self.result


# ---- owner resources -------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiKey:
    id: int
    prefix: str
    name: str
    scopes: Tuple[str, ...]
    created_at: Optional[datetime]
    last_used_at: Optional[datetime]
    revoked_at: Optional[datetime]
    #: The whole key; only set on the answer that created it (never shown again).
    secret: Optional[str] = field(default=None, repr=False)
    #: When a key issued by sign-in stops working; None for keys created to last.
    expires_at: Optional[datetime] = None
    raw: Dict[str, Any] = _raw()

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ApiKey:
        return cls(
            data["id"],
            data["prefix"],
            data.get("name", ""),
            tuple(data.get("scopes", ())),
            _dt(data.get("created_at")),
            _dt(data.get("last_used_at")),
            _dt(data.get("revoked_at")),
            data.get("secret"),
            _dt(data.get("expires_at")),
            raw=dict(data),
        )


@dataclass(frozen=True)
class AccountSummary:
    id: int
    name: str
    plan: str
    raw: Dict[str, Any] = _raw()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AccountSummary:
        return cls(data["id"], data["name"], data["plan"], raw=dict(data))


@dataclass(frozen=True)
class SignUpResult:
    account: AccountSummary
    owner_email: str
    #: The first admin key; `api_key.secret` is shown only here.
    api_key: ApiKey
    raw: Dict[str, Any] = _raw()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SignUpResult:
        return cls(
            AccountSummary.from_dict(data["account"]),
            data.get("owner", {}).get("email", ""),
            ApiKey.from_dict(data["api_key"]),
            raw=dict(data),
        )


@dataclass(frozen=True)
class UsageDay:
    date: date
    units: int
    requests: int
    raw: Dict[str, Any] = _raw()


@dataclass(frozen=True)
class Usage:
    from_: date
    to: date
    granularity: str
    total_units: int
    total_requests: int
    data: Tuple[UsageDay, ...]
    raw: Dict[str, Any] = _raw()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Usage:
        days = tuple(
            UsageDay(date.fromisoformat(d["date"]), d["units"], d["requests"], raw=dict(d))
            for d in data.get("data", ())
        )
        return cls(
            date.fromisoformat(data["from"]),
            date.fromisoformat(data["to"]),
            data.get("granularity", "day"),
            data["total_units"],
            data["total_requests"],
            days,
            raw=dict(data),
        )


@dataclass(frozen=True)
class Quota:
    monthly_units: Optional[int]  # None: no hard quota (usage is billed)
    used_units: int
    resets_at: Optional[datetime]
    raw: Dict[str, Any] = _raw()


@dataclass(frozen=True)
class RateLimit:
    requests_per_second: float
    burst: int
    raw: Dict[str, Any] = _raw()


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    plan: str
    subscription_status: str
    quota: Quota
    rate_limit: RateLimit
    billing_enabled: bool
    #: Verifies the `Emoscope-Signature` of this account's job webhooks (see emoscope.webhooks).
    webhook_signing_secret: Optional[str] = field(default=None, repr=False)
    raw: Dict[str, Any] = _raw()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Account:
        q, r = data.get("quota", {}), data.get("rate_limit", {})
        return cls(
            data["id"],
            data["name"],
            data["plan"],
            data.get("subscription_status", "none"),
            Quota(q.get("monthly_units"), q.get("used_units", 0), _dt(q.get("resets_at")), raw=dict(q)),
            RateLimit(r.get("requests_per_second", 0.0), r.get("burst", 0), raw=dict(r)),
            bool(data.get("billing_enabled", False)),
            data.get("webhook_signing_secret"),
            raw=dict(data),
        )


@dataclass(frozen=True)
class DataDeletion:
    """What `client.account.delete_data()` deleted (usage records stay: invoices need them)."""

    studies_deleted: int
    jobs_deleted: int
    requests_scrubbed: int
    raw: Dict[str, Any] = _raw()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DataDeletion:
        return cls(data["studies_deleted"], data["jobs_deleted"], data["requests_scrubbed"], raw=dict(data))


@dataclass(frozen=True)
class Subscription:
    """The account's plan after `client.billing.subscribe()`."""

    plan: str
    subscription_status: str
    stripe_customer_id: str
    raw: Dict[str, Any] = _raw()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Subscription:
        return cls(data["plan"], data["subscription_status"], data["stripe_customer_id"], raw=dict(data))


# ---- audience studies ------------------------------------------------------------------------


@dataclass(frozen=True)
class Study:
    id: str
    name: str
    stimulus_duration_ms: float
    has_stimulus: bool
    created_at: Optional[datetime]
    #: Sessions by status: processing, succeeded, low_quality (face under half the stimulus; unbilled), failed.
    sessions: Dict[str, int]
    #: The participant token and page (/s/<token>); None for a study made before links could be shown again.
    participant_token: Optional[str] = field(default=None, repr=False)
    participant_path: Optional[str] = field(default=None, repr=False)
    #: The owner's cap on sessions (None: only the deployment's).
    max_sessions: Optional[int] = None
    #: The participant link's variables kept with each session (e.g. "age").
    variables: Tuple[str, ...] = ()
    raw: Dict[str, Any] = _raw()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Study:
        return cls(
            data["id"],
            data["name"],
            float(data["stimulus_duration_ms"]),
            bool(data.get("has_stimulus")),
            _dt(data.get("created_at")),
            dict(data.get("sessions", {})),
            data.get("participant_token"),
            data.get("participant_path"),
            data.get("max_sessions"),
            tuple(data.get("variables", ())),
            raw=dict(data),
        )


@dataclass(frozen=True)
class TopMoment:
    """A second where viewers showed `emotion` more than on their own average: the mean `lift` with its 95%
    interval, Cohen's d_z (None when every viewer lifted alike), the one-sided paired t-test's p and
    its Benjamini-Hochberg adjustment over every (second, expression) tested."""

    emotion: str
    time_ms: int
    mean: float
    lift: float
    ci95: Tuple[float, float]
    effect_size: Optional[float]
    p: float
    p_adjusted: float
    viewers: int

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TopMoment:
        effect = data.get("effect_size")
        return cls(
            data["emotion"],
            int(data["time_ms"]),
            float(data["mean"]),
            float(data["lift"]),
            (float(data["ci95"][0]), float(data["ci95"][1])),
            None if effect is None else float(effect),
            float(data["p"]),
            float(data["p_adjusted"]),
            int(data["viewers"]),
        )


@dataclass(frozen=True)
class ScoreInterval:
    """Across viewers, the mean of each viewer's own figure and its 95% interval (Student's t)."""

    mean: float
    ci95: Tuple[float, float]
    viewers: int

    @classmethod
    def from_dict(cls, data: Optional[Mapping[str, Any]]) -> Optional[ScoreInterval]:
        """None stays None: a score withheld below the report's `min_viewers`."""
        if data is None:
            return None
        return cls(float(data["mean"]), (float(data["ci95"][0]), float(data["ci95"][1])), int(data["viewers"]))


@dataclass(frozen=True)
class EmotionPeak:
    """The second with an emotion's highest mean over viewers, and that second's 95% interval."""

    time_ms: int
    mean: float
    ci95: Tuple[float, float]


@dataclass(frozen=True)
class EmotionSummary:
    mean: Optional[ScoreInterval]
    peak: Optional[EmotionPeak]


@dataclass(frozen=True)
class StudySummary:
    """The study in a few scores (openapi.yaml, StudySummary); None where withheld. Valence is the
    probability of `positive_emotions` minus that of `negative_emotions` (-1 to 1); engagement the share
    of seconds in which one of `expressive_emotions` reached the report's expression threshold."""

    emotions: Dict[str, EmotionSummary]
    valence: Optional[ScoreInterval]
    engagement: Optional[ScoreInterval]
    attention: Optional[ScoreInterval]
    positive_emotions: Tuple[str, ...]
    negative_emotions: Tuple[str, ...]
    expressive_emotions: Tuple[str, ...]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StudySummary:
        emotions = {}
        for emotion, score in data["emotions"].items():
            peak = score.get("peak")
            emotions[emotion] = EmotionSummary(
                ScoreInterval.from_dict(score.get("mean")),
                None
                if peak is None
                else EmotionPeak(
                    int(peak["time_ms"]), float(peak["mean"]), (float(peak["ci95"][0]), float(peak["ci95"][1]))
                ),
            )
        return cls(
            emotions,
            ScoreInterval.from_dict(data.get("valence")),
            ScoreInterval.from_dict(data.get("engagement")),
            ScoreInterval.from_dict(data.get("attention")),
            tuple(data.get("positive_emotions", ())),
            tuple(data.get("negative_emotions", ())),
            tuple(data.get("expressive_emotions", ())),
        )


@dataclass(frozen=True)
class VariableGroup:
    """The viewers whose link carried one value of a variable, and their summary scores (the seven emotions'
    means, valence, engagement, attention; None where withheld)."""

    value: str
    viewers: int
    scores: Dict[str, Optional[ScoreInterval]]


@dataclass(frozen=True)
class VariableBreakdown:
    """One link variable's values with at least the report's `min_viewers` viewers (the largest 20);
    `smaller_values` more values, `smaller_viewers` viewers in all, are only counted."""

    key: str
    groups: Tuple[VariableGroup, ...]
    smaller_values: int
    smaller_viewers: int
    without_value: int

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VariableBreakdown:
        groups = tuple(
            VariableGroup(
                g["value"],
                int(g["viewers"]),
                {name: ScoreInterval.from_dict(score) for name, score in g["scores"].items()},
            )
            for g in data["values"]
        )
        smaller = data.get("smaller_groups", {})
        return cls(
            data["key"],
            groups,
            int(smaller.get("values", 0)),
            int(smaller.get("viewers", 0)),
            int(data.get("without_value", 0)),
        )


@dataclass(frozen=True)
class StudyReport:
    """The audience's response per bucket of the stimulus; buckets and segments stay plain dicts
    (see openapi.yaml, StudyReport), one row of the CSV each."""

    study_id: str
    viewers: int
    bucket_ms: int
    buckets: Tuple[Dict[str, Any], ...]
    top_moments: Tuple[TopMoment, ...]
    segments: Tuple[Dict[str, Any], ...]
    summary: Optional[StudySummary] = None
    #: The `segment` filter this report was made with ({} for everyone).
    filter: Dict[str, str] = field(default_factory=dict)
    breakdown: Tuple[VariableBreakdown, ...] = ()
    raw: Dict[str, Any] = _raw()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StudyReport:
        moments = tuple(TopMoment.from_dict(m) for m in data.get("top_moments", ()))
        summary = StudySummary.from_dict(data["summary"]) if data.get("summary") else None
        return cls(
            data["study_id"],
            int(data["viewers"]),
            int(data["bucket_ms"]),
            tuple(data.get("buckets", ())),
            moments,
            tuple(data.get("segments", ())),
            summary,
            dict(data.get("filter", {})),
            tuple(VariableBreakdown.from_dict(b) for b in data.get("breakdown", ())),
            raw=dict(data),
        )


@dataclass(frozen=True)
class ScoreDifference:
    """A summary score of one study minus the baseline's, with a 95% percentile bootstrap interval."""

    difference: float
    ci95: Tuple[float, float]


@dataclass(frozen=True)
class StudyDifferences:
    """One study against the comparison's baseline (the first study): per score (the seven emotions'
    means, valence, engagement, attention) the difference, None where either audience was too small."""

    study_id: str
    baseline_study_id: str
    scores: Dict[str, Optional[ScoreDifference]]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StudyDifferences:
        scores = {
            name: None
            if d is None
            else ScoreDifference(float(d["difference"]), (float(d["ci95"][0]), float(d["ci95"][1])))
            for name, d in data["scores"].items()
        }
        return cls(data["study_id"], data["baseline_study_id"], scores)


@dataclass(frozen=True)
class ComparedStudy:
    """One study of a comparison: its per-second buckets (plain dicts, as in StudyReport) and summary."""

    study_id: str
    name: str
    viewers: int
    stimulus_duration_ms: float
    buckets: Tuple[Dict[str, Any], ...]
    top_moments: Tuple[TopMoment, ...]
    summary: StudySummary

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ComparedStudy:
        return cls(
            data["study_id"],
            data["name"],
            int(data["viewers"]),
            float(data["stimulus_duration_ms"]),
            tuple(data.get("buckets", ())),
            tuple(TopMoment.from_dict(m) for m in data.get("top_moments", ())),
            StudySummary.from_dict(data["summary"]),
        )


@dataclass(frozen=True)
class StudyComparison:
    """Studies side by side on one stimulus clock, and each one's differences from the first
    (openapi.yaml, StudyComparison); intervals from `resamples` bootstrap draws with a fixed `seed`."""

    studies: Tuple[ComparedStudy, ...]
    differences: Tuple[StudyDifferences, ...]
    resamples: int
    seed: int
    raw: Dict[str, Any] = _raw()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StudyComparison:
        return cls(
            tuple(ComparedStudy.from_dict(s) for s in data["studies"]),
            tuple(StudyDifferences.from_dict(d) for d in data["differences"]),
            int(data["bootstrap"]["resamples"]),
            int(data["bootstrap"]["seed"]),
            raw=dict(data),
        )


@dataclass(frozen=True)
class ReportLink:
    """A read-only link to a study's report for a client: `path` (/r/<token>) on the API's host opens it
    without signing in until `expires_at`, or until it is revoked."""

    id: str
    path: str = field(repr=False)
    token: str = field(repr=False)
    created_at: Optional[datetime] = None
    expires_at: Optional[datetime] = None
    revoked_at: Optional[datetime] = None
    raw: Dict[str, Any] = _raw()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReportLink:
        return cls(
            data["id"],
            data["path"],
            data["token"],
            _dt(data.get("created_at")),
            _dt(data.get("expires_at")),
            _dt(data.get("revoked_at")),
            raw=dict(data),
        )
