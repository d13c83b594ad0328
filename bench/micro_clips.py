"""Evaluation clips for the micro-expression spotter, animated from REAL photos by construction.

No real expression video can be used offline, so a real face photo (``../shared/data/faces``) is
made to move with known timing:

* **Face frame.** dlib's HOG detector and 5-point landmarks (the shipped model) locate the eyes
  and the base of the nose; a face frame is derived from them (origin between the eye centres,
  x towards the image's right, y down, unit = inter-ocular distance, IOD). Brows, lip corners,
  lips, nose sides and chin are placed in that frame at average facial proportions.
* **Expressions.** Each action pattern is a smooth local displacement field: a sum of Gaussian
  bumps around those landmark-derived points (brows up, inner brows down and together, lip corners
  pulled out and up, nose sides and upper lip raised, lips pressed, corners down with the chin
  raised, one corner only). Its amplitude rises from 0 at the onset frame to 1 at the apex
  (raised-cosine), may hold, and returns to 0 at the offset frame, so onset/apex/offset are
  known frames. The head patch is warped with it (``cv2.remap``, backward map).
* **Nuisances.** The head is cut out with a feathered ellipse and composited over a real video
  background (face-free parts of ``../shared/data/videos``), moved by a smooth similarity
  (translation, in-plane rotation, zoom) with occasional quick head jerks; blinks (eyelid pulled
  down over the eye); brightness drift with a moving illumination gradient; Gaussian sensor
  noise; H.264 encoding through PyAV (libx264, CRF 18-23; 23 is x264's default).

Everything is drawn from ``numpy.random.default_rng(seed)``: the same seed gives the same clips.
``python bench/micro_clips.py --out DIR`` writes a few clips and their ground truth to look at.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import av
import cv2
import dlib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.engine.results import expression_kind
from api.engine.weights import load_manifest, verified_path
from api.wiring.config import REPO_ROOT

DATA_DIR = Path(os.environ.get("EMOSCOPE_DATA_DIR", REPO_ROOT.parent / "shared" / "data")).resolve()

# Action patterns: (emotion it suggests, action units, [(centre (X, Y), displacement per unit
# amplitude (dX, dY), sigma (sx, sy))]) in face units (IOD), X to the image's right, Y down.
# Symmetric pairs are written once with X > 0 and mirrored (dX mirrored too).
Bump = tuple[tuple[float, float], tuple[float, float], tuple[float, float]]
PATTERNS: dict[str, tuple[str, list[str], list[Bump], bool]] = {
    # name: (emotion, AUs, bumps, mirrored)
    "smile": (
        "happy",
        ["AU6", "AU12"],
        [((0.44, 1.17), (0.55, -0.5), (0.16, 0.14)), ((0.52, 0.78), (0.05, -0.35), (0.2, 0.16))],
        True,
    ),
    "brow_raise": (
        "surprise",
        ["AU1", "AU2"],
        [((0.2, -0.42), (0.0, -1.0), (0.16, 0.13)), ((0.56, -0.38), (0.0, -0.9), (0.18, 0.13))],
        True,
    ),
    "brow_lower": (
        "angry",
        ["AU4"],
        [((0.2, -0.34), (-0.5, 0.6), (0.15, 0.13)), ((0.52, -0.36), (-0.1, 0.45), (0.18, 0.13))],
        True,
    ),
    "nose_wrinkle": (
        "disgust",
        ["AU9", "AU10"],
        [((0.2, 0.58), (0.0, -0.6), (0.13, 0.13)), ((0.18, 0.98), (0.0, -0.7), (0.16, 0.1))],
        True,
    ),
    "lip_press": (
        "angry",
        ["AU24"],
        [((0.0, 1.06), (0.0, 0.6), (0.3, 0.08)), ((0.0, 1.34), (0.0, -0.7), (0.3, 0.09))],
        False,
    ),
    "lip_depress": (
        "sad",
        ["AU15", "AU17"],
        [((0.45, 1.2), (0.1, 0.75), (0.14, 0.13)), ((0.0, 1.65), (0.0, -0.55), (0.3, 0.13))],
        False,
    ),
    "one_corner": ("contempt", ["AU14"], [((0.44, 1.17), (0.5, -0.3), (0.15, 0.13))], False),
}
# lip_depress mirrors only its first bump: handled by listing the mirrored one explicitly below.
PATTERNS["lip_depress"] = (
    "sad",
    ["AU15", "AU17"],
    [
        ((0.45, 1.2), (0.1, 0.75), (0.14, 0.13)),
        ((-0.45, 1.2), (-0.1, 0.75), (0.14, 0.13)),
        ((0.0, 1.65), (0.0, -0.55), (0.3, 0.13)),
    ],
    False,
)
# Blink: the upper lid pulled down over each eye (an eyes-only movement the spotter must ignore).
BLINK: list[Bump] = [((0.5, -0.1), (0.0, 1.0), (0.2, 0.08)), ((-0.5, -0.1), (0.0, 1.0), (0.2, 0.08))]
BLINK_AMPLITUDE = 0.22

# Amplitude levels: peak displacement of the strongest bump, in IOD (x32 for pixels of the
# 112 px aligned crop, whose IOD is 32 px).
AMPLITUDES = {"low": 0.035, "mid": 0.055, "high": 0.09}
# A full, deliberate expression (an audience member smiling at an ad), for bench/audience_study.py.
# Kept out of AMPLITUDES so the micro-expression suite draws exactly what it always drew.
BROAD_AMPLITUDE = 0.2
RENDER_AMPLITUDES = {**AMPLITUDES, "broad": BROAD_AMPLITUDE}

# Patch around the face, in IOD: X in [-1.9, 1.9], Y in [-1.8, 3.0].
PATCH_X, PATCH_TOP, PATCH_BOTTOM = 1.9, 1.8, 3.0
BACKGROUNDS = [
    ("WolfgangLanger_Pexels.mp4", (0, 0, 250, 360)),
    ("single_face.mp4", (0, 0, 190, 360)),
    ("no_face.mp4", None),
]


@dataclass
class Event:
    """One constructed expression: frame indices are exact, milliseconds follow from fps."""

    pattern: str
    amplitude: str
    onset_frame: int
    apex_frame: int
    offset_frame: int
    fps: float
    # First and last frame at full amplitude (the apex frame is their middle).
    plateau: tuple[int, int] | None = None

    @property
    def onset_ms(self) -> float:
        return 1000.0 * self.onset_frame / self.fps

    @property
    def apex_ms(self) -> float:
        return 1000.0 * self.apex_frame / self.fps

    @property
    def offset_ms(self) -> float:
        return 1000.0 * self.offset_frame / self.fps

    @property
    def duration_ms(self) -> float:
        return self.offset_ms - self.onset_ms

    @property
    def kind(self) -> str:
        return expression_kind(self.duration_ms)

    @property
    def emotion(self) -> str:
        return PATTERNS[self.pattern][0]


@dataclass
class Nuisance:
    head_motion: float = 1.0  # scales translation/rotation/zoom amplitudes
    jerks_per_min: float = 6.0
    blinks_per_min: float = 12.0
    brightness: float = 1.0
    noise_sigma: float = 2.5
    crf: int = 23


@dataclass
class ClipSpec:
    name: str
    photo: str
    fps: float
    seconds: float
    events: list[Event]
    seed: int
    width: int = 320
    height: int = 240
    iod: float = 46.0
    background: int = 0
    nuisance: Nuisance = field(default_factory=Nuisance)

    @property
    def n_frames(self) -> int:
        return int(round(self.seconds * self.fps))


@dataclass
class Clip:
    spec: ClipSpec
    data: bytes
    blinks: list[tuple[int, int]]  # (start, end) frames of constructed blinks


# ---------------------------------------------------------------------------------------------
# Real photo -> face frame


@lru_cache(maxsize=1)
def _dlib_models():
    return dlib.get_frontal_face_detector(), dlib.shape_predictor(
        str(verified_path(load_manifest()["dlib_shape_predictor_5"]))
    )


def locate_face(image: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(5, 2) dlib landmarks of the only face in the photo and its box, or None (0 or >1 faces)."""
    detector, predictor = _dlib_models()
    scale = min(1.0, 800 / max(image.shape[:2]))
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image
    gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    found = detector(gray, 1)
    if len(found) != 1:
        return None
    shape = predictor(gray, found[0])
    points = np.array([(p.x, p.y) for p in shape.parts()], np.float64) / scale
    r = found[0]
    return points, np.array([r.left(), r.top(), r.width(), r.height()], np.float64) / scale


