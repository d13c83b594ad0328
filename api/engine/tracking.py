"""Greedy IoU tracking: stable face ids across the sampled frames of a clip."""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from api.engine.results import Frame, Track

IOU_THRESHOLD = 0.3
# A face unseen for longer than this starts a new track when it reappears.
MAX_GAP_MS = 500.0


def iou(a: np.ndarray, b: np.ndarray) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    ih = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


def greedy_pairs(scored: Iterable[tuple[float, int, int]], threshold: float) -> list[tuple[int, int]]:
    """One-to-one (i, j) pairs from (score, i, j) candidates, best score first, down to `threshold`."""
    used_i, used_j, pairs = set(), set(), []
    for score, i, j in sorted(scored, reverse=True):
        if score < threshold:
            break
        if i in used_i or j in used_j:
            continue
        used_i.add(i)
        used_j.add(j)
        pairs.append((i, j))
    return pairs


def assign_tracks(frames: list[Frame]) -> list[Track]:
    """Give every face a `track_id` (set on the face) and return the tracks in id order."""
    tracks: list[Track] = []
    active: list[Track] = []
    for frame in frames:
        active = [t for t in active if frame.timestamp_ms - t.frames[-1].timestamp_ms <= MAX_GAP_MS]
        pairs = greedy_pairs(((iou(t.faces[-1].box, f.box), ti, fi)
                              for ti, t in enumerate(active) for fi, f in enumerate(frame.faces)), IOU_THRESHOLD)
        for ti, fi in pairs:
            _extend(active[ti], frame, fi)
        used_faces = {fi for _, fi in pairs}
        for fi, face in enumerate(frame.faces):
            if fi not in used_faces:
                track = Track(len(tracks) + 1, [], [])
                _extend(track, frame, fi)
                tracks.append(track)
                active.append(track)
    return tracks


def _extend(track: Track, frame: Frame, face_index: int) -> None:
    face = frame.faces[face_index]
    face.track_id = track.track_id
    track.frames.append(frame)
    track.faces.append(face)
