"""Decode uploads into pixels, refusing hostile or oversized input before decoding it.

Formats are recognised by magic bytes, never by the client's declared type or file name.
Every dimension, duration and frame count is checked from the header first and enforced
again while decoding, because headers can lie.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import struct
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

import av
import cv2
import numpy as np
from PIL import Image, ImageOps, ImageSequence

from api.engine.limits import Limits
from api.engine.results import MediaInfo

log = logging.getLogger(__name__)

T = TypeVar("T")

IMAGE_FORMATS = {"jpeg", "png", "webp", "bmp"}
VIDEO_FORMATS = {"mp4", "mov", "webm"}
# The type a stored video is served with: from its container, never from what the client declared.
VIDEO_MIMETYPES = {"mp4": "video/mp4", "mov": "video/quicktime", "webm": "video/webm"}


class MediaError(Exception):
    """Base of every refusal of an upload. `code` is stable and part of the API contract."""

    code = "media_error"


class UnsupportedMedia(MediaError):
    code = "unsupported_media_type"


class MediaTooLarge(MediaError):
    code = "media_too_large"


class MediaDimensionsTooLarge(MediaError):
    code = "media_dimensions_too_large"


class MediaCorrupt(MediaError):
    code = "media_corrupt"


class MediaEmpty(MediaError):
    """Zero bytes: a client that sent nothing (an unread file, a failed copy), not a file we cannot read."""

    code = "media_empty"


class ClipTooLong(MediaError):
    code = "clip_too_long"


def sniff_format(data: bytes) -> str:
    """Name the container format from its first bytes, or raise UnsupportedMedia."""
    head = data[:16]
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"BM"):
        return "bmp"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head[4:8] == b"ftyp":
        return "mov" if head[8:12] == b"qt  " else "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm"
    raise UnsupportedMedia(
        "unrecognised file type; send a JPEG, PNG, WebP or BMP image, or an MP4, MOV, WebM or animated GIF clip"
    )


@dataclass
class DecodedImage:
    info: MediaInfo
    pixels: np.ndarray  # uint8 BGR (h, w, 3)


@dataclass
class VideoFrame:
    index: int
    timestamp_ms: float
    pixels: np.ndarray  # grey (h, w) from video streams (see luma), BGR (h, w, 3) from GIFs


@dataclass
class DecodedVideo:
    """Header facts plus a generator that decodes (and samples) frames on demand; once the frames
    run out, `info` holds the length and frame count of what decoded.

    The decoder is released when the frames run out; `close()` releases it without decoding, e.g.
    when the clip becomes a job (closing a generator that never started runs none of its code).
    """

    info: MediaInfo
    sample_fps: float
    frames: Generator[VideoFrame, None, None]
    release: Callable[[], None]

    def close(self) -> None:
        self.frames.close()
        self.release()


def decode(data: bytes, limits: Limits, sample_fps: float | None) -> DecodedImage | DecodedVideo:
    """`open_clip`, then a picture decoded; a clip's frames are decoded as they are read."""
    clip = open_clip(data, limits, sample_fps)
    if clip is not None:
        return clip
    fmt = sniff_format(data)
    with _refusals(fmt):
        return _decode_still_gif(data) if fmt == "gif" else _decode_image(data, fmt, limits)


def open_clip(data: bytes, limits: Limits, sample_fps: float | None) -> DecodedVideo | None:
    """The upload checked from its headers, packets or GIF blocks without decoding a pixel: a clip
    opened (frames decoded as they are read), or None for a picture, which `decode` decodes later.

    Cheap enough to run before an analysis slot is taken and before the quota is asked, so a bomb
    is refused even when every slot is busy.
    """
    fmt = sniff_upload(data, limits)
    with _refusals(fmt):
        if fmt in IMAGE_FORMATS:
            with Image.open(io.BytesIO(data)) as image:  # reads the header only
                _check_dimensions(*image.size, limits.max_image_pixels, limits.max_image_side)
            return None
        if fmt == "gif":
            return _open_gif(data, limits, sample_fps)
        return _open_video(data, fmt, limits, sample_fps)


