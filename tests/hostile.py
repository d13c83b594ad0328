"""A hostile corpus for the request path: every case is built in memory, from real files in
../shared/data or synthesised with Pillow and PyAV, when a test first asks for its body.

Families: bombs, truncations, polyglots and wrong magic, random bytes behind real magic, clips with
no Duration (as MediaRecorder writes them), nested JSON, NUL and lone surrogates, duplicate parts.
Each case says what a right answer is: an exact problem (status, code, the field named), any 4xx
problem document, or, where the bytes still hold a picture or a clip, a correct 200 (or 202 for a job).
"""

from __future__ import annotations

import base64
import io
import json
import random
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tests.conftest import FACES, VIDEOS
from tests.samples import (
    animated_gif,
    empty_fragmented_mp4,
    faststart_mp4,
    gif_bomb,
    gif_of_tiny_sub_blocks,
    png_bomb,
    recorder_webm,
    reencode,
    short_clip,
    webm_with_random_blocks,
    webm_with_random_clusters,
)

ANALYZE = "/v1/analyze"
SESSIONS = "/v1/studies/{study}/sessions"
MAGIC = {
    "jpeg": b"\xff\xd8\xff\xe0",
    "png": b"\x89PNG\r\n\x1a\n",
    "webp": b"RIFF\x00\x00\x00\x00WEBP",
    "bmp": b"BM",
    "gif": b"GIF89a",
    "mp4": b"\x00\x00\x00\x18ftypmp42",
    "mov": b"\x00\x00\x00\x14ftypqt  ",
    "webm": b"\x1a\x45\xdf\xa3",
}
NESTED = "[" * 100_000 + "]" * 100_000
NUL, SURROGATE = "a\x00b", "a\ud800b"


@dataclass(frozen=True)
class Case:
    """`status` None: any 4xx problem document is right, and so is a correct 200 or 202 when `may_succeed`."""

    name: str
    request: Callable[[], dict]  # keyword arguments for the test client's `open`
    status: int | None = None
    code: str | None = None
    field: str | None = None  # a field the problem's `errors` must name
    path: str = ANALYZE
    auth: str | None = "owner"  # "owner", "participant" (the study's token) or None
    may_succeed: bool = False
    check: Callable[[dict], None] | None = None  # more about a right 200


# --- Real files, built once ---


@cache
def originals() -> dict[str, bytes]:
    photo = FACES / "img1.jpg"
    with tempfile.TemporaryDirectory() as tmp:
        faststart = faststart_mp4(VIDEOS / "single_face.mp4", Path(tmp))
    return {
        "jpeg": reencode(photo, "JPEG", max_side=160),
        "png": reencode(photo, "PNG", max_side=120),
        "webp": reencode(photo, "WEBP", max_side=120),
        "bmp": reencode(photo, "BMP", max_side=96),
        "gif": animated_gif(photo, frames=4, side=96),
        "mp4": short_clip(VIDEOS / "single_face.mp4", frames=6),
        "faststart": faststart,
        "mov": (VIDEOS / "face_noface.mov").read_bytes(),
        "webm": recorder_webm(2),
    }


def upload(data: Callable[[], bytes], name: str = "upload", **fields) -> Callable[[], dict]:
    return lambda: {"data": {"file": (io.BytesIO(data()), name), "detector": "skip", **fields}}


def json_body(text: Callable[[], str]) -> Callable[[], dict]:
    return lambda: {"data": text(), "content_type": "application/json"}


def jpeg_header(width: int, height: int) -> bytes:
    """A real JPEG whose frame header is patched to claim width x height."""
    data = bytearray(originals()["jpeg"])
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def bmp_header(width: int, height: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + 64, 0, 0, 54) + info + b"\x00" * 64


@cache
def big_h264() -> bytes:
    """One grey frame of H.264 just past the clip pixel limit (4096x2160)."""
    import av
    import numpy as np

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=1, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 4112, 2176, "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.full((2176, 4112), 128, np.uint8), format="gray").reformat(
            format="yuv420p"
        )
        for packet in [*stream.encode(frame), *stream.encode()]:
            out.mux(packet)
    return buffer.getvalue()


def expect_duration(seconds: float) -> Callable[[dict], None]:
    def check(body: dict) -> None:
        assert body["media"]["duration_ms"] == seconds * 1000, body["media"]

    return check


def expect_media(kind: str) -> Callable[[dict], None]:
    def check(body: dict) -> None:
        assert body["media"]["type"] == kind and body["media"]["frames_analyzed"] >= 1, body["media"]

    return check


