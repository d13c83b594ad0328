"""Refusals of the use cases as problem documents: the shared translations of domain exceptions
into ApiError (the API answers them as problem+json, the console as pages)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import stripe
from flask import g

from api.domain import accounts, metering, studies, webhooks
from api.engine.media import MediaError
from api.store.db import utcnow
from api.usecases.admission import Overloaded, PaymentRequired, RateLimited
from api.web.errors import MEDIA_STATUS, ApiError

log = logging.getLogger(__name__)


@contextmanager
def admission_problems(payment_detail: str = "") -> Iterator[None]:
    """429 (with the bucket's headers on the response), 402 with `payment_detail`, 503."""
    try:
        yield
    except RateLimited as exc:
        g.rate_limit_headers = exc.decision.headers()
        raise ApiError(429, "rate_limited", "Too many requests", str(exc), headers=exc.decision.headers()) from None
    except PaymentRequired as exc:
        g.rate_limit_headers = exc.decision.headers()
        raise ApiError(402, "payment_required", "Payment required", payment_detail) from None
    except Overloaded:
        raise ApiError(
            503,
            "overloaded",
            "Overloaded",
            "every analysis slot of this worker is busy; retry shortly",
            headers={"Retry-After": "1"},
        ) from None


@contextmanager
def metering_problems() -> Iterator[None]:
    try:
        yield
    except metering.QuotaExceeded as exc:
        retry_after = max(1, int((exc.resets_at - utcnow()).total_seconds()))
        raise ApiError(
            402,
            "quota_exceeded",
            "Monthly quota exceeded",
            f"{exc.used} of {exc.limit} units used this month; upgrade or wait for the reset",
            headers={"Retry-After": str(retry_after)},
        ) from exc
    except metering.IdempotencyConflict as exc:
        status = 409 if exc.code == "idempotency_in_progress" else 422
        raise ApiError(status, exc.code, "Idempotency conflict", str(exc)) from exc


@contextmanager
def webhook_problems() -> Iterator[None]:
    try:
        yield
    except webhooks.UnsafeWebhookUrl as exc:
        raise ApiError(400, "invalid_request", "Invalid request", str(exc), errors={"webhook_url": [str(exc)]}) from exc


@contextmanager
def media_problems(field: str) -> Iterator[None]:
    """The engine's refusals of an upload (sizes, dimensions, types, corruption), naming the field it came in."""
    try:
        yield
    except MediaError as exc:
        raise ApiError(
            MEDIA_STATUS.get(type(exc), 422), exc.code, "Media refused", f"'{field}': {exc}", errors={field: [str(exc)]}
        ) from exc


@contextmanager
def study_storage_problems() -> Iterator[None]:
    try:
        yield
    except studies.StudyStorageFull as exc:
        raise ApiError(
            413, "study_storage_full", "Study storage full", f"'stimulus': {exc}", errors={"stimulus": [str(exc)]}
        ) from None


@contextmanager
def invalid_variables() -> Iterator[None]:
    """A study's link variables or report filter it does not take (studies.InvalidVariables)."""
    try:
        yield
    except studies.InvalidVariables as exc:
        raise ApiError(400, "invalid_request", "Invalid request", str(exc), errors=exc.errors) from None


@contextmanager
def stripe_problems() -> Iterator[None]:
    try:
        yield
    except stripe.StripeError as exc:
        log.warning("stripe call failed: %s", type(exc).__name__)
        raise ApiError(
            503,
            "billing_unavailable",
            "Billing unavailable",
            "Stripe could not be reached; retry later",
            headers={"Retry-After": "30"},
        ) from exc


@contextmanager
def key_limit_problems() -> Iterator[None]:
    try:
        yield
    except accounts.KeyLimitReached as exc:
        raise ApiError(
            409,
            "key_limit_reached",
            "Too many keys",
            f"an account holds at most {exc.args[0]} active keys; revoke one first",
        ) from exc


def invalid_reset_token() -> ApiError:
    return ApiError(
        400,
        "invalid_reset_token",
        "Invalid reset link",
        "this reset link is unknown, used or expired; ask for a new one",
    )