def sniff_upload(data: bytes, limits: Limits) -> str:
    """The upload's format, once its size is known to be within the limit and not zero."""
    if len(data) > limits.max_upload_bytes:
        # Reading stops one byte past the limit, so the upload's real size is not known here.
        raise MediaTooLarge(
            f"the upload is over the limit of {limits.max_upload_bytes} bytes ({limits.max_upload_bytes / 2**20:g} MiB)"
        )
    if not data:
        raise MediaEmpty("the upload is empty (0 bytes); send a photo or a clip")
    return sniff_format(data)


@contextmanager
def _refusals(fmt: str) -> Iterator[None]:
    try:
        yield
    except MediaError:
        raise
    except Image.DecompressionBombError as exc:
        raise MediaDimensionsTooLarge(str(exc)) from exc
    except Exception as exc:  # any decoder failure on untrusted bytes means a corrupt file
        raise MediaCorrupt(f"the {fmt} file could not be decoded: {type(exc).__name__}") from exc


def _check_dimensions(width: int, height: int, max_pixels: int, max_side: int) -> None:
    if width <= 0 or height <= 0:
        raise MediaCorrupt("the file declares an empty picture")
    if width > max_side or height > max_side or width * height > max_pixels:
        raise MediaDimensionsTooLarge(
            f"{width}x{height} exceeds the limit of {max_pixels} pixels and {max_side} px per side"
        )


def _to_bgr(image: Image.Image) -> np.ndarray:
    # An RGB picture is not converted (a copy), and OpenCV swaps the channels several times faster than
    # numpy's reversed, made-contiguous view: the same pixels, about a millisecond less at 640x480.
    rgb = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def _decode_image(data: bytes, fmt: str, limits: Limits) -> DecodedImage:
    with Image.open(io.BytesIO(data)) as image:  # reads the header only
        _check_dimensions(*image.size, limits.max_image_pixels, limits.max_image_side)
        image.load()
        upright = ImageOps.exif_transpose(image)  # phone photos store rotation in EXIF
        pixels = _to_bgr(upright)
    h, w = pixels.shape[:2]
    return DecodedImage(MediaInfo("image", fmt, w, h), pixels)


GIF_TRAILER = b";"
# Encoders write 255-byte sub-blocks: a 50 MB GIF has about 205,000. Walking is Python, so a file of
# 1-byte sub-blocks (25 million) must stop early rather than cost seconds before any admission.
MAX_GIF_SUB_BLOCKS = 1_000_000
GIF_DEFAULT_DELAY_MS = 100  # what browsers show a frame with no delay, or a delay of 0, for


def _decode_still_gif(data: bytes) -> DecodedImage:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return DecodedImage(MediaInfo("image", "gif", *image.size), _to_bgr(image))


