"""The owner console and the demo page through Flask's test client: sessions, CSRF, headers, actions."""

from __future__ import annotations

import io
import re
import time
from dataclasses import replace

import pytest
import requests

from api.web.routes.console import USAGE_DAYS
from api.web.websecurity import CONTENT_SECURITY_POLICY, CSRF_FIELD, SESSION_LIFETIME
from tests.conftest import FACES, sign_up
from tests.samples import reencode
from tests.test_billing import config, paid, stripe_base  # noqa: F401  (fixtures: localstripe and a paying account)

pytestmark = [pytest.mark.postgres, pytest.mark.data]

TINY_FACE = reencode(FACES / "img1.jpg", "JPEG", max_side=64)
PASSWORD = "correct horse battery"  # what tests.conftest.sign_up uses


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def analyze(client, secret: str, **fields):
    return client.post(
        "/v1/analyze", headers=bearer(secret), data={"file": (io.BytesIO(TINY_FACE), "f"), "detector": "skip", **fields}
    )


def csrf_of(page) -> str:
    return re.search(rf'name="{CSRF_FIELD}" value="([^"]+)"', page.get_data(as_text=True)).group(1)


def hidden_fields(page) -> dict:
    """What the page's forms send unseen: the CSRF token and, on forms that create something, a submission id."""
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page.get_data(as_text=True)))


def sign_in(client, email: str = "owner@example.com", password: str = PASSWORD):
    form = client.get("/console/signin")
    return client.post("/console/signin", data={CSRF_FIELD: csrf_of(form), "email": email, "password": password})


@pytest.fixture()
def owner(app_factory):
    """(client signed in to the console, the owner's admin key from sign-up, account id)."""
    client = app_factory().test_client()
    body = sign_up(client)
    assert sign_in(client).status_code == 303
    return client, body["api_key"]["secret"], body["account"]["id"]


def console_post(client, path: str, **fields):
    """A console form submission with the session's CSRF token, as the browser sends it."""
    return client.post(path, data={**hidden_fields(client.get("/console")), **fields})


def test_pages_carry_a_strict_content_security_policy(client):
    for path in ("/demo", "/console/signin", "/static/demo.js", "/static/emoscope.css"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in CONTENT_SECURITY_POLICY and "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY and "http" not in CONTENT_SECURITY_POLICY.replace(
        "https://billing.stripe.com", ""
    )
    assert client.get("/").headers["Location"].endswith("/demo")


def test_pages_have_no_inline_script_or_style(owner):
    client, _, _ = owner
    created = console_post(client, "/console/keys", name="ci")
    pages = [
        client.get("/demo"),
        client.get("/console"),
        created,
        client.get("/console/signin"),
        client.post("/console/keys"),
    ]  # the last: the refusal page (no token)
    for page in pages:
        html = page.get_data(as_text=True)
        assert "<html" in html and page.mimetype == "text/html"
        assert not re.search(r"<script(?![^>]*\ssrc=)", html), "inline <script>"
        assert not re.search(r"\sstyle=|<style|\son\w+=", html), "inline style or event handler"


def test_session_cookie_is_secure_httponly_samesite_and_confined_to_the_console(app_factory):
    cookie = app_factory().test_client().get("/console/signin").headers["Set-Cookie"]
    assert cookie.startswith("emoscope_console=")
    for attribute in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/console"):
        assert attribute in cookie
    # Plain-http loopback (make run, browser tests) is an explicit setting, not a default.
    loopback = app_factory(cookie_secure=False).test_client().get("/console/signin").headers["Set-Cookie"]
    assert "Secure" not in loopback and "HttpOnly" in loopback


def test_no_cookie_on_api_answers(client, api_key):
    assert "Set-Cookie" not in analyze(client, api_key).headers
    assert "Set-Cookie" not in client.get("/demo").headers


