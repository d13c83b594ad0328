"""Greedy IoU tracking: stable face ids across the sampled frames of a clip."""
from __future__ import annotations

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


def assign_tracks(frames: list[Frame]) -> list[Track]:
    """Give every face a `track_id` (set on the face) and return the tracks in id order."""
    tracks: list[Track] = []
    active: list[Track] = []
    for frame in frames:
        active = [t for t in active if frame.timestamp_ms - t.frames[-1].timestamp_ms <= MAX_GAP_MS]
        pairs = sorted(
            ((iou(t.faces[-1].box, f.box), ti, fi) for ti, t in enumerate(active) for fi, f in enumerate(frame.faces)),
            reverse=True,
        )
        used_tracks, used_faces = set(), set()
        for score, ti, fi in pairs:
            if score < IOU_THRESHOLD:
                break
            if ti in used_tracks or fi in used_faces:
                continue
            used_tracks.add(ti)
            used_faces.add(fi)
            _extend(active[ti], frame, fi)
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
