"""localstripe on loopback, plus the Stripe endpoints it lacks, for the billing tests.

Run as `python -m tests.localstripe_server PORT`. localstripe (PyPI) fakes customers, plans,
subscriptions and signed webhooks; it predates Prices, Billing meter events and the customer
portal. This harness adds those with Stripe's documented behaviour that our code relies on:
a request repeated with the same Idempotency-Key gets the first response back, and a meter event
identifier is accepted once. `GET /_config/meter_events` lets tests read what Stripe received.
"""

from __future__ import annotations

import secrets
import sys
import time

from aiohttp import web
from localstripe.resources import Subscription
from localstripe.server import app, get_post_data

meter_events: list[dict] = []
replies: dict[str, dict] = {}


def _accept_prices() -> None:
    """Stripe accepts a plan id wherever a price id goes; localstripe only reads `plan`."""
    original = Subscription._api_create.__func__

    def create(cls, items=None, **data):
        if items:
            items = [{("plan" if k == "price" else k): v for k, v in item.items()} for item in items]
        return original(cls, items=items, **data)

    Subscription._api_create = classmethod(create)


async def create_meter_event(request: web.Request) -> web.Response:
    key = request.headers.get("Idempotency-Key")
    if key in replies:
        return web.json_response(replies[key])
    data = await get_post_data(request) or {}
    identifier = data.get("identifier") or f"evt_{secrets.token_hex(8)}"
    if any(e["identifier"] == identifier for e in meter_events):
        return web.json_response(
            {
                "error": {
                    "type": "invalid_request_error",
                    "code": "resource_already_exists",
                    "message": f"meter event {identifier} already exists",
                }
            },
            status=400,
        )
    event = {
        "object": "billing.meter_event",
        "event_name": data.get("event_name"),
        "identifier": identifier,
        "payload": data.get("payload", {}),
        "timestamp": int(data.get("timestamp") or time.time()),
        "created": int(time.time()),
        "livemode": False,
    }
    meter_events.append(event)
    if key:
        replies[key] = event
    return web.json_response(event)


async def create_portal_session(request: web.Request) -> web.Response:
    data = await get_post_data(request) or {}
    session_id = f"bps_{secrets.token_hex(8)}"
    return web.json_response(
        {
            "id": session_id,
            "object": "billing_portal.session",
            "customer": data.get("customer"),
            "return_url": data.get("return_url"),
            "livemode": False,
            "url": f"http://{request.host}/portal/{session_id}",
        }
    )


async def list_meter_events(_request: web.Request) -> web.Response:
    return web.json_response({"data": meter_events})


def main() -> None:
    _accept_prices()
    app.router.add_post("/v1/billing/meter_events", create_meter_event)
    app.router.add_post("/v1/billing_portal/sessions", create_portal_session)
    app.router.add_get("/_config/meter_events", list_meter_events)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
