"""Owners, keys, usage, idempotency, quotas and rate limits through the API (SQLite, in-memory limiter)."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from sqlalchemy import select

from api.domain import jobs, metering
from api.domain.metering import Plan
from api.store.db import Account, ApiRequest
from tests.conftest import FACES, VIDEOS, sign_up
from tests.samples import reencode
from tests.test_api import assert_problem

pytestmark = [pytest.mark.postgres, pytest.mark.data]

TINY_FACE = reencode(FACES / "img1.jpg", "JPEG", max_side=64)


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def analyze(client, secret: str, data: bytes = TINY_FACE, idempotency_key: str | None = None, **options):
    headers = bearer(secret) | ({"Idempotency-Key": idempotency_key} if idempotency_key else {})
    return client.post(
        "/v1/analyze", headers=headers, data={"file": (io.BytesIO(data), "f"), "detector": "skip", **options}
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def client(request, app_factory):
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    app = app_factory(url)
    yield app.test_client()
    app.extensions["emoscope"].db.engine.dispose()


def test_sign_up_gives_an_owner_key_that_analyzes_and_administers(client, assert_contract):
    body = sign_up(client)
    secret = body["api_key"]["secret"]
    assert body["api_key"]["scopes"] == ["analyze", "admin"] and body["account"]["plan"] == "free"
    assert assert_contract(analyze(client, secret)).status_code == 200
    assert assert_contract(client.get("/v1/keys", headers=bearer(secret))).status_code == 200


def test_sign_up_validation_and_duplicates(client, assert_contract):
    sign_up(client, "dup@example.com")
    again = client.post(
        "/v1/signup", json={"email": "DUP@example.com", "password": "another long one", "account_name": "x"}
    )
    assert_problem(assert_contract(again), 409, "email_taken")
    weak = client.post("/v1/signup", json={"email": "new@example.com", "password": "short", "account_name": "x"})
    assert_problem(assert_contract(weak), 400, "invalid_request")
    assert "password" in weak.json["errors"]


def test_sign_in_issues_a_new_key_and_refuses_wrong_passwords(client, assert_contract):
    sign_up(client, "me@example.com")
    ok = assert_contract(
        client.post("/v1/signin", json={"email": "me@example.com", "password": "correct horse battery"})
    )
    assert ok.status_code == 201 and ok.json["api_key"]["secret"].startswith("emo_")
    for email, password in (("me@example.com", "wrong password!"), ("nobody@example.com", "correct horse battery")):
        bad = client.post("/v1/signin", json={"email": email, "password": password})
        assert_problem(assert_contract(bad), 401, "invalid_credentials")


def test_keys_created_listed_and_revoked_with_immediate_effect(client, assert_contract):
    owner = sign_up(client)["api_key"]["secret"]
    created = assert_contract(
        client.post("/v1/keys", json={"name": "ci", "scopes": ["analyze"]}, headers=bearer(owner))
    )
    assert created.status_code == 201
    secret, key_id = created.json["secret"], created.json["id"]
    assert analyze(client, secret).status_code == 200
    listing = assert_contract(client.get("/v1/keys", headers=bearer(owner))).json["data"]
    assert {k["name"] for k in listing} == {"owner", "ci"}
    assert all("secret" not in k for k in listing)
    assert next(k for k in listing if k["id"] == key_id)["last_used_at"] is not None
    assert assert_contract(client.delete(f"/v1/keys/{key_id}", headers=bearer(owner))).status_code == 204
    assert_problem(analyze(client, secret), 401, "invalid_api_key")  # the very next request


def test_an_analyze_key_cannot_administer(client, assert_contract):
    owner = sign_up(client)["api_key"]["secret"]
    analyze_only = client.post("/v1/keys", json={"name": "app"}, headers=bearer(owner)).json["secret"]
    assert_problem(assert_contract(client.get("/v1/keys", headers=bearer(analyze_only))), 403, "insufficient_scope")


def test_owners_cannot_see_or_revoke_other_accounts_keys(client, assert_contract):
    alice = sign_up(client, "alice@example.com", "A")["api_key"]
    bob = sign_up(client, "bob@example.com", "B")["api_key"]
    alice_keys = client.get("/v1/keys", headers=bearer(alice["secret"])).json["data"]
    assert [k["id"] for k in alice_keys] == [alice["id"]]
    stolen = client.delete(f"/v1/keys/{alice['id']}", headers=bearer(bob["secret"]))
    assert_problem(assert_contract(stolen), 404, "not_found")
    assert analyze(client, alice["secret"]).status_code == 200


def test_usage_counts_units_per_image_and_per_started_ten_seconds(client, assert_contract):
    secret = sign_up(client)["api_key"]["secret"]
    for _ in range(3):
        assert analyze(client, secret).status_code == 200
    clip = client.post(
        "/v1/analyze", headers=bearer(secret), data={"file": ((VIDEOS / "single_face.mp4").open("rb"), "c"), "fps": "2"}
    )
    assert clip.status_code == 200
    assert_problem(analyze(client, secret, data=b"\x89PNG\r\n\x1a\nbroken"), 422, "media_corrupt")
    report = assert_contract(client.get("/v1/usage", headers=bearer(secret))).json
    assert report["total_units"] == 4 and report["total_requests"] == 4  # the corrupt upload is not billed
    assert len(report["data"]) == 1 and report["data"][0]["units"] == 4
    account = assert_contract(client.get("/v1/account", headers=bearer(secret))).json
    assert account["quota"]["used_units"] == 4


def test_usage_query_validation(client, assert_contract):
    secret = sign_up(client)["api_key"]["secret"]
    bad = client.get("/v1/usage?from=2026-02-01&to=2026-01-01", headers=bearer(secret))
    assert_problem(assert_contract(bad), 400, "invalid_request")
    empty = assert_contract(client.get("/v1/usage?from=2020-01-01&to=2020-01-31", headers=bearer(secret)))
    assert empty.json["total_units"] == 0 and empty.json["data"] == []


def test_idempotent_retry_replays_and_is_billed_once(client, assert_contract):
    secret = sign_up(client)["api_key"]["secret"]
    first = assert_contract(analyze(client, secret, idempotency_key="retry-1"))
    second = assert_contract(analyze(client, secret, idempotency_key="retry-1"))
    assert first.status_code == second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert second.json == first.json
    reused = analyze(client, secret, data=reencode(FACES / "img2.jpg", "JPEG", max_side=64), idempotency_key="retry-1")
    assert_problem(assert_contract(reused), 422, "idempotency_key_reused")
    assert client.get("/v1/usage", headers=bearer(secret)).json["total_units"] == 1


def test_a_stored_answer_is_forgotten_after_the_replay_window_and_its_key_refused(client, assert_contract):
    secret = sign_up(client)["api_key"]["secret"]
    assert analyze(client, secret, idempotency_key="old").status_code == 200
    assert analyze(client, secret, idempotency_key="recent").status_code == 200
    services = client.application.extensions["emoscope"]
    with services.db.session.begin() as session:
        old = session.scalars(select(ApiRequest).where(ApiRequest.idempotency_key == "old")).one()
        old.created_at -= metering.REPLAY_WINDOW + timedelta(seconds=1)
    # Refused past the window even before the sweeper ran: never analysed and billed a second time.
    assert_problem(assert_contract(analyze(client, secret, idempotency_key="old")), 422, "idempotency_key_expired")
    jobs.sweep(services.jobs)
    with services.db.session.begin() as session:
        bodies = dict(session.execute(select(ApiRequest.idempotency_key, ApiRequest.response_body)).all())
    assert bodies["old"] is None and bodies["recent"] is not None
    assert_problem(analyze(client, secret, idempotency_key="old"), 422, "idempotency_key_expired")
    assert analyze(client, secret, idempotency_key="recent").headers["Idempotent-Replayed"] == "true"
    assert client.get("/v1/usage", headers=bearer(secret)).json["total_units"] == 2


def test_a_failed_request_leaves_its_idempotency_key_free(client):
    secret = sign_up(client)["api_key"]["secret"]
    assert analyze(client, secret, data=b"garbage", idempotency_key="k").status_code == 415
    assert analyze(client, secret, data=b"garbage", idempotency_key="k").status_code == 415
    assert client.get("/v1/usage", headers=bearer(secret)).json["total_units"] == 0


def test_monthly_quota_is_402_with_retry_after(app_factory, assert_contract):
    client = app_factory(
        plans={"free": Plan("free", 2, 1000.0, 1000), "paid": Plan("paid", None, 1000.0, 1000)}
    ).test_client()
    secret = sign_up(client)["api_key"]["secret"]
    assert analyze(client, secret).status_code == 200
    assert analyze(client, secret).status_code == 200
    refused = assert_contract(analyze(client, secret))
    assert_problem(refused, 402, "quota_exceeded")
    assert int(refused.headers["Retry-After"]) > 0


def test_rate_limit_is_429_with_headers(app_factory, assert_contract):
    plans = {"free": Plan("free", 1000, 0.5, 2), "paid": Plan("paid", None, 0.5, 2)}
    client = app_factory(plans=plans).test_client()
    secret = sign_up(client)["api_key"]["secret"]
    ok = analyze(client, secret)
    assert ok.headers["X-RateLimit-Limit"] == "2" and ok.headers["X-RateLimit-Remaining"] == "1"
    assert analyze(client, secret).status_code == 200
    refused = assert_contract(analyze(client, secret))
    assert_problem(refused, 429, "rate_limited")
    assert int(refused.headers["Retry-After"]) >= 1 and refused.headers["X-RateLimit-Remaining"] == "0"


def test_past_due_accounts_are_refused_with_402(app_factory, assert_contract):
    app = app_factory()
    client = app.test_client()
    body = sign_up(client)
    with app.extensions["emoscope"].db.session.begin() as session:
        session.get(Account, body["account"]["id"]).subscription_status = "past_due"
    assert_problem(assert_contract(analyze(client, body["api_key"]["secret"])), 402, "payment_required")


def test_billing_endpoints_without_stripe_say_so(client, assert_contract):
    secret = sign_up(client)["api_key"]["secret"]
    response = client.post("/v1/billing/subscription", json={}, headers=bearer(secret))
    assert_problem(assert_contract(response), 503, "billing_not_configured")


def test_surplus_analyses_are_shed_with_503_not_queued(app_factory, assert_contract):
    app = app_factory(analysis_slots=1)
    client = app.test_client()
    secret = sign_up(client)["api_key"]["secret"]
    slots = app.extensions["emoscope"].analysis_slots
    slots.acquire()  # another request is analysing
    try:
        refused = assert_contract(analyze(client, secret))
        assert_problem(refused, 503, "overloaded")
        assert refused.headers["Retry-After"] == "1"
    finally:
        slots.release()
    assert analyze(client, secret).status_code == 200
    assert client.get("/v1/usage", headers=bearer(secret)).json["total_units"] == 1  # the shed one is not billed
