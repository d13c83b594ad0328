"""Micro-expression spotting on face tracks (onset, apex, offset, regions, emotion at apex).

Input per track: face crops aligned to one canonical template, so head translation, scale and
in-plane rotation are removed before any motion is measured.
"""
from __future__ import annotations

import cv2
import numpy as np

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
    src = np.asarray(landmarks, np.float64).reshape(-1, 2)
    dst = TEMPLATE.astype(np.float64) * size
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - src_mean, dst - dst_mean
    variance = (s ** 2).sum()
    if not np.isfinite(variance) or variance < 1e-6:  # degenerate points: centre the face, no scale
        matrix = np.zeros((2, 3))
        matrix[0, 0] = matrix[1, 1] = 1.0
        matrix[:, 2] = dst_mean - (src_mean if np.all(np.isfinite(src_mean)) else 0.0)
        return matrix
    # Closed form for a similarity (no reflection): a = sum(s.d)/|s|^2, b = sum(s x d)/|s|^2.
    a = (s * d).sum() / variance
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum() / variance
    rotation = np.array([[a, -b], [b, a]])
    return np.hstack([rotation, (dst_mean - rotation @ src_mean)[:, None]])


# --- Motion signal -------------------------------------------------------------------------------
# Dense optical flow (DIS) between each frame and reference frames LAGS_MS before and after it,
# pooled into GRID x GRID cells (7 px at 112 px). A frame's displacement is the per-cell median over
# its references: an isolated movement shorter than the lags is measured against neutral frames
# on both sides, linear drift cancels, and a reference that falls inside another movement is outvoted.
GRID = 16
LAGS_MS = (1500.0, 3000.0)
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
# Eyes alone move in every blink: they never start an event, only join one.
DETECTION_REGIONS = ("brows", "nose", "mouth", "chin")
IOD_PX = float(np.linalg.norm(TEMPLATE[0:2].mean(axis=0) - TEMPLATE[2:4].mean(axis=0))) * ALIGNED_SIZE


def _cell_centres(size: int) -> tuple[np.ndarray, np.ndarray]:
    c = (np.arange(GRID) + 0.5) / GRID
    return np.meshgrid(c, c)  # x, y as fractions


def _region_masks() -> dict[str, np.ndarray]:
    xs, ys = _cell_centres(ALIGNED_SIZE)
    return {name: (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1) for name, (x0, y0, x1, y1) in REGION_BOXES.items()}


REGION_MASKS = _region_masks()
_XS, _YS = _cell_centres(ALIGNED_SIZE)
# Cells on the face (an ellipse around the template), used to fit the residual head motion.
FACE_CELLS = (((_XS - 0.5) / 0.32) ** 2 + ((_YS - 0.55) / 0.42) ** 2) <= 1.0


def _normalise(aligned: np.ndarray) -> np.ndarray:
    """Band-pass each crop and fix its contrast: brightness drift and shading changes drop out."""
    out = np.empty(aligned.shape, np.uint8)
    for i, frame in enumerate(aligned):
        f = frame.astype(np.float32)
        fine = cv2.GaussianBlur(f, (0, 0), 0.8)
        band = fine - cv2.GaussianBlur(f, (0, 0), 6.0)
        spread = float(band[8:-8, 8:-8].std()) + 1e-3
        out[i] = np.clip(band * (30.0 / spread) + 128.0, 0, 255).astype(np.uint8)
    return out


def _fit_head_motion(cells: np.ndarray, iterations: int = 3) -> np.ndarray:
    """Robust similarity (shift, scale, rotation) fitted to pooled flow over face cells, per pair.

    cells: (P, G, G, 2) -> the fitted motion, same shape. Expression motion covers a minority of
    face cells and is down-weighted (Cauchy weights), so what remains is residual head motion
    and alignment jitter, which is subtracted (the MEGC baselines subtract the nose's mean flow;
    a fit over the whole face also removes small rotation and scale errors of the alignment).
    """
    px = (_XS - 0.5) * ALIGNED_SIZE
    py = (_YS - 0.5) * ALIGNED_SIZE
    mask = FACE_CELLS.ravel()
    x, y = px.ravel()[mask], py.ravel()[mask]
    n = len(x)
    ones, zeros = np.ones(n), np.zeros(n)
    design = np.concatenate([np.stack([ones, zeros, x, -y], 1), np.stack([zeros, ones, y, x], 1)])  # (2n, 4)
    flat = cells.reshape(len(cells), -1, 2)
    target = np.concatenate([flat[:, mask, 0], flat[:, mask, 1]], axis=1)  # (P, 2n)
    weights = np.ones_like(target)
    for _ in range(iterations):
        normal = np.einsum("pk,ki,kj->pij", weights, design, design) + 1e-6 * np.eye(4)
        rhs = np.einsum("pk,ki,pk->pi", weights, design, target)
        params = np.linalg.solve(normal, rhs[..., None])[..., 0]
        residual = target - params @ design.T
        r = np.hypot(residual[:, :n], residual[:, n:])
        scale = np.maximum(1.4826 * np.median(r, axis=1, keepdims=True), 0.05)
        w = 1.0 / (1.0 + (r / (2.0 * scale)) ** 2)
        weights = np.concatenate([w, w], axis=1)
    allx, ally = px.ravel(), py.ravel()
    dx = params[:, 0:1] + params[:, 2:3] * allx - params[:, 3:4] * ally
    dy = params[:, 1:2] + params[:, 3:4] * allx + params[:, 2:3] * ally
    return np.stack([dx, dy], axis=-1).reshape(cells.shape)