def test_state_changing_requests_without_the_csrf_token_are_refused(owner):
    client, secret, _ = owner
    keys_before = client.get("/v1/keys", headers=bearer(secret)).json["data"]
    for data in ({"name": "forged"}, {"name": "forged", CSRF_FIELD: "not-the-token"}):
        refused = client.post("/console/keys", data=data)
        assert refused.status_code == 403 and "expired" in refused.get_data(as_text=True)
    assert client.post("/console/data/delete", data={"confirm": "yes"}).status_code == 403
    assert client.post("/console/signout").status_code == 403
    assert client.get("/v1/keys", headers=bearer(secret)).json["data"] == keys_before
    assert client.get("/console").status_code == 200  # still signed in


def test_sign_in_needs_the_token_of_a_form_served_by_us(app_factory):
    client = app_factory().test_client()
    sign_up(client)
    refused = client.post("/console/signin", data={"email": "owner@example.com", "password": PASSWORD})
    assert refused.status_code == 403
    assert client.get("/console").status_code == 303


def test_sign_in_and_sign_out(app_factory):
    client = app_factory().test_client()
    sign_up(client, account_name="Acme Vision")
    assert client.get("/console").headers["Location"].endswith("/console/signin")
    wrong = sign_in(client, password="not the password")
    assert wrong.status_code == 401 and "Wrong email or password" in wrong.get_data(as_text=True)
    assert sign_in(client, email="nobody@example.com").status_code == 401
    assert client.get("/console").status_code == 303
    signed_in = sign_in(client, email="OWNER@example.com")
    assert signed_in.status_code == 303 and signed_in.headers["Location"].endswith("/console")
    page = client.get("/console")
    assert page.status_code == 200 and "Acme Vision" in page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store"
    signed_out = console_post(client, "/console/signout")
    assert signed_out.status_code == 303
    assert client.get("/console").status_code == 303


def test_sign_out_ends_every_copy_of_the_session(app_factory):
    app = app_factory()
    client, elsewhere = app.test_client(), app.test_client()
    sign_up(client)
    assert sign_in(client).status_code == 303 and sign_in(elsewhere).status_code == 303
    copied = client.get_cookie("emoscope_console", path="/console").value  # e.g. lifted from the browser
    assert console_post(client, "/console/signout").status_code == 303
    assert elsewhere.get("/console").status_code == 303  # the other browser's session ended too
    thief = app.test_client()
    thief.set_cookie("emoscope_console", copied, path="/console")
    assert thief.get("/console").status_code == 303
    assert sign_in(client).status_code == 303 and client.get("/console").status_code == 200  # a new one works


def test_sessions_end_twelve_hours_after_sign_in_however_active(owner):
    client, _, _ = owner
    with client.session_transaction("/console") as session:  # the cookie's path
        session["signed_in_at"] -= SESSION_LIFETIME.total_seconds() + 1
    assert client.get("/console").headers["Location"].endswith("/console/signin")
    with client.session_transaction("/console") as session:  # the cookie's path
        assert "owner_id" not in session


def test_console_sign_in_shares_the_api_password_guessing_budget(app_factory, monkeypatch):
    monkeypatch.setattr("api.web.credentials.CREDENTIAL_RATE", 0.001)  # no refill while the test runs
    client = app_factory().test_client()
    sign_up(client)  # one of the address's 5 attempts
    statuses = [sign_in(client, password="guess number one").status_code for _ in range(5)]
    assert statuses[:4] == [401] * 4 and statuses[4] == 429
    limited = sign_in(client)
    assert limited.status_code == 429 and limited.mimetype == "text/html" and "Retry-After" in limited.headers


def test_create_key_shows_the_secret_once(owner):
    client, _, _ = owner
    created = console_post(client, "/console/keys", name="web app", scopes="analyze")
    assert created.status_code == 201
    secret = re.search(r'id="new-secret"[^>]*value="(emo_[^"]+)"', created.get_data(as_text=True)).group(1)
    assert analyze(client, secret).status_code == 200
    page = client.get("/console").get_data(as_text=True)
    assert "web app" in page and secret.split("_")[1] in page  # listed by its public prefix
    assert secret not in page


