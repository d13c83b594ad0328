"""Web security findings of issue 19 (items 6, 7, 11, 12, 16, 23): each test failed before its fix."""
from __future__ import annotations

import pytest

from tests.conftest import sign_up


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
