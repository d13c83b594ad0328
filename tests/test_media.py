"""Decoding and limits, checked before any pixel is decoded."""

from __future__ import annotations

import time

import av
import pytest

from api.domain.metering import units_for
from api.engine import media
from api.wiring.config import Limits
from tests.conftest import FACES, VIDEOS
from tests.samples import (
    animated_gif,
    empty_fragmented_mp4,
    gif_bomb,
    gif_of_tiny_sub_blocks,
    png_bomb,
    recorder_webm,
    reencode,
    variable_rate_clip,
    webm_with_random_blocks,
    webm_with_random_clusters,
    with_exif_rotation,
)

pytestmark = pytest.mark.data

PHOTO = FACES / "img1.jpg"
av_open = av.open


@pytest.mark.parametrize("fmt, name", [("JPEG", "jpeg"), ("PNG", "png"), ("WEBP", "webp"), ("BMP", "bmp")])
def test_images_decode_in_every_supported_format(fmt, name):
    decoded = media.decode(reencode(PHOTO, fmt, max_side=400), Limits(), None)
    assert isinstance(decoded, media.DecodedImage)
    assert decoded.info.format == name
    assert decoded.pixels.shape == (decoded.info.height, decoded.info.width, 3)


def test_format_comes_from_magic_bytes_not_names():
    with pytest.raises(media.UnsupportedMedia):
        media.decode(b"%PDF-1.7 not a picture" * 10, Limits(), None)


def test_pixel_limit_refuses_a_bomb_from_its_header():
    with pytest.raises(media.MediaDimensionsTooLarge):
        media.decode(png_bomb(), Limits(), None)


def test_byte_limit():
    data = reencode(PHOTO, "JPEG")
    with pytest.raises(media.MediaTooLarge):
        media.decode(data, Limits(max_upload_bytes=len(data) - 1), None)