def test_a_reloaded_create_key_form_creates_no_second_key(owner):
    client, secret, _ = owner
    form = {**hidden_fields(client.get("/console")), "name": "once", "scopes": "analyze"}
    assert client.post("/console/keys", data=form).status_code == 201
    again = client.post("/console/keys", data=form)  # the browser's "resubmit the form?" after a reload
    assert again.status_code == 409 and "already created" in again.get_data(as_text=True)
    assert [k["name"] for k in client.get("/v1/keys", headers=bearer(secret)).json["data"]].count("once") == 1
    assert console_post(client, "/console/keys", name="once").status_code == 201  # a freshly served form works


def test_create_key_validates_like_the_api(owner):
    client, secret, _ = owner
    refused = console_post(client, "/console/keys", name="x", scopes="root")
    assert refused.status_code == 400 and refused.mimetype == "text/html"
    admin = console_post(client, "/console/keys", name="ops", scopes=["analyze", "admin"])
    new = re.search(r'value="(emo_[^"]+)"', admin.get_data(as_text=True)).group(1)
    assert client.get("/v1/keys", headers=bearer(new)).status_code == 200


def test_revoke_key_takes_effect_at_once_and_only_in_the_owners_account(owner, app_factory):
    client, secret, _ = owner
    created = client.post("/v1/keys", json={"name": "app"}, headers=bearer(secret)).json
    revoked = console_post(client, f"/console/keys/{created['id']}/revoke")
    assert revoked.status_code == 303
    page = client.get("/console").get_data(as_text=True)
    assert f"{created['prefix']} is revoked" in page
    assert analyze(client, created["secret"]).status_code == 401
    other = sign_up(client, "other@example.com", "Other")["api_key"]
    assert console_post(client, f"/console/keys/{other['id']}/revoke").status_code == 404
    assert client.get("/v1/keys", headers=bearer(other["secret"])).status_code == 200


def test_plan_quota_and_usage_by_day(owner):
    client, secret, _ = owner
    for _ in range(3):
        assert analyze(client, secret).status_code == 200
    page = client.get("/console").get_data(as_text=True)
    assert "3 of 1000000 units" in page  # tests run with an unthrottled free plan
    bars = re.findall(r'class="usage-bar"[^>]*data-units="(\d+)"', page)
    assert len(bars) == USAGE_DAYS and bars[-1] == "3" and set(bars[:-1]) == {"0"}


def test_billing_off_is_said_not_failed(owner):
    client, _, _ = owner
    assert "Billing is off on this deployment" in client.get("/console").get_data(as_text=True)
    portal = console_post(client, "/console/billing/portal")
    assert portal.status_code == 503 and portal.mimetype == "text/html"
    assert "without Stripe" in portal.get_data(as_text=True)


def test_billing_portal_link_for_a_paying_account(paid):
    app, _, _, _ = paid
    client = app.test_client()
    assert sign_in(client, email="payer@example.com").status_code == 303
    page = client.get("/console").get_data(as_text=True)
    assert "Open the Stripe customer portal" in page
    portal = console_post(client, "/console/billing/portal")
    assert portal.status_code == 303 and "/portal/" in portal.headers["Location"]


def confirm_card_setup(stripe_base: str, client_secret: str, number: str = "4242424242424242") -> dict:
    """What Stripe.js's confirmCardSetup sends from the owner's browser (publishable key, card data)."""
    intent = client_secret.split("_secret_")[0]
    return requests.post(
        f"{stripe_base}/v1/setup_intents/{intent}/confirm",
        timeout=10,
        json={
            "key": "pk_test_emoscope",
            "client_secret": client_secret,
            "payment_method_data": {
                "type": "card",
                "card": {"number": number, "exp_month": "12", "exp_year": "2035", "cvc": "123"},
            },
        },
    )


