"""The newcomer's way in through the console: sign-up, the keyless demo, and no raw 405 behind a form."""

from __future__ import annotations

import re

import pytest

from api.web.websecurity import CSRF_FIELD
from tests.conftest import sign_up

pytestmark = pytest.mark.data

PASSWORD = "correct horse battery"


def csrf_of(page) -> str:
    return re.search(rf'name="{CSRF_FIELD}" value="([^"]+)"', page.get_data(as_text=True)).group(1)


def console_sign_up(client, email: str = "new@example.com", password: str = PASSWORD, account_name: str = "Newco"):
    form = client.get("/console/signup")
    return client.post(
        "/console/signup",
        data={CSRF_FIELD: csrf_of(form), "email": email, "password": password, "account_name": account_name},
    )


def test_sign_up_lands_on_the_dashboard_with_the_first_key_shown_once(app_factory):
    client = app_factory().test_client()
    assert 'href="/console/signup"' in client.get("/console/signin").get_data(as_text=True)
    created = console_sign_up(client)
    page = created.get_data(as_text=True)
    assert created.status_code == 201 and "Newco" in page and "Signed in as new@example.com" in page
    secret = re.search(r'id="new-secret"[^>]*value="(emo_[^"]+)"', page).group(1)
    account = client.get("/v1/account", headers={"Authorization": f"Bearer {secret}"})
    assert account.status_code == 200 and account.json["name"] == "Newco" and account.json["plan"] == "free"
    assert client.get("/console").status_code == 200  # signed in
    assert client.get("/console/signup").headers["Location"].endswith("/console")
    # The same password signs in through the API too: one account, whichever door made it.
    assert client.post("/v1/signin", json={"email": "new@example.com", "password": PASSWORD}).status_code == 201


def test_sign_up_applies_the_api_rules_and_names_each_field(app_factory):
    client = app_factory().test_client()
    refused = console_sign_up(client, email="not an email", password="password123", account_name="")
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400
    fields = dict(re.findall(r'data-field="(\w+)">([^<]+)<', page))
    assert set(fields) == {"email", "password", "account_name"}
    assert "common" in fields["password"]  # api/domain/passwords.py's policy, as at POST /v1/signup
    assert 'value="not an email"' in page and "password123" not in page  # what was typed, but never the password
    for weak in ("short", "ababababababab"):
        assert console_sign_up(client, password=weak).status_code == 400
    assert client.get("/console").status_code == 303  # nobody signed in


def test_a_taken_email_is_not_named_as_taken(app_factory):
    client = app_factory().test_client()
    sign_up(client, "owner@example.com")
    refused = console_sign_up(client, email="Owner@Example.com")
    page = refused.get_data(as_text=True)
    assert refused.status_code == 409 and "No account was created with these details" in page
    assert not re.search(r"exists|registered|taken|in use", page, re.IGNORECASE)
    assert client.get("/console").status_code == 303


def test_sign_up_needs_the_forms_token_and_shares_the_addresss_budget(app_factory, monkeypatch):
    monkeypatch.setattr("api.web.credentials.CREDENTIAL_RATE", 0.001)  # no refill while the test runs
    client = app_factory().test_client()
    forged = client.post("/console/signup", data={"email": "a@example.com", "password": PASSWORD, "account_name": "A"})
    assert forged.status_code == 403
    sign_up(client)  # one of the address's 5 attempts, through the API
    statuses = [console_sign_up(client, email=f"n{i}@example.com", password="short").status_code for i in range(5)]
    assert statuses == [400] * 4 + [429]
    assert "Retry-After" in console_sign_up(client).headers


def test_a_keyless_demo_visitor_is_offered_sign_up_and_the_dev_key_only_in_dev_mode(app_factory):
    production = app_factory().test_client().get("/demo").get_data(as_text=True)
    assert 'id="keyless-signup"' in production and 'href="/console/signup"' in production
    assert "make run" not in production and "demo-key" not in production
    development = app_factory(dev_mode=True).test_client().get("/demo").get_data(as_text=True)
    assert 'id="dev-key-hint"' in development and "emoscope-admin demo-key" in development


def test_no_console_address_answers_a_get_with_a_405(app_factory):
    """A reload or the back button after any console form asks its POST-only address with GET."""
    app = app_factory()
    client = app.test_client()
    sign_up(client)
    signed_in = client.post(
        "/console/signin",
        data={CSRF_FIELD: csrf_of(client.get("/console/signin")), "email": "owner@example.com", "password": PASSWORD},
    )
    assert signed_in.status_code == 303
    posted = {
        rule.rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/console") and "POST" in rule.methods
    }
    assert len(posted) >= 12
    for path in sorted(posted):
        answer = client.get(path.replace("<int:key_id>", "1").replace("<study_id>", "st_unknown"))
        assert answer.status_code in (200, 303), (path, answer.status_code)
