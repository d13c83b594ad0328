"""nginx in front of gunicorn (`python -m api.web.proxy`, infra/nginx/nginx.conf.j2), as the image runs it.

Without it, gunicorn's gthread worker gave each slow connection a thread until its request was read, so
a few dozen clients trickling headers or a body stopped /healthz; and oversized headers got gunicorn's
HTML page. These tests need Debian's nginx (`.ci/run` installs it) and fail, never skip, without it.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time

import pytest
import requests
import yaml

from api.web.errors import HTTP_CODES
from api.web.proxy import render
from api.wiring.config import REPO_ROOT, Limits
from tests.servers import free_port, gunicorn, nginx

SLOW_HEADER_CLIENTS = 50
SLOW_BODY_CLIENTS = 20
ATTACK_SECONDS = 10
# A liveness bound, not a speed claim: a probe that waits this long is a service that stopped answering.
PROBE_TIMEOUT = 2


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    with gunicorn(tmp_path_factory.mktemp("proxy")) as base:
        yield base


@pytest.fixture(scope="module")
def proxy(upstream):
    with nginx(upstream) as base:
        yield base


def _problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body["code"] == code and body["status"] == status
    assert body["type"] == f"urn:emoscope:problem:{code}" and body["title"] and body["detail"]
    assert body["request_id"] == response.headers["X-Request-Id"]
    return body


def _open(port: int, first: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(first)
    return sock


def _trickle(sockets: list[tuple[socket.socket, bytes]], stop: threading.Event) -> None:
    """One more piece on every connection each second, as a slowloris client does."""
    while not stop.wait(1):
        for sock, piece in sockets:
            with contextlib.suppress(OSError):  # nginx may drop it (client_header_timeout): as it should
                sock.send(piece)


def test_healthz_answers_while_clients_trickle_headers_and_bodies(proxy):
    port = int(proxy.rsplit(":", 1)[1])
    headers = [
        (_open(port, b"GET /healthz HTTP/1.1\r\nHost: emoscope\r\n"), b"X-Slow: 1\r\n")
        for _ in range(SLOW_HEADER_CLIENTS)
    ]
    bodies = [
        (
            _open(
                port,
                b"POST /v1/analyze HTTP/1.1\r\nHost: emoscope\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100000\r\n\r\n{",
            ),
            b" ",
        )
        for _ in range(SLOW_BODY_CLIENTS)
    ]
    stop = threading.Event()
    trickler = threading.Thread(target=_trickle, args=(headers + bodies, stop), daemon=True)
    trickler.start()
    failures, probes = [], 0
    try:
        deadline = time.monotonic() + ATTACK_SECONDS
        while time.monotonic() < deadline:
            probes += 1
            try:
                response = requests.get(f"{proxy}/healthz", timeout=PROBE_TIMEOUT)
                if response.status_code != 200:
                    failures.append(response.status_code)
            except requests.RequestException as exc:
                failures.append(type(exc).__name__)
            time.sleep(0.25)
    finally:
        stop.set()
        trickler.join()
        for sock, _ in headers + bodies:
            sock.close()
    assert not failures, f"{len(failures)} of {probes} /healthz probes failed: {failures[:5]}"


def test_header_line_over_8_kib_gets_problem_json(proxy):
    response = requests.get(f"{proxy}/healthz", headers={"X-Big": "a" * 9000}, timeout=10)
    _problem(response, 431, "request_header_too_large")


def test_headers_over_32_kib_in_all_get_problem_json(proxy):
    response = requests.get(f"{proxy}/healthz", headers={f"X-H{i}": "a" * 1000 for i in range(40)}, timeout=10)
    _problem(response, 431, "request_header_too_large")


def test_many_small_headers_reach_the_app(proxy):
    # gunicorn refused more than 100 headers with its HTML page; nginx's byte limits bound them now.
    response = requests.get(f"{proxy}/healthz", headers={f"X-H{i}": "1" for i in range(300)}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok"}


def test_large_body_refused_before_it_is_read_gets_the_apps_answer(proxy):
    # Over nginx's 1 MiB memory buffer, so spooled to a temp file, then passed on whole. The app refuses it
    # without reading it; gunicorn used to close the connection while nginx was still sending (a 503 here).
    body = b"x" * (20 * 1024 * 1024)
    for _ in range(5):
        response = requests.post(
            f"{proxy}/v1/analyze", data=body, headers={"Content-Type": "application/octet-stream"}, timeout=30
        )
        _problem(response, 401, "missing_api_key")


def test_request_line_over_8_kib_gets_problem_json(proxy):
    response = requests.get(f"{proxy}/healthz?{'a' * 9000}", timeout=10)
    _problem(response, 414, "uri_too_long")


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n", 400, "invalid_request"),  # no Host
        (
            b"GET /healthz HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n",
            400,
            "invalid_request",
        ),
        (b"TRACE /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 405, "method_not_allowed"),
    ],
)
def test_requests_nginx_refuses_get_problem_json(proxy, request_bytes, status, code):
    port = int(proxy.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request_bytes)
        answer = b"".join(iter(lambda: sock.recv(65536), b"")).decode()
    head, _, body = answer.partition("\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status}"), answer
    assert "content-type: application/problem+json" in head.lower()
    assert f'"code":"{code}"' in body


def test_proxys_problem_pages_are_not_reachable_from_outside(proxy):
    _problem(requests.get(f"{proxy}/.problem/unavailable", timeout=10), 404, "not_found")


def test_body_over_the_apps_limit_is_refused_by_nginx_with_problem_json(upstream):
    limits = Limits(max_upload_bytes=3000)
    with nginx(upstream, EMOSCOPE_MAX_UPLOAD_BYTES="3000") as base:
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            # Only the header: nginx must refuse on the declared length, before reading any body.
            sock.sendall(
                b"POST /v1/analyze HTTP/1.1\r\nHost: emoscope\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % (limits.max_request_bytes + 1)
            )
            answer = sock.recv(65536).decode()
    head, _, body = answer.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 413"), answer
    assert "content-type: application/problem+json" in head.lower()
    assert '"code":"media_too_large"' in body
    assert (
        f"the request body is {limits.max_request_bytes + 1} bytes; a request is limited to "
        f"{limits.max_request_bytes} bytes"
    ) in body


def test_gunicorn_down_gets_problem_json_with_retry_after():
    with nginx(f"http://127.0.0.1:{free_port()}") as base:
        response = requests.get(f"{base}/healthz", timeout=10)
    _problem(response, 503, "unavailable")
    assert response.headers["Retry-After"] == "5"


def test_body_limit_is_the_apps_and_follows_the_upload_limit():
    config = render("0.0.0.0:8000", "127.0.0.1:8001", Limits(max_upload_bytes=3000))
    assert re.search(r"client_max_body_size (\d+);", config).group(1) == str(
        Limits(max_upload_bytes=3000).max_request_bytes
    )


@pytest.mark.parametrize("upstream", ["0.0.0.0:8001", "10.0.0.5:8001", "api:8001"])
def test_proxy_refuses_a_gunicorn_that_is_not_on_loopback(upstream):
    with pytest.raises(ValueError, match="loopback"):
        render("0.0.0.0:8000", upstream, Limits())


def test_nginx_codes_are_the_apis():
    config = render("0.0.0.0:8000", "127.0.0.1:8001", Limits())
    answers = {int(status): code for status, code in re.findall(r'"status":(\d+),.*?"code":"(\w+)"', config)}
    documented = set(
        yaml.safe_load((REPO_ROOT / "openapi.yaml").read_text())["components"]["schemas"]["Problem"]["properties"][
            "code"
        ]["enum"]
    )
    assert set(answers.values()) <= documented
    for status, code in answers.items():
        if status in HTTP_CODES:
            assert HTTP_CODES[status][0] == code, status


def test_compose_serves_through_nginx_with_gunicorn_on_loopback_and_requires_the_pepper():
    services = yaml.safe_load((REPO_ROOT / "compose.yaml").read_text())["services"]
    api, proxy = services["api"], services["proxy"]
    assert api["environment"]["EMOSCOPE_BIND"].startswith("127.0.0.1:")
    render(api["environment"]["EMOSCOPE_PROXY_BIND"], proxy["environment"]["EMOSCOPE_BIND"], Limits())
    assert proxy["command"] == ["python", "-m", "api.web.proxy"] and proxy["network_mode"] == "service:api"
    # Only nginx's port is published (it lives in the api container's network namespace).
    assert api["ports"] == ["8000:8000"] and api["environment"]["EMOSCOPE_PROXY_BIND"] == "0.0.0.0:8000"
    # No usable default: compose refuses to start without a pepper from the environment.
    assert re.fullmatch(r"\$\{EMOSCOPE_API_KEY_PEPPER:\?.+\}", api["environment"]["EMOSCOPE_API_KEY_PEPPER"])
    assert "EMOSCOPE_API_KEY_PEPPER" not in proxy["environment"]