# --- Families ---


def bombs() -> list[Case]:
    dims = "media_dimensions_too_large"
    cases = [
        Case(f"png-bomb-{w}x{h}", upload(lambda w=w, h=h: png_bomb(w, h)), 413, dims)
        for w, h in [
            (100_000, 100_000),
            (20_000, 20_000),
            (12_001, 1),
            (1, 12_001),
            (7000, 7000),
            (2**31 - 1, 2**31 - 1),
        ]
    ]
    cases += [
        Case(f"jpeg-header-bomb-{w}x{h}", upload(lambda w=w, h=h: jpeg_header(w, h)), 413, dims)
        for w, h in [(65_500, 65_500), (13_000, 100), (8000, 8000)]
    ]
    cases += [
        Case(f"bmp-header-bomb-{w}x{h}", upload(lambda w=w, h=h: bmp_header(w, h)), 413, dims)
        for w, h in [(100_000, 100_000), (30_000, 30_000)]
    ]
    cases += [
        Case(f"gif-bomb-{w}x{h}x{n}", upload(lambda w=w, h=h, n=n: gif_bomb(w, h, n)), 413, dims)
        for w, h, n in [
            (4096, 2160, 900),
            (2000, 2000, 100),
            (4096, 2160, 30),
            (8000, 8000, 2),
            (12_001, 10, 2),
            (1000, 1000, 300),
        ]
    ]
    cases += [
        Case("gif-too-many-frames", upload(lambda: gif_bomb(16, 16, 3601)), 422, "clip_too_long"),
        Case("gif-too-long", upload(lambda: gif_bomb(16, 16, 3001)), 422, "clip_too_long"),  # 60.02 s of 20 ms
        Case("h264-past-the-pixel-limit", upload(big_h264), 413, dims),
        Case(
            "gif-of-two-million-one-byte-sub-blocks",
            upload(lambda: gif_of_tiny_sub_blocks(2_000_000)),
            422,
            "media_corrupt",
        ),
        Case("webm-61-s-no-duration", upload(lambda: recorder_webm(61, fps=1, side=16)), 422, "clip_too_long"),
        Case(
            "webm-3601-frames-no-duration", upload(lambda: recorder_webm(36.01, fps=100, side=16)), 422, "clip_too_long"
        ),
    ]
    return cases


def truncations() -> list[Case]:
    return [
        Case(
            f"truncated-{kind}-{int(f * 100)}pct",
            upload(lambda k=kind, f=f: originals()[k][: int(len(originals()[k]) * f)]),
            may_succeed=True,
        )
        for kind in ["jpeg", "png", "webp", "bmp", "gif", "mp4", "faststart", "mov", "webm"]
        for f in (0.0, 0.02, 0.3, 0.6, 0.9, 0.99)
    ]


