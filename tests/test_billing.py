"""Stripe billing with the real `stripe` library against localstripe on loopback."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import subprocess
import sys
import time

import pytest
import requests
import stripe

from api.domain.billing import Billing, StripeConfig
from api.store.db import Account, BillingOutbox
from api.wiring.config import REPO_ROOT
from tests.conftest import FACES, sign_up
from tests.samples import reencode
from tests.servers import free_port
from tests.test_api import assert_problem

pytestmark = [pytest.mark.postgres, pytest.mark.data]

PRICE_ID = "price_emoscope_units"
WEBHOOK_SECRET = "whsec_test_secret"
TINY_FACE = reencode(FACES / "img1.jpg", "JPEG", max_side=64)


@pytest.fixture(scope="module")
def stripe_base():
    with localstripe() as base:
        yield base


@contextlib.contextmanager
def localstripe():
    """localstripe on loopback with the metered price; yields its URL."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.localstripe_server", str(port)],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            requests.get(f"{base}/_config/meter_events", timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.1)
    else:
        server.kill()
        pytest.fail(f"localstripe did not start: {server.stderr.read()[-2000:]}")
    client = stripe.StripeClient("sk_test_emoscope", base_addresses={"api": base})
    client.v1.plans.create(
        params={
            "id": PRICE_ID,
            "amount": 1,
            "currency": "usd",
            "interval": "month",
            "usage_type": "metered",
            "product": {"name": "Emoscope analysis units"},
        }
    )
    try:
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)


def stripe_config(base: str) -> StripeConfig:
    return StripeConfig(api_key="sk_test_emoscope", price_id=PRICE_ID, webhook_secret=WEBHOOK_SECRET, api_base=base)


@pytest.fixture()
def config(stripe_base) -> StripeConfig:
    return stripe_config(stripe_base)


def card(config: StripeConfig) -> str:
    """A PaymentMethod as Stripe.js would hand the console after the owner typed a test card."""
    client = stripe.StripeClient(config.api_key, base_addresses={"api": config.api_base})
    return client.v1.payment_methods.create(
        params={"type": "card", "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"}}
    ).id


