"""Web security findings of issue 19 (items 6, 7, 11, 12, 16, 23): each test failed before its fix."""
from __future__ import annotations

import io
import socket

import pytest

from api import webhooks
from tests.conftest import FACES, sign_up
from tests.samples import reencode
from tests.webhook_listener import WebhookListener

TINY_FACE = reencode(FACES / "img1.jpg", "JPEG", max_side=64)


# Item 23: /metrics names routes, volumes and error rates; it is not for the public.
def test_metrics_without_a_token_answer_loopback_only(app_factory):
    client = app_factory().test_client()
    assert client.get("/metrics").status_code == 200  # the test client's peer is 127.0.0.1
    remote = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert remote.status_code == 403 and remote.json["code"] == "metrics_forbidden"
    # A proxy on the same host forwards the internet from loopback: a forwarded request is not local.
    proxied = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status_code == 403


def test_metrics_with_a_token_need_it_from_anywhere(app_factory):
    client = app_factory(metrics_token="scrape-secret").test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    remote = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"},
                        environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert remote.status_code == 200 and "emoscope_requests_total" in remote.get_data(as_text=True)


# Item 11: webhooks go where the check said, and IPv6 wrappers do not hide private IPv4 addresses.
def resolving(monkeypatch, answers: dict[str, list[str]]):
    """Make the webhook module's DNS answer `answers` (host -> addresses, one lookup each, in turn)."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def fake(host, port, *args, **kwargs):
        if host not in answers:
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        if not answers[host]:
            raise socket.gaierror("no more answers")
        address = answers[host].pop(0)
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(webhooks.socket, "getaddrinfo", fake)
    return lookups


@pytest.mark.parametrize("address", ["64:ff9b::a00:8", "64:ff9b::7f00:1", "2002:a9fe:a9fe::1", "::ffff:10.0.0.8",
                                     "::127.0.0.1", "2001:0:4136:e378:8000:63bf:f5ff:fff7"])
def test_webhooks_to_ipv4_wrapped_in_ipv6_are_refused(monkeypatch, address):
    resolving(monkeypatch, {"hook.example.com": [address]})
    with pytest.raises(webhooks.UnsafeWebhookUrl):
        webhooks.check_destination("https://hook.example.com/x", allow_loopback=False)


@pytest.mark.parametrize("url", ["https://8.8.8.8:0/x", "https://8.8.8.8:99999/x", "https://8.8.8.8:-1/x"])
def test_webhook_ports_out_of_range_are_refused(url):
    with pytest.raises(webhooks.UnsafeWebhookUrl):
        webhooks.check_destination(url, allow_loopback=False)


def test_a_webhook_port_out_of_range_is_a_400_not_a_500(app_factory):
    client = app_factory().test_client()
    secret = sign_up(client)["api_key"]["secret"]
    response = client.post("/v1/analyze", headers={"Authorization": f"Bearer {secret}"},
                           data={"file": (io.BytesIO(TINY_FACE), "f"), "async": "true",
                                 "webhook_url": "https://127.0.0.1:99999/"})
    assert response.status_code == 400 and "webhook_url" in response.json["errors"]


def test_a_webhook_is_sent_to_the_address_that_was_checked(monkeypatch):
    """DNS rebinding: the name answers a checked address once, then something else; no second lookup."""
    listener = WebhookListener()
    try:
        port = listener.server.server_address[1]
        lookups = resolving(monkeypatch, {"hook.test": ["127.0.0.1"]})  # any later lookup fails
        assert webhooks.deliver(f"http://hook.test:{port}/hooks?x=1", b"{}", "whsec", allow_loopback=True)
        assert lookups == ["hook.test"]
        headers, _ = listener.received[0]
        assert headers["host"] == f"hook.test:{port}"
    finally:
        listener.close()
