"""Hostile and corrupt uploads: whatever the bytes, the answer is a 4xx problem document."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.wiring.config import REPO_ROOT
from tests.conftest import FACES, VIDEOS
from tests.samples import animated_gif, faststart_mp4, png_bomb, reencode

pytestmark = pytest.mark.data

MAGIC = [
    b"\xff\xd8\xff\xe0",
    b"\x89PNG\r\n\x1a\n",
    b"RIFF\x00\x00\x00\x00WEBP",
    b"BM",
    b"GIF89a",
    b"\x00\x00\x00\x18ftypmp42",
    b"\x00\x00\x00\x14ftypqt  ",
    b"\x1a\x45\xdf\xa3",
]
PROBLEM_CODES = set(
    yaml.safe_load((REPO_ROOT / "openapi.yaml").read_text())["components"]["schemas"]["Problem"]["properties"]["code"][
        "enum"
    ]
)


def real_files(tmp: Path) -> list[bytes]:
    photo = FACES / "img1.jpg"
    return [
        photo.read_bytes(),
        reencode(photo, "PNG", max_side=300),
        reencode(photo, "WEBP", max_side=300),
        reencode(photo, "BMP", max_side=200),
        animated_gif(photo, frames=4),
        (VIDEOS / "single_face.mp4").read_bytes(),
        faststart_mp4(VIDEOS / "single_face.mp4", tmp),
    ]


@pytest.fixture(scope="module")
def originals(tmp_path_factory) -> list[bytes]:
    return real_files(tmp_path_factory.mktemp("fuzz"))


def hostile_inputs(originals: list[bytes]):
    truncated = st.tuples(st.sampled_from(originals), st.floats(0.0, 0.95)).map(
        lambda pair: pair[0][: int(len(pair[0]) * pair[1])]
    )
    fake_header = st.tuples(st.sampled_from(MAGIC), st.binary(max_size=2048)).map(lambda pair: pair[0] + pair[1])
    bombs = st.tuples(st.integers(20_000, 2**31 - 1), st.integers(20_000, 2**31 - 1)).map(lambda wh: png_bomb(*wh))
    # A fixed set, so no random splice can line up into a valid file and make the test flaky.
    wrong_magic = st.sampled_from(
        [magic + body[len(magic) :] for magic in MAGIC for body in originals if not body.startswith(magic[:4])]
    )
    return st.one_of(st.binary(max_size=4096), truncated, fake_header, bombs, wrong_magic)


@pytest.fixture(scope="module")
def strategy(originals):
    return hostile_inputs(originals)


def test_hostile_uploads_get_4xx_problem_json(client, auth, strategy):
    @settings(max_examples=250, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(data=strategy)
    def check(data: bytes):
        response = client.post("/v1/analyze", data={"file": (io.BytesIO(data), "upload")}, headers=auth)
        assert 400 <= response.status_code < 500, (response.status_code, data[:32])
        assert response.mimetype == "application/problem+json"
        assert json.loads(response.data)["code"] in PROBLEM_CODES

    check()
