"""Billing endpoints: subscribe to the metered plan, open the Stripe portal, receive Stripe webhooks."""
from __future__ import annotations

import stripe
from flask import Blueprint, current_app, g, jsonify, request

from api.auth import require_api_key
from api.billing import Billing, apply_webhook_event
from api.db import Account
from api.errors import ApiError
from api.routes.parsing import json_object, load
from api.schemas import PortalSchema, SubscribeSchema

bp = Blueprint("billing", __name__)


def configured_billing() -> Billing:
    billing = current_app.extensions["emoscope"].billing
    if billing is None:
        raise ApiError(503, "billing_not_configured", "Billing not configured",
                       "this deployment runs without Stripe (set STRIPE_API_KEY)")
    return billing


def stripe_unavailable(exc: stripe.StripeError) -> ApiError:
    current_app.logger.warning("stripe call failed: %s", type(exc).__name__)
    return ApiError(503, "billing_unavailable", "Billing unavailable", "Stripe could not be reached; retry later",
                    headers={"Retry-After": "30"})


def subscribe_account(account_id: int, payment_method: str | None) -> dict:
    """Subscribe (the API's and the console's way): the account's plan afterwards."""
    billing = configured_billing()
    with current_app.extensions["emoscope"].db.session.begin() as session:
        account = session.get(Account, account_id)
        try:
            billing.subscribe(session, account, payment_method)
        except stripe.StripeError as exc:
            raise stripe_unavailable(exc) from exc
        return {"plan": account.plan, "subscription_status": account.subscription_status,
                "stripe_customer_id": account.stripe_customer_id}


@bp.post("/v1/billing/subscription")
@require_api_key("admin")
def subscribe():
    configured_billing()  # 503 before validation on a deployment without Stripe
    fields = load(SubscribeSchema(), request.get_json(silent=True) or {})
    return jsonify(subscribe_account(g.account_id, fields.get("payment_method")))


@bp.post("/v1/billing/portal")
@require_api_key("admin")
def portal():
    billing = configured_billing()
    fields = load(PortalSchema(), json_object())
    if g.account.stripe_customer_id is None:
        raise ApiError(409, "no_billing_account", "No billing account",
                       "subscribe first: POST /v1/billing/subscription")
    try:
        return jsonify({"url": billing.portal_url(g.account, fields["return_url"])})
    except stripe.StripeError as exc:
        raise stripe_unavailable(exc) from exc


@bp.post("/v1/billing/webhook")
def webhook():
    billing = configured_billing()
    try:
        event = billing.verify_webhook(request.get_data(), request.headers.get("Stripe-Signature"))
    except (ValueError, stripe.SignatureVerificationError) as exc:
        raise ApiError(400, "invalid_signature", "Invalid signature",
                       "the payload is not signed with this endpoint's Stripe secret") from exc
    with current_app.extensions["emoscope"].db.session.begin() as session:
        matched = apply_webhook_event(session, event.type, event.data.object.to_dict())
    return jsonify({"received": True, "applied": matched})
