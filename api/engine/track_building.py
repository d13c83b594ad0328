"""Greedy IoU tracking: stable face ids across the sampled frames of a clip."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from api.engine.results import Face, Frame, Track

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


@dataclass
class _Open:
    """A track that may still continue: its id and where and when its face was last seen."""

    track_id: int
    box: np.ndarray
    timestamp_ms: float


def track_ids(frames: Iterable[tuple[float, list[np.ndarray]]]) -> list[list[int]]:
    """Track ids (1, 2, … in order of appearance) for every face box of every frame, given as
    (timestamp_ms, boxes) in time order."""
    ids: list[list[int]] = []
    active: list[_Open] = []
    count = 0
    for timestamp_ms, boxes in frames:
        active = [t for t in active if timestamp_ms - t.timestamp_ms <= MAX_GAP_MS]
        pairs = greedy_pairs(
            ((iou(t.box, box), ti, fi) for ti, t in enumerate(active) for fi, box in enumerate(boxes)), IOU_THRESHOLD
        )
        matched = {fi: active[ti] for ti, fi in pairs}
        frame_ids = []
        for fi, box in enumerate(boxes):
            track = matched.get(fi)
            if track is None:
                count += 1
                track = _Open(count, box, timestamp_ms)
                active.append(track)
            track.box, track.timestamp_ms = box, timestamp_ms
            frame_ids.append(track.track_id)
        ids.append(frame_ids)
    return ids


def group_tracks(frames: list[Frame]) -> list[Track]:
    """The tracks, in id order, of frames whose faces carry their `track_id`."""
    members: dict[int, tuple[list[Frame], list[Face]]] = {}
    for frame in frames:
        for face in frame.faces:
            if face.track_id is not None:
                track_frames, track_faces = members.setdefault(face.track_id, ([], []))
                track_frames.append(frame)
                track_faces.append(face)
    return [Track(track_id, *members[track_id]) for track_id in sorted(members)]