def meter_events(stripe_base: str) -> list[dict]:
    return requests.get(f"{stripe_base}/_config/meter_events", timeout=5).json()["data"]


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture()
def paid(app_factory, postgres_url, config, assert_contract):
    """A paying account on PostgreSQL: (app, owner secret, account id, stripe customer id)."""
    app = app_factory(postgres_url, stripe=config)
    client = app.test_client()
    body = sign_up(client, "payer@example.com")
    secret = body["api_key"]["secret"]
    response = assert_contract(
        client.post("/v1/billing/subscription", json={"payment_method": card(config)}, headers=bearer(secret))
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json["plan"] == "paid" and response.json["subscription_status"] == "active"
    yield app, secret, body["account"]["id"], response.json["stripe_customer_id"]
    app.extensions["emoscope"].db.engine.dispose()


def analyze(app, secret: str) -> int:
    return (
        app.test_client()
        .post("/v1/analyze", headers=bearer(secret), data={"file": (io.BytesIO(TINY_FACE), "f"), "detector": "skip"})
        .status_code
    )


def ours(events: list[dict], customer: str) -> list[dict]:
    return [e for e in events if e["payload"]["stripe_customer_id"] == customer]


def test_usage_reaches_stripe_exactly_once(paid, stripe_base):
    app, secret, _, customer = paid
    services = app.extensions["emoscope"]
    for _ in range(5):
        assert analyze(app, secret) == 200
    assert services.billing.push_usage(services.db) == 5
    assert services.billing.push_usage(services.db) == 0  # nothing left pending
    events = ours(meter_events(stripe_base), customer)
    assert len(events) == 5 and sum(int(e["payload"]["value"]) for e in events) == 5
    assert all(e["event_name"] == "emoscope_units" for e in events)


def test_crash_after_stripe_accepted_but_before_our_commit_neither_loses_nor_duplicates(paid, stripe_base, config):
    app, secret, _, customer = paid
    services = app.extensions["emoscope"]
    for _ in range(3):
        assert analyze(app, secret) == 200

    class CrashAfterSend(Billing):
        def _send_meter_event(self, *args):
            super()._send_meter_event(*args)
            raise SystemExit("worker killed after Stripe acknowledged")

    with pytest.raises(SystemExit):
        CrashAfterSend(config).push_usage(services.db)
    with services.db.session.begin() as session:  # the crash rolled our side back: still pending
        assert {row.status for row in session.query(BillingOutbox)} == {"pending"}
    assert len(ours(meter_events(stripe_base), customer)) == 1  # Stripe has the first one

    assert Billing(config).push_usage(services.db) == 3  # the restarted sender
    events = ours(meter_events(stripe_base), customer)
    assert len(events) == 3 and len({e["identifier"] for e in events}) == 3


def test_stripe_down_keeps_usage_pending_for_later(paid, stripe_base, config):
    app, secret, _, customer = paid
    services = app.extensions["emoscope"]
    assert analyze(app, secret) == 200
    unreachable = Billing(
        StripeConfig(config.api_key, PRICE_ID, WEBHOOK_SECRET, api_base=f"http://127.0.0.1:{free_port()}", timeout_s=1)
    )
    assert unreachable.push_usage(services.db) == 0
    with services.db.session.begin() as session:
        (row,) = session.query(BillingOutbox).all()
        assert row.status == "pending" and row.attempts == 1 and row.last_error
    assert services.billing.push_usage(services.db) == 0  # backing off
    assert services.billing.push_usage(services.db, now=row.next_attempt_at) == 1
    assert len(ours(meter_events(stripe_base), customer)) == 1


def signed(payload: dict, secret: str = WEBHOOK_SECRET) -> tuple[bytes, str]:
    """Sign as Stripe does: HMAC-SHA256 over "<timestamp>.<body>" in the Stripe-Signature header."""
    body = json.dumps(payload).encode()
    timestamp = int(time.time())
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={timestamp},v1={signature}"


def subscription_event(event_type: str, customer: str, status: str, subscription: str = "sub_test") -> dict:
    return {
        "id": "evt_test",
        "object": "event",
        "type": event_type,
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": {"id": subscription, "object": "subscription", "customer": customer, "status": status}},
    }


def send_subscription_event(app, event_type: str, customer: str, status: str, account_id: int, subscription=None):
    """A signed event about the account's current subscription (or the one named)."""
    with app.extensions["emoscope"].db.session.begin() as session:
        subscription = subscription or session.get(Account, account_id).stripe_subscription_id
    body, signature = signed(subscription_event(event_type, customer, status, subscription))
    return app.test_client().post(
        "/v1/billing/webhook", data=body, headers={"Stripe-Signature": signature}, content_type="application/json"
    )


def plan_of(app, account_id: int) -> tuple[str, str, str]:
    with app.extensions["emoscope"].db.session.begin() as session:
        account = session.get(Account, account_id)
        return account.plan, account.subscription_status, account.stripe_subscription_id


def test_webhook_past_due_blocks_and_recovery_unblocks(paid, assert_contract):
    app, secret, account_id, customer = paid
    client = app.test_client()
    response = assert_contract(
        send_subscription_event(app, "customer.subscription.updated", customer, "past_due", account_id)
    )
    assert response.json == {"received": True, "applied": True}
    assert_problem(
        client.post(
            "/v1/analyze", headers=bearer(secret), data={"file": (io.BytesIO(TINY_FACE), "f"), "detector": "skip"}
        ),
        402,
        "payment_required",
    )
    send_subscription_event(app, "customer.subscription.updated", customer, "active", account_id)
    assert analyze(app, secret) == 200
    send_subscription_event(app, "customer.subscription.deleted", customer, "canceled", account_id)
    assert plan_of(app, account_id)[:2] == ("free", "canceled")
    stale = send_subscription_event(app, "customer.subscription.updated", customer, "active", account_id)
    assert stale.json["applied"] is False and plan_of(app, account_id)[:2] == ("free", "canceled")


def test_subscribing_again_after_a_cancellation_starts_a_new_subscription(paid, config, assert_contract):
    app, secret, account_id, customer = paid
    first = plan_of(app, account_id)[2]
    send_subscription_event(app, "customer.subscription.deleted", customer, "canceled", account_id)
    again = assert_contract(
        app.test_client().post(
            "/v1/billing/subscription", json={"payment_method": card(config)}, headers=bearer(secret)
        )
    )
    assert again.status_code == 200 and (again.json["plan"], again.json["subscription_status"]) == ("paid", "active")
    second = plan_of(app, account_id)[2]
    assert second != first
    # The first subscription's deletion, delivered late (Stripe retries webhooks), leaves the new one alone.
    late = send_subscription_event(app, "customer.subscription.deleted", customer, "canceled", account_id, first)
    assert late.json["applied"] is False and plan_of(app, account_id) == ("paid", "active", second)
    repeat = app.test_client().post("/v1/billing/subscription", json={}, headers=bearer(secret))
    assert repeat.json["subscription_status"] == "active" and plan_of(app, account_id)[2] == second  # live: no third


def test_webhook_with_a_bad_signature_is_refused(paid, assert_contract):
    app, _, _, customer = paid
    body, signature = signed(subscription_event("customer.subscription.updated", customer, "past_due"), "whsec_wrong")
    response = app.test_client().post(
        "/v1/billing/webhook", data=body, headers={"Stripe-Signature": signature}, content_type="application/json"
    )
    assert_problem(assert_contract(response), 400, "invalid_signature")


def test_portal_link(paid, assert_contract):
    app, secret, _, _ = paid
    response = assert_contract(
        app.test_client().post(
            "/v1/billing/portal", json={"return_url": "https://app.example/account"}, headers=bearer(secret)
        )
    )
    assert response.status_code == 200 and "/portal/" in response.json["url"]


class RefusesCustomer(Billing):
    """Stripe refusing one customer's meter events for good (e.g. a deleted customer); records the rest."""

    def __init__(self, bad_customer: str) -> None:
        super().__init__(
            StripeConfig(
                api_key="sk_test_unused",
                price_id=PRICE_ID,
                webhook_secret=WEBHOOK_SECRET,
                api_base="http://127.0.0.1:9",
            )
        )
        self.bad_customer, self.sent, self.tried = bad_customer, [], 0

    def _send_meter_event(self, identifier, customer, units, timestamp):
        self.tried += 1
        if customer == self.bad_customer:
            raise stripe.InvalidRequestError("No such customer", param="payload[stripe_customer_id]")
        self.sent.append(identifier)


def outbox_rows(app, customers: list[str]) -> None:
    """One usage event and outbox row per entry of `customers`, in that order."""
    from api.store import repository
    from api.store.db import ApiRequest, UsageEvent

    with app.extensions["emoscope"].db.session.begin() as session:
        account = repository.create_account(session, "outbox")
        key, _ = repository.create_api_key(session, account, "test-pepper")
        for i, customer in enumerate(customers):
            session.add(
                ApiRequest(id=f"req-{i}", account_id=account.id, api_key_id=key.id, fingerprint="", status="succeeded")
            )
            session.flush()
            event = UsageEvent(account_id=account.id, request_id=f"req-{i}", media_kind="image", units=1)
            session.add(event)
            session.flush()
            session.add(
                BillingOutbox(
                    usage_event_id=event.id, stripe_customer_id=customer, units=1, identifier=f"emoscope-usage-{i}"
                )
            )


def test_rows_that_keep_failing_back_off_so_the_row_behind_them_is_sent(app_factory):
    from datetime import timedelta

    from api.store.db import utcnow

    app = app_factory()
    outbox_rows(app, ["cus_gone"] * 100 + ["cus_good"])
    billing, db, now = RefusesCustomer("cus_gone"), app.extensions["emoscope"].db, utcnow()
    assert billing.push_usage(db, now=now) == 0  # the first batch is all failures
    assert billing.push_usage(db, now=now + timedelta(seconds=1)) == 1  # they wait; row 101 goes
    assert billing.sent == ["emoscope-usage-100"]
    with db.session.begin() as session:
        failed = session.query(BillingOutbox).filter_by(stripe_customer_id="cus_gone").all()
        assert {row.status for row in failed} == {"pending"}
        assert all(row.next_attempt_at > now and row.last_error for row in failed)


def test_a_row_failing_past_the_attempt_limit_is_dead_lettered_and_counted_in_metrics(app_factory):
    from datetime import timedelta

    from api.domain.billing import OUTBOX_MAX_ATTEMPTS
    from api.store.db import utcnow

    app = app_factory()
    outbox_rows(app, ["cus_gone"])
    billing, db, now = RefusesCustomer("cus_gone"), app.extensions["emoscope"].db, utcnow()
    for day in range(OUTBOX_MAX_ATTEMPTS + 3):  # long enough for every backoff to have passed
        billing.push_usage(db, now=now + timedelta(days=day))
    assert billing.tried == OUTBOX_MAX_ATTEMPTS
    with db.session.begin() as session:
        (row,) = session.query(BillingOutbox).all()
        assert row.status == "dead" and row.attempts == OUTBOX_MAX_ATTEMPTS and "No such customer" in row.last_error
    metrics = app.test_client().get("/metrics").get_data(as_text=True)
    assert 'emoscope_billing_outbox_rows{status="dead"} 1.0' in metrics
    assert 'emoscope_billing_outbox_rows{status="pending"} 0.0' in metrics
