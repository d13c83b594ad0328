"""What accounts are sold and how billing reaches Stripe: plain settings, built by api.wiring.config.

Kept apart from api.domain.metering (SQL) and api.domain.billing (the Stripe library), so reading settings
loads neither.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    name: str
    monthly_units: int | None  # None: no hard quota (usage is billed)
    requests_per_second: float
    burst: int
    # Per account; None: unlimited. Stimuli are stored until their study is deleted, so creating
    # studies is slow and their bytes are capped, or a free sign-up could fill the bucket.
    studies_per_hour: float | None = None
    study_storage_bytes: int | None = None


@dataclass(frozen=True)
class StripeConfig:
    api_key: str
    price_id: str
    webhook_secret: str
    meter_event_name: str = "emoscope_units"
    api_base: str | None = None  # set only to point the library at a local Stripe double
    timeout_s: float = 10.0
    # The console's card form: Stripe.js with the publishable key (card numbers go from the browser
    # to Stripe, never through us). Without a publishable key the console links to the API instead.
    publishable_key: str = ""
    js_url: str = "https://js.stripe.com/v3/"
