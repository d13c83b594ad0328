"""Stripe billing: customers, metered subscriptions, usage pushed from the outbox, webhooks, portal.

Usage reaches Stripe as Billing meter events. Each outbox row carries one identifier, used as the
meter event's identifier and as the request's idempotency key, so a push repeated after a crash
(Stripe accepted, our commit lost) is answered with the original event instead of a second one.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import stripe
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.domain.plans import StripeConfig
from api.store import repository
from api.store.db import Account, Database, utcnow

log = logging.getLogger(__name__)

# Stripe subscription statuses under which requests are refused until the account pays.
DELINQUENT = {"past_due", "unpaid"}
# Statuses under which the account is on the paid plan.
PAYING = {"active", "trialing", "past_due"}
# Statuses a subscription never leaves: subscribing again makes a new one.
ENDED = {"canceled", "incomplete_expired"}
# A usage row that failed waits 1 minute, then 2, 4 … at most 6 hours; after this many failed
# attempts (about a day and a half) it is dead-lettered: counted in /metrics, no longer tried.
OUTBOX_MAX_ATTEMPTS = 12
OUTBOX_FIRST_BACKOFF = timedelta(minutes=1)
OUTBOX_MAX_BACKOFF = timedelta(hours=6)


def outbox_backoff(attempts: int) -> timedelta:
    """How long a row waits after its `attempts`-th failure."""
    return min(OUTBOX_MAX_BACKOFF, OUTBOX_FIRST_BACKOFF * 2 ** (attempts - 1))


def has_live_subscription(account: Account) -> bool:
    return account.stripe_subscription_id is not None and account.subscription_status not in ENDED


class Billing:
    def __init__(self, config: StripeConfig) -> None:
        self.config = config
        self.client = stripe.StripeClient(
            config.api_key,
            base_addresses={"api": config.api_base} if config.api_base else None,
            http_client=stripe.RequestsClient(timeout=config.timeout_s),
            max_network_retries=2,
        )

    def subscribe(self, session: Session, account: Account, payment_method: str | None = None) -> Account:
        """Give the account a Stripe customer and a subscription to the metered price (once).

        `payment_method` is a PaymentMethod id collected in the browser by Stripe.js; card data
        never reaches us.
        """
        self.ensure_customer(account)
        if payment_method is not None:
            # A card saved through the console's SetupIntent is attached already; attaching it again fails.
            if self.client.v1.payment_methods.retrieve(payment_method).customer != account.stripe_customer_id:
                self.client.v1.payment_methods.attach(payment_method, params={"customer": account.stripe_customer_id})
            self.client.v1.customers.update(
                account.stripe_customer_id, params={"invoice_settings": {"default_payment_method": payment_method}}
            )
        if not has_live_subscription(account):
            # One key per subscription the account has had: a retry gets the same new subscription,
            # and subscribing again after a cancellation is not answered with the ended one.
            previous = account.stripe_subscription_id or "none"
            subscription = self.client.v1.subscriptions.create(
                params={
                    "customer": account.stripe_customer_id,
                    "items": [{"price": self.config.price_id}],
                    "metadata": {"emoscope_account_id": str(account.id)},
                },
                options={"idempotency_key": f"emoscope-subscription-{account.id}-after-{previous}"},
            )
            account.stripe_subscription_id = subscription.id
            apply_subscription_status(account, subscription.status)
        return account

    def ensure_customer(self, account: Account) -> str:
        """The account's Stripe customer id, created once (the idempotency key makes a retry safe)."""
        if account.stripe_customer_id is None:
            customer = self.client.v1.customers.create(
                params={"name": account.name, "metadata": {"emoscope_account_id": str(account.id)}},
                options={"idempotency_key": f"emoscope-customer-{account.id}"},
            )
            account.stripe_customer_id = customer.id
        return account.stripe_customer_id

    def card_setup_secret(self, account: Account) -> str:
        """A SetupIntent's client secret: Stripe.js saves a card for later (metered) charges with it."""
        intent = self.client.v1.setup_intents.create(
            params={"customer": self.ensure_customer(account), "usage": "off_session", "payment_method_types": ["card"]}
        )
        return intent.client_secret

    def portal_url(self, account: Account, return_url: str) -> str:
        portal = self.client.v1.billing_portal.sessions.create(
            params={"customer": account.stripe_customer_id, "return_url": return_url}
        )
        return portal.url

    def push_usage(self, db: Database, batch: int = 100, now: datetime | None = None) -> int:
        """Report the usage rows due now; returns how many rows were confirmed by Stripe."""
        now = now or utcnow()
        sent = 0
        with db.session.begin() as session:
            for row in repository.claim_due_outbox(session, batch, now):
                row.attempts += 1
                try:
                    self._send_meter_event(
                        row.identifier, row.stripe_customer_id, row.units, int(row.created_at.timestamp())
                    )
                except stripe.StripeError as exc:
                    row.last_error = f"{type(exc).__name__}: {exc.user_message or exc}"[:500]
                    if row.attempts >= OUTBOX_MAX_ATTEMPTS:
                        row.status = "dead"
                        log.error("usage push failed for good; dead-lettered", extra={"outbox_id": row.id})
                    else:
                        row.next_attempt_at = now + outbox_backoff(row.attempts)
                        log.warning("usage push failed; will retry", extra={"outbox_id": row.id})
                    continue
                row.status, row.sent_at, row.last_error, row.next_attempt_at = "sent", utcnow(), None, None
                sent += 1
        return sent

    def _send_meter_event(self, identifier: str, customer: str, units: int, timestamp: int) -> None:
        self.client.v1.billing.meter_events.create(
            params={
                "event_name": self.config.meter_event_name,
                "identifier": identifier,
                "timestamp": timestamp,
                "payload": {"stripe_customer_id": customer, "value": str(units)},
            },
            options={"idempotency_key": identifier},
        )

    def verify_webhook(self, payload: bytes, signature: str | None) -> stripe.Event:
        """Raises stripe.SignatureVerificationError or ValueError on anything not signed by Stripe."""
        return self.client.construct_event(payload, signature, self.config.webhook_secret)


def apply_subscription_status(account: Account, status: str) -> None:
    account.subscription_status = status
    account.plan = "paid" if status in PAYING else "free"


SUBSCRIPTION_EVENTS = {
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
}


def apply_webhook_event(session: Session, event_type: str, subscription: dict) -> bool:
    """Bring an account's status in line with a subscription event; True if an account matched."""
    if event_type not in SUBSCRIPTION_EVENTS:
        return False
    account = session.scalars(select(Account).where(Account.stripe_customer_id == subscription["customer"])).first()
    if account is None:
        return False
    if subscription["id"] != account.stripe_subscription_id and has_live_subscription(account):
        return False  # news of an earlier subscription (e.g. its late deletion) must not undo the current one
    if subscription["id"] == account.stripe_subscription_id and account.subscription_status in ENDED:
        return False  # an ended subscription never comes back: an older update delivered late is stale
    account.stripe_subscription_id = subscription["id"]
    status = "canceled" if event_type == "customer.subscription.deleted" else subscription["status"]
    apply_subscription_status(account, status)
    return True