def _open_gif(data: bytes, limits: Limits, sample_fps: float | None) -> DecodedVideo | None:
    """An animated GIF opened as a clip, or None for a single frame (a picture) within the image limits."""
    # A GIF cut at a frame boundary decodes cleanly with frames missing; only the trailer tells.
    if not data.endswith(GIF_TRAILER):
        raise MediaCorrupt("the GIF is truncated: it does not end with the GIF trailer")
    width, height, delays_ms = gif_timeline(data)
    if len(delays_ms) == 1:
        _check_dimensions(width, height, limits.max_image_pixels, limits.max_image_side)
        return None
    _check_dimensions(width, height, limits.max_video_pixels, limits.max_image_side)
    starts_ms = np.concatenate([[0.0], np.cumsum(delays_ms[:-1], dtype=float)]).tolist()
    t_ms = starts_ms[-1] + delays_ms[-1]
    _check_clip_length(len(delays_ms), t_ms / 1000, limits)
    # Every frame is composed onto the full canvas, so this, not the file's size, is what decoding costs.
    if width * height * len(delays_ms) > limits.max_gif_pixels:
        raise MediaDimensionsTooLarge(
            f"{len(delays_ms)} frames of {width}x{height} exceed the limit of {limits.max_gif_pixels} "
            "decoded pixels per GIF"
        )
    fps = 1000 * len(delays_ms) / t_ms
    info = MediaInfo("video", "gif", width, height, t_ms, fps, len(delays_ms))
    rate = sample_rate(fps, sample_fps)
    # Every frame's time is known from the walk, so which frames are analysed is known before decoding.
    sampler: FrameSampler[int] = frame_sampler(fps, sample_fps)
    picked = {i for index, t_ms in enumerate(starts_ms) for i in sampler.push(t_ms, index)}
    picked.update(sampler.finish())
    image = Image.open(io.BytesIO(data))

    def frames() -> Generator[VideoFrame, None, None]:
        with _refusals("gif"):
            try:
                for index, frame in enumerate(ImageSequence.Iterator(image)):
                    if index >= len(starts_ms):  # the walk counted every frame; this is not one
                        raise MediaCorrupt("the GIF has more frames than its blocks declare")
                    if index in picked:
                        yield VideoFrame(index, starts_ms[index], _to_bgr(frame))
            finally:
                image.close()

    return DecodedVideo(info, rate, frames(), image.close)


def gif_timeline(data: bytes) -> tuple[int, int, list[float]]:
    """The canvas size and each frame's delay (ms), read from the GIF's block structure.

    Walks the blocks without decompressing any picture: a GIF's header states no frame count or
    duration, and decoding frames to count them is what a GIF bomb makes expensive.
    """
    try:
        width, height, flags = struct.unpack_from("<HHB", data, 6)
        pos = 13 + _colour_table_size(flags)
        delays, delay, budget = [], None, [MAX_GIF_SUB_BLOCKS]
        while True:
            block = data[pos]
            if block == 0x3B:  # trailer
                break
            if block == 0x21:  # extension: label, then data sub-blocks
                if data[pos + 1] == 0xF9 and data[pos + 2] >= 4:  # graphic control: the next frame's delay
                    delay = struct.unpack_from("<H", data, pos + 4)[0] * 10
                pos = _skip_sub_blocks(data, pos + 2, budget)
            elif block == 0x2C:  # image descriptor, local colour table, LZW code size, data sub-blocks
                delays.append(float(delay or GIF_DEFAULT_DELAY_MS))
                delay = None
                pos = _skip_sub_blocks(data, pos + 10 + _colour_table_size(data[pos + 9]) + 1, budget)
            else:
                raise MediaCorrupt(f"the GIF has an unknown block 0x{block:02x} at byte {pos}")
    except (IndexError, struct.error) as exc:
        raise MediaCorrupt("the GIF is truncated inside a block") from exc
    if not delays:
        raise MediaCorrupt("the GIF has no frame")
    return width, height, delays


def _colour_table_size(flags: int) -> int:
    return 3 * 2 ** ((flags & 0x07) + 1) if flags & 0x80 else 0


def _skip_sub_blocks(data: bytes, pos: int, budget: list[int]) -> int:
    while data[pos]:
        pos += data[pos] + 1
        budget[0] -= 1
        if budget[0] < 0:
            raise MediaCorrupt(f"the GIF has more than {MAX_GIF_SUB_BLOCKS} data sub-blocks")
    return pos + 1


def _check_clip_length(frame_count: int, seconds: float, limits: Limits) -> None:
    if frame_count > limits.max_video_frames or seconds > limits.max_video_seconds:
        raise ClipTooLong(
            f"clips may have at most {limits.max_video_frames} frames and last at most {limits.max_video_seconds:g} s"
        )


DEFAULT_MAX_SAMPLE_FPS = 30.0
# The most frames per second a request may ask for, and what micro-expression spotting samples
# by default: the fastest events last about 40 ms, which only a high-fps clip resolves.
MAX_SAMPLE_FPS = 240.0