def polyglots() -> list[Case]:
    cases = [
        Case(
            "jpeg-with-zip-appended",
            upload(lambda: originals()["jpeg"] + b"PK\x03\x04" + b"\x00" * 200),
            200,
            check=expect_media("image"),
        ),
        Case(
            "png-with-html-after-iend",
            upload(lambda: originals()["png"] + b"<html><script>alert(1)</script>"),
            200,
            check=expect_media("image"),
        ),
        Case(
            "gif-with-script-appended",
            upload(lambda: originals()["gif"] + b"<script>alert(1)</script>"),
            422,
            "media_corrupt",
        ),
        Case(
            "gifar-javascript",
            upload(lambda: b"GIF89a/*\x01\x00\x01\x00\x00\x00\x00*/=alert(1);"),
            422,
            "media_corrupt",
        ),
        Case("jpeg-named-png", upload(lambda: originals()["jpeg"], name="x.png"), 200, check=expect_media("image")),
        Case("mp4-named-jpg", upload(lambda: originals()["mp4"], name="x.jpg"), 200, check=expect_media("video")),
    ]
    for name, text in [
        ("html", b"<!doctype html><script>alert(1)</script>"),
        ("pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"),
        ("zip", b"PK\x03\x04" + b"\x00" * 26),
        ("svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
        ("elf", b"\x7fELF\x02\x01\x01" + b"\x00" * 57),
        ("text", b"hello"),
        ("riff-wav", b"RIFF\x00\x00\x00\x00WAVE"),
        ("ogg", b"OggS\x00\x02" + b"\x00" * 20),
        ("tiff", b"II*\x00\x08\x00\x00\x00"),
    ]:
        cases.append(Case(f"not-media-{name}", upload(lambda t=text: t), 415, "unsupported_media_type"))
    for magic_kind, magic in MAGIC.items():
        for body_kind in ["jpeg", "png", "gif", "mp4", "webm"]:
            if body_kind == magic_kind or (magic_kind, body_kind) in {("mov", "mp4"), ("mp4", "mov")}:
                continue
            cases.append(
                Case(
                    f"magic-{magic_kind}-on-{body_kind}",
                    upload(lambda m=magic, b=body_kind: m + originals()[b][len(m) :]),
                    may_succeed=True,
                )
            )
    return cases


def random_bytes() -> list[Case]:
    return [
        Case(f"random-after-{kind}-magic-{size}", upload(lambda m=magic, s=size: m + random.Random(s).randbytes(s)))
        for kind, magic in MAGIC.items()
        for size in (0, 64, 4096)
    ] + [
        Case("empty-file", upload(lambda: b""), 400, "media_empty", "file"),
        Case("empty-base64", json_body(lambda: json.dumps({"image_base64": ""})), 400, "media_empty", "image_base64"),
        Case(
            "empty-session-file",
            session(file=lambda: (io.BytesIO(b""), "a.webm")),
            400,
            "media_empty",
            "file",
            path=SESSIONS,
            auth="participant",
        ),
        Case("random-no-magic", upload(lambda: random.Random(1).randbytes(4096)), 415, "unsupported_media_type"),
        Case("fragmented-mp4-without-frames", upload(empty_fragmented_mp4), 422, "media_corrupt"),
        Case("webm-with-random-clusters", upload(webm_with_random_clusters), 422, "media_corrupt"),
        Case("webm-with-random-blocks", upload(webm_with_random_blocks), 422, "media_corrupt"),
    ]


def missing_durations() -> list[Case]:
    cases = [
        Case(
            f"webm-no-duration-{s}s-{fps}fps",
            upload(lambda s=s, f=fps: recorder_webm(s, fps=f, side=32)),
            200 if s <= 20 else 202,
            check=expect_duration(s) if s <= 20 else None,
        )
        for s, fps in [(1, 10), (3, 5), (10, 2), (19, 2), (20, 1), (21, 1), (30, 1), (45, 1), (58, 2), (59, 1)]
    ]
    cases.append(Case("webm-no-duration-async", upload(lambda: recorder_webm(2, side=32), **{"async": "true"}), 202))
    return cases


def photo() -> str:
    return base64.b64encode(originals()["jpeg"]).decode()


def nested_json() -> list[Case]:
    cases = [
        Case(
            f"nested-json-analyze-{field}",
            json_body(
                lambda f=field: (
                    '{"image_base64": "%s", "%s": %s}' % (photo(), f, NESTED)
                    if f != "image_base64"
                    else '{"image_base64": %s}' % NESTED
                )
            ),
            400,
            "invalid_request",
        )
        for field in [
            "image_base64",
            "video_base64",
            "micro_expressions",
            "fps",
            "detector",
            "webhook_url",
            "async",
            "max_faces",
        ]
    ]
    cases += [
        Case("nested-json-analyze-whole-body", json_body(lambda: NESTED), 400, "invalid_request"),
        Case(
            "nested-json-analyze-objects",
            json_body(lambda: '{"a":' * 50_000 + "1" + "}" * 50_000),
            400,
            "invalid_request",
        ),
        Case(
            "nested-json-analyze-shallow-micro",
            json_body(lambda: json.dumps({"image_base64": photo(), "micro_expressions": [[[[[[1]]]]]]})),
            400,
            "invalid_request",
            "micro_expressions",
        ),
    ]
    for path, fields in [
        ("/v1/signin", ["email", "password", "key_name"]),
        ("/v1/signup", ["email", "account_name"]),
        ("/v1/keys", ["name", "scopes"]),
    ]:
        cases += [
            Case(
                f"nested-json-{path.rsplit('/', 1)[1]}-{field}",
                json_body(lambda f=field: '{"%s": %s}' % (f, NESTED)),
                400,
                "invalid_request",
                path=path,
            )
            for field in fields
        ]
    cases += [
        Case(
            f"nested-consent-{depth}",
            session(consent="[" * depth + "]" * depth),
            400,
            "invalid_request",
            "consent",
            path=SESSIONS,
            auth="participant",
        )
        for depth in (10, 100_000)
    ]
    return cases


def session(file: Callable[[], object] | None = None, **fields) -> Callable[[], dict]:
    """A participant's session form; `file` makes the file part(s), by default a 2 s recording."""
    form = {"stimulus_started_ms": "0", "consent": json.dumps({"version": "v1", "accepted_at": "2026-12-02T10:00:00Z"})}
    file = file or (lambda: (io.BytesIO(originals()["webm"]), "r.webm"))
    return lambda: {"data": {"file": file(), **form, **fields}}


def bad_text() -> list[Case]:
    cases = []
    for label, bad in [("nul", NUL), ("surrogate", SURROGATE)]:
        valid = {"email": "x@example.com", "password": "long enough password", "account_name": "Acme"}
        for field in valid:
            body = {**valid, field: bad}
            cases.append(
                Case(
                    f"{label}-signup-{field}",
                    json_body(lambda b=body: json.dumps(b)),
                    400,
                    "invalid_request",
                    field,
                    path="/v1/signup",
                    auth=None,
                )
            )
        for field in ["email", "password", "key_name"]:
            body = {"email": "x@example.com", "password": "pw", field: bad}
            cases.append(
                Case(
                    f"{label}-signin-{field}",
                    json_body(lambda b=body: json.dumps(b)),
                    400,
                    "invalid_request",
                    field,
                    path="/v1/signin",
                    auth=None,
                )
            )
        cases += [
            Case(
                f"{label}-keys-name",
                json_body(lambda b=bad: json.dumps({"name": b})),
                400,
                "invalid_request",
                "name",
                path="/v1/keys",
            ),
            Case(
                f"{label}-keys-scopes",
                json_body(lambda b=bad: json.dumps({"scopes": [b]})),
                400,
                "invalid_request",
                "scopes",
                path="/v1/keys",
            ),
            Case(
                f"{label}-study-name",
                json_body(lambda b=bad: json.dumps({"name": b, "stimulus_duration_ms": 2000})),
                400,
                "invalid_request",
                "name",
                path="/v1/studies",
            ),
            Case(
                f"{label}-analyze-json-detector",
                json_body(lambda b=bad: json.dumps({"image_base64": "AAAA", "detector": b})),
                400,
                "invalid_request",
                "detector",
            ),
            Case(
                f"{label}-analyze-json-webhook",
                json_body(
                    lambda b=bad: json.dumps({"image_base64": "AAAA", "webhook_url": f"https://example.com/{b}"})
                ),
                400,
                "invalid_request",
                "webhook_url",
            ),
            Case(
                f"{label}-analyze-json-key",
                json_body(lambda b=bad: json.dumps({"image_base64": "AAAA", b: 1})),
                400,
                "invalid_request",
            ),
            Case(
                f"{label}-session-consent-version",
                session(consent=json.dumps({"version": bad, "accepted_at": "2026-12-02T10:00:00Z"})),
                400,
                "invalid_request",
                "consent",
                path=SESSIONS,
                auth="participant",
            ),
        ]
    cases += [
        Case(
            "nul-analyze-form-detector",
            upload(lambda: originals()["jpeg"], detector="sk\x00ip"),
            400,
            "invalid_request",
            "detector",
        ),
        Case(
            "nul-session-segment",
            session(segment=NUL),
            400,
            "invalid_request",
            "segment",
            path=SESSIONS,
            auth="participant",
        ),
        Case(
            "invalid-utf8-analyze-form-detector",
            upload(lambda: originals()["jpeg"], detector=b"\xed\xa0\x80"),
            400,
            "invalid_request",
            "detector",
        ),
        Case(
            "nul-idempotency-key",
            lambda: {**upload(lambda: originals()["jpeg"])(), "headers": {"Idempotency-Key": "a\x00b"}},
            400,
            "invalid_request",
        ),
        Case(
            "control-idempotency-key",
            lambda: {**upload(lambda: originals()["jpeg"])(), "headers": {"Idempotency-Key": "a\x01b"}},
            400,
            "invalid_request",
        ),
        Case("nul-in-base64", json_body(lambda: json.dumps({"image_base64": "AA\x00A"})), 400, "invalid_request"),
    ]
    return cases


def duplicate_parts() -> list[Case]:
    jpeg = lambda: (io.BytesIO(originals()["jpeg"]), "a.jpg")  # noqa: E731
    cases = [
        Case(
            "two-file-parts",
            lambda: {"data": {"file": [jpeg(), jpeg()], "detector": "skip"}},
            400,
            "invalid_request",
            "file",
        ),
        Case(
            "two-file-parts-different",
            lambda: {"data": {"file": [jpeg(), (io.BytesIO(originals()["mp4"]), "b.mp4")]}},
            400,
            "invalid_request",
            "file",
        ),
        Case("three-file-parts", lambda: {"data": {"file": [jpeg(), jpeg(), jpeg()]}}, 400, "invalid_request", "file"),
        Case(
            "two-session-files",
            session(
                file=lambda: [(io.BytesIO(originals()["webm"]), "a.webm"), (io.BytesIO(originals()["webm"]), "b.webm")]
            ),
            400,
            "invalid_request",
            "file",
            path=SESSIONS,
            auth="participant",
        ),
        Case(
            "two-consents",
            session(consent=[json.dumps({"version": "v1", "accepted_at": "2026-12-02T10:00:00Z"})] * 2),
            400,
            "invalid_request",
            "consent",
            path=SESSIONS,
            auth="participant",
        ),
    ]
    # Past Werkzeug's 500 KB for a field other than a file: the field is named, not "the data value".
    for field in ("webhook_url", "micro_expressions", "detector"):
        cases.append(
            Case(
                f"2mb-{field}-field",
                lambda f=field: {"data": {"file": jpeg(), f: "x" * 2_000_000}},
                413,
                "field_too_large",
                field,
            )
        )
    for field, values in [
        ("detector", ["skip", "dlib"]),
        ("fps", ["1", "2"]),
        ("async", ["false", "true"]),
        ("max_faces", ["1", "1"]),
        ("webhook_url", ["https://a.example", "https://b.example"]),
    ]:
        cases.append(
            Case(
                f"two-{field}-fields",
                lambda f=field, v=values: {"data": {"file": jpeg(), f: v}},
                400,
                "invalid_request",
                field,
            )
        )
    return cases


def other_requests() -> list[Case]:
    return [
        Case(
            "no-file-part",
            lambda: {"data": {"picture": (io.BytesIO(originals()["jpeg"]), "a.jpg")}},
            400,
            "invalid_request",
            "file",
        ),
        Case("form-urlencoded", lambda: {"data": {"detector": "skip"}}, 415, "unsupported_media_type"),
        Case("text-plain-body", lambda: {"data": "hello", "content_type": "text/plain"}, 415, "unsupported_media_type"),
        Case("json-array-body", json_body(lambda: "[1, 2]"), 400, "invalid_request"),
        Case("json-not-json", json_body(lambda: "{not json"), 400, "invalid_request"),
        Case(
            "json-both-media",
            json_body(lambda: json.dumps({"image_base64": "AAAA", "video_base64": "AAAA"})),
            400,
            "invalid_request",
        ),
        Case("json-bad-base64", json_body(lambda: json.dumps({"image_base64": "***"})), 400, "invalid_request"),
        Case(
            "json-base64-photo",
            json_body(lambda: json.dumps({"image_base64": photo(), "detector": "skip"})),
            200,
            check=expect_media("image"),
        ),
        Case(
            "json-data-url-photo",
            json_body(lambda: json.dumps({"image_base64": "data:image/jpeg;base64," + photo(), "detector": "skip"})),
            200,
            check=expect_media("image"),
        ),
        Case("unauthenticated", upload(lambda: originals()["jpeg"]), 401, auth=None),
        Case(
            "session-not-video",
            session(file=lambda: (io.BytesIO(originals()["jpeg"]), "a")),
            415,
            "unsupported_media_type",
            path=SESSIONS,
            auth="participant",
        ),
        Case(
            "session-gif-bomb",
            session(file=lambda: (io.BytesIO(gif_bomb()), "a")),
            415,
            "unsupported_media_type",
            path=SESSIONS,
            auth="participant",
        ),
        Case(
            "session-without-frames",
            session(file=lambda: (io.BytesIO(empty_fragmented_mp4()), "a")),
            422,
            "media_corrupt",
            path=SESSIONS,
            auth="participant",
        ),
        Case("session-webm-no-duration", session(), 202, path=SESSIONS, auth="participant"),
        Case("real-photo", upload(lambda: originals()["jpeg"]), 200, check=expect_media("image")),
        Case("real-clip", upload(lambda: originals()["mp4"]), 200, check=expect_media("video")),
        Case("real-gif", upload(lambda: originals()["gif"]), 200, check=expect_media("video")),
        Case("tiny-gif-frames-on-a-small-canvas", upload(lambda: gif_bomb(64, 64, 5)), 200, check=expect_duration(0.1)),
    ]


def cases() -> list[Case]:
    return [
        *bombs(),
        *truncations(),
        *polyglots(),
        *random_bytes(),
        *missing_durations(),
        *nested_json(),
        *bad_text(),
        *duplicate_parts(),
        *other_requests(),
    ]