def face_frame(points: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Origin (between the eye centres), IOD, and unit x axis of dlib's 5 points."""
    right_eye = points[0:2].mean(axis=0)  # the eye on the image's right
    left_eye = points[2:4].mean(axis=0)
    origin = (right_eye + left_eye) / 2
    axis = right_eye - left_eye
    iod = float(np.linalg.norm(axis))
    return origin, iod, axis / iod


def eligible_photos(limit: int | None = None) -> list[Path]:
    """Photos with exactly one near-frontal, upright face large enough to animate."""
    chosen = []
    for path in sorted((DATA_DIR / "faces").glob("*.jpg")):
        if "reflection" in path.name:  # the same person as img11.jpg
            continue
        found = _photo_face(str(path))
        if found is None:
            continue
        points, _ = found
        origin, iod, ux = face_frame(points)
        uy = np.array([-ux[1], ux[0]])
        nose = (points[4] - origin) / iod
        roll = abs(np.degrees(np.arctan2(ux[1], ux[0])))
        if iod >= 40 and roll < 12 and abs(nose @ ux) < 0.12 and 0.55 < nose @ uy < 1.05:
            chosen.append(path)
    return chosen[:limit] if limit else chosen


@lru_cache(maxsize=64)
def _photo_face(path: str):
    image = cv2.imread(path)
    return None if image is None else locate_face(image)


@lru_cache(maxsize=16)
def head_patch(path: str, iod: float) -> tuple[np.ndarray, np.ndarray]:
    """Photo -> upright head patch (BGR float32) at the given IOD, and its feathered alpha mask."""
    image = cv2.imread(path)
    found = _photo_face(path)
    if found is None:
        raise ValueError(f"no single face in {path}")
    points, _ = found
    origin, src_iod, ux = face_frame(points)
    scale = iod / src_iod
    if scale < 0.8:  # area-average big photos first so the warp does not alias
        image = cv2.resize(image, None, fx=scale * 1.1, fy=scale * 1.1, interpolation=cv2.INTER_AREA)
        origin, src_iod = origin * scale * 1.1, src_iod * scale * 1.1
        scale = iod / src_iod
    width, height = int(round(2 * PATCH_X * iod)), int(round((PATCH_TOP + PATCH_BOTTOM) * iod))
    cos, sin = ux
    # photo -> patch: rotate the eye axis level, scale to `iod`, put the origin at its patch place.
    rot = scale * np.array([[cos, sin], [-sin, cos]])
    target = np.array([PATCH_X * iod, PATCH_TOP * iod])
    matrix = np.hstack([rot, (target - rot @ origin)[:, None]])
    patch = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    xs, ys = face_grid(width, height, iod)
    # Head and a little neck and hair: an ellipse with a soft edge.
    ellipse = (xs / 1.6) ** 2 + ((ys - 0.45) / 2.15) ** 2
    mask = np.clip((1.0 - ellipse) / 0.2, 0.0, 1.0).astype(np.float32)
    mask = cv2.GaussianBlur(mask, (0, 0), 0.1 * iod)
    return patch.astype(np.float32), mask


def face_grid(width: int, height: int, iod: float) -> tuple[np.ndarray, np.ndarray]:
    xs = (np.arange(width, dtype=np.float32) - PATCH_X * iod) / iod
    ys = (np.arange(height, dtype=np.float32) - PATCH_TOP * iod) / iod
    return np.meshgrid(xs, ys)


def bump_field(bumps: list[Bump], mirrored: bool, width: int, height: int, iod: float) -> np.ndarray:
    """(h, w, 2) displacement in patch pixels for unit amplitude (strongest bump peak = 1 IOD)."""
    xs, ys = face_grid(width, height, iod)
    field_ = np.zeros((height, width, 2), np.float32)
    all_bumps = list(bumps)
    if mirrored:
        all_bumps += [((-cx, cy), (-dx, dy), s) for (cx, cy), (dx, dy), s in bumps]
    for (cx, cy), (dx, dy), (sx, sy) in all_bumps:
        g = np.exp(-((xs - cx) ** 2 / (2 * sx * sx) + (ys - cy) ** 2 / (2 * sy * sy)))
        field_[..., 0] += dx * g
        field_[..., 1] += dy * g
    peak = np.sqrt((field_**2).sum(axis=2)).max()
    return field_ / peak * iod


# ---------------------------------------------------------------------------------------------
# Timing


def event_profile(n_frames: int, onset: int, apex_start: int, apex_end: int, offset: int) -> np.ndarray:
    """Amplitude per frame: 0 up to onset, raised cosine to 1 at apex_start, 1 to apex_end, back to 0 at offset."""
    a = np.zeros(n_frames, np.float32)
    f = np.arange(n_frames)
    rise = (f > onset) & (f < apex_start)
    a[rise] = 0.5 - 0.5 * np.cos(np.pi * (f[rise] - onset) / (apex_start - onset))
    a[(f >= apex_start) & (f <= apex_end)] = 1.0
    fall = (f > apex_end) & (f < offset)
    a[fall] = 0.5 + 0.5 * np.cos(np.pi * (f[fall] - apex_end) / (offset - apex_end))
    return a


def make_event(
    rng: np.random.Generator,
    kind: str,
    start_s: float,
    fps: float,
    pattern: str | None = None,
    amplitude: str | None = None,
) -> Event:
    """An event starting at `start_s`: micro 0.16-0.46 s, macro 0.7-2.2 s, rise then hold then return."""
    if kind == "micro":
        duration = rng.uniform(max(0.16, 5 / fps), 0.46)
        hold = rng.uniform(0.0, 0.2) * duration
    else:
        duration = rng.uniform(0.7, 2.2)
        hold = rng.uniform(0.15, 0.45) * duration
    rise = rng.uniform(0.35, 0.6) * (duration - hold)
    onset = int(round(start_s * fps))
    offset = onset + max(4, int(round(duration * fps)))
    apex_start = onset + max(1, int(round(rise * fps)))
    apex_end = max(apex_start, min(offset - 2, apex_start + int(round(hold * fps))))
    pattern = pattern or str(rng.choice(sorted(PATTERNS)))
    amplitude = amplitude or str(rng.choice(sorted(AMPLITUDES)))
    return Event(pattern, amplitude, onset, (apex_start + apex_end) // 2, offset, fps, (apex_start, apex_end))


def _smooth_wave(rng: np.random.Generator, t: np.ndarray, amplitude: float) -> np.ndarray:
    out = np.zeros_like(t)
    for _ in range(3):
        period = rng.uniform(1.5, 7.0)
        out += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    return amplitude * out / 2.0


def _steps(rng: np.random.Generator, t: np.ndarray, per_min: float, size: float) -> np.ndarray:
    """Quick head jerks: a sigmoid step of 0.2-0.5 s to a new position (half of them come back)."""
    out = np.zeros_like(t)
    n = rng.poisson(per_min * t[-1] / 60.0) if len(t) else 0
    for _ in range(n):
        at, length = rng.uniform(0, t[-1]), rng.uniform(0.2, 0.5)
        amount = rng.uniform(-size, size)
        step = amount / (1 + np.exp(-(t - at) / (length / 8)))
        if rng.random() < 0.5:
            step -= amount / (1 + np.exp(-(t - at - rng.uniform(0.3, 1.0)) / (length / 8)))
        out += step
    return out


# ---------------------------------------------------------------------------------------------
# Rendering


@lru_cache(maxsize=4)
def background_frames(index: int, width: int, height: int) -> np.ndarray:
    """Real video frames (face-free area), resized to the clip size: (n, h, w, 3) uint8."""
    name, box = BACKGROUNDS[index % len(BACKGROUNDS)]
    frames = []
    with av.open(str(DATA_DIR / "videos" / name)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % 2:
                continue
            img = frame.to_ndarray(format="bgr24")
            if box is not None:
                x, y, w, h = box
                img = img[y : y + h, x : x + w]
            # Cover the clip size, then centre-crop.
            s = max(width / img.shape[1], height / img.shape[0])
            img = cv2.resize(img, (int(np.ceil(img.shape[1] * s)), int(np.ceil(img.shape[0] * s))))
            y0, x0 = (img.shape[0] - height) // 2, (img.shape[1] - width) // 2
            frames.append(img[y0 : y0 + height, x0 : x0 + width])
            if len(frames) >= 60:
                break
    return np.stack(frames)


def render_clip(spec: ClipSpec) -> Clip:
    rng = np.random.default_rng(spec.seed)
    n, fps, iod = spec.n_frames, spec.fps, spec.iod
    t = np.arange(n) / fps
    patch, mask = head_patch(str(DATA_DIR / "faces" / spec.photo), iod)
    ph, pw = mask.shape
    # Per-frame displacement amplitude of every pattern, plus blinks.
    fields, weights = [], []
    for event in spec.events:
        _, _, bumps, mirrored = PATTERNS[event.pattern]
        apex_start, apex_end = event.plateau or (event.apex_frame, event.apex_frame)
        fields.append(bump_field(bumps, mirrored, pw, ph, iod) * RENDER_AMPLITUDES[event.amplitude])
        weights.append(event_profile(n, event.onset_frame, apex_start, apex_end, event.offset_frame))
    blinks = []
    nu = spec.nuisance
    blink_field = bump_field(BLINK, False, pw, ph, iod) * BLINK_AMPLITUDE
    for _ in range(rng.poisson(nu.blinks_per_min * spec.seconds / 60.0)):
        length = max(3, int(round(rng.uniform(0.12, 0.3) * fps)))
        start = int(rng.integers(0, max(1, n - length)))
        closed = start + max(1, length // 2 - 1)
        blinks.append((start, start + length))
        fields.append(blink_field)
        weights.append(event_profile(n, start, closed, closed + max(0, length // 6), start + length))
    # Head motion: smooth drift plus jerks; face origin in the frame, rotation, zoom.
    hm = nu.head_motion
    tx = _smooth_wave(rng, t, 0.25 * iod * hm) + _steps(rng, t, nu.jerks_per_min * hm, 0.35 * iod)
    ty = _smooth_wave(rng, t, 0.15 * iod * hm) + _steps(rng, t, nu.jerks_per_min * hm / 2, 0.25 * iod)
    angle = _smooth_wave(rng, t, 5.0 * hm) + _steps(rng, t, nu.jerks_per_min * hm / 2, 6.0)
    zoom = 1.0 + _smooth_wave(rng, t, 0.05 * hm)
    cx = spec.width / 2 + rng.uniform(-0.1, 0.1) * spec.width
    cy = spec.height * 0.42 + rng.uniform(-0.05, 0.05) * spec.height
    # Photometric drift.
    gain = 1.0 + _smooth_wave(rng, t, 0.12 * nu.brightness)
    offset = _smooth_wave(rng, t, 8.0 * nu.brightness)
    gradient = _smooth_wave(rng, t, 0.15 * nu.brightness)
    ramp = ((np.arange(spec.width, dtype=np.float32) - spec.width / 2) / spec.width)[None, :, None]
    backgrounds = background_frames(spec.background, spec.width, spec.height)
    bg_period = 2 * len(backgrounds) - 2
    gx, gy = np.meshgrid(np.arange(pw, dtype=np.float32), np.arange(ph, dtype=np.float32))
    origin = np.array([PATCH_X * iod, PATCH_TOP * iod])
    cv2.setRNGSeed(spec.seed % (2**31))  # sensor noise: fresh per frame, from OpenCV's seeded generator
    noise = np.empty((spec.height, spec.width, 3), np.float32)
    stack = np.stack(fields) if fields else np.zeros((0, ph, pw, 2), np.float32)
    w = np.stack(weights) if weights else np.zeros((0, n), np.float32)

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
        stream.options = {"crf": str(nu.crf), "preset": "veryfast"}
        stream.time_base = Fraction(1, 90000)
        for i in range(n):
            active = np.nonzero(w[:, i] > 0)[0]
            if len(active):
                disp = np.tensordot(w[active, i], stack[active], axes=1)
                head = cv2.remap(
                    patch, gx - disp[..., 0], gy - disp[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
                )
            else:
                head = patch
            a = np.radians(angle[i])
            rot = zoom[i] * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
            dest = np.array([cx + tx[i], cy + ty[i]])
            matrix = np.hstack([rot, (dest - rot @ origin)[:, None]])
            placed = cv2.warpAffine(head, matrix, (spec.width, spec.height), flags=cv2.INTER_LINEAR)
            alpha = cv2.warpAffine(mask, matrix, (spec.width, spec.height), flags=cv2.INTER_LINEAR)[..., None]
            k = i % bg_period
            bg = backgrounds[k if k < len(backgrounds) else bg_period - k].astype(np.float32)
            img = bg + alpha * (placed - bg)
            img *= gain[i] * (1 + gradient[i] * ramp)
            cv2.randn(noise, 0.0, nu.noise_sigma)
            img += noise + offset[i]
            frame = av.VideoFrame.from_ndarray(np.clip(img, 0, 255).astype(np.uint8), format="bgr24")
            frame.pts, frame.time_base = int(round(i * 90000 / fps)), stream.time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return Clip(spec, buffer.getvalue(), blinks)


# ---------------------------------------------------------------------------------------------
# Benchmark suites


def single_event_clip(
    photo: str,
    fps: float = 30.0,
    seconds: float = 2.5,
    pattern: str = "smile",
    amplitude: str = "high",
    seed: int = 7,
    nuisance: Nuisance | None = None,
    onset_s: float = 1.0,
    duration_s: float = 0.3,
) -> ClipSpec:
    """One brief expression with a sharp apex (rise 40%, no hold), for tests."""
    onset = int(round(onset_s * fps))
    offset = onset + int(round(duration_s * fps))
    apex = onset + int(round(0.4 * duration_s * fps))
    event = Event(pattern, amplitude, onset, apex, offset, fps, (apex, apex))
    return ClipSpec(
        f"single-{Path(photo).stem}-{int(fps)}",
        photo,
        fps,
        seconds,
        [event],
        seed,
        nuisance=nuisance or Nuisance(jerks_per_min=0, blinks_per_min=0),
    )


def benchmark_specs(seed: int = 2024, scale: float = 1.0) -> tuple[list[ClipSpec], list[ClipSpec]]:
    """(event clips, no-event clips). `scale` < 1 shortens the suite for quick runs."""
    rng = np.random.default_rng(seed)
    photos = [p.name for p in eligible_photos()]
    rng.shuffle(photos)
    event_clips, quiet_clips = [], []
    plan = [(30.0, 16, 8.0), (60.0, 10, 6.0), (120.0, 8, 5.0)]  # fps, clips, seconds
    i = 0
    for fps, count, seconds in plan:
        for _ in range(max(1, int(round(count * scale)))):
            sub = np.random.default_rng(rng.integers(2**32))
            event_clips.append(
                event_clip(sub, f"ev{i:02d}-{int(fps)}fps", photos[i % len(photos)], fps, seconds, i % len(BACKGROUNDS))
            )
            i += 1
    for j in range(max(1, int(round(12 * scale)))):
        sub = np.random.default_rng(rng.integers(2**32))
        fps = 30.0 if j % 4 else 60.0
        quiet_clips.append(
            ClipSpec(
                f"quiet{j:02d}-{int(fps)}fps",
                photos[(i + j) % len(photos)],
                fps,
                10.0,
                [],
                int(sub.integers(2**31)),
                iod=float(sub.uniform(42, 52)),
                background=j % len(BACKGROUNDS),
                nuisance=_draw_nuisance(sub),
            )
        )
    return event_clips, quiet_clips


def event_clip(
    rng: np.random.Generator, name: str, photo: str, fps: float, seconds: float, background: int
) -> ClipSpec:
    """A clip of events 0.8-1.8 s apart (micro two times in three), its face size and nuisances, all drawn
    from `rng`. Event times are drawn in seconds: the same `rng` state gives the same events at any `fps`, within
    two frames at 30 fps (each rate rounds times to its frames, and an event starts after the previous one's
    rounded offset)."""
    events = []
    t = rng.uniform(0.6, 1.2)
    while True:
        kind = "micro" if rng.random() < 0.65 else "macro"
        event = make_event(rng, kind, t, fps)
        if event.offset_ms / 1000 > seconds - 0.5:
            break
        events.append(event)
        t = event.offset_ms / 1000 + rng.uniform(0.8, 1.8)
    return ClipSpec(
        name,
        photo,
        fps,
        seconds,
        events,
        int(rng.integers(2**31)),
        iod=float(rng.uniform(42, 52)),
        background=background,
        nuisance=_draw_nuisance(rng),
    )


def _draw_nuisance(rng: np.random.Generator) -> Nuisance:
    return Nuisance(
        head_motion=float(rng.uniform(0.5, 1.2)),
        jerks_per_min=float(rng.uniform(3, 8)),
        blinks_per_min=float(rng.uniform(8, 20)),
        brightness=float(rng.uniform(0.5, 1.2)),
        noise_sigma=float(rng.uniform(1.5, 3.5)),
        crf=int(rng.choice([18, 20, 23, 23])),
    )


def describe(spec: ClipSpec) -> dict:
    return {
        "name": spec.name,
        "photo": spec.photo,
        "fps": spec.fps,
        "frames": spec.n_frames,
        "iod": spec.iod,
        "nuisance": asdict(spec.nuisance),
        "events": [
            {
                **{k: v for k, v in asdict(e).items()},
                "kind": e.kind,
                "onset_ms": e.onset_ms,
                "apex_ms": e.apex_ms,
                "offset_ms": e.offset_ms,
            }
            for e in spec.events
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--clips", type=int, default=3)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    events, quiet = benchmark_specs(args.seed)
    for spec in events[: args.clips] + quiet[:1]:
        clip = render_clip(spec)
        (args.out / f"{spec.name}.mp4").write_bytes(clip.data)
        (args.out / f"{spec.name}.json").write_text(json.dumps({**describe(spec), "blinks": clip.blinks}, indent=1))
        print(spec.name, len(clip.data), "bytes", len(spec.events), "events")


if __name__ == "__main__":
    main()