def sampling_target(requested_fps: float | None, micro_expressions: bool = False) -> float:
    """Frames per second to analyse at most, the one sampling policy: as asked; else every frame when
    spotting micro-expressions (a 120 fps clip keeps its 8 ms resolution); else every frame up to 30 fps."""
    if requested_fps:
        return requested_fps
    return MAX_SAMPLE_FPS if micro_expressions else DEFAULT_MAX_SAMPLE_FPS


def sample_rate(native_fps: float, target_fps: float | None) -> float:
    """The target (`sampling_target`; None: its default), never more often than the clip has frames."""
    return min(native_fps, target_fps or sampling_target(None))


def frame_sampler(native_fps: float, target_fps: float | None) -> FrameSampler[T]:
    """Every decoded frame when the clip averages no more frames per second than the target
    (`sample_rate`), else the frames nearest to the target's times. A variable-frame-rate clip
    averaging under the target is analysed whole, its fast stretches included."""
    rate = sample_rate(native_fps, target_fps)
    return FrameSampler(None if rate >= native_fps else rate)


class FrameSampler(Generic[T]):
    """Picks frames by their presentation times, fed in time order as they decode.

    With a rate, for each target time (the first frame's time plus a multiple of the period, up to
    the last frame's) the frame nearest to it, each frame once, a tie going to the earlier one: the
    times a frame really shows, never an assumed constant rate. Without one, every frame. A frame is
    known to be nearest only once the next one is seen, so one frame waits in `_held`.
    """

    def __init__(self, fps: float | None) -> None:
        self.period_ms = None if fps is None else 1000.0 / fps
        self._first_ms = 0.0
        self._next_target = 0  # index of the first target time no frame has been picked for
        self._held: tuple[float, T] | None = None
        self._held_picked = False

    def push(self, t_ms: float, frame: T) -> list[T]:
        """The frames (at most two, in time order) now known to be picked, `frame` among them only without a rate."""
        if self.period_ms is None:
            return [frame]
        if self._held is None:
            self._first_ms = t_ms
        picked = self._held is None  # the first frame is at the first target time
        while self._target_ms(self._next_target) <= t_ms:
            target = self._target_ms(self._next_target)
            if self._held is not None and target - self._held[0] <= t_ms - target:
                self._held_picked = True
            else:
                picked = True
            self._next_target += 1
        done = [self._held[1]] if self._held is not None and self._held_picked else []
        self._held, self._held_picked = (t_ms, frame), picked
        return done

    def finish(self) -> list[T]:
        """The last frame, when it was picked."""
        held, self._held = self._held, None
        return [held[1]] if held is not None and self._held_picked else []

    def _target_ms(self, k: int) -> float:
        assert self.period_ms is not None
        # Multiplied, not summed, so a long clip's target times do not drift by float error.
        return self._first_ms + k * self.period_ms


# 8-bit planar YUV: the first plane is the luma at full resolution.
PLANAR_YUV8 = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p"}
# Limited-range luma (16-235, most video) stretched to 0-255, as a YUV->RGB->grey conversion gives.
LIMITED_TO_FULL = np.clip(np.round((np.arange(256) - 16) * 255.0 / 219.0), 0, 255).astype(np.uint8)


def luma(frame: av.VideoFrame) -> np.ndarray:
    """A video frame's grey picture.

    Every model on the clip path reads grey (detector, landmarks, emotions, spotter), so clips skip
    the YUV->BGR conversion, which cost 5-7 ms per 640x360 frame, about a fifth of the clip path
    (bench/clip_fps.py). The Y plane is read in place; other pixel formats go through swscale.
    """
    if frame.format.name not in PLANAR_YUV8:
        return frame.to_ndarray(format="gray")
    plane = frame.planes[0]
    rows = np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)[: frame.height, : frame.width]
    full_range = frame.format.name.startswith("yuvj") or frame.color_range == 2  # AVCOL_RANGE_JPEG
    # cv2.LUT gives numpy's table lookup (LIMITED_TO_FULL[rows]) in a fifth of its time: ~0.1 ms at 640x480.
    return rows.copy() if full_range else cv2.LUT(rows, LIMITED_TO_FULL)


