"""The one way into the process's Services from a request (api.web.app.create_app builds them)."""

from __future__ import annotations

from flask import Flask, current_app

from api.domain.billing import Billing
from api.web.errors import ApiError
from api.wiring.services import Services


def install(app: Flask, built: Services) -> None:
    app.extensions["emoscope"] = built


def services() -> Services:
    return current_app.extensions["emoscope"]


def configured_billing() -> Billing:
    """The Stripe billing of this deployment; 503 where it runs without Stripe."""
    billing = services().billing
    if billing is None:
        raise ApiError(
            503,
            "billing_not_configured",
            "Billing not configured",
            "this deployment runs without Stripe (set STRIPE_API_KEY)",
        )
    return billing
