"""Web security findings of issue 19 (items 6, 7, 11, 12, 16, 23): each test failed before its fix."""

from __future__ import annotations

import io
import re
import shutil
import socket
from datetime import timedelta

import pytest
from sqlalchemy import select

from api.domain import webhooks
from api.domain.metering import Plan
from api.store.db import ApiKey, ApiRequest, PasswordReset, Study, utcnow
from tests.conftest import FACES, sign_up
from tests.samples import reencode
from tests.webhook_listener import WebhookListener

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.data]

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
    remote = client.get(
        "/metrics", headers={"Authorization": "Bearer scrape-secret"}, environ_base={"REMOTE_ADDR": "203.0.113.9"}
    )
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


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::a00:8",
        "64:ff9b::7f00:1",
        "2002:a9fe:a9fe::1",
        "::ffff:10.0.0.8",
        "::127.0.0.1",
        "2001:0:4136:e378:8000:63bf:f5ff:fff7",
    ],
)
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
    response = client.post(
        "/v1/analyze",
        headers={"Authorization": f"Bearer {secret}"},
        data={"file": (io.BytesIO(TINY_FACE), "f"), "async": "true", "webhook_url": "https://127.0.0.1:99999/"},
    )
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


# Item 6: a "video" is stored with the type its bytes show, and served so that no browser runs it as a page.
HTML_POLYGLOT = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00<html><script src=/x.js></script></html>"


def assert_served_inert(response, mimetype: str):
    assert response.status_code == 200 and response.mimetype == mimetype
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["Content-Security-Policy"].startswith("sandbox")