def _open_video(data: bytes, fmt: str, limits: Limits, sample_fps: float | None) -> DecodedVideo:
    seconds, packets = _demuxed_timeline(data, fmt, limits)
    container = av.open(io.BytesIO(data), mode="r")
    stream = container.streams.video[0]
    fps = float(stream.average_rate or stream.guessed_rate or 0) or 30.0
    width, height = stream.codec_context.width, stream.codec_context.height
    info = MediaInfo("video", fmt, width, height, seconds * 1000, fps, packets)
    rate = sample_rate(fps, sample_fps)
    # Picked by presentation time (frame.time), so a variable-frame-rate clip is sampled where its frames are.
    sampler: FrameSampler[tuple[int, float, av.VideoFrame]] = frame_sampler(fps, sample_fps)

    def frames() -> Generator[VideoFrame, None, None]:
        span = Span()
        try:
            for index, frame in enumerate(container.decode(stream)):
                t_ms = 1000.0 * float(frame.time) if frame.time is not None else index * 1000.0 / fps
                _check_clip_length(index + 1, t_ms / 1000, limits)
                span.add(t_ms)
                for picked_index, picked_ms, picked in sampler.push(t_ms, (index, t_ms, frame)):
                    yield VideoFrame(picked_index, picked_ms, luma(picked))
            for picked_index, picked_ms, picked in sampler.finish():
                yield VideoFrame(picked_index, picked_ms, luma(picked))
        except MediaError:
            raise
        except Exception as exc:
            raise MediaCorrupt(f"the {fmt} clip could not be decoded: {type(exc).__name__}") from exc
        finally:
            container.close()
        if not span.count:
            raise MediaCorrupt(f"the {fmt} clip has no decodable frame")
        # What is billed: the frames that decoded, not what the header or the packets claimed.
        video.info = dataclasses.replace(video.info, duration_ms=span.duration_ms, frame_count=span.count)

    # `frames` reads `video` only once iterated, by which time it is bound.
    video = DecodedVideo(info, rate, frames(), container.close)
    return video


def _demuxed_timeline(data: bytes, fmt: str, limits: Limits) -> tuple[float, int]:
    """The clip's length (s) and frame count from its video packets, read without decoding any.

    Headers can lie or be silent: a browser's MediaRecorder writes WebM with no Duration at all,
    so length is never taken from them; reading packets costs a small fraction of decoding them.
    """
    with av.open(io.BytesIO(data), mode="r") as container:
        if not container.streams.video:
            raise MediaCorrupt("the clip has no video stream")
        stream = container.streams.video[0]
        _check_dimensions(
            stream.codec_context.width, stream.codec_context.height, limits.max_video_pixels, limits.max_image_side
        )
        if stream.time_base is None:
            raise MediaCorrupt(f"the {fmt} clip's video stream has no time base")
        time_base = stream.time_base
        span = Span()
        for packet in container.demux(stream):
            t = packet.pts if packet.pts is not None else packet.dts
            if t is not None and packet.size:
                span.add(1000.0 * float(t * time_base))
                _check_clip_length(span.count, span.duration_ms / 1000, limits)
    if not span.count:
        raise MediaCorrupt(f"the {fmt} clip has no frames")
    return span.duration_ms / 1000, span.count


class Span:
    """A clip's length from its frames' timestamps: first to last, plus the mean frame period for the last one."""

    def __init__(self) -> None:
        self.count, self.first_ms, self.last_ms = 0, float("inf"), float("-inf")

    def add(self, t_ms: float) -> None:
        self.count += 1
        self.first_ms, self.last_ms = min(self.first_ms, t_ms), max(self.last_ms, t_ms)

    @property
    def duration_ms(self) -> float:
        if self.count < 2:
            return 0.0
        # Rounded so a 10 s clip of 300 frames is 10000.0 ms, not one float step more (another unit).
        return round((self.last_ms - self.first_ms) * self.count / (self.count - 1), 1)
