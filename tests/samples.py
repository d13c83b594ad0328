"""Builders for test inputs: real photos re-encoded, and hostile files made on purpose."""

from __future__ import annotations

import io
import itertools
import re
import struct
import zlib
from fractions import Fraction
from pathlib import Path

from PIL import Image


def reencode(path: Path, fmt: str, max_side: int | None = None, **save_args) -> bytes:
    image = Image.open(path).convert("RGB")
    if max_side:
        image.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save_args)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header claims a huge picture (a decompression bomb's first line)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 1024, 9)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", pixels) + _png_chunk(b"IEND", b"")


def animated_gif(path: Path, frames: int = 6, duration_ms: int | list[int] = 100, side: int = 320) -> bytes:
    """A GIF clip panning slowly across a real photo."""
    image = Image.open(path).convert("RGB")
    image.thumbnail((side + 8 * frames, side + 8 * frames))
    shots = [image.crop((4 * i, 0, 4 * i + side, min(side, image.height))) for i in range(frames)]
    buffer = io.BytesIO()
    shots[0].save(buffer, "GIF", save_all=True, append_images=shots[1:], duration=duration_ms, loop=0)
    return buffer.getvalue()


def with_exif_rotation(path: Path) -> bytes:
    """A real photo stored sideways with EXIF orientation 6 ("rotate 90° clockwise to view")."""
    image = Image.open(path).convert("RGB").rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes())
    return buffer.getvalue()


def faststart_mp4(path: Path, tmp_dir: Path) -> bytes:
    """The clip's video remuxed with its index first, so a truncation cuts frames, not the index."""
    import av

    out_path = tmp_dir / "faststart.mp4"
    with av.open(str(path)) as source, av.open(str(out_path), "w", options={"movflags": "faststart"}) as out:
        stream_in = source.streams.video[0]
        stream_out = out.add_stream_from_template(stream_in)
        for packet in source.demux(stream_in):
            if packet.dts is not None:
                packet.stream = stream_out
                out.mux(packet)
    return out_path.read_bytes()


def repeated_clip(path: Path, times: int, tmp_dir: Path) -> bytes:
    """A real clip played `times` times in a row: packets remuxed with shifted timestamps, not re-encoded."""
    import av

    out_path = tmp_dir / f"repeated{times}.mp4"
    with av.open(str(out_path), "w") as out:
        offset, stream_out = 0, None
        for _ in range(times):
            with av.open(str(path)) as source:
                stream_in = source.streams.video[0]
                stream_out = stream_out or out.add_stream_from_template(stream_in)
                last = 0
                for packet in source.demux(stream_in):
                    if packet.dts is None:
                        continue
                    last = max(last, packet.pts + packet.duration)
                    packet.pts += offset
                    packet.dts += offset
                    packet.stream = stream_out
                    out.mux(packet)
                offset += last
    return out_path.read_bytes()


def short_clip(path: Path, frames: int, fps: int = 10) -> bytes:
    """The first `frames` frames of a real clip, re-encoded as H.264 MP4 at `fps`."""
    import av

    buffer = io.BytesIO()
    with av.open(str(path)) as source, av.open(buffer, "w", format="mp4") as out:
        stream = None
        for i, frame in enumerate(source.decode(video=0)):
            if i == frames:
                break
            if stream is None:
                stream = out.add_stream("libx264", rate=fps)
                stream.time_base = Fraction(1, fps)
                stream.width, stream.height, stream.pix_fmt = frame.width, frame.height, "yuv420p"
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()


def variable_rate_clip(
    path: Path, steps: list[int], time_base: Fraction = Fraction(1, 90000), side: int = 160
) -> bytes:
    """The first len(steps) + 1 frames of a real clip, shrunk to `side` px wide and re-encoded as H.264
    MP4 at a variable frame rate: frame i + 1 shows `steps[i]` ticks of `time_base` after frame i."""
    import av

    pts = [0, *itertools.accumulate(steps)]
    buffer = io.BytesIO()
    with av.open(str(path)) as source, av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("libx264", options={"bf": "0"})  # no B-frames: packets in presentation order
        stream.time_base = stream.codec_context.time_base = time_base
        stream.pix_fmt = "yuv420p"
        for i, (frame, t) in enumerate(zip(source.decode(video=0), pts)):
            if i == 0:
                stream.width, stream.height = side, side * frame.height // frame.width // 2 * 2
            frame = frame.reformat(width=stream.width, height=stream.height, format="yuv420p")
            frame.pts, frame.time_base = t, time_base
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()


