"""Secrets that production depends on: no usable default, development secrets only on request."""

from __future__ import annotations

import hashlib
import hmac
import stat
import subprocess
import sys
import time

import pytest
from flask.sessions import SecureCookieSessionInterface

from api.web.app import create_app
from api.web.websecurity import CSRF_FIELD, SUBMISSION_FIELD
from api.wiring.config import DEV_SECRETS_FILE, REPO_ROOT, InsecureSettings, Settings
from tests.conftest import sign_up

# What the pepper and the console's signing secret used to be when EMOSCOPE_API_KEY_PEPPER was unset.
FORMER_PUBLIC_PEPPER = "embedded-default-pepper"
STRONG = "s" * 48


@pytest.fixture()
def environment(monkeypatch, tmp_path):
    """An environment with none of the service's secrets set, and its own state folder."""
    for name in ("EMOSCOPE_API_KEY_PEPPER", "EMOSCOPE_SESSION_SECRET", "EMOSCOPE_DEV_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EMOSCOPE_STATE_DIR", str(tmp_path / "state"))
    return monkeypatch


def test_the_service_refuses_to_start_without_its_own_pepper(environment):
    with pytest.raises(InsecureSettings, match="EMOSCOPE_API_KEY_PEPPER is not set"):
        Settings.from_env()


@pytest.mark.parametrize("variable", ["EMOSCOPE_API_KEY_PEPPER", "EMOSCOPE_SESSION_SECRET"])
def test_short_secrets_are_refused(environment, variable):
    environment.setenv("EMOSCOPE_API_KEY_PEPPER", STRONG)
    environment.setenv(variable, FORMER_PUBLIC_PEPPER)
    with pytest.raises(InsecureSettings, match=f"{variable} is shorter"):
        Settings.from_env()


def test_a_set_pepper_is_used_and_signs_sessions_privately(environment):
    environment.setenv("EMOSCOPE_API_KEY_PEPPER", STRONG)
    settings = Settings.from_env()
    assert settings.api_key_pepper == STRONG and not settings.dev_mode


def test_development_mode_keeps_random_secrets_in_the_state_folder(environment, tmp_path):
    environment.setenv("EMOSCOPE_DEV_MODE", "true")
    first, again = Settings.from_env(), Settings.from_env()
    assert first.api_key_pepper == again.api_key_pepper  # keys made before a restart still work
    assert first.session_secret == again.session_secret != first.api_key_pepper
    assert len(first.api_key_pepper) >= 32 and first.api_key_pepper != FORMER_PUBLIC_PEPPER
    kept = tmp_path / "state" / DEV_SECRETS_FILE
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    environment.setenv("EMOSCOPE_STATE_DIR", str(tmp_path / "elsewhere"))
    assert Settings.from_env().api_key_pepper != first.api_key_pepper


def forged_cookie(app, secret: str, **values) -> str:
    """A console session cookie signed with `secret`, as an attacker who knows it would make one."""
    app = type("Signer", (), {"secret_key": secret, "config": app.config})()
    return SecureCookieSessionInterface().get_signing_serializer(app).dumps(values)


def forge_admin_key(app) -> int:
    """The probe's attack: sign a console session for owner 1 (ids are sequential) with the public secret,
    then ask for an admin key on that owner's account. Returns the status of the key request."""
    client = app.test_client()
    sign_up(client, "victim@example.com", "Victim")
    public_secret = hmac.new(FORMER_PUBLIC_PEPPER.encode(), b"emoscope console session", hashlib.sha256).hexdigest()
    cookie = forged_cookie(
        app, public_secret, owner_id=1, account_id=1, signed_in_at=time.time(), **{CSRF_FIELD: "forged"}
    )
    client.set_cookie("emoscope_console", cookie, path="/console")
    return client.post(
        "/console/keys", data={CSRF_FIELD: "forged", SUBMISSION_FIELD: "once", "name": "mine", "scopes": "admin"}
    ).status_code


def test_a_session_signed_with_the_former_public_secret_takes_over_no_account(environment, analyzer, app_factory):
    # The attack itself works against a service signing with the public secret, as the service did...
    assert forge_admin_key(app_factory(api_key_pepper=FORMER_PUBLIC_PEPPER)) == 201
    # ...and gets nowhere against one started as `make run` starts it.
    environment.setenv("EMOSCOPE_DEV_MODE", "true")
    app = create_app(Settings.from_env(), analyzer=analyzer)
    app.extensions["emoscope"].db.migrate()
    assert forge_admin_key(app) == 403  # the cookie is not a session at all: refused before any sign-in check


def test_the_admin_command_refuses_to_run_without_secrets(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "EMOSCOPE_STATE_DIR": str(tmp_path)}
    refused = subprocess.run(
        [sys.executable, "-m", "api.wiring.cli", "migrate"], env=env, cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert refused.returncode != 0
    assert "EMOSCOPE_API_KEY_PEPPER is not set" in refused.stderr and "Traceback" not in refused.stderr
