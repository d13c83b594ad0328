"""Micro-expression spotting on face tracks (onset, apex, offset, regions, emotion at apex).

Input per track: face crops aligned to one canonical template (dlib's 5 points, least-squares
similarity), so head translation, scale and in-plane rotation are removed before any motion is
measured. Then, per track:

1. Each crop is band-passed and contrast-normalised (brightness drift and shading drop out).
2. Dense optical flow (DIS, full resolution) between pairs of crops is pooled into 7 px cells;
   a robust similarity fitted over the face cells (residual head motion, alignment jitter) is
   subtracted. A frame's displacement is always measured against reference frames, never
   accumulated.
3. Pass 1 measures every frame against frames 0.4/0.8 s and 1.5/3 s before and after it (per-cell
   median). Stretches where anything moves are re-measured in pass 2 against the closest quiet
   frames on both sides that show the same face as each other, blended linearly in time.
4. Per region (brows, eyes, nose, mouth, chin) a score: the mean z-score of its most-moved cells,
   each cell's displacement over that cell's own noise. Peaks above an adaptive threshold
   (scaled by `sensitivity`) are events; eyes never start one (blinks), and an event whose eyes
   move far more than everything else is a blink and dropped.
5. Onset and offset come from the frame-by-frame projection on the apex's movement pattern (each
   edge's line through its 25% and 75% crossings, extended to zero); regions, FACS hints from
   the apex displacement's direction, intensity from its size, and the emotion whose probability
   rose most from onset to apex.

Figures and the benchmark are in models/micro_expression/MODEL_CARD.md.
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from api.engine.geometry import fit_similarity
from api.engine.preprocess import EMOTIONS
from api.engine.results import MicroExpression, RegionMovement

ALIGNED_SIZE = 112
# Where dlib's 5 points land in the aligned crop (fractions of its side): outer and inner corner
# of the eye on the image's right, outer and inner corner of the other eye, base of the nose.
# Measured on real photos, with margins that keep brows and chin inside the crop.
TEMPLATE = np.array([(0.707, 0.375), (0.579, 0.38), (0.293, 0.375), (0.421, 0.38), (0.5, 0.6)], np.float32)


def align_face(gray: np.ndarray, landmarks: np.ndarray, size: int = ALIGNED_SIZE) -> np.ndarray:
    """Similarity-warp a face onto the template: (size, size) uint8 grayscale.

    The similarity is the least-squares fit of all five points (Umeyama), not a minimal-subset
    estimate: every point's jitter is averaged, so the crop moves less from frame to frame.
    """
    matrix = similarity_to_template(landmarks, size)
    return cv2.warpAffine(gray, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def similarity_to_template(landmarks: np.ndarray, size: int = ALIGNED_SIZE) -> np.ndarray:
    """(2, 3) least-squares similarity taking dlib's 5 points onto the template at `size` px."""
    _, matrix, shift = fit_similarity(landmarks, TEMPLATE.astype(np.float64) * size)
    return np.hstack([matrix, shift[:, None]])


# --- Motion measurement -----------------------------------------------------------------------
# Dense optical flow (DIS at full resolution) between aligned crops, pooled into GRID x GRID cells
# (7 px at 112 px), with residual head motion removed by a robust similarity fit. A frame's
# displacement is always measured against reference frames, never accumulated frame to frame.
GRID = 16
# Pass 1 references, before and after each frame (per-cell median over them): short lags catch
# brief movements with little drift, long lags (longer than the longest expressions spotted)
# catch long ones. Linear drift cancels between the two sides.
SHORT_LAGS_MS = (400.0, 800.0)
LONG_LAGS_MS = (1500.0, 3000.0)
# Regions of the aligned template (fractions of its side: x0, y0, x1, y1); a cell belongs to a
# region when its centre is inside. Only dlib's 5 points exist, so these are fixed areas.
REGION_BOXES = {
    "brows": (0.2, 0.17, 0.8, 0.32),
    "eyes": (0.2, 0.32, 0.8, 0.44),
    "nose": (0.37, 0.44, 0.63, 0.62),
    "mouth": (0.25, 0.62, 0.75, 0.82),
    "chin": (0.31, 0.82, 0.69, 1.0),
}
REGIONS = tuple(REGION_BOXES)
EYES = REGIONS.index("eyes")
BROWS = REGIONS.index("brows")
# Eyes alone move in every blink: they never start an event, they only join one.
DETECTION = np.array([i for i, name in enumerate(REGIONS) if name != "eyes"])
IOD_PX = float(np.linalg.norm(TEMPLATE[0:2].mean(axis=0) - TEMPLATE[2:4].mean(axis=0))) * ALIGNED_SIZE
NOISE_FLOOR_PX = 0.05
# A cell's noise: geometric mean of its noise against references 0.4-0.8 s away and 1.5-3 s away,
# so cells that drift over seconds (smooth skin under changing light) count as noisier.
NOISE_MIX = 0.5
FINE_BLUR = 0.8  # px, before flow: sensor and codec noise out, facial texture in
DETECT_SMOOTH_MS = 110.0  # moving average of the displacement before scoring
TOP_FRACTION = 1 / 3  # a region's score: mean z-score of its most-moved cells (this fraction)

