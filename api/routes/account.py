"""Owner endpoints: sign-up, sign-in, API keys, usage and the account's plan."""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import smtplib
from datetime import timedelta
from urllib.parse import urlencode

from flask import Blueprint, current_app, g, jsonify, request

from api import accounts, erasure, metering, repository
from api.auth import enforce_rate_limit, require_api_key
from api.db import ApiKey, Owner, utcnow
from api.errors import ApiError
from api.routes.parsing import json_object, load
from api.schemas import (KeyCreateSchema, PasswordChangeSchema, PasswordResetConfirmSchema, PasswordResetRequestSchema,
                         SignInSchema, SignUpSchema, UsageQuerySchema)

bp = Blueprint("account", __name__)

# Per client address, against sign-up spam and password guessing.
CREDENTIAL_RATE, CREDENTIAL_BURST = 0.2, 5
# Per email, counting failures only, from any address: ten wrong passwords lock the email, then one
# more guess every 90 s. An attacker can keep an owner locked out of signing in this way (not out
# of the keys or console sessions the owner has); with many addresses they would otherwise guess freely.
FAILED_SIGN_IN_RATE, FAILED_SIGN_IN_BURST = 1 / 90, 10
# Per email: reset links are emails we send, so asking for them must not become a way to flood a mailbox.
RESET_RATE, RESET_BURST = 1 / 600, 3
log = logging.getLogger(__name__)


def key_json(key: ApiKey, secret: str | None = None) -> dict:
    body = {
        "id": key.id,
        "prefix": f"emo_{key.prefix}",
        "name": key.name,
        "scopes": key.scopes.split(","),
        "created_at": key.created_at.isoformat(),
        "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
    }
    if secret is not None:
        body["secret"] = secret
    return body


def _services():
    return current_app.extensions["emoscope"]


def credentials_guard() -> None:
    """Shared by every door that takes a password (the API and the console): one budget per address."""
    enforce_rate_limit(_services(), f"credentials:ip:{request.remote_addr}", CREDENTIAL_RATE, CREDENTIAL_BURST)


def _email_bucket(email: str) -> str:
    """Buckets per email name a hash, so that no address is kept in Redis."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def check_password(session, email: str, password: str) -> Owner | None:
    """`accounts.verify_owner` behind the address's budget and the email's lock-out (API and console)."""
    credentials_guard()
    limiter = _services().rate_limiter
    bucket = f"failed-sign-ins:{_email_bucket(email)}"
    state = limiter.hit(bucket, FAILED_SIGN_IN_RATE, FAILED_SIGN_IN_BURST, take=False)
    if not state.allowed:
        raise ApiError(429, "sign_in_locked", "Sign-in locked",
                       f"too many failed sign-ins for this email; retry after {state.retry_after_s} s",
                       headers={"Retry-After": str(state.retry_after_s)})
    owner = accounts.verify_owner(session, email, password)
    if owner is None:
        limiter.hit(bucket, FAILED_SIGN_IN_RATE, FAILED_SIGN_IN_BURST)
    return owner


def key_limit_problem(exc: accounts.KeyLimitReached) -> ApiError:
    return ApiError(409, "key_limit_reached", "Too many keys",
                    f"an account holds at most {exc.args[0]} active keys; revoke one first")


def create_capped_key(session, account, name: str, scopes: list[str]) -> tuple[ApiKey, str]:
    """`accounts.create_key` with this deployment's cap, as the API and the console create keys."""
    settings = _services().settings
    try:
        return accounts.create_key(session, account, settings.api_key_pepper, name, tuple(dict.fromkeys(scopes)),
                                   settings.max_keys_per_account)
    except accounts.KeyLimitReached as exc:
        raise key_limit_problem(exc) from exc


@bp.post("/v1/signup")
def sign_up():
    credentials_guard()
    fields = load(SignUpSchema(), json_object())
    services = _services()
    try:
        with services.db.session.begin() as session:
            account, key, secret = accounts.sign_up(session, fields["email"], fields["password"],
                                                    fields["account_name"], services.settings.api_key_pepper)
            body = {"account": {"id": account.id, "name": account.name, "plan": account.plan},
                    "owner": {"email": fields["email"].strip().lower()}, "api_key": key_json(key, secret)}
    except accounts.EmailTaken as exc:
        raise ApiError(409, "email_taken", "Email already registered",
                       "an account with this email exists; sign in instead") from exc
    return jsonify(body), 201


