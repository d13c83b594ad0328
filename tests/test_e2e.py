"""The real thing: `emoscope-admin demo-key`, gunicorn on loopback, HTTP from outside the process."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import requests

from api.wiring.config import REPO_ROOT
from tests.conftest import FACES, VIDEOS
from tests.servers import gunicorn, server_env

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    state = tmp_path_factory.mktemp("e2e")
    with gunicorn(state) as base:
        admin = subprocess.run(
            [sys.executable, "-m", "api.wiring.cli", "demo-key"],
            env=server_env(state, port=0),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        yield base, re.search(r"(emo_\w+_[\w-]+)", admin.stdout).group(1)


def test_photo_over_http(server):
    base, key = server
    with (FACES / "img1.jpg").open("rb") as photo:
        response = requests.post(
            f"{base}/v1/analyze", files={"file": photo}, headers={"Authorization": f"Bearer {key}"}, timeout=60
        )
    assert response.status_code == 200, response.text
    (face,) = response.json()["faces"]
    assert sum(face["emotions"].values()) == pytest.approx(1, abs=2e-3)
    # A broad open-mouthed smile: plausible means happy clearly leads.
    assert face["dominant_emotion"] == "happy" and face["emotions"]["happy"] > 0.5


def test_clip_over_http(server):
    base, key = server
    with (VIDEOS / "single_face.mp4").open("rb") as clip:
        response = requests.post(
            f"{base}/v1/analyze", files={"file": clip}, data={"fps": "15"}, headers={"X-API-Key": key}, timeout=120
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["media"]["type"] == "video" and len(body["tracks"]) == 1


def test_wrong_key_over_http(server):
    base, _ = server
    response = requests.post(f"{base}/v1/analyze", files={"file": b"x"}, headers={"X-API-Key": "emo_x"}, timeout=10)
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("application/problem+json")


def test_metrics_sum_over_gunicorn_workers(server):
    base, _ = server
    text = requests.get(f"{base}/metrics", timeout=10).text
    assert 'emoscope_requests_total{method="POST",route="/v1/analyze",status="200"}' in text


def test_the_demo_key_points_at_where_the_service_listens(server, tmp_path):
    env = {**server_env(tmp_path, port=0), "EMOSCOPE_BIND": "0.0.0.0:8123"}
    admin = subprocess.run(
        [sys.executable, "-m", "api.wiring.cli", "demo-key"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "http://127.0.0.1:8123/demo#key=emo_" in admin.stdout and ":8000" not in admin.stdout