_C = (np.arange(GRID) + 0.5) / GRID
_XS, _YS = np.meshgrid(_C, _C)  # cell centres as fractions of the crop
REGION_MASKS = {
    name: (_XS >= x0) & (_XS < x1) & (_YS >= y0) & (_YS < y1) for name, (x0, y0, x1, y1) in REGION_BOXES.items()
}
# Cells on the face (an ellipse around the template), used to fit the residual head motion.
FACE_CELLS = (((_XS - 0.5) / 0.32) ** 2 + ((_YS - 0.55) / 0.42) ** 2) <= 1.0
# Rows and columns of the crop where flow is computed (multiples of the 7 px cell): the face.
FLOW_WINDOW = ((7, 112), (14, 98))
FACE_WINDOW_CELLS = np.zeros((GRID, GRID), bool)
FACE_WINDOW_CELLS[1:16, 2:14] = True
assert not (FACE_CELLS & ~FACE_WINDOW_CELLS).any()
assert all(not (m & ~FACE_WINDOW_CELLS).any() for m in REGION_MASKS.values())

# --- Decision parameters (tuned on bench/micro_expressions.py, see the model card) ---------------
BUSY_SCORE = 3.0  # pass-1 score above which a stretch is re-measured against local references
THRESHOLD = 3.5  # pass-2 score of an event's apex at sensitivity 0.5
CONSISTENT_SCORE = 3.0  # two reference frames show the same face when their displacement scores below this
REACH_MS = 2500.0  # how far from a stretch its reference frames are searched
REACH_STEP_MS = 250.0
BUSY_MARGIN_MS = 150.0
QUIET_SCORE = 2.5  # pass-1 score below which a frame may serve as a reference
DRIFT_SPAN_MS = 1500.0  # references further apart than this raise the noise as sqrt(span)
ADAPTIVE_K = 3.5  # per-track region threshold: at least median + ADAPTIVE_K * spread
LOW_FRACTION = 0.6  # a candidate stretch: score above this fraction of the threshold
BLINK_RATIO = 0.85  # eyes scoring more than this times the brows' score ...
BLINK_OTHERS = 3.0  # ... and this times any lower region's score: a blink, not an expression


def _normalise(aligned: np.ndarray) -> np.ndarray:
    """Band-pass each crop and fix its contrast: brightness drift and shading changes drop out."""
    out = np.empty(aligned.shape, np.uint8)
    for i, frame in enumerate(aligned):
        f = frame.astype(np.float32)
        band = cv2.GaussianBlur(f, (0, 0), FINE_BLUR) - cv2.GaussianBlur(f, (0, 0), 6.0)
        spread = float(band[8:-8, 8:-8].std()) + 1e-3
        out[i] = np.clip(band * (30.0 / spread) + 128.0, 0, 255).astype(np.uint8)
    return out


def _flow_engine() -> cv2.DISOpticalFlow:
    """DIS at full resolution. The presets stop at 1/4 or 1/2 scale, which averages away sub-pixel
    local movements (measured on real crops: ~25% of a 1 px lip-corner pull recovered at the
    preset's scale, ~90% at full scale), at ~0.6 ms per pair on the face window.

    8 gradient-descent iterations per patch, not 12: ~9% less time per pair, and on
    the benchmark's clips (paired, same crops) F1 was no lower at any frame rate and no-event
    clips gave no more false events. Fewer iterations (6, 4), a wider patch stride or no spatial
    propagation each cost accuracy or false events there (model card)."""
    dis = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
    dis.setFinestScale(0)
    dis.setPatchSize(8)
    dis.setPatchStride(6)
    dis.setGradientDescentIterations(8)
    dis.setVariationalRefinementIterations(0)
    return dis