@bp.post("/v1/signin")
def sign_in():
    fields = load(SignInSchema(), json_object())
    services = _services()
    with services.db.session.begin() as session:
        owner = check_password(session, fields["email"], fields["password"])
        if owner is None:
            raise ApiError(401, "invalid_credentials", "Sign-in failed", "wrong email or password")
        try:
            issued = accounts.sign_in(session, owner, fields["key_name"], services.settings.api_key_pepper,
                                      services.settings.max_keys_per_account,
                                      timedelta(hours=services.settings.sign_in_key_hours))
        except accounts.KeyLimitReached as exc:
            raise key_limit_problem(exc) from exc
        return jsonify({"api_key": key_json(*issued)}), 201


@bp.post("/v1/password")
def change_password():
    fields = load(PasswordChangeSchema(), json_object())
    with _services().db.session.begin() as session:
        owner = check_password(session, fields["email"], fields["current_password"])
        if owner is None:
            raise ApiError(401, "invalid_credentials", "Password not changed", "wrong email or current password")
        accounts.set_password(session, owner, fields["new_password"])
    return "", 204


def send_reset_link(email: str) -> None:
    """Mail a reset link if an owner has this email; nothing tells the caller whether one does."""
    credentials_guard()
    services = _services()
    enforce_rate_limit(services, f"password-resets:{_email_bucket(email)}", RESET_RATE, RESET_BURST)
    with services.db.session.begin() as session:
        issued = accounts.request_password_reset(session, email, services.settings.api_key_pepper,
                                                 accounts.RESET_LIFETIME)
        if issued is None:
            return
        address, token = issued[0].email, issued[1]
    link = f"{services.settings.public_url.rstrip('/')}/console/password-reset?{urlencode({'token': token})}"
    try:
        services.mailer.send(address, "Reset your Emoscope password",
                             f"Someone asked to reset the password of the Emoscope account owner {address}.\n\n"
                             f"Set a new password here (the link works once, within an hour):\n{link}\n\n"
                             "If it was not you, ignore this email: the password stays as it is.")
    except (smtplib.SMTPException, OSError):
        log.exception("the password reset email could not be sent")


@bp.post("/v1/password-reset")
def request_password_reset():
    fields = load(PasswordResetRequestSchema(), json_object())
    send_reset_link(fields["email"])
    return jsonify({"status": "requested",
                    "detail": "if an account owner has this email, a reset link is on its way"}), 202


@bp.post("/v1/password-reset/confirm")
def confirm_password_reset():
    fields = load(PasswordResetConfirmSchema(), json_object())
    services = _services()
    with services.db.session.begin() as session:
        owner = accounts.reset_password(session, fields["token"], fields["new_password"],
                                        services.settings.api_key_pepper)
    if owner is None:
        raise invalid_reset_token()
    return "", 204


def invalid_reset_token() -> ApiError:
    return ApiError(400, "invalid_reset_token", "Invalid reset link",
                    "this reset link is unknown, used or expired; ask for a new one")


@bp.get("/v1/keys")
@require_api_key("admin")
def list_keys():
    with _services().db.session.begin() as session:
        return jsonify({"data": [key_json(k) for k in repository.list_api_keys(session, g.account_id)]})


@bp.post("/v1/keys")
@require_api_key("admin")
def create_key():
    fields = load(KeyCreateSchema(), json_object())
    with _services().db.session.begin() as session:
        key, secret = create_capped_key(session, g.account, fields["name"], fields["scopes"])
        return jsonify(key_json(key, secret)), 201


@bp.delete("/v1/keys/<int:key_id>")
@require_api_key("admin")
def revoke_key(key_id: int):
    with _services().db.session.begin() as session:
        if repository.revoke_api_key(session, g.account_id, key_id) is None:
            raise ApiError(404, "not_found", "Not found", f"no key {key_id} in this account")
    return "", 204


@bp.get("/v1/usage")
@require_api_key("admin")
def usage():
    query = load(UsageQuerySchema(), request.args.to_dict())
    today = utcnow().date()
    first = query.get("start") or today.replace(day=1)
    last = query.get("end") or today
    with _services().db.session.begin() as session:
        return jsonify(metering.usage_report(session, g.account_id, first, last))


@bp.get("/v1/account")
@require_api_key("admin")
def account():
    services = _services()
    plan = services.settings.plans[g.account.plan]
    with services.db.session.begin() as session:
        quota = metering.quota(session, g.account_id, plan)
    return jsonify({
        "id": g.account.id,
        "name": g.account.name,
        "plan": plan.name,
        "subscription_status": g.account.subscription_status,
        "quota": quota,
        "rate_limit": {"requests_per_second": plan.requests_per_second, "burst": plan.burst},
        "billing_enabled": services.billing is not None,
        "webhook_signing_secret": g.account.webhook_secret,
    })


@bp.delete("/v1/account/data")
@require_api_key("admin")
def delete_data():
    erased = erasure.erase_account_data(_services().jobs, g.account_id)
    return jsonify(dataclasses.asdict(erased))