def test_truncated_jpeg_is_corrupt():
    data = PHOTO.read_bytes()
    with pytest.raises(media.MediaCorrupt):
        media.decode(data[: len(data) // 2], Limits(), None)


def test_exif_orientation_is_applied():
    decoded = media.decode(with_exif_rotation(PHOTO), Limits(), None)
    original = media.decode(PHOTO.read_bytes(), Limits(), None)
    assert (decoded.info.width, decoded.info.height) == (original.info.width, original.info.height)


def test_animated_gif_is_a_clip():
    decoded = media.decode(animated_gif(PHOTO, frames=6, duration_ms=100), Limits(), None)
    assert isinstance(decoded, media.DecodedVideo)
    frames = list(decoded.frames)
    assert [f.timestamp_ms for f in frames] == [0, 100, 200, 300, 400, 500]
    assert decoded.info.duration_ms == 600


def test_mp4_every_frame_by_default_and_sampled_on_request():
    data = (VIDEOS / "single_face.mp4").read_bytes()
    every = media.decode(data, Limits(), None)
    assert (every.info.width, every.info.height, every.info.frame_count) == (640, 360, 72)
    assert len(list(every.frames)) == 72
    sampled = media.decode(data, Limits(), 10)
    assert sampled.sample_fps == 10
    assert len(list(sampled.frames)) == 24


# A variable-frame-rate clip of real frames (ticks of 1/90000 s): 30 fps, a 60 fps burst, a frame held
# for half a second, then 12 fps. 25 frames in 1.48 s: 16.4 fps on average, so under the default target.
VFR_STEPS = [3000] * 8 + [1500] * 8 + [45000] + [7500] * 7
VFR_TIMES_MS = [sum(VFR_STEPS[:i]) / 90 for i in range(len(VFR_STEPS) + 1)]


def nearest_frames(times_ms: list[float], fps: float) -> list[int]:
    """By brute force: for each target time up to the last frame, the nearest frame (the earlier on a tie), once."""
    picked: list[int] = []
    k = 0
    while (target := times_ms[0] + k * 1000 / fps) <= times_ms[-1]:
        nearest = min(range(len(times_ms)), key=lambda i: (abs(times_ms[i] - target), i))
        if nearest not in picked:
            picked.append(nearest)
        k += 1
    return picked


def test_a_variable_frame_rate_clip_is_sampled_by_its_timestamps():
    data = variable_rate_clip(VIDEOS / "single_face.mp4", VFR_STEPS)
    every = media.decode(data, Limits(), None)
    assert every.info.fps < media.DEFAULT_MAX_SAMPLE_FPS  # its average: the old sampler skipped frames at this rate
    frames = every_frame = list(every.frames)
    # "Every frame" is every decoded frame, the 60 fps burst included, each at its presentation time.
    assert [f.index for f in frames] == list(range(25))
    assert [f.timestamp_ms for f in frames] == pytest.approx(VFR_TIMES_MS)
    assert every.info.frame_count == 25

    sampled = media.decode(data, Limits(), 10)
    frames = list(sampled.frames)
    expected = nearest_frames(VFR_TIMES_MS, 10)
    assert [f.index for f in frames] == expected
    # 0, 100, 200, 300, 400 ms; the held frame at 400 ms stands for 500 and 600, 900 ms for 700-900; then 12 fps.
    assert [f.timestamp_ms for f in frames] == pytest.approx(
        [0, 100, 200, 300, 400, 900, 983.33, 1066.67, 1233.33, 1316.67, 1400], abs=0.01
    )
    assert sampled.sample_fps == 10
    # A frame is picked once the next one has decoded: it keeps its own picture, not the next one's.
    assert all((f.pixels == every_frame[f.index].pixels).all() for f in frames)


def test_a_variable_rate_gif_is_sampled_by_its_delays():
    gif = animated_gif(PHOTO, frames=6, duration_ms=[30, 30, 30, 300, 30, 30])
    times = [0, 30, 60, 90, 390, 420]
    every = media.decode(gif, Limits(), None)
    assert [f.timestamp_ms for f in every.frames] == times
    sampled = media.decode(gif, Limits(), 10)
    assert [f.index for f in sampled.frames] == nearest_frames(times, 10) == [0, 3, 4]


def test_a_clip_closed_before_any_frame_releases_its_decoder(monkeypatch):
    opened = []
    monkeypatch.setattr(media.av, "open", lambda *a, **k: opened.append(av_open(*a, **k)) or opened[-1])
    clip = media.decode((VIDEOS / "single_face.mp4").read_bytes(), Limits(), None)
    assert opened[-1].streams.video  # open: headers read, no frame decoded (opened[0] read the packets)
    clip.close()  # what a clip that becomes a job does
    assert not opened[-1].streams.video and list(clip.frames) == []


def test_clip_limits_checked_from_the_header():
    data = (VIDEOS / "single_face.mp4").read_bytes()
    with pytest.raises(media.ClipTooLong):
        media.decode(data, Limits(max_video_frames=10), None)
    with pytest.raises(media.ClipTooLong):
        media.decode(data, Limits(max_video_seconds=1.0), None)


def test_truncated_clip_is_corrupt():
    data = (VIDEOS / "single_face.mp4").read_bytes()
    with pytest.raises(media.MediaCorrupt):
        decoded = media.decode(data[: len(data) // 3], Limits(), None)
        list(decoded.frames)


def test_hevc_mov_decodes():
    decoded = media.decode((VIDEOS / "face_noface.mov").read_bytes(), Limits(), 5)
    assert decoded.info.format == "mov"
    assert len(list(decoded.frames)) > 10


def test_gif_cut_at_a_frame_boundary_is_corrupt():
    data = animated_gif(PHOTO, frames=4)
    last_frame = data.rfind(b"\x00\x21\xf9")  # block terminator, then the last frame's control extension
    with pytest.raises(media.MediaCorrupt, match="truncated"):
        media.decode(data[: last_frame + 1], Limits(), None)


@pytest.mark.parametrize("name", ["single_face.mp4", "face_noface.mov"])
def test_clip_frames_are_the_grey_picture_of_their_colours(name):
    import av
    import cv2
    import numpy as np

    with av.open(str(VIDEOS / name)) as container:
        frame = next(container.decode(video=0))
        expected = cv2.cvtColor(frame.to_ndarray(format="bgr24"), cv2.COLOR_BGR2GRAY).astype(int)
        grey = media.luma(frame)
    assert grey.shape == (frame.height, frame.width) and grey.dtype == np.uint8
    # The Y plane stretched to full range, against YUV->BGR->grey: rounding apart, the same picture.
    difference = np.abs(grey.astype(int) - expected)
    assert difference.mean() < 2.0 and np.percentile(difference, 99) <= 4


def test_a_gif_bomb_is_refused_from_its_blocks_before_any_frame_is_decoded(monkeypatch):
    monkeypatch.setattr(media.ImageSequence, "Iterator", lambda *_: pytest.fail("a frame was decoded"))
    started = time.process_time()
    with pytest.raises(media.MediaDimensionsTooLarge, match="decoded pixels"):
        media.decode(gif_bomb(4096, 2160, 900), Limits(), None)
    assert time.process_time() - started < 1.0


def test_gif_timeline_reads_frames_and_delays_without_decoding():
    assert media.gif_timeline(gif_bomb(64, 48, 3)) == (64, 48, [20.0, 20.0, 20.0])
    with pytest.raises(media.MediaCorrupt, match="truncated"):
        media.gif_timeline(gif_bomb(64, 48, 3)[:-9])


def test_a_gif_of_millions_of_tiny_sub_blocks_is_refused_within_its_walk():
    started = time.process_time()
    with pytest.raises(media.MediaCorrupt, match="sub-blocks"):
        media.gif_timeline(gif_of_tiny_sub_blocks(2_000_000))
    assert time.process_time() - started < 1.0


def test_a_webm_without_duration_is_as_long_as_its_frames():
    data = recorder_webm(58)
    clip = media.decode(data, Limits(), None)
    assert clip.info.duration_ms == 58_000  # from the packets, before decoding
    assert len(list(clip.frames)) == 290
    assert clip.info.duration_ms == 58_000 and clip.info.frame_count == 290  # as decoded
    assert units_for(clip.info) == 6


@pytest.mark.parametrize(
    "data",
    [empty_fragmented_mp4(), webm_with_random_clusters(), webm_with_random_blocks()],
    ids=["fragmented-mp4-no-frames", "webm-random-clusters", "webm-random-blocks"],
)
def test_a_clip_without_a_decodable_frame_is_corrupt(data):
    with pytest.raises(media.MediaCorrupt):
        list(media.decode(data, Limits(), None).frames)
