"""Owner endpoints: sign-up, sign-in, API keys, usage and the account's plan."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from flask import Blueprint, g, jsonify, request

from api.domain import accounts, metering
from api.store import repository
from api.store.db import ApiKey, utcnow
from api.usecases import erasure
from api.web import credentials
from api.web.auth import require_api_key
from api.web.context import services as current_services
from api.web.credentials import check_password, create_capped_key, credentials_guard, send_reset_link
from api.web.errors import ApiError
from api.web.parsing import json_object, load
from api.web.problems import invalid_reset_token, key_limit_problems
from api.web.schemas import (
    KeyCreateSchema,
    PasswordChangeSchema,
    PasswordResetConfirmSchema,
    PasswordResetRequestSchema,
    SignInSchema,
    SignUpSchema,
    UsageQuerySchema,
)

bp = Blueprint("account", __name__)


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


@bp.post("/v1/signup")
def sign_up():
    credentials_guard()
    fields = load(SignUpSchema(), json_object())
    try:
        account, owner, key, secret = credentials.sign_up(fields["email"], fields["password"], fields["account_name"])
    except accounts.EmailTaken as exc:
        raise ApiError(
            409, "email_taken", "Email already registered", "an account with this email exists; sign in instead"
        ) from exc
    body = {
        "account": {"id": account.id, "name": account.name, "plan": account.plan},
        "owner": {"email": owner.email},
        "api_key": key_json(key, secret),
    }
    return jsonify(body), 201


@bp.post("/v1/signin")
def sign_in():
    fields = load(SignInSchema(), json_object())
    services = current_services()
    with services.db.session.begin() as session:
        owner = check_password(session, fields["email"], fields["password"])
        if owner is None:
            raise ApiError(401, "invalid_credentials", "Sign-in failed", "wrong email or password")
        with key_limit_problems():
            issued = accounts.sign_in(
                session,
                owner,
                fields["key_name"],
                services.settings.api_key_pepper,
                services.settings.max_keys_per_account,
                timedelta(hours=services.settings.sign_in_key_hours),
            )
        return jsonify({"api_key": key_json(*issued)}), 201


@bp.post("/v1/password")
def change_password():
    fields = load(PasswordChangeSchema(), json_object())
    with current_services().db.session.begin() as session:
        owner = check_password(session, fields["email"], fields["current_password"])
        if owner is None:
            raise ApiError(401, "invalid_credentials", "Password not changed", "wrong email or current password")
        accounts.set_password(session, owner, fields["new_password"])
    return "", 204


@bp.post("/v1/password-reset")
def request_password_reset():
    fields = load(PasswordResetRequestSchema(), json_object())
    send_reset_link(fields["email"])
    return jsonify(
        {"status": "requested", "detail": "if an account owner has this email, a reset link is on its way"}
    ), 202


@bp.post("/v1/password-reset/confirm")
def confirm_password_reset():
    fields = load(PasswordResetConfirmSchema(), json_object())
    services = current_services()
    with services.db.session.begin() as session:
        owner = accounts.reset_password(
            session, fields["token"], fields["new_password"], services.settings.api_key_pepper
        )
    if owner is None:
        raise invalid_reset_token()
    return "", 204


@bp.get("/v1/keys")
@require_api_key("admin")
def list_keys():
    with current_services().db.session.begin() as session:
        return jsonify({"data": [key_json(k) for k in repository.list_api_keys(session, g.account_id)]})


@bp.post("/v1/keys")
@require_api_key("admin")
def create_key():
    fields = load(KeyCreateSchema(), json_object())
    with current_services().db.session.begin() as session:
        key, secret = create_capped_key(session, g.account, fields["name"], fields["scopes"])
        return jsonify(key_json(key, secret)), 201


@bp.delete("/v1/keys/<int:key_id>")
@require_api_key("admin")
def revoke_key(key_id: int):
    with current_services().db.session.begin() as session:
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
    with current_services().db.session.begin() as session:
        return jsonify(metering.usage_report(session, g.account_id, first, last))


@bp.get("/v1/account")
@require_api_key("admin")
def account():
    services = current_services()
    plan = services.settings.plans[g.account.plan]
    with services.db.session.begin() as session:
        quota = metering.quota(session, g.account_id, plan)
    return jsonify(
        {
            "id": g.account.id,
            "name": g.account.name,
            "plan": plan.name,
            "subscription_status": g.account.subscription_status,
            "quota": quota,
            "rate_limit": {"requests_per_second": plan.requests_per_second, "burst": plan.burst},
            "billing_enabled": services.billing is not None,
            "webhook_signing_secret": g.account.webhook_secret,
        }
    )


@bp.delete("/v1/account/data")
@require_api_key("admin")
def delete_data():
    erased = erasure.erase_account_data(current_services().jobs, g.account_id)
    return jsonify(dataclasses.asdict(erased))
