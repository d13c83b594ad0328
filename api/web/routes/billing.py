"""Billing endpoints: subscribe to the metered plan, open the Stripe portal, receive Stripe webhooks."""

from __future__ import annotations

import stripe
from flask import Blueprint, g, jsonify, request

from api.domain.billing import apply_webhook_event
from api.usecases.subscriptions import subscribe_account
from api.web.auth import require_api_key
from api.web.context import configured_billing, services
from api.web.errors import ApiError
from api.web.parsing import json_object, load
from api.web.problems import stripe_problems
from api.web.schemas import PortalSchema, SubscribeSchema

bp = Blueprint("billing", __name__)


@bp.post("/v1/billing/subscription")
@require_api_key("admin")
def subscribe():
    billing = configured_billing()  # 503 before validation on a deployment without Stripe
    fields = load(SubscribeSchema(), request.get_json(silent=True) or {})
    with stripe_problems():
        return jsonify(subscribe_account(services().db, billing, g.account_id, fields.get("payment_method")))


@bp.post("/v1/billing/portal")
@require_api_key("admin")
def portal():
    billing = configured_billing()
    fields = load(PortalSchema(), json_object())
    if g.account.stripe_customer_id is None:
        raise ApiError(
            409, "no_billing_account", "No billing account", "subscribe first: POST /v1/billing/subscription"
        )
    with stripe_problems():
        return jsonify({"url": billing.portal_url(g.account, fields["return_url"])})


@bp.post("/v1/billing/webhook")
def webhook():
    billing = configured_billing()
    try:
        event = billing.verify_webhook(request.get_data(), request.headers.get("Stripe-Signature"))
    except (ValueError, stripe.SignatureVerificationError) as exc:
        raise ApiError(
            400,
            "invalid_signature",
            "Invalid signature",
            "the payload is not signed with this endpoint's Stripe secret",
        ) from exc
    with services().db.session.begin() as session:
        matched = apply_webhook_event(session, event.type, event.data.object.to_dict())
    return jsonify({"received": True, "applied": matched})
