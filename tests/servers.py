"""Real servers on loopback for end-to-end tests: gunicorn running the service on embedded defaults."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from api.config import REPO_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(state: Path, port: int, **overrides: str) -> dict:
    # Embedded defaults only: no shared database, Redis limiter or Stripe from the caller's environment.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("EMOSCOPE_", "STRIPE_", "CELERY_", "S3_", "SQS_"))
           and k not in ("DATABASE_URL", "REDIS_URL")}
    return {**env, "EMOSCOPE_DEV_MODE": "true", "EMOSCOPE_STATE_DIR": str(state), "EMOSCOPE_BIND": f"127.0.0.1:{port}",
            "EMOSCOPE_WORKERS": "1", "EMOSCOPE_THREADS": "4", **overrides}


@contextlib.contextmanager
def gunicorn(state: Path, **overrides: str):
    state.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = server_env(state, port, **overrides)
    subprocess.run([sys.executable, "-m", "api.cli", "migrate"], env=env, cwd=REPO_ROOT, check=True,
                   capture_output=True)
    log = state / "gunicorn.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "api.app:create_app()"],
            env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=stderr)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or too busy starting to answer
                pass
            if process.poll() is not None:
                pytest.fail(f"gunicorn exited early:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail("gunicorn did not become ready within 120 s")
            time.sleep(0.25)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