def _reference_pairs(timestamps_ms: np.ndarray) -> tuple[list[tuple[int, int]], np.ndarray, np.ndarray]:
    """Frame pairs (earlier, later) to flow, and per frame its reference pair indices and signs."""
    t = np.asarray(timestamps_ms, np.float64)
    span = t[-1] - t[0]
    lags = [lag for lag in LAGS_MS if lag <= span * 0.75]
    if not lags:  # short track: one reference each side, as far apart as it allows
        lags = [span / 2.0]
    step = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
    pairs: dict[tuple[int, int], int] = {}
    refs = np.full((len(t), 2 * len(lags)), -1, np.int64)
    signs = np.zeros((len(t), 2 * len(lags)), np.float32)
    for li, lag in enumerate(lags):
        for side, direction in enumerate((-1.0, 1.0)):
            target = t + direction * lag
            j = np.clip(np.searchsorted(t, target), 1, len(t) - 1)
            j = np.where(np.abs(t[j - 1] - target) <= np.abs(t[j] - target), j - 1, j)
            ok = (np.abs(t[j] - target) <= max(step, 0.25 * lag)) & (j != np.arange(len(t)))
            for i in np.nonzero(ok)[0]:
                a, b = (int(j[i]), int(i)) if j[i] < i else (int(i), int(j[i]))
                index = pairs.setdefault((a, b), len(pairs))
                refs[i, 2 * li + side] = index
                # A pair's flow runs earlier -> later: it is this frame minus its reference when this
                # frame is the later one, and the opposite otherwise.
                signs[i, 2 * li + side] = 1.0 if b == i else -1.0
    return list(pairs), refs, signs


def _flow_engine():
    """DIS at full resolution: the presets stop at 1/4 or 1/2 scale, which averages away the
    sub-pixel, local movements of micro-expressions (measured: ~25% of a 1 px lip-corner pull
    recovered at the preset's scale, ~90% at full scale; ~0.7 ms per 112 px pair)."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
    dis.setFinestScale(0)
    dis.setPatchSize(8)
    dis.setPatchStride(6)
    dis.setGradientDescentIterations(12)
    dis.setVariationalRefinementIterations(0)
    return dis


def motion_field(aligned: np.ndarray, timestamps_ms: np.ndarray) -> np.ndarray:
    """(T, G, G, 2) displacement of each cell relative to the frame's references, in crop pixels.

    Head motion is removed; NaN where a frame has no reference.
    """
    frames = _normalise(aligned)
    pairs, refs, signs = _reference_pairs(timestamps_ms)
    if not pairs:
        return np.full((len(aligned), GRID, GRID, 2), np.nan, np.float32)
    dis = _flow_engine()
    pooled = np.empty((len(pairs), GRID, GRID, 2), np.float32)
    for k, (a, b) in enumerate(pairs):
        flow = dis.calc(frames[a], frames[b], None)
        pooled[k] = cv2.resize(flow, (GRID, GRID), interpolation=cv2.INTER_AREA)
    residual = pooled - _fit_head_motion(pooled)
    per_ref = residual[np.maximum(refs, 0)] * signs[..., None, None, None]  # (T, R, G, G, 2)
    per_ref[refs < 0] = np.nan
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmedian(per_ref, axis=1).astype(np.float32)


NOISE_FLOOR_PX = 0.08


def region_scores(field: np.ndarray, timestamps_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, G, G, 2) displacement -> (T, regions) scores and the smoothed field.

    Each cell's displacement magnitude is divided by that cell's typical magnitude over the track
    (its noise: smooth skin, compression and background make some cells far noisier than others);
    a region's score is the mean of its top third of cells. At high frame rates the field is first
    averaged over ~30 ms, which leaves the shortest resolvable movements intact.
    """
    field = np.nan_to_num(field)
    step = float(np.median(np.diff(timestamps_ms))) if len(timestamps_ms) > 1 else 33.3
    width = int(round(33.3 / max(step, 1e-3)))
    if width >= 2:
        kernel = np.ones(width, np.float32) / width
        flat = field.reshape(len(field), -1)
        padded = np.pad(flat, ((width // 2, width - 1 - width // 2), (0, 0)), mode="edge")
        cumsum = np.cumsum(np.vstack([np.zeros((1, flat.shape[1]), np.float32), padded]), axis=0)
        field = ((cumsum[width:] - cumsum[:-width]) / width).reshape(field.shape).astype(np.float32)
        del kernel
    mag = np.hypot(field[..., 0], field[..., 1])
    noise = np.maximum(np.median(mag, axis=0), NOISE_FLOOR_PX)
    z = mag / noise
    out = np.zeros((len(field), len(REGIONS)), np.float32)
    for r, name in enumerate(REGIONS):
        cells = z[:, REGION_MASKS[name]]
        k = max(2, cells.shape[1] // 3)
        out[:, r] = np.sort(cells, axis=1)[:, -k:].mean(axis=1)
    return out, field


def spot_micro_expressions(aligned: np.ndarray, timestamps_ms: np.ndarray, emotions: np.ndarray,
                           sensitivity: float) -> list[MicroExpression]:
    """(T, S, S) aligned crops of one track, their times and (T, 7) emotions -> events.

    `track_id` on the returned events is left for the caller to set.
    """
    return []
