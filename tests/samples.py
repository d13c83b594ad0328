"""Builders for test inputs: real photos re-encoded, and hostile files made on purpose."""
from __future__ import annotations

import io
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


def animated_gif(path: Path, frames: int = 6, duration_ms: int = 100, side: int = 320) -> bytes:
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