def recorder_webm(seconds: float, fps: int = 5, side: int = 64, face: Path | None = None) -> bytes:
    """A VP8 WebM as a browser's MediaRecorder writes it: live, so no Duration element and no cues.
    Its frames are flat grey levels, or the photo `face` (a viewer at a webcam)."""
    import av
    import cv2
    import numpy as np

    still = None if face is None else cv2.cvtColor(cv2.resize(cv2.imread(str(face)), (side, side)), cv2.COLOR_BGR2RGB)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="webm", options={"live": "1"}) as out:
        stream = out.add_stream("libvpx", rate=fps)
        stream.width = stream.height = side
        stream.pix_fmt = "yuv420p"
        for i in range(round(seconds * fps)):
            pixels = np.full((side, side, 3), i % 256, np.uint8) if still is None else still
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()


MATROSKA_CLUSTER = b"\x1f\x43\xb6\x75"


def webm_with_random_clusters(seconds: float = 2.0, seed: int = 0) -> bytes:
    """A WebM whose headers are intact and whose clusters (every frame) are random bytes."""
    import random

    data = recorder_webm(seconds)
    first_cluster = data.index(MATROSKA_CLUSTER)
    noise = random.Random(seed).randbytes(len(data) - first_cluster - 4)
    return data[:first_cluster] + MATROSKA_CLUSTER + noise


def webm_with_random_blocks(frames: int = 10, seed: int = 0) -> bytes:
    """A well-formed WebM whose every frame (SimpleBlock) holds random bytes instead of VP8."""
    import random

    import av

    noise, buffer = random.Random(seed), io.BytesIO()
    with av.open(buffer, "w", format="webm", options={"live": "1"}) as out:
        stream = out.add_stream("libvpx", rate=5)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        out.start_encoding()
        for i in range(frames):
            packet = av.Packet(noise.randbytes(200))
            packet.stream, packet.pts, packet.dts, packet.time_base = stream, i * 200, i * 200, Fraction(1, 1000)
            out.mux(packet)
    return buffer.getvalue()


def empty_fragmented_mp4(width: int = 640, height: int = 360) -> bytes:
    """A fragmented MP4 with an H.264 track and no frame at all (an empty moov, no fragments)."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4", options={"movflags": "frag_keyframe+empty_moov"}) as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        out.start_encoding()  # the header, and nothing after it
    return buffer.getvalue()


def gif_bomb(width: int = 4096, height: int = 2160, frames: int = 900) -> bytes:
    """A tiny GIF: a huge canvas and many one-pixel frames, each decoded onto the whole canvas."""
    header = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    frame = (
        b"\x21\xf9\x04\x00"
        + struct.pack("<H", 2)
        + b"\x00\x00"  # graphic control: 20 ms
        + b"\x2c"
        + struct.pack("<HHHHB", 0, 0, 1, 1, 0)
        + b"\x02\x02\x44\x01\x00"
    )  # 1x1 LZW data
    return header + frame * frames + b";"


def gif_of_tiny_sub_blocks(sub_blocks: int) -> bytes:
    """A one-frame 16x16 GIF whose picture data is cut into `sub_blocks` one-byte sub-blocks (encoders use 255)."""
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 16, 16, 0) + b"\x02" + b"\x01\x00" * sub_blocks + b"\x00"
    return gif_bomb(16, 16, 0)[:-1] + frame + b";"


def pdf_text(data: bytes) -> str:
    """The text a PDF shows, from its (Flate-compressed) content streams' `(...) Tj` operators."""
    assert data.startswith(b"%PDF-")
    shown = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            content = zlib.decompress(stream)
        except zlib.error:
            continue
        shown += [
            re.sub(rb"\\(.)", rb"\1", text).decode("latin-1")
            for text in re.findall(rb"\(((?:\\.|[^\\)])*)\)\s*Tj", content)
        ]
    return "\n".join(shown)