def test_a_stimulus_is_served_with_its_sniffed_type_never_the_declared_one(app_factory):
    app = app_factory()
    client = app.test_client()
    secret = sign_up(client)["api_key"]["secret"]
    created = client.post(
        "/v1/studies",
        headers={"Authorization": f"Bearer {secret}"},
        data={
            "name": "Polyglot",
            "stimulus_duration_ms": "2000",
            "stimulus": (io.BytesIO(HTML_POLYGLOT), "a.html", "text/html"),
        },
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    study = created.json
    served = client.get(
        f"/v1/studies/{study['id']}/stimulus", headers={"Authorization": f"Bearer {study['participant_token']}"}
    )
    assert_served_inert(served, "video/mp4")
    # A row stored before this fix keeps its client-declared type: it is not served as such either.
    with app.extensions["emoscope"].db.session.begin() as session:
        session.get(Study, study["id"]).stimulus_content_type = "text/html"
    served = client.get(
        f"/v1/studies/{study['id']}/stimulus", headers={"Authorization": f"Bearer {study['participant_token']}"}
    )
    assert_served_inert(served, "application/octet-stream")


def test_the_console_serves_a_stimulus_inert_too(app_factory):
    from tests.test_console import sign_in

    client = app_factory().test_client()
    secret = sign_up(client)["api_key"]["secret"]
    study = client.post(
        "/v1/studies",
        headers={"Authorization": f"Bearer {secret}"},
        data={
            "name": "Polyglot",
            "stimulus_duration_ms": "2000",
            "stimulus": (io.BytesIO(HTML_POLYGLOT), "a.html", "text/html"),
        },
    ).json
    assert sign_in(client).status_code == 303
    assert_served_inert(client.get(f"/console/studies/{study['id']}/stimulus"), "video/mp4")


# Item 12: participant tokens and receipts are capabilities: not in the access log, not in stored replays.
def test_the_access_log_redacts_participant_and_report_tokens_and_receipts():
    from gunicorn.config import Config

    from api.web.accesslog import RedactingLogger

    config = Config()
    config.set("accesslog", "-")
    logger = RedactingLogger(config)
    for path in (
        "/s/pt_secret-token",
        "/r/rl_secret-token/report.csv",
        "/v1/studies/study_1/sessions/rcpt_secret-receipt",
    ):
        environ = {
            "REQUEST_METHOD": "GET",
            "RAW_URI": path + "?x=1",
            "PATH_INFO": path,
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_REFERER": f"https://emoscope.example{path}",
        }
        response = type("Response", (), {"status": "200 OK", "headers": [], "sent": 10})()
        atoms = logger.atoms(response, [], environ, timedelta(milliseconds=5))
        logged = " ".join(str(atoms[a]) for a in ("U", "r", "f"))
        assert "secret" not in logged and "[redacted]" in atoms["U"]
    assert (
        logger.atoms(response, [], {**environ, "PATH_INFO": "/v1/studies/study_1"}, timedelta(0))["U"]
        == "/v1/studies/study_1"
    )


def test_gunicorn_logs_access_through_the_redacting_logger(tmp_path):
    import os
    import subprocess
    import sys

    from api.wiring.config import REPO_ROOT

    # In a child: reading gunicorn.conf.py switches prometheus-client to multiprocess mode.
    read = subprocess.run(
        [sys.executable, "-c", "import runpy; print(runpy.run_path('gunicorn.conf.py')['logger_class'])"],
        cwd=REPO_ROOT,
        env={**os.environ, "EMOSCOPE_STATE_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert read.stdout.strip() == "api.web.accesslog.RedactingLogger"


def test_a_stored_session_replay_keeps_no_receipt_and_a_replay_gets_a_working_one(app_factory):
    from tests.test_studies import CLIP, create_study, submit_session

    app = app_factory()
    client = app.test_client()
    secret = sign_up(client)["api_key"]["secret"]
    study = create_study(client, secret).json
    first = submit_session(client, study, headers={"Idempotency-Key": "viewer-1"})
    assert first.status_code == 202 and first.json["receipt"].startswith("rcpt_")
    with app.extensions["emoscope"].db.session.begin() as session:
        stored = [r.response_body for r in session.scalars(select(ApiRequest)) if r.response_body]
    assert stored and not any("rcpt_" in body for body in stored)
    replay = submit_session(client, study, data=CLIP, headers={"Idempotency-Key": "viewer-1"})
    assert replay.status_code == 202 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json["id"] == first.json["id"] and replay.json["receipt"].startswith("rcpt_")
    # The receipt given at the replay replaces the first (which the client may never have received).
    assert client.delete(f"/v1/studies/{study['id']}/sessions/{first.json['receipt']}").status_code == 404
    assert client.delete(f"/v1/studies/{study['id']}/sessions/{replay.json['receipt']}").status_code == 204


# Item 7: rate limits keyed by the real client, by purpose, by email and by account.
PASSWORD = "correct horse battery"  # what tests.conftest.sign_up uses


def signin(client, password: str = PASSWORD, email: str = "owner@example.com", address: str | None = None):
    headers = {"X-Forwarded-For": address} if address else {}
    return client.post("/v1/signin", json={"email": email, "password": password}, headers=headers)


def test_forwarded_addresses_count_only_behind_a_configured_proxy(app_factory, monkeypatch):
    monkeypatch.setattr("api.web.credentials.CREDENTIAL_RATE", 0.001)  # no refill while the test runs
    behind_proxy = app_factory(trusted_proxy_hops=1).test_client()
    sign_up(behind_proxy)
    for _ in range(5):
        signin(behind_proxy, "a wrong guess", address="198.51.100.7")
    assert signin(behind_proxy, "a wrong guess", address="198.51.100.7").status_code == 429
    # The attacker's exhausted bucket is not the owner's: the proxy tells them apart.
    assert signin(behind_proxy, address="203.0.113.20").status_code == 201

    direct = app_factory().test_client()  # no proxy configured: the header is anyone's to forge
    sign_up(direct)
    statuses = [signin(direct, "a wrong guess", address=f"198.51.100.{i}").status_code for i in range(5)]
    assert statuses[-1] == 429


def test_receipt_withdrawals_do_not_spend_the_sign_in_budget(app_factory, monkeypatch):
    monkeypatch.setattr("api.web.credentials.CREDENTIAL_RATE", 0.001)
    client = app_factory().test_client()
    sign_up(client)  # one of the address's 5 credential attempts
    for i in range(10):
        client.delete(f"/v1/studies/study_x/sessions/rcpt_guess{i}")
    assert signin(client).status_code == 201


def test_repeated_failed_sign_ins_lock_the_email_from_every_address(app_factory):
    client = app_factory(trusted_proxy_hops=1).test_client()
    sign_up(client)
    statuses = [signin(client, "a wrong guess", address=f"198.51.100.{i}").status_code for i in range(12)]
    assert statuses[:10] == [401] * 10 and statuses[10] == 429
    locked = signin(client, address="203.0.113.20")  # even the right password, for now
    assert locked.status_code == 429 and locked.json["code"] == "sign_in_locked" and "Retry-After" in locked.headers
    # Another email is not locked.
    sign_up(client, email="other@example.com")
    assert signin(client, email="other@example.com", address="203.0.113.21").status_code == 201


def test_the_plan_rate_limit_is_per_account_however_many_keys(app_factory):
    from tests.test_accounts import analyze

    plans = {"free": Plan("free", 1000, 0.001, 2), "paid": Plan("paid", None, 0.001, 2)}
    client = app_factory(plans=plans).test_client()
    admin = sign_up(client)["api_key"]["secret"]
    more = [
        client.post("/v1/keys", headers={"Authorization": f"Bearer {admin}"}, json={"name": f"k{i}"}).json["secret"]
        for i in range(3)
    ]
    statuses = [analyze(client, secret).status_code for secret in [admin, *more]]
    assert statuses == [200, 200, 429, 429]


def test_an_account_holds_a_bounded_number_of_active_keys(app_factory):
    client = app_factory(max_keys_per_account=3).test_client()
    admin = {"Authorization": f"Bearer {sign_up(client)['api_key']['secret']}"}
    created = [client.post("/v1/keys", headers=admin, json={"name": f"k{i}"}) for i in range(3)]
    assert [r.status_code for r in created] == [201, 201, 409]
    assert created[2].json["code"] == "key_limit_reached"
    assert client.delete(f"/v1/keys/{created[0].json['id']}", headers=admin).status_code == 204
    assert client.post("/v1/keys", headers=admin, json={"name": "after a revocation"}).status_code == 201


@pytest.mark.parametrize("limiter", ["memory", "redis"])
def test_a_bucket_can_be_looked_at_without_taking(limiter):
    import os
    import uuid

    from api.store.ratelimit import MemoryRateLimiter, RedisRateLimiter

    if limiter == "redis":
        limiter = RedisRateLimiter(os.environ.get("EMOSCOPE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
    else:
        limiter = MemoryRateLimiter()
    bucket = f"failed-sign-ins:{uuid.uuid4().hex}"
    assert [limiter.hit(bucket, 0.001, 2, take=False).allowed for _ in range(5)] == [True] * 5
    assert [limiter.hit(bucket, 0.001, 2).allowed for _ in range(3)] == [True, True, False]
    assert limiter.hit(bucket, 0.001, 2, take=False).allowed is False


# Item 16: passwords worth the name, a way to change and reset them, and no admin key per sign-in.
@pytest.mark.parametrize(
    "password",
    [
        " " * 10,
        "  abc  \t  ",
        "aaaaaaaaaaaa",
        "ababababab",
        "1234567890",
        "qwertyuiop",
        "Password123!",
        "iloveyou2026",
        "Dragon!!!!!!",
    ],
)
def test_weak_passwords_are_refused_at_sign_up(app_factory, password):
    response = (
        app_factory()
        .test_client()
        .post("/v1/signup", json={"email": "weak@example.com", "password": password, "account_name": "W"})
    )
    assert response.status_code == 400 and "password" in response.json["errors"]


def test_a_long_uncommon_password_is_accepted():
    from api.domain import passwords

    passwords.check_strength("correct horse battery")  # raises when weak
    passwords.check_strength("ein langes Passwort")


def test_sign_in_keys_expire_and_a_second_sign_in_replaces_the_first(app_factory, assert_contract):
    app = app_factory(trusted_proxy_hops=1)
    client = app.test_client()
    sign_up(client)
    first = assert_contract(signin(client, address="203.0.113.1")).json["api_key"]
    assert first["expires_at"] is not None
    second = assert_contract(signin(client, address="203.0.113.2")).json["api_key"]
    keys = {
        k["id"]: k for k in client.get("/v1/keys", headers={"Authorization": f"Bearer {second['secret']}"}).json["data"]
    }
    assert keys[first["id"]]["revoked_at"] is not None and keys[second["id"]]["revoked_at"] is None
    # Twenty sign-ins leave one live sign-in key, not twenty admin keys.
    for i in range(20):
        latest = signin(client, address=f"203.0.113.{10 + i}").json["api_key"]
    live = [
        k
        for k in client.get("/v1/keys", headers={"Authorization": f"Bearer {latest['secret']}"}).json["data"]
        if k["revoked_at"] is None
    ]
    assert len(live) == 2  # the sign-up key and the latest sign-in key
    # Once expired, the key no longer authenticates.
    with app.extensions["emoscope"].db.session.begin() as session:
        session.get(ApiKey, latest["id"]).expires_at = utcnow() - timedelta(seconds=1)
    assert client.get("/v1/keys", headers={"Authorization": f"Bearer {latest['secret']}"}).status_code == 401


NEW_PASSWORD = "a brand new passphrase"


def test_the_owner_changes_the_password_with_the_current_one(app_factory, monkeypatch):
    monkeypatch.setattr("api.web.credentials.CREDENTIAL_BURST", 100)  # many credential calls in one test
    client = app_factory().test_client()
    sign_up(client)
    change = {"email": "owner@example.com", "current_password": "not it at all", "new_password": NEW_PASSWORD}
    assert client.post("/v1/password", json=change).status_code == 401
    weak = client.post("/v1/password", json={**change, "current_password": PASSWORD, "new_password": " " * 12})
    assert weak.status_code == 400 and "new_password" in weak.json["errors"]
    assert client.post("/v1/password", json={**change, "current_password": PASSWORD}).status_code == 204
    assert signin(client).status_code == 401 and signin(client, NEW_PASSWORD).status_code == 201


def test_a_console_owner_changes_the_password_and_other_sessions_end(app_factory, monkeypatch):
    monkeypatch.setattr("api.web.credentials.CREDENTIAL_BURST", 100)  # many credential calls in one test
    from tests.test_console import console_post, sign_in

    app = app_factory()
    client, elsewhere = app.test_client(), app.test_client()
    sign_up(client)
    assert sign_in(client).status_code == 303 and sign_in(elsewhere).status_code == 303
    wrong = console_post(client, "/console/password", current_password="not it at all", new_password=NEW_PASSWORD)
    assert wrong.status_code == 401
    changed = console_post(client, "/console/password", current_password=PASSWORD, new_password=NEW_PASSWORD)
    assert changed.status_code == 303
    assert client.get("/console").status_code == 200  # this browser stays signed in
    assert elsewhere.get("/console").status_code == 303  # every other session ends
    assert signin(client, NEW_PASSWORD).status_code == 201


class Outbox:
    """A mailer that keeps what it is given to send."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def send(self, to: str, subject: str, body: str) -> None:
        self.sent.append((to, subject, body))

    def last_link(self) -> str:
        return re.search(r"https?://\S+/console/password-reset\?token=\S+", self.sent[-1][2]).group(0)


def with_outbox(app) -> Outbox:
    outbox = app.extensions["emoscope"].mailer = Outbox()
    return outbox


def test_the_embedded_mailer_logs_the_message_and_says_it_holds_secrets(caplog):
    import logging

    from api.domain.mailer import LoggingMailer

    with caplog.at_level(logging.INFO, logger="api.domain.mailer"):
        LoggingMailer().send("owner@example.com", "Reset", "https://x.example/console/password-reset?token=pwr_1")
    (record,) = caplog.records
    assert "pwr_1" in record.getMessage() and "secrets included" in record.getMessage()


def test_a_password_reset_link_is_mailed_works_once_and_expires(app_factory, monkeypatch):
    monkeypatch.setattr("api.web.credentials.CREDENTIAL_BURST", 100)  # many credential calls in one test
    app = app_factory(public_url="https://console.example")
    outbox = with_outbox(app)
    client = app.test_client()
    sign_up(client)
    unknown = client.post("/v1/password-reset", json={"email": "nobody@example.com"})
    known = client.post("/v1/password-reset", json={"email": "owner@example.com"}, headers={"Host": "evil.example"})
    assert unknown.status_code == known.status_code == 202 and unknown.json == known.json  # no account oracle
    assert [to for to, _, _ in outbox.sent] == ["owner@example.com"]
    link = outbox.last_link()
    assert link.startswith("https://console.example/")  # never from the request's Host header
    token = link.split("token=")[1]
    with app.extensions["emoscope"].db.session.begin() as session:
        assert token not in str([(r.token_hash,) for r in session.scalars(select(PasswordReset))])

    form = client.get(f"/console/password-reset?token={token}")
    assert form.status_code == 200 and form.headers["Referrer-Policy"] == "no-referrer"
    confirm = {"token": token, "new_password": NEW_PASSWORD}
    assert client.post("/v1/password-reset/confirm", json={**confirm, "new_password": "qwertyuiop"}).status_code == 400
    assert client.post("/v1/password-reset/confirm", json=confirm).status_code == 204
    assert signin(client, NEW_PASSWORD).status_code == 201
    again = client.post("/v1/password-reset/confirm", json={**confirm, "new_password": "yet another passphrase"})
    assert again.status_code == 400 and again.json["code"] == "invalid_reset_token"

    client.post("/v1/password-reset", json={"email": "owner@example.com"})
    token = outbox.last_link().split("token=")[1]
    with app.extensions["emoscope"].db.session.begin() as session:
        for row in session.scalars(select(PasswordReset)):
            row.expires_at = utcnow() - timedelta(seconds=1)
    expired = client.post("/v1/password-reset/confirm", json={**confirm, "token": token})
    assert expired.status_code == 400 and expired.json["code"] == "invalid_reset_token"


def test_the_console_reset_form_sets_the_password(app_factory, monkeypatch):
    monkeypatch.setattr("api.web.credentials.CREDENTIAL_BURST", 100)  # many credential calls in one test
    from tests.test_console import hidden_fields

    app = app_factory()
    outbox = with_outbox(app)
    client = app.test_client()
    sign_up(client)
    asked = client.post(
        "/console/password-reset/request",
        data={**hidden_fields(client.get("/console/password-reset/request")), "email": "owner@example.com"},
    )
    assert asked.status_code == 200
    token = outbox.last_link().split("token=")[1]
    form = client.get(f"/console/password-reset?token={token}")
    done = client.post("/console/password-reset", data={**hidden_fields(form), "new_password": NEW_PASSWORD})
    assert done.status_code == 303 and done.headers["Location"].endswith("/console/signin")
    assert signin(client, NEW_PASSWORD).status_code == 201


def test_password_endpoints_answer_as_the_contract_says(app_factory, assert_contract, monkeypatch):
    monkeypatch.setattr("api.web.credentials.CREDENTIAL_BURST", 100)
    app = app_factory()
    outbox = with_outbox(app)
    client = app.test_client()
    sign_up(client)
    assert_contract(client.post("/v1/password-reset", json={"email": "owner@example.com"}))
    token = outbox.last_link().split("token=")[1]
    assert_contract(client.post("/v1/password-reset/confirm", json={"token": token, "new_password": "qwertyuiop"}))
    assert_contract(client.post("/v1/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD}))
    assert_contract(client.post("/v1/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD}))
    assert_contract(
        client.post(
            "/v1/password",
            json={
                "email": "owner@example.com",
                "current_password": NEW_PASSWORD,
                "new_password": "a third fine passphrase",
            },
        )
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_migration_takes_receipts_out_of_answers_stored_before(backend, tmp_path, request):
    import json

    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from api.store.db import MIGRATIONS, Database

    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else f"sqlite:///{tmp_path / 'm.db'}"
    db = Database(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0005")
        connection.execute(
            text("INSERT INTO accounts (id, name, plan, created_at) VALUES (1, 'a', 'free', '2026-12-01')")
        )
        connection.execute(
            text(
                "INSERT INTO api_keys (id, account_id, prefix, key_hash, name, scopes, created_at) "
                "VALUES (1, 1, 'p', 'h', '', 'analyze', '2026-12-01')"
            )
        )
        for request_id, body in (
            ("r1", {"id": "ses_1", "status": "processing", "receipt": "rcpt_secret"}),
            ("r2", {"media": {"type": "image"}, "note": "receipt"}),
        ):
            connection.execute(
                text(
                    "INSERT INTO api_requests (id, account_id, api_key_id, idempotency_key, fingerprint, "
                    "status, response_body, created_at) VALUES (:id, 1, 1, :id, 'f', 'accepted', :body, "
                    "'2026-12-01')"
                ),
                {"id": request_id, "body": json.dumps(body)},
            )
    db.migrate()
    with db.engine.begin() as connection:
        bodies = dict(connection.execute(text("SELECT id, response_body FROM api_requests")).all())
    assert json.loads(bodies["r1"]) == {"id": "ses_1", "status": "processing"}
    assert json.loads(bodies["r2"]) == {"media": {"type": "image"}, "note": "receipt"}
    db.engine.dispose()


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs the openssl command to make a certificate")
def test_an_https_webhook_to_the_pinned_address_still_checks_the_certificate_for_the_name(monkeypatch, tmp_path):
    import http.server
    import ssl
    import subprocess
    import threading

    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            tmp_path / "key.pem",
            "-out",
            tmp_path / "cert.pem",
            "-days",
            "1",
            "-subj",
            "/CN=hook.test",
            "-addext",
            "subjectAltName=DNS:hook.test",
        ],
        check=True,
        capture_output=True,
    )
    names, hosts = [], []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            hosts.append(self.headers["Host"])
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    context.sni_callback = lambda _socket, name, _context: names.append(name)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    monkeypatch.setattr(webhooks.certifi, "where", lambda: str(tmp_path / "cert.pem"))
    try:
        resolving(monkeypatch, {"hook.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
        assert webhooks.deliver(f"https://hook.test:{port}/x", b"{}", "whsec", allow_loopback=True)
        assert names == ["hook.test"] and hosts == [f"hook.test:{port}"]
        # The same address under a name the certificate does not carry is refused.
        assert not webhooks.deliver(f"https://other.test:{port}/x", b"{}", "whsec", allow_loopback=True)
    finally:
        server.shutdown()
        server.server_close()
