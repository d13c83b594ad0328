"""Audience maths for studies: one viewer's analysis on the stimulus clock, and many viewers summed up.

Pure functions on numpy arrays; nothing here knows about HTTP or storage.

A session is kept only as a timeline on a fixed grid of the stimulus (`GRID_MS` buckets), so
viewers recorded at different frame rates line up, and a report over any number of viewers is
a few array operations:
- `recorded`: the webcam recording covers the bucket (a viewer who stopped early has no later ones);
- `visible`: the viewer's face was found in the analysed frame covering the bucket;
- `attending`: visible and facing the camera, and so the screen beside it (its head pose,
  api.engine.mesh.HeadPose.facing_camera);
- `probabilities`: that frame's seven emotion probabilities (NaN when not visible).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from api.engine.preprocess import EMOTIONS
from api.engine.results import VideoAnalysis

GRID_MS = 100
# Below this many viewers with a face in a second, its figures are withheld: a mean of two or
# three faces is noise, and a report that shows it invites reading too much into it.
MIN_VIEWERS = 5
# A viewer "shows" an emotion in a second when its mean probability over that second is at least this.
EXPRESSION_THRESHOLD = 0.5
# A viewer counts as facing the screen in a second when the face was found in at least this share
# of the second's recorded buckets (and as attending when it also faced the camera that long).
VISIBLE_SHARE = 0.5
Z_95 = 1.959964
# Quality gate: a session whose face was found over less than this share of the stimulus says little
# about the stimulus (a camera on the ceiling, a viewer who walked away, an empty room); it is kept
# as low quality, left out of reports unless asked for, and not billed. Half: below it, most seconds
# of that viewer are missing, and the per-second figures already need half a second with a face.
MIN_FACE_SHARE = 0.5
# Webcam recordings drop frames (browsers record at a variable rate, fewer frames when busy): a frame
# stands until the next one, but no longer than this (or one sampling period, if longer).
FRAME_HOLD_MS = 500.0
# Top moments: seconds where viewers show an expression more than they do on average over the stimulus,
# tested per (second, expression) and kept when significant at this false discovery rate over all those
# tested (Benjamini-Hochberg): the report tests hundreds of pairs, and a 5% test on each would find
# a dozen "moments" in pure noise.
MOMENT_FDR = 0.05
# ...and when the lift is at least this: with a thousand viewers a 1-point lift is significant, but it
# is not a moment anyone would look for in the ad.
MIN_LIFT = 0.05
TOP_MOMENTS_PER_EMOTION = 3
MOMENT_SEPARATION_S = 3
# A/B comparison: the difference of each summary score between two studies, with a percentile interval
# from resampling each study's viewers. 2000 resamples put the 2.5% and 97.5% points within about a
# percentage point of where more would; the fixed seed gives the same interval on every read.
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 2026
COMPARED_SCORES = (*EMOTIONS, "valence", "engagement", "attention")
UNKNOWN_EMOTION = "unknown"
# Valence: the probability of the positive expression minus that of the negative ones. Surprise is left out
# (it goes with good news and bad alike) and so is neutral (the absence of an expression).
POSITIVE_EMOTIONS = ("happy",)
NEGATIVE_EMOTIONS = ("angry", "disgust", "fear", "sad")
# Engagement: a viewer is engaged in a second when some expression other than neutral reaches
# EXPRESSION_THRESHOLD there. With seven classes summing to one, 0.5 means that expression outweighs all
# the others together: the classifier is sure of it, not spreading a low, noisy probability over classes.
EXPRESSIVE_EMOTIONS = tuple(e for e in EMOTIONS if e != "neutral")


@dataclass
class SessionTimeline:
    recorded: np.ndarray  # (n,) bool
    visible: np.ndarray  # (n,) bool
    attending: np.ndarray  # (n,) bool, only where visible
    probabilities: np.ndarray  # (n, 7) float32, NaN where not visible
    micro_onsets_ms: list[tuple[float, str]] = field(default_factory=list)  # stimulus clock, emotion
    segment: str | None = None
    variables: dict[str, str] = field(default_factory=dict)  # the link's whitelisted variables (api.domain.studies)

    def to_bytes(self) -> bytes:
        """(n, 10) float32: recorded, visible, attending, then the seven probabilities."""
        table = np.column_stack([self.recorded, self.visible, self.attending, self.probabilities]).astype(np.float32)
        return table.tobytes()

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        n_buckets: int,
        micro_onsets_ms: list,
        segment: str | None,
        variables: dict[str, str] | None = None,
    ) -> SessionTimeline:
        """Also reads the (n, 9) rows stored before head pose existed: their viewers count as attending
        whenever their face was found, the best that is known of them."""
        table = np.frombuffer(data, np.float32).reshape(n_buckets, -1)
        visible = table[:, 1] > 0
        attending = table[:, 2] > 0 if table.shape[1] == 3 + len(EMOTIONS) else visible
        return cls(
            table[:, 0] > 0,
            visible,
            attending,
            table[:, -len(EMOTIONS) :],
            [tuple(m) for m in micro_onsets_ms],
            segment,
            variables or {},
        )


def grid_size(stimulus_ms: float) -> int:
    return max(1, math.ceil(stimulus_ms / GRID_MS))


def session_timeline(
    frame_times_ms: np.ndarray,
    frame_probabilities: list[np.ndarray | None],
    recording_ms: float,
    sample_fps: float,
    stimulus_started_ms: float,
    stimulus_ms: float,
    micro_onsets_ms: list[tuple[float, str]] = (),
    segment: str | None = None,
    frame_facing: list[bool] | None = None,
) -> SessionTimeline:
    """One viewer's analysed frames (recording clock) -> the stimulus grid.

    Each analysed frame stands until the next one, for at most FRAME_HOLD_MS or one sampling period
    (1/sample_fps); a bucket takes the frame covering its centre. `frame_probabilities[i]` is the viewer's face in
    frame i (None: no face); `frame_facing[i]` whether that face faced the camera (None: every face
    did). Micro-expression onsets arrive on the recording clock and leave on the stimulus clock;
    those before playback or after its end are dropped.
    """
    n = grid_size(stimulus_ms)
    centres = stimulus_started_ms + (np.arange(n) + 0.5) * GRID_MS  # recording clock
    recorded = centres < recording_ms
    times = np.asarray(frame_times_ms, np.float64)
    covering = np.searchsorted(times, centres, side="right") - 1
    stands_until = np.minimum(np.append(times[1:], recording_ms), times + max(FRAME_HOLD_MS, 1000.0 / sample_fps))
    probabilities = np.full((n, len(EMOTIONS)), np.nan, np.float32)
    visible, attending = np.zeros(n, bool), np.zeros(n, bool)
    for bucket in np.flatnonzero(recorded & (covering >= 0)):
        frame = covering[bucket]
        p = frame_probabilities[frame]
        if p is not None and centres[bucket] < stands_until[frame]:
            visible[bucket] = True
            attending[bucket] = frame_facing is None or frame_facing[frame]
            probabilities[bucket] = p
    onsets = [(t - stimulus_started_ms, e) for t, e in micro_onsets_ms if 0 <= t - stimulus_started_ms < stimulus_ms]
    return SessionTimeline(recorded, visible, attending, probabilities, onsets, segment)


def timeline_from_analysis(
    analysis: VideoAnalysis, stimulus_started_ms: float, stimulus_ms: float, segment: str | None = None
) -> SessionTimeline:
    """A webcam recording's analysis -> its timeline. The viewer is the largest face in each frame
    (the person at the webcam); micro-expressions count on the tracks that were mostly that face."""
    times, frame_probabilities, frame_facing, largest_on = [], [], [], {}
    for frame in analysis.frames:
        times.append(frame.timestamp_ms)
        face = max(frame.faces, key=lambda f: float(f.box[2] * f.box[3]), default=None)
        frame_probabilities.append(None if face is None else face.emotions)
        frame_facing.append(face is not None and face.head_pose is not None and face.head_pose.facing_camera)
        if face is not None and face.track_id is not None:
            largest_on[face.track_id] = largest_on.get(face.track_id, 0) + 1
    viewer_tracks = {t.track_id for t in analysis.tracks if largest_on.get(t.track_id, 0) * 2 >= len(t.faces)}
    onsets = [
        (e.onset_ms, e.emotion) for e in analysis.micro_expressions if e.kind == "micro" and e.track_id in viewer_tracks
    ]
    period = 1000.0 / analysis.sample_fps
    recording_ms = max(analysis.media.duration_ms or 0.0, (times[-1] + period) if times else 0.0)
    return session_timeline(
        np.asarray(times),
        frame_probabilities,
        recording_ms,
        analysis.sample_fps,
        stimulus_started_ms,
        stimulus_ms,
        onsets,
        segment,
        frame_facing,
    )


# --- the report ---------------------------------------------------------------------------------


def t_quantile_975(df: int) -> float:
    """Student's t 97.5% quantile (two-sided 95% interval), from a table up to 30 and a series beyond."""
    table = (
        12.706,
        4.303,
        3.182,
        2.776,
        2.571,
        2.447,
        2.365,
        2.306,
        2.262,
        2.228,
        2.201,
        2.179,
        2.160,
        2.145,
        2.131,
        2.120,
        2.110,
        2.101,
        2.093,
        2.086,
        2.080,
        2.074,
        2.069,
        2.064,
        2.060,
        2.056,
        2.052,
        2.048,
        2.045,
        2.042,
    )
    if df <= len(table):
        return table[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


@dataclass(frozen=True)
class Stacked:
    """Timelines stacked into (viewers, grid) arrays once, so that every view of the report is array
    operations on them (stacking per view, one np.pad per viewer, was most of a large report's time)."""

    recorded: np.ndarray  # (viewers, n) bool
    visible: np.ndarray  # (viewers, n) bool
    attending: np.ndarray  # (viewers, n) bool
    probabilities: np.ndarray  # (viewers, n, 7) float32, NaN where not visible

    @classmethod
    def of(cls, timelines: list[SessionTimeline], n_fine: int) -> Stacked:
        v = len(timelines)
        recorded, visible, attending = (np.zeros((v, n_fine), bool) for _ in range(3))
        probabilities = np.full((v, n_fine, len(EMOTIONS)), np.nan, np.float32)
        for i, t in enumerate(timelines):
            n = min(n_fine, len(t.recorded))
            recorded[i, :n], visible[i, :n], attending[i, :n] = t.recorded[:n], t.visible[:n], t.attending[:n]
            probabilities[i, :n] = t.probabilities[:n]
        return cls(recorded, visible, attending, probabilities)

    def rows(self, selected: np.ndarray) -> Stacked:
        return Stacked(
            self.recorded[selected], self.visible[selected], self.attending[selected], self.probabilities[selected]
        )


def _bucket_view(stacked: Stacked, fine_per_bucket: int):
    """Per viewer and report bucket: recorded?, facing?, attending?, mean probabilities over the facing buckets."""
    v, n_fine = stacked.recorded.shape
    n_buckets = math.ceil(n_fine / fine_per_bucket)
    pad = ((0, 0), (0, n_buckets * fine_per_bucket - n_fine))
    recorded, visible, attending = (np.pad(a, pad) for a in (stacked.recorded, stacked.visible, stacked.attending))
    probabilities = np.pad(stacked.probabilities, (*pad, (0, 0)), constant_values=np.nan)
    shape = (v, n_buckets, fine_per_bucket)
    recorded_count = recorded.reshape(shape).sum(axis=2)
    visible_count = visible.reshape(shape).sum(axis=2)
    facing = (recorded_count > 0) & (visible_count >= VISIBLE_SHARE * np.maximum(recorded_count, 1))
    attending_count = attending.reshape(shape).sum(axis=2)
    attends = (recorded_count > 0) & (attending_count >= VISIBLE_SHARE * np.maximum(recorded_count, 1))
    seen = np.where(visible[..., None], probabilities, 0.0).reshape(*shape, len(EMOTIONS)).sum(axis=2)
    means = np.full(seen.shape, np.nan)
    means[facing] = seen[facing] / visible_count[facing][:, None]
    return recorded_count > 0, facing, attends, means


def share_interval(hits: int, n: int) -> list[float]:
    """Wilson's 95% interval of a share (sound at 0 and 1, and with few viewers)."""
    if n == 0:
        return [0.0, 1.0]
    p = hits / n
    centre = (p + Z_95**2 / (2 * n)) / (1 + Z_95**2 / n)
    half = Z_95 * math.sqrt(p * (1 - p) / n + Z_95**2 / (4 * n * n)) / (1 + Z_95**2 / n)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def _emotion_stats(means: np.ndarray) -> dict:
    """Across viewers (rows of `means`, one second, no NaN rows): mean, 95% CI and share above threshold."""
    n = len(means)
    mean = means.mean(axis=0)
    half = t_quantile_975(n - 1) * means.std(axis=0, ddof=1) / math.sqrt(n) if n > 1 else np.full(len(EMOTIONS), np.nan)
    share = (means >= EXPRESSION_THRESHOLD).mean(axis=0)
    return {
        e: {
            "mean": round(float(mean[i]), 4),
            "ci95": [round(float(max(0.0, mean[i] - half[i])), 4), round(float(min(1.0, mean[i] + half[i])), 4)],
            "share_above_threshold": round(float(share[i]), 4),
        }
        for i, e in enumerate(EMOTIONS)
    }


def _micro_counts(timelines: list[SessionTimeline], bucket_ms: int, n_buckets: int) -> list[dict]:
    counts = [{} for _ in range(n_buckets)]
    for t in timelines:
        for onset_ms, emotion in t.micro_onsets_ms:
            k = int(onset_ms // bucket_ms)
            if 0 <= k < n_buckets:
                name = emotion or UNKNOWN_EMOTION
                counts[k][name] = counts[k].get(name, 0) + 1
    return counts


def t_upper_tail(t: np.ndarray, df: np.ndarray) -> np.ndarray:
    """P(T > t) for Student's t with `df` degrees of freedom, elementwise: through the regularised incomplete
    beta function, P(|T| > t) = I_x(df / 2, 1 / 2) with x = df / (df + t^2). t = inf gives 0."""
    t, df = np.broadcast_arrays(np.asarray(t, np.float64), np.asarray(df, np.float64))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        x = np.where(np.isinf(t), 0.0, df / (df + t * t))
        both_tails = _regularised_beta(df / 2, np.full(df.shape, 0.5), x)
    return np.where(t > 0, both_tails / 2, 1 - both_tails / 2)


def _regularised_beta(a: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """I_x(a, b), elementwise, by its continued fraction (Lentz), on the side of x where it converges fast."""
    lgamma = np.vectorize(math.lgamma, otypes=[np.float64])
    with np.errstate(divide="ignore", invalid="ignore"):
        front = np.exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * np.log(x) + b * np.log1p(-x))
    direct = x < (a + 1) / (a + b + 2)
    value = np.where(direct, front * _beta_fraction(a, b, x) / a, 1 - front * _beta_fraction(b, a, 1 - x) / b)
    return np.clip(np.where(x <= 0, 0.0, np.where(x >= 1, 1.0, value)), 0.0, 1.0)


def _beta_fraction(a: np.ndarray, b: np.ndarray, x: np.ndarray, steps: int = 200) -> np.ndarray:
    """The incomplete beta's continued fraction (Numerical Recipes' betacf), a fixed number of steps: it
    converges in O(sqrt(a)) of them, and df stays below the deployment's session cap."""
    tiny = 1e-300

    def nonzero(v: np.ndarray) -> np.ndarray:
        return np.where(np.abs(v) < tiny, tiny, v)

    c = np.ones_like(x)
    d = 1 / nonzero(1 - (a + b) * x / (a + 1))
    h = d.copy()
    for m in range(1, steps + 1):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 / nonzero(1 + numerator * d)
            c = nonzero(1 + numerator / c)
            h = h * d * c
    return h


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Adjusted p-values controlling the false discovery rate over all of `p` (Benjamini and Hochberg, 1995)."""
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def _significant(p: float) -> float:
    return float(f"{p:.3g}")  # three significant digits: a p of 1e-12 must not round to 0


@dataclass(frozen=True)
class MomentTests:
    """Every (second, expression but neutral) tested for a lift over viewers' own average: arrays of
    (len(seconds), len(EXPRESSIVE_EMOTIONS))."""

    seconds: np.ndarray  # (k,) the seconds with at least MIN_VIEWERS faces
    viewers: np.ndarray  # (k,) faces in each
    mean: np.ndarray  # the second's mean probability over those viewers
    lift: np.ndarray  # the mean of viewers' lifts over their own average
    sd: np.ndarray  # the lifts' standard deviation
    p: np.ndarray  # one-sided paired t-test
    adjusted: np.ndarray  # Benjamini-Hochberg over every pair tested


def moment_tests(facing: np.ndarray, means: np.ndarray, baselines: np.ndarray) -> MomentTests:
    """For each second with at least MIN_VIEWERS faces and each expression but neutral, each viewer's lift is
    their probability then minus their own mean over the stimulus (`baselines`, (viewers, 7)); a one-sided
    paired t-test asks whether the mean lift is above zero, and the p-values are adjusted for the false
    discovery rate over every pair tested (benjamini_hochberg)."""
    columns = [EMOTIONS.index(e) for e in EXPRESSIVE_EMOTIONS]
    n = facing.sum(axis=0)  # (S,)
    tested = np.flatnonzero(n >= MIN_VIEWERS)
    present = facing[:, tested, None]
    chosen = means[:, tested][..., columns]
    lifts = np.where(present, chosen - baselines[:, None, columns], 0.0)  # (V, k, E)
    count = n[tested][:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = lifts.sum(axis=0) / count
        sd = np.sqrt(np.where(present, (lifts - lift) ** 2, 0.0).sum(axis=0) / (count - 1))
        t = np.where(sd > 0, lift / (sd / np.sqrt(count)), np.where(lift > 0, np.inf, 0.0))
        mean = np.where(present, chosen, 0.0).sum(axis=0) / count
    p = t_upper_tail(t, np.broadcast_to(count - 1, t.shape))
    adjusted = benjamini_hochberg(p.ravel()).reshape(p.shape)
    return MomentTests(tested, n[tested], mean, lift, sd, p, adjusted)


def audience_moment_tests(timelines: list[SessionTimeline], stimulus_ms: float) -> MomentTests:
    """Every moment test of an audience, significant or not (what the report's top moments are chosen
    from): to see how far from significance a small study's lifts are."""
    _, facing, _, means = _bucket_view(Stacked.of(timelines, grid_size(stimulus_ms)), 1000 // GRID_MS)
    no_attention = np.full(len(timelines), np.nan)
    return moment_tests(facing, means, viewer_scores(facing, means, no_attention).emotions)


def top_moments(tests: MomentTests) -> list[dict]:
    """The pairs significant at MOMENT_FDR with a lift of at least MIN_LIFT, at most TOP_MOMENTS_PER_EMOTION
    per expression, MOMENT_SEPARATION_S apart, largest lift first. Each says its lift with a 95% t-interval
    (unadjusted), the effect size (Cohen's d_z: mean lift over its standard deviation; null when every
    viewer lifted alike) and both p-values."""
    moments = []
    for j, emotion in enumerate(EXPRESSIVE_EMOTIONS):
        candidates = np.flatnonzero((tests.adjusted[:, j] < MOMENT_FDR) & (tests.lift[:, j] >= MIN_LIFT))
        chosen: list[int] = []
        for k in sorted(candidates, key=lambda k: (-tests.lift[k, j], k)):  # ties: the earliest second
            second = int(tests.seconds[k])
            if len(chosen) == TOP_MOMENTS_PER_EMOTION:
                break
            if any(abs(second - c) < MOMENT_SEPARATION_S for c in chosen):
                continue
            chosen.append(second)
            viewers, lift, sd = int(tests.viewers[k]), float(tests.lift[k, j]), float(tests.sd[k, j])
            half = t_quantile_975(viewers - 1) * sd / math.sqrt(viewers)
            moments.append(
                {
                    "emotion": emotion,
                    "time_ms": second * 1000,
                    "mean": round(float(tests.mean[k, j]), 4),
                    "lift": round(lift, 4),
                    "ci95": [round(lift - half, 4), round(lift + half, 4)],
                    "effect_size": round(lift / sd, 3) if sd > 0 else None,
                    "p": _significant(tests.p[k, j]),
                    "p_adjusted": _significant(tests.adjusted[k, j]),
                    "viewers": viewers,
                }
            )
    return sorted(moments, key=lambda m: m["lift"], reverse=True)


def study_report(
    timelines: list[SessionTimeline], stimulus_ms: float, bucket_ms: int = 1000, variable_keys: Sequence[str] = ()
) -> dict:
    """Per bucket of the stimulus (seconds by default): viewers, emotions with 95% CIs, micro-expressions;
    top moments (per second); totals per segment; summary scores, also broken down by each of `variable_keys`."""
    return _analysed(timelines, stimulus_ms, bucket_ms, variable_keys)[0]


def _analysed(
    timelines: list[SessionTimeline], stimulus_ms: float, bucket_ms: int, variable_keys: Sequence[str] = ()
) -> tuple[dict, ViewerScores]:
    """The report, and the per-viewer scores its summary comes from."""
    fine_per_bucket = max(1, bucket_ms // GRID_MS)
    bucket_ms = fine_per_bucket * GRID_MS
    n_fine = grid_size(stimulus_ms)
    report = {
        "viewers": len(timelines),
        "bucket_ms": bucket_ms,
        "stimulus_duration_ms": stimulus_ms,
        "min_viewers": MIN_VIEWERS,
        "expression_threshold": EXPRESSION_THRESHOLD,
    }
    stacked = Stacked.of(timelines, n_fine)
    second_view = _bucket_view(stacked, 1000 // GRID_MS)
    per_second = _buckets(timelines, second_view, 1000)
    view = second_view if bucket_ms == 1000 else _bucket_view(stacked, fine_per_bucket)
    report["buckets"] = per_second if bucket_ms == 1000 else _buckets(timelines, view, bucket_ms)
    report["segments"] = _segments(timelines, stacked)
    attention = np.array([np.nan if a is None else a for a in map(session_attention, timelines)], np.float64)
    _, facing, _, means = second_view
    scores = viewer_scores(facing, means, attention)
    report["top_moments"] = top_moments(moment_tests(facing, means, scores.emotions))
    report["summary"] = summary_scores(scores, per_second)
    report["attention"] = report["summary"]["attention"]
    report["breakdown"] = breakdown(timelines, scores, variable_keys)
    return report, scores


# Breakdown by link variable: the largest groups, each with at least MIN_VIEWERS viewers; smaller ones
# are only counted, so an identifier such as a panel id never shows one person's figures.
MAX_BREAKDOWN_VALUES = 20


def breakdown(timelines: list[SessionTimeline], scores: ViewerScores, keys: Sequence[str]) -> list[dict]:
    """Per variable key and value: viewers and the summary scores (COMPARED_SCORES) with 95% intervals."""
    table = scores.table()
    out = []
    for key in keys:
        groups: dict[str, list[int]] = {}
        for i, t in enumerate(timelines):
            if key in t.variables:
                groups.setdefault(t.variables[key], []).append(i)
        large = sorted(
            (v for v, rows in groups.items() if len(rows) >= MIN_VIEWERS), key=lambda v: (-len(groups[v]), v)
        )[:MAX_BREAKDOWN_VALUES]
        values = [
            {
                "value": value,
                "viewers": len(groups[value]),
                "scores": {
                    name: mean_interval(table[groups[value], j], -1.0 if name == "valence" else 0.0)
                    for j, name in enumerate(COMPARED_SCORES)
                },
            }
            for value in large
        ]
        small = [rows for v, rows in groups.items() if v not in large]
        out.append(
            {
                "key": key,
                "values": values,
                "smaller_groups": {"values": len(small), "viewers": sum(map(len, small))},
                "without_value": len(timelines) - sum(map(len, groups.values())),
            }
        )
    return out


def compare_audiences(audiences: list[tuple[list[SessionTimeline], float]]) -> dict:
    """Two or more studies' audiences (timelines, stimulus length), on one stimulus clock: each one's
    per-second curves and summary, and for every study after the first, the difference (it minus the
    first) of each summary score with a bootstrap 95% interval over viewers (bootstrap_differences)."""
    analysed = [_analysed(timelines, stimulus_ms, 1000) for timelines, stimulus_ms in audiences]
    values = [scores.table() for _, scores in analysed]
    boots = bootstrap_means(values)
    compared = [
        {key: report[key] for key in ("viewers", "stimulus_duration_ms", "buckets", "top_moments", "summary")}
        for report, _ in analysed
    ]
    differences = [
        {"scores": bootstrap_differences(values[0], values[i], boots[0], boots[i])} for i in range(1, len(values))
    ]
    return {
        "studies": compared,
        "differences": differences,
        "min_viewers": MIN_VIEWERS,
        "bucket_ms": 1000,
        "bootstrap": {"resamples": BOOTSTRAP_RESAMPLES, "seed": BOOTSTRAP_SEED, "interval": "percentile, 95%"},
    }


def bootstrap_means(
    tables: list[np.ndarray], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> list[np.ndarray]:
    """For each table (viewers, scores; NaN: a viewer without that score), the score means over
    `resamples` draws of its viewers with replacement: (resamples, scores). One generator with a fixed seed
    draws every table in turn, so the same audiences give the same means."""
    rng = np.random.default_rng(seed)
    out = []
    for table in tables:
        n = len(table)
        if n == 0:
            out.append(np.full((resamples, table.shape[1]), np.nan))
            continue
        drawn = rng.integers(0, n, (resamples, n)) + n * np.arange(resamples)[:, None]
        weights = np.bincount(drawn.ravel(), minlength=resamples * n).reshape(resamples, n).astype(np.float64)
        present = ~np.isnan(table)
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append((weights @ np.where(present, table, 0.0)) / (weights @ present))
    return out


def bootstrap_differences(first: np.ndarray, other: np.ndarray, first_boot: np.ndarray, other_boot: np.ndarray) -> dict:
    """Per summary score (COMPARED_SCORES): `other` minus `first`, the difference of the viewers' means,
    with the 2.5% and 97.5% points of the resampled differences; None when either study has fewer than
    MIN_VIEWERS viewers with the score."""
    out: dict[str, dict | None] = {}
    for j, name in enumerate(COMPARED_SCORES):
        a, b = first[:, j][~np.isnan(first[:, j])], other[:, j][~np.isnan(other[:, j])]
        if len(a) < MIN_VIEWERS or len(b) < MIN_VIEWERS:
            out[name] = None
            continue
        resampled = other_boot[:, j] - first_boot[:, j]
        low, high = np.percentile(resampled, [2.5, 97.5])
        out[name] = {
            "difference": round(float(b.mean() - a.mean()), 4),
            "ci95": [round(float(low), 4), round(float(high), 4)],
        }
    return out


@dataclass(frozen=True)
class ViewerScores:
    """Each viewer's own summary over the seconds their face was seen (NaN for a viewer never seen): the
    unit of every interval below, since viewers, not seconds, are the independent draws."""

    emotions: np.ndarray  # (viewers, 7) mean probability
    valence: np.ndarray  # (viewers,) mean of positive minus negative probabilities, in [-1, 1]
    engagement: np.ndarray  # (viewers,) share of seconds with an expression at EXPRESSION_THRESHOLD
    attention: np.ndarray  # (viewers,) share of the recording present and facing the screen (session_attention)

    def table(self) -> np.ndarray:
        """(viewers, scores) in the order of COMPARED_SCORES."""
        return np.column_stack([self.emotions, self.valence, self.engagement, self.attention])


def viewer_scores(facing: np.ndarray, means: np.ndarray, attention: np.ndarray) -> ViewerScores:
    """From the per-second view (`facing` (viewers, seconds), `means` (viewers, seconds, 7), NaN where not facing)."""
    seen = facing.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        emotions = np.where(facing[..., None], means, 0.0).sum(axis=1) / seen[:, None]
        positive = means[..., [EMOTIONS.index(e) for e in POSITIVE_EMOTIONS]].sum(axis=2)
        negative = means[..., [EMOTIONS.index(e) for e in NEGATIVE_EMOTIONS]].sum(axis=2)
        valence = np.where(facing, positive - negative, 0.0).sum(axis=1) / seen
        expressive = means[..., [EMOTIONS.index(e) for e in EXPRESSIVE_EMOTIONS]].max(axis=2, initial=0.0)
        engaged = facing & (np.nan_to_num(expressive) >= EXPRESSION_THRESHOLD)
        engagement = engaged.sum(axis=1) / seen
    return ViewerScores(emotions, valence, engagement, attention)


def mean_interval(values: np.ndarray, low: float = 0.0, high: float = 1.0) -> dict | None:
    """Across viewers (NaN: a viewer without the figure): the mean and its 95% t-interval, clipped to the
    score's range; None below MIN_VIEWERS viewers, like the per-second figures."""
    values = values[~np.isnan(values)]
    n = len(values)
    if n < MIN_VIEWERS:
        return None
    mean = float(values.mean())
    half = t_quantile_975(n - 1) * float(values.std(ddof=1)) / math.sqrt(n)
    return {
        "mean": round(mean, 4),
        "ci95": [round(max(low, mean - half), 4), round(min(high, mean + half), 4)],
        "viewers": n,
    }


def summary_scores(scores: ViewerScores, per_second: list[dict]) -> dict:
    """The study in a few numbers, each with a 95% interval over viewers: per emotion its mean over the
    stimulus and its peak second (the highest per-second mean among the seconds shown); valence;
    engagement; attention. A score is null below MIN_VIEWERS viewers with it."""
    emotions = {}
    shown = [b for b in per_second if b["emotions"]]
    for i, emotion in enumerate(EMOTIONS):
        peak = max(shown, key=lambda b: b["emotions"][emotion]["mean"], default=None)  # ties: the earliest second
        emotions[emotion] = {
            "mean": mean_interval(scores.emotions[:, i]),
            "peak": None
            if peak is None
            else {
                "time_ms": peak["start_ms"],
                "mean": peak["emotions"][emotion]["mean"],
                "ci95": peak["emotions"][emotion]["ci95"],
            },
        }
    return {
        "emotions": emotions,
        "valence": mean_interval(scores.valence, -1.0, 1.0),
        "engagement": mean_interval(scores.engagement),
        "attention": mean_interval(scores.attention),
        "positive_emotions": list(POSITIVE_EMOTIONS),
        "negative_emotions": list(NEGATIVE_EMOTIONS),
        "expressive_emotions": list(EXPRESSIVE_EMOTIONS),
    }


def face_share(timeline: SessionTimeline) -> float:
    """The share of the stimulus during which the viewer's face was found (0 when nothing was recorded)."""
    return float((timeline.visible & timeline.recorded).sum() / len(timeline.recorded))


def session_attention(timeline: SessionTimeline) -> float | None:
    """The share of a viewer's recorded stimulus during which the face was present and facing the screen."""
    recorded = int(timeline.recorded.sum())
    return float((timeline.attending & timeline.recorded).sum() / recorded) if recorded else None


def _buckets(timelines, view: tuple, bucket_ms: int) -> list[dict]:
    recorded, facing, attends, means = view
    n_buckets = recorded.shape[1]
    micro = _micro_counts(timelines, bucket_ms, n_buckets)
    out = []
    for k in range(n_buckets):
        with_face, viewers, attending = int(facing[:, k].sum()), int(recorded[:, k].sum()), int(attends[:, k].sum())
        enough = with_face >= MIN_VIEWERS
        out.append(
            {
                "start_ms": k * bucket_ms,
                "viewers": viewers,
                "viewers_with_face": with_face,
                "enough_viewers": enough,
                "emotions": _emotion_stats(means[facing[:, k], k]) if enough else None,
                # Of the viewers whose recording covers the bucket: withheld below MIN_VIEWERS of them.
                "attention": {
                    "share": round(attending / viewers, 4),
                    "viewers_attending": attending,
                    "ci95": share_interval(attending, viewers),
                }
                if viewers >= MIN_VIEWERS
                else None,
                "micro_expressions": micro[k],
            }
        )
    return out


def _segments(timelines: list[SessionTimeline], stacked: Stacked) -> list[dict]:
    by_label: dict[str, list[int]] = {}
    for i, t in enumerate(timelines):
        if t.segment:
            by_label.setdefault(t.segment, []).append(i)
    out = []
    for label, rows in sorted(by_label.items()):
        members = [timelines[i] for i in rows]
        # one bucket: the whole stimulus
        _, facing, _, means = _bucket_view(stacked.rows(np.array(rows)), stacked.recorded.shape[1])
        seen = means[facing[:, 0], 0]
        micro: dict[str, int] = {}
        for t in members:
            for _, emotion in t.micro_onsets_ms:
                micro[emotion or UNKNOWN_EMOTION] = micro.get(emotion or UNKNOWN_EMOTION, 0) + 1
        out.append(
            {
                "segment": label,
                "viewers": len(members),
                "viewers_with_face": int(len(seen)),
                "mean_emotions": {
                    e: round(float(seen[:, i].mean()), 4) if len(seen) else None for i, e in enumerate(EMOTIONS)
                },
                "micro_expressions": micro,
            }
        )
    return out


def report_csv(report: dict) -> str:
    """One row per bucket; withheld figures are empty cells."""
    out = io.StringIO()
    writer = csv.writer(out)
    header = ["start_ms", "viewers", "viewers_with_face", "enough_viewers"]
    for e in EMOTIONS:
        header += [f"{e}_mean", f"{e}_ci95_low", f"{e}_ci95_high", f"{e}_share_above_threshold"]
    header += [f"micro_{e}" for e in (*EMOTIONS, UNKNOWN_EMOTION)]
    header += ["attention_share", "attention_ci95_low", "attention_ci95_high"]
    writer.writerow(header)
    for b in report["buckets"]:
        row = [b["start_ms"], b["viewers"], b["viewers_with_face"], str(b["enough_viewers"]).lower()]
        for e in EMOTIONS:
            s = b["emotions"][e] if b["emotions"] else None
            row += [s["mean"], s["ci95"][0], s["ci95"][1], s["share_above_threshold"]] if s else ["", "", "", ""]
        row += [b["micro_expressions"].get(e, 0) for e in (*EMOTIONS, UNKNOWN_EMOTION)]
        attention = b["attention"]
        row += [attention["share"], *attention["ci95"]] if attention else ["", "", ""]
        writer.writerow(row)
    return out.getvalue()


def summary_csv(report: dict) -> str:
    """One row per summary score: each emotion (with its peak second), valence, engagement, attention."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "score",
            "mean",
            "ci95_low",
            "ci95_high",
            "viewers",
            "peak_time_ms",
            "peak_mean",
            "peak_ci95_low",
            "peak_ci95_high",
        ]
    )
    summary = report["summary"]

    def interval(score: dict | None) -> list:
        return [score["mean"], *score["ci95"], score["viewers"]] if score else ["", "", "", ""]

    for emotion, score in summary["emotions"].items():
        peak = score["peak"]
        writer.writerow(
            [
                emotion,
                *interval(score["mean"]),
                *([peak["time_ms"], peak["mean"], *peak["ci95"]] if peak else ["", "", "", ""]),
            ]
        )
    for name in ("valence", "engagement", "attention"):
        writer.writerow([name, *interval(summary[name]), "", "", "", ""])
    return out.getvalue()


def moments_csv(report: dict) -> str:
    """One row per top moment, with its significance."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["emotion", "time_ms", "mean", "lift", "ci95_low", "ci95_high", "effect_size", "p", "p_adjusted", "viewers"]
    )
    for m in report["top_moments"]:
        writer.writerow(
            [
                m["emotion"],
                m["time_ms"],
                m["mean"],
                m["lift"],
                *m["ci95"],
                "" if m["effect_size"] is None else m["effect_size"],
                m["p"],
                m["p_adjusted"],
                m["viewers"],
            ]
        )
    return out.getvalue()


def breakdown_csv(report: dict) -> str:
    """One row per variable, value and summary score."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["variable", "value", "viewers", "score", "mean", "ci95_low", "ci95_high"])
    for variable in report["breakdown"]:
        for group in variable["values"]:
            for name, score in group["scores"].items():
                writer.writerow(
                    [
                        variable["key"],
                        group["value"],
                        group["viewers"],
                        name,
                        *([score["mean"], *score["ci95"]] if score else ["", "", ""]),
                    ]
                )
    return out.getvalue()


# The CSV tables a report downloads as (`table`): the per-bucket rows by default.
CSV_TABLES = {"seconds": report_csv, "summary": summary_csv, "moments": moments_csv, "breakdown": breakdown_csv}
