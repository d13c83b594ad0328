"""Subscribing an account to the metered plan: the API's and the console's one way. No Flask here."""

from __future__ import annotations

from api.domain.billing import Billing
from api.store.db import Account, Database


def subscribe_account(db: Database, billing: Billing, account_id: int, payment_method: str | None) -> dict:
    """The account's plan afterwards; stripe.StripeError when Stripe cannot be reached (nothing is saved)."""
    with db.session.begin() as session:
        account = session.get(Account, account_id)
        billing.subscribe(session, account, payment_method)
        return {
            "plan": account.plan,
            "subscription_status": account.subscription_status,
            "stripe_customer_id": account.stripe_customer_id,
        }
