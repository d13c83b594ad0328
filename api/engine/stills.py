"""Small JPEG stills of a clip's analysed frames, for clients that cannot decode the clip themselves
(a browser without HEVC shows a .mov as sound only): they show what was analysed, frame by frame."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import cv2
import numpy as np

from api.engine.media import VideoFrame
from api.engine.results import Still

MAX_STILLS = 60
# Long side in pixels: enough to see the face boxes drawn over it, small enough that 60 stills stay
# well under a megabyte in the answer.
STILL_SIDE = 320
JPEG_QUALITY = 70


def keeping_stills(frames: Iterable[VideoFrame], duration_ms: float, kept: list[Still]) -> Iterator[VideoFrame]:
    """The frames, passed on unchanged, while a still of one at most every `duration_ms / MAX_STILLS`
    is appended to `kept`: the first frame, then the first analysed frame after each interval."""
    interval_ms = duration_ms / MAX_STILLS
    due_ms = 0.0
    for frame in frames:
        if frame.timestamp_ms >= due_ms and len(kept) < MAX_STILLS:
            kept.append(Still(frame.index, frame.timestamp_ms, _jpeg(frame.pixels)))
            due_ms = frame.timestamp_ms + interval_ms
        yield frame


def _jpeg(pixels: np.ndarray) -> bytes:
    """Grey for video frames (the clip path decodes luma only), colour for GIF frames."""
    height, width = pixels.shape[:2]
    scale = min(1.0, STILL_SIDE / max(height, width))
    small = cv2.resize(
        pixels, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA
    )
    ok, encoded = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("OpenCV could not encode a still")
    return encoded.tobytes()
