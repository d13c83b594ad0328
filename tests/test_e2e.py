"""The real thing: `emoscope-admin demo-key`, gunicorn on loopback, HTTP from outside the process."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

from api.config import REPO_ROOT
from tests.conftest import FACES, VIDEOS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    state = tmp_path_factory.mktemp("e2e")
    port = free_port()
    env = {**os.environ, "EMOSCOPE_STATE_DIR": str(state), "EMOSCOPE_BIND": f"127.0.0.1:{port}",
           "EMOSCOPE_WORKERS": "1", "EMOSCOPE_THREADS": "2"}
    admin = subprocess.run([sys.executable, "-m", "api.cli", "demo-key"], env=env, cwd=REPO_ROOT,
                           capture_output=True, text=True, check=True)
    key = re.search(r"(emo_\w+_[\w-]+)", admin.stdout).group(1)
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "api.app:create_app()"],
                               env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited early:\n{process.stderr.read()[-3000:]}")
        time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("gunicorn did not become ready within 120 s")
    yield base, key
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)


def test_photo_over_http(server):
    base, key = server
    with (FACES / "img1.jpg").open("rb") as photo:
        response = requests.post(f"{base}/v1/analyze", files={"file": photo},
                                 headers={"Authorization": f"Bearer {key}"}, timeout=60)
    assert response.status_code == 200, response.text
    (face,) = response.json()["faces"]
    assert sum(face["emotions"].values()) == pytest.approx(1, abs=2e-3)
    # A broad open-mouthed smile: plausible means happy clearly leads.
    assert face["dominant_emotion"] == "happy" and face["emotions"]["happy"] > 0.5


def test_clip_over_http(server):
    base, key = server
    with (VIDEOS / "single_face.mp4").open("rb") as clip:
        response = requests.post(f"{base}/v1/analyze", files={"file": clip}, data={"fps": "15"},
                                 headers={"X-API-Key": key}, timeout=120)
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