def test_owner_moves_to_the_paid_plan_with_a_card_saved_by_stripe(app_factory, config, stripe_base):
    app = app_factory(
        stripe=replace(config, publishable_key="pk_test_emoscope", js_url=f"{stripe_base}/js.stripe.com/v3/")
    )
    client = app.test_client()
    secret = sign_up(client)["api_key"]["secret"]
    assert sign_in(client).status_code == 303
    assert 'id="upgrade"' in client.get("/console").get_data(as_text=True)

    form = client.get("/console/billing/card")
    assert form.status_code == 200
    policy = form.headers["Content-Security-Policy"]  # Stripe.js may run here, and only here
    assert f"script-src 'self' {stripe_base}" in policy and "script-src" not in CONTENT_SECURITY_POLICY
    assert f'src="{stripe_base}/js.stripe.com/v3/"' in form.get_data(as_text=True)
    client_secret = re.search(r'data-client-secret="(seti_\w+_secret_\w+)"', form.get_data(as_text=True)).group(1)
    saved = confirm_card_setup(stripe_base, client_secret)
    assert saved.status_code == 200 and saved.json()["status"] == "succeeded"

    fields = {**hidden_fields(form), "payment_method": saved.json()["payment_method"]}
    assert client.post("/console/billing/subscribe", data=fields).status_code == 303
    page = client.get("/console").get_data(as_text=True)
    assert "on the paid plan" in page and "Subscription: active" in page and 'id="upgrade"' not in page
    account = client.get("/v1/account", headers=bearer(secret)).json
    assert account["plan"] == "paid" and account["quota"]["monthly_units"] is None
    assert client.get("/console/billing/card").status_code == 303  # once subscribed, the portal manages cards


def test_card_form_needs_a_publishable_key_and_a_saved_card(app_factory, config):
    client = app_factory(stripe=config).test_client()
    sign_up(client)
    assert sign_in(client).status_code == 303
    page = client.get("/console").get_data(as_text=True)
    assert 'id="upgrade"' not in page and "POST /v1/billing/subscription" in page
    assert client.get("/console/billing/card").status_code == 409
    assert console_post(client, "/console/billing/subscribe", payment_method="").status_code == 400


def wait_for_job(client, secret: str, job_id: str) -> dict:
    deadline = time.monotonic() + 60
    while True:
        job = client.get(f"/v1/jobs/{job_id}", headers=bearer(secret)).json
        if job["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def test_data_deletion_from_the_console(owner):
    client, secret, _ = owner
    job_id = analyze(client, secret, **{"async": "true"}).json["id"]
    assert wait_for_job(client, secret, job_id)["status"] == "succeeded"
    unconfirmed = console_post(client, "/console/data/delete")
    assert unconfirmed.status_code == 400
    assert client.get(f"/v1/jobs/{job_id}", headers=bearer(secret)).status_code == 200
    deleted = console_post(client, "/console/data/delete", confirm="yes")
    assert deleted.status_code == 303
    page = client.get("/console").get_data(as_text=True)
    assert "(with their media and results): 1;" in page and "kept for invoicing" in page
    assert client.get(f"/v1/jobs/{job_id}", headers=bearer(secret)).status_code == 404
    assert client.get("/v1/usage", headers=bearer(secret)).json["total_units"] == 1


def test_console_sign_in_refuses_text_the_database_cannot_store(app_factory, postgres_url):
    client = app_factory(postgres_url).test_client()
    for email in ("own\x00er@example.com", "owner@example.com\x00"):
        refused = client.post(
            "/console/signin",
            data={CSRF_FIELD: csrf_of(client.get("/console/signin")), "email": email, "password": PASSWORD},
        )
        assert refused.status_code == 400, refused.get_data(as_text=True)


def test_reloading_the_key_form_goes_to_the_dashboard_not_a_405(owner):
    client, _, _ = owner
    reloaded = client.get("/console/keys")
    assert reloaded.status_code == 303 and reloaded.headers["Location"].endswith("/console")