class _Flows:
    """Pooled, head-motion-free flow between frame pairs, computed once per pair."""

    def __init__(self, frames: np.ndarray) -> None:
        (r0, r1), (c0, c1) = FLOW_WINDOW
        self.frames = np.ascontiguousarray(frames[:, r0:r1, c0:c1])
        self.dis = _flow_engine()

    def __call__(self, pairs: list[tuple[int, int]]) -> np.ndarray:
        """[(reference, frame)] -> (P, G, G, 2): the frame's displacement relative to its reference.

        Flow is computed on the face window only (FLOW_WINDOW: two thirds of the crop); cells
        outside it stay zero and belong to no region.
        """
        (r0, r1), (c0, c1) = FLOW_WINDOW
        cell = ALIGNED_SIZE // GRID
        pooled = np.zeros((len(pairs), GRID, GRID, 2), np.float32)
        size = ((c1 - c0) // cell, (r1 - r0) // cell)
        for k, (ref, i) in enumerate(pairs):
            # OpenCV's stubs want an initial flow; None (start from zero) is what the binding accepts.
            flow = self.dis.calc(self.frames[ref], self.frames[i], None)  # type: ignore[call-overload]
            pooled[k, r0 // cell : r1 // cell, c0 // cell : c1 // cell] = cv2.resize(
                flow, size, interpolation=cv2.INTER_AREA
            )
        return pooled - _fit_head_motion(pooled) * FACE_WINDOW_CELLS[None, :, :, None] if len(pairs) else pooled


# Cell centres in px from the crop's centre: all cells, and the face cells the head motion is fitted to.
_PX = ((_XS - 0.5) * ALIGNED_SIZE).ravel()
_PY = ((_YS - 0.5) * ALIGNED_SIZE).ravel()
_FIT_X, _FIT_Y = _PX[FACE_CELLS.ravel()], _PY[FACE_CELLS.ravel()]


def _fit_head_motion(cells: np.ndarray, iterations: int = 3) -> np.ndarray:
    """Robust similarity (shift, scale, rotation) fitted to pooled flow over face cells, per pair.

    cells: (P, G, G, 2) -> the fitted motion, same shape. Expression motion covers a minority of
    face cells and is down-weighted (Cauchy weights), so the fit is the residual head motion and
    alignment jitter. The MEGC baselines subtract the nose's mean flow; a fit over the whole face
    also removes the small rotation and scale errors that 5-point alignment leaves.

    The model is dx = a + c x - d y, dy = b + d x + c y. Its weighted normal equations are written
    out as sums over cells, not matrix products: NumPy's BLAS wakes its own thread pool for
    products this size, which costs more than the arithmetic on a core per worker.
    """
    mask = FACE_CELLS.ravel()
    flat = cells.reshape(len(cells), -1, 2).astype(np.float64)
    u, v = flat[:, mask, 0], flat[:, mask, 1]  # (P, n) flow of the face cells
    x, y = _FIT_X, _FIT_Y
    w = np.ones_like(u)
    params = np.zeros((len(cells), 4))
    for _ in range(iterations):
        sw, swx, swy, swr = w.sum(1), (w * x).sum(1), (w * y).sum(1), (w * (x * x + y * y)).sum(1)
        zero = np.zeros_like(sw)
        normal = np.stack(
            [
                np.stack([sw, zero, swx, -swy], 1),
                np.stack([zero, sw, swy, swx], 1),
                np.stack([swx, swy, swr, zero], 1),
                np.stack([-swy, swx, zero, swr], 1),
            ],
            1,
        ) + 1e-6 * np.eye(4)
        rhs = np.stack([(w * u).sum(1), (w * v).sum(1), (w * (x * u + y * v)).sum(1), (w * (x * v - y * u)).sum(1)], 1)
        params = np.linalg.solve(normal, rhs[..., None])[..., 0]
        a, b, c, d = (params[:, k : k + 1] for k in range(4))
        r = np.hypot(u - (a + c * x - d * y), v - (b + d * x + c * y))
        scale = np.maximum(1.4826 * np.median(r, axis=1, keepdims=True), 0.05)
        w = 1.0 / (1.0 + (r / (2.0 * scale)) ** 2)
    dx = params[:, 0:1] + params[:, 2:3] * _PX - params[:, 3:4] * _PY
    dy = params[:, 1:2] + params[:, 3:4] * _PX + params[:, 2:3] * _PY
    return np.stack([dx, dy], axis=-1).reshape(cells.shape).astype(np.float32)


def _lag_references(t: np.ndarray, lags_ms: tuple[float, ...]) -> np.ndarray:
    """(T, R) index of each frame's reference frames `lags_ms` before and after it (-1: none)."""
    span = t[-1] - t[0]
    lags = [lag for lag in lags_ms if lag <= span * 0.75] or [span / 2.0]
    step = float(np.median(np.diff(t)))
    refs = np.full((len(t), 2 * len(lags)), -1, np.int64)
    for li, lag in enumerate(lags):
        for side, direction in enumerate((-1.0, 1.0)):
            target = t + direction * lag
            j = np.clip(np.searchsorted(t, target), 1, len(t) - 1)
            j = np.where(np.abs(t[j - 1] - target) <= np.abs(t[j] - target), j - 1, j)
            ok = (np.abs(t[j] - target) <= max(step, 0.25 * lag)) & (j != np.arange(len(t)))
            refs[ok, 2 * li + side] = j[ok]
    return refs


def _median_over_references(flows: _Flows, refs: np.ndarray) -> np.ndarray:
    """Pass 1: per frame, the per-cell median of its displacement against each reference.

    Flow between a and b is computed once and negated for the other direction (cell means of
    small displacements are antisymmetric to well under the noise).
    """
    keys: dict[tuple[int, int], int] = {}
    index = np.zeros(refs.shape, np.int64)
    sign = np.zeros(refs.shape, np.float32)
    for i, row in enumerate(refs):
        for k, r in enumerate(row):
            if r >= 0:
                a, b = min(i, int(r)), max(i, int(r))
                index[i, k] = keys.setdefault((a, b), len(keys))
                # Flow a -> b is "b relative to a": this frame relative to its reference when i == b.
                sign[i, k] = 1.0 if i == b else -1.0
    out = np.zeros((len(refs), GRID, GRID, 2), np.float32)
    if not keys:
        return out
    valid = (refs >= 0)[:, :, None, None, None]
    per_ref = np.where(valid, flows(list(keys))[index] * sign[:, :, None, None, None], np.nan)
    # A nanmedian: NaN sorts last, so a frame's median is the middle of its first `count` values.
    ordered = np.sort(per_ref, axis=1)
    count = valid.sum(axis=1, keepdims=True)
    lo = np.take_along_axis(ordered, np.maximum(count - 1, 0) // 2, axis=1)[:, 0]
    hi = np.take_along_axis(ordered, count // 2, axis=1)[:, 0]
    return np.where(count[:, 0] > 0, (lo + hi) / np.float32(2.0), out)


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average along axis 0 (edges padded), odd `width`."""
    if width < 2:
        return x
    flat = x.reshape(len(x), -1).astype(np.float64)
    half = width // 2
    padded = np.pad(flat, ((half, half), (0, 0)), mode="edge")
    cumsum = np.cumsum(np.vstack([np.zeros((1, flat.shape[1])), padded]), axis=0)
    smooth: np.ndarray = ((cumsum[width:] - cumsum[:-width]) / width).reshape(x.shape).astype(np.float32)
    return smooth


def _region_scores(field: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """(T, G, G, 2) displacement -> (T, regions): mean of each region's top third of cell z-scores.

    A cell's z-score is its displacement over its own typical displacement on the track (smooth
    skin, compression and background make some cells far noisier than others).
    """
    z = np.hypot(field[..., 0], field[..., 1]) / noise
    out = np.zeros((len(field), len(REGIONS)), np.float32)
    for r, name in enumerate(REGIONS):
        cells = z[:, REGION_MASKS[name]]
        k = max(2, int(round(cells.shape[1] * TOP_FRACTION)))
        out[:, r] = np.sort(cells, axis=1)[:, -k:].mean(axis=1)
    return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (start, end) of each run of True."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0] - 1))


def _busy_intervals(active: np.ndarray, t: np.ndarray) -> list[tuple[int, int]]:
    """Stretches worth re-measuring: active runs widened by BUSY_MARGIN_MS, merged."""
    out: list[tuple[int, int]] = []
    for s, e in _runs(active):
        margin = max(BUSY_MARGIN_MS, 0.5 * (t[e] - t[s]))
        s2 = int(np.searchsorted(t, t[s] - margin))
        e2 = int(np.searchsorted(t, t[e] + margin, side="right")) - 1
        if out and s2 <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], e2))
        else:
            out.append((s2, e2))
    return out


def _neutral_pair(
    flows: _Flows, t: np.ndarray, s: int, e: int, noise: np.ndarray, activity: np.ndarray
) -> tuple[int | None, int | None]:
    """Reference frames for the stretch s..e: the closest quiet frame before it and quiet frame
    after it that show the same face (mutual displacement scoring below CONSISTENT_SCORE, allowing
    for drift over their distance).

    A stretch that holds only the onset of a long expression has an expressive frame right after
    it; searching outwards in REACH_STEP_MS steps finds the neutral frames on both sides instead.
    """
    step = max(1, int(round(REACH_STEP_MS / float(np.median(np.diff(t))))))
    sides = []
    for candidates in (range(s - 1, -1, -step), range(e + 1, len(t), step)):
        near = [r for r in candidates if abs(t[r] - t[s if r < s else e]) <= REACH_MS]
        quiet = [r for r in near if activity[r] < QUIET_SCORE]
        sides.append(quiet or near)
    before, after = sides
    if not before or not after:
        return (before[0] if before else None), (after[0] if after else None)
    # Closest pair first (a stable sort keeps ties in order): the first consistent one ends the
    # search, so the flow of farther pairs (~0.6 ms each, up to 100 of them) is rarely needed.
    pairs = sorted(((p, q) for p in before for q in after), key=lambda pq: t[pq[1]] - t[pq[0]])
    scores = []
    for p, q in pairs:
        score = float(_region_scores(flows([(p, q)]), noise).max() / _drift_scale(t[q] - t[p]))
        if score <= CONSISTENT_SCORE:
            return p, q
        scores.append(score)
    return pairs[int(np.argmin(scores))]


def _drift_scale(span_ms: float | np.ndarray) -> np.ndarray:
    """Noise growth with the time between a frame and its references (drift: light, pose, codec)."""
    return np.maximum(1.0, np.sqrt(np.asarray(span_ms, np.float64) / DRIFT_SPAN_MS))


def _measure_against(flows: _Flows, t: np.ndarray, before: int | None, after: int | None, s: int, e: int) -> np.ndarray:
    """Displacement of frames s..e against the reference frames on either side, blended linearly
    in time so that drift across the stretch cancels."""
    frames = list(range(s, e + 1))
    if before is None or after is None:
        ref = before if after is None else after
        assert ref is not None  # the caller gives a reference on one side at least
        return flows([(ref, i) for i in frames])
    pooled = flows([(before, i) for i in frames] + [(after, i) for i in frames])
    a, b = pooled[: len(frames)], pooled[len(frames) :]
    w = ((t[s : e + 1] - t[before]) / max(t[after] - t[before], 1e-6)).astype(np.float32)[:, None, None, None]
    blended: np.ndarray = (1 - w) * a + w * b
    return blended


def _cell_noise(field: np.ndarray) -> np.ndarray:
    """Per-cell noise (px) of a displacement field: its lower quartile scaled to a median.

    The lower quartile stays on neutral frames even when movements fill half of a short track.
    For Rayleigh-distributed magnitudes median / lower quartile = 1.177 / 0.759.
    """
    mag = np.hypot(field[..., 0], field[..., 1])
    noise: np.ndarray = np.maximum(np.quantile(mag, 0.25, axis=0) * (1.177 / 0.759), NOISE_FLOOR_PX)
    return noise


def motion_field(
    aligned: np.ndarray, timestamps_ms: np.ndarray, busy_score: float = BUSY_SCORE
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]], np.ndarray]:
    """Displacement of every frame against neutral references, and what it took.

    Returns (field (T, G, G, 2) in crop px, per-cell noise (G, G) px, busy stretches, per-frame
    noise scale (T,) for the drift the frame's references leave).
    Pass 1 looks for anything moving at two time scales: against frames SHORT_LAGS_MS away
    (little drift, sensitive to brief movements) and LONG_LAGS_MS away (long movements). Every
    stretch where something moves is then re-measured against the quiet frames just outside it
    (pass 2): the reference is neutral and close in time, so drift stays small.
    """
    t = np.asarray(timestamps_ms, np.float64)
    flows = _Flows(_normalise(aligned))
    width = _odd_width(70.0, t)
    short = _median_over_references(flows, _lag_references(t, SHORT_LAGS_MS))
    noise = _cell_noise(short)
    long_ = _median_over_references(flows, _lag_references(t, LONG_LAGS_MS))
    long_noise = _cell_noise(long_)
    activity = np.maximum(
        _region_scores(_smooth(short, width), noise).max(axis=1),
        _region_scores(_smooth(long_, width), long_noise).max(axis=1),
    )
    noise = noise ** (1 - NOISE_MIX) * long_noise**NOISE_MIX
    busy = _busy_intervals(activity > busy_score, t)
    # Every busy stretch gets its neutral references; the frames between them are re-measured.
    # Where the spans of two stretches overlap, a frame keeps the closer pair (less drift).
    spans = []
    for s, e in busy:
        p, q = _neutral_pair(flows, t, s, e, noise, activity)
        lo, hi = (p + 1 if p is not None else 0), (q - 1 if q is not None else len(t) - 1)
        if hi >= lo and (p is not None or q is not None):
            width_ms = (t[q] if q is not None else t[hi]) - (t[p] if p is not None else t[lo])
            spans.append((width_ms, lo, hi, p, q))
    owner = np.full(len(t), -1)
    for k, (_, lo, hi, _, _) in sorted(enumerate(spans), key=lambda kv: -kv[1][0]):
        owner[lo : hi + 1] = k  # widest first, so the closest pair is written last
    field = short
    scale = np.ones(len(t), np.float32)
    for k, (width_ms, _, _, p, q) in enumerate(spans):
        for s, e in _runs(owner == k):
            field[s : e + 1] = _measure_against(flows, t, p, q, s, e)
            # Drift grows with the distance to the references, and so does the noise; a stretch
            # at a track's end has a reference on one side only, which cancels no drift at all.
            if p is not None and q is not None:
                scale[s : e + 1] = _drift_scale(width_ms)
            else:
                scale[s : e + 1] = _drift_scale(2.0 * np.abs(t[s : e + 1] - t[p if q is None else q]))
    return field, noise, busy, scale


def _odd_width(ms: float, t: np.ndarray) -> int:
    step = float(np.median(np.diff(t))) if len(t) > 1 else 33.3
    return 2 * int(round(ms / 2.0 / max(step, 1e-3))) + 1


# --- Events -----------------------------------------------------------------------------------


def spot_micro_expressions(
    aligned: np.ndarray, timestamps_ms: np.ndarray, emotions: np.ndarray, sensitivity: float
) -> list[MicroExpression]:
    """(T, S, S) aligned crops of one track, their times and (T, 7) emotions -> events.

    The events carry track id 0: the caller knows the track (`dataclasses.replace`).
    """
    t = np.asarray(timestamps_ms, np.float64)
    if len(aligned) < 5 or t[-1] - t[0] < 150.0:
        return []
    field, noise, _, scale = motion_field(aligned, t)
    width = _odd_width(DETECT_SMOOTH_MS, t)
    smooth = _smooth(field, width)
    scores = _region_scores(smooth, noise) / scale[:, None]
    # Sensitivity 0.5 is the tuned operating point; 0 demands 45% more, 1 accepts 45% less.
    factor = 1.45 - 0.9 * float(np.clip(sensitivity, 0.0, 1.0))
    threshold = THRESHOLD * factor
    # A region that is restless all along this track (drifting light on a smooth forehead, say)
    # needs a larger movement: its threshold rises with the spread of its scores.
    median = np.median(scores, axis=0)
    spread = 1.4826 * np.median(np.abs(scores - median), axis=0)
    region_threshold = np.maximum(threshold, median + ADAPTIVE_K * factor * spread)
    detect = (scores / region_threshold)[:, DETECTION].max(axis=1)
    events = []
    for s, e in _runs(detect > LOW_FRACTION):
        peak = s + int(np.argmax(detect[s : e + 1]))
        if detect[peak] < 1.0:
            continue
        event = _describe(field, smooth, scores, noise, t, emotions, peak)
        if event is not None:
            events.append(event)
    return _merge(events)


def _describe(
    field: np.ndarray,
    smooth: np.ndarray,
    scores: np.ndarray,
    noise: np.ndarray,
    t: np.ndarray,
    emotions: np.ndarray,
    peak: int,
) -> MicroExpression | None:
    """Onset/apex/offset, regions, intensity and emotion of the movement peaking at `peak`."""
    # The apex pattern: displacement of the cells that moved (z > 2) at the peak.
    z = np.hypot(smooth[peak, ..., 0], smooth[peak, ..., 1]) / noise
    cells = (z > 2.0) & FACE_CELLS
    if cells.sum() < 2:
        cells = z >= np.sort(z.ravel())[-4]
    pattern = smooth[peak][cells]
    norm = float((pattern**2).sum())
    if norm <= 0:
        return None
    # Projection of every frame on that pattern: 1 at the peak, ~0 when neutral.
    projection = (field[:, cells] * pattern).sum(axis=(1, 2)) / norm
    projection = _smooth(projection, max(1, _odd_width(40.0, t)))
    # Apex: the middle of the stretch around the peak that stays within 90% of its height.
    top = peak
    while top > 0 and projection[top - 1] > projection[top]:  # climb to the local maximum
        top -= 1
    while top < len(t) - 1 and projection[top + 1] > projection[top]:
        top += 1
    height = projection[top]
    if height <= 0:
        return None
    lo, hi = top, top
    while lo > 0 and projection[lo - 1] >= 0.9 * height:
        lo -= 1
    while hi < len(t) - 1 and projection[hi + 1] >= 0.9 * height:
        hi += 1
    apex = (lo + hi) // 2
    # Onset and offset: each edge's line through its 25% and 75% crossings, extended to zero
    # (robust to noise near the baseline, where a plain threshold crossing wanders).
    edges = []
    for start, direction in ((lo, -1), (hi, 1)):
        t75 = _crossing(projection / height, t, start, direction, 0.75)
        t25 = _crossing(projection / height, t, start, direction, 0.25)
        if t25 is None or t75 is None:
            return None  # the movement runs into the track's end: no neutral frame to time it
        edges.append(t25 - 0.5 * (t75 - t25))
    onset = int(np.clip(np.searchsorted(t, edges[0]), 0, apex))
    onset = onset - 1 if onset > 0 and abs(t[onset - 1] - edges[0]) < abs(t[onset] - edges[0]) else onset
    offset = int(np.clip(np.searchsorted(t, edges[1]), apex, len(t) - 1))
    offset = offset - 1 if offset > apex and abs(t[offset - 1] - edges[1]) < abs(t[offset] - edges[1]) else offset
    if offset - onset < 2 or onset >= apex or offset <= apex or onset == 0 or offset == len(t) - 1:
        return None
    # Regions at the apex, relative to the strongest; eyes-only movements are blinks.
    at_apex = scores[apex]
    px = _region_px(smooth[apex])
    others = [i for i in DETECTION if i != BROWS]
    if at_apex[EYES] > BLINK_RATIO * at_apex[BROWS] and at_apex[EYES] > BLINK_OTHERS * at_apex[others].max():
        return None
    strength = np.maximum(at_apex - 1.5, 0.0)
    top_strength = float(strength.max()) or 1.0
    regions = []
    for r, name in enumerate(REGIONS):
        rel = float(strength[r] / top_strength)
        if rel >= 0.35:
            regions.append(RegionMovement(name, round(rel, 3), _action_units(name, smooth[apex])))
    regions.sort(key=lambda m: -m.magnitude)
    # Intensity: apex displacement of the most-moved cells relative to the inter-ocular distance.
    peak_iod = float(px[DETECTION].max()) / IOD_PX
    intensity = float(np.clip(1.0 - np.exp(-peak_iod / 0.05), 0.0, 1.0))
    emotion, probability = _emotion_rise(emotions, onset, apex, t)
    return MicroExpression(
        float(t[onset]), float(t[apex]), float(t[offset]), round(intensity, 3), regions, emotion, probability
    )


def _crossing(curve: np.ndarray, t: np.ndarray, start: int, direction: int, level: float) -> float | None:
    """Time where `curve`, walked from `start` in `direction`, first drops to `level` (interpolated)."""
    i = start
    while 0 <= i + direction < len(curve):
        j = i + direction
        if curve[j] <= level:
            a, b = curve[i], curve[j]
            return float(t[i] + (t[j] - t[i]) * (a - level) / max(a - b, 1e-9))
        i = j
    return None


def _region_px(field_frame: np.ndarray) -> np.ndarray:
    """Mean displacement (px) of each region's three most-moved cells."""
    mag = np.hypot(field_frame[..., 0], field_frame[..., 1])
    return np.array([np.sort(mag[REGION_MASKS[name]])[-3:].mean() for name in REGIONS])


def _mean_vector(field_frame: np.ndarray, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    m = (_XS >= x0) & (_XS < x1) & (_YS >= y0) & (_YS < y1)
    return field_frame[m].mean(axis=0) if m.any() else np.zeros(2, np.float32)


def _action_units(region: str, f: np.ndarray) -> list[str]:
    """FACS hints from the direction of the apex displacement (y grows downwards in the crop)."""
    if region == "brows":
        left, right = _mean_vector(f, 0.2, 0.5, 0.17, 0.32), _mean_vector(f, 0.5, 0.8, 0.17, 0.32)
        dy = (left[1] + right[1]) / 2
        converge = left[0] - right[0]  # > 0: the two brows move towards each other
        size = float(np.hypot(*left) + np.hypot(*right)) / 2 + 1e-6
        if dy < -0.3 * size:
            return ["AU1", "AU2"]
        if dy > 0.3 * size or converge > 0.5 * size:
            return ["AU4"]
        return []
    if region == "mouth":
        left, right = _mean_vector(f, 0.25, 0.42, 0.62, 0.82), _mean_vector(f, 0.58, 0.75, 0.62, 0.82)
        upper, lower = _mean_vector(f, 0.42, 0.58, 0.62, 0.72), _mean_vector(f, 0.42, 0.58, 0.72, 0.82)
        nl, nr = float(np.hypot(*left)), float(np.hypot(*right))
        corners = max(nl, nr)
        centre = max(float(np.hypot(*upper)), float(np.hypot(*lower)))
        if corners >= centre:
            up = -(left[1] + right[1]) / 2
            outward = (right[0] - left[0]) / 2
            if min(nl, nr) < 0.4 * corners:  # one corner only
                side = left if nl > nr else right
                return ["AU14"] if -side[1] > -0.5 * corners else ["AU15"]
            if up > 0.2 * corners or outward > 0.4 * corners:
                return ["AU12"]
            if -up > 0.3 * corners:
                return ["AU15"]
            return []
        if upper[1] - lower[1] > 0.3 * centre:  # upper lip down, lower lip up
            return ["AU24"]
        if upper[1] < -0.3 * centre:
            return ["AU10"]
        return []
    if region == "nose":
        v = _mean_vector(f, 0.37, 0.63, 0.44, 0.62)
        return ["AU9"] if v[1] < -0.3 * (float(np.hypot(*v)) + 1e-6) else []
    if region == "chin":
        v = _mean_vector(f, 0.31, 0.69, 0.82, 1.0)
        return ["AU17"] if v[1] < -0.3 * (float(np.hypot(*v)) + 1e-6) else []
    return []


def _emotion_rise(emotions: np.ndarray, onset: int, apex: int, t: np.ndarray) -> tuple[str | None, float | None]:
    """The class whose probability rose most from onset to apex (both averaged over ~100 ms)."""
    if emotions is None or len(emotions) != len(t):
        return None, None
    probs = _smooth(np.asarray(emotions, np.float32), _odd_width(100.0, t))
    rise = probs[apex] - probs[onset]
    best = int(np.argmax(rise))
    if rise[best] <= 0.0:
        return None, None
    return EMOTIONS[best], round(float(probs[apex, best]), 4)


def _merge(events: list[MicroExpression]) -> list[MicroExpression]:
    """Overlapping intervals are one movement: keep the more intense description."""
    out: list[MicroExpression] = []
    for e in sorted(events, key=lambda e: e.onset_ms):
        if out and e.onset_ms < out[-1].offset_ms:
            if e.intensity > out[-1].intensity:
                out[-1] = replace(e, onset_ms=min(e.onset_ms, out[-1].onset_ms))
            else:
                out[-1] = replace(out[-1], offset_ms=max(out[-1].offset_ms, e.offset_ms))
            continue
        out.append(e)
    return out
