"""Real servers on loopback for end-to-end tests: gunicorn running the service on embedded defaults,
nginx in front of it as in production (`python -m api.web.proxy`), and Celery workers as deployed."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from api.web.proxy import find_nginx
from api.wiring.config import REPO_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM (a graceful shutdown), then SIGKILL after `timeout` seconds."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def server_env(state: Path, port: int, **overrides: str) -> dict:
    # Embedded defaults only: no shared database, Redis limiter or Stripe from the caller's environment.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("EMOSCOPE_", "STRIPE_", "CELERY_", "S3_", "SQS_"))
        and k not in ("DATABASE_URL", "REDIS_URL")
    }
    return {
        **env,
        "EMOSCOPE_DEV_MODE": "true",
        "EMOSCOPE_STATE_DIR": str(state),
        "EMOSCOPE_BIND": f"127.0.0.1:{port}",
        "EMOSCOPE_WORKERS": "1",
        "EMOSCOPE_THREADS": "4",
        **overrides,
    }


@contextlib.contextmanager
def gunicorn(state: Path, **overrides: str):
    state.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = server_env(state, port, **overrides)
    subprocess.run(
        [sys.executable, "-m", "api.wiring.cli", "migrate"], env=env, cwd=REPO_ROOT, check=True, capture_output=True
    )
    log = state / "gunicorn.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "api.web.app:create_app()"],
            env=env,
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
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
        stop(process, timeout=60)


def start_worker(env: dict, name: str) -> subprocess.Popen:
    """A Celery worker as deployed (one prefork process) in its own process group, with `env`."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "api.wiring.worker",
            "worker",
            "--concurrency=1",
            "--pool=prefork",
            "--loglevel=WARNING",
            "-n",
            f"{name}@%h",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop_worker(worker: subprocess.Popen, sig=signal.SIGTERM) -> None:
    """Signals the worker's whole process group (its pool children too), then waits for it."""
    os.killpg(worker.pid, sig)
    worker.wait(timeout=60)


def wait_for_port(port: int, process: subprocess.Popen, log: Path, what: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        if process.poll() is not None:
            pytest.fail(f"{what} exited early:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not listen on {port} within 30 s")
        time.sleep(0.1)


@contextlib.contextmanager
def nginx(upstream: str, **overrides: str):
    """nginx as the image runs it, in front of `upstream` (http://127.0.0.1:PORT); yields its base URL."""
    if find_nginx() is None:
        pytest.fail(
            "nginx is not installed, and the proxy tests need it: `apt-get install -y "
            "--no-install-recommends nginx` (.ci/run installs it when missing)"
        )
    port = free_port()
    # Not under pytest's tmp_path: nginx's workers run as nobody when the tests run as root, and must
    # reach the temp folders inside this one.
    run_dir = Path(tempfile.mkdtemp(prefix="emoscope-nginx-"))
    run_dir.chmod(0o755)
    env = {
        **os.environ,
        **overrides,
        "EMOSCOPE_PROXY_BIND": f"127.0.0.1:{port}",
        "EMOSCOPE_BIND": upstream.removeprefix("http://"),
        "EMOSCOPE_PROXY_DIR": str(run_dir),
    }
    log = run_dir / "error.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "api.web.proxy"], env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=stderr
        )
    try:
        wait_for_port(port, process, log, "nginx")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process, timeout=15)
        shutil.rmtree(run_dir, ignore_errors=True)
