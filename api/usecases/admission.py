"""Who may start work now, shared by every door that analyses (the analyze route, study sessions)
and that stores (new studies): rate limits, the delinquency check, the analysis slots, the
sync/async rule. No Flask here: refusals are exceptions that the web layer answers as problems.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from api.domain.billing import DELINQUENT
from api.domain.metering import Plan
from api.engine.media import DecodedVideo
from api.store.db import Account
from api.store.ratelimit import Decision, RateLimiter
from api.wiring.services import Services


class RateLimited(Exception):
    def __init__(self, decision: Decision, rate: float, burst: int) -> None:
        super().__init__(
            f"at most {rate:g} requests per second (bursts of {burst}); retry after {decision.retry_after_s} s"
        )
        self.decision = decision


class PaymentRequired(Exception):
    """The account's subscription is delinquent: it takes no paid work until it pays. The decision
    of the rate limit it passed first still goes on the answer."""

    def __init__(self, decision: Decision) -> None:
        super().__init__("the account's subscription is delinquent")
        self.decision = decision


class Overloaded(Exception):
    """Every analysis slot of this process is busy."""


def rate_limit(limiter: RateLimiter, bucket: str, rate: float, burst: int) -> Decision:
    """One request from `bucket`; raises RateLimited when it is empty. The decision is for the
    response's X-RateLimit-* headers either way."""
    decision = limiter.hit(bucket, rate, burst)
    if not decision.allowed:
        raise RateLimited(decision, rate, burst)
    return decision


def admit_paid_work(services: Services, account: Account, bucket: str) -> tuple[Plan, Decision]:
    """The account's plan, once `bucket` is within that plan's rate and the account is not
    delinquent (in that order: a client over its rate learns nothing of the account's standing)."""
    plan = services.settings.plans[account.plan]
    decision = rate_limit(services.rate_limiter, bucket, plan.requests_per_second, plan.burst)
    if account.subscription_status in DELINQUENT:
        raise PaymentRequired(decision)
    return plan, decision


def admit_new_study(services: Services, account: Account) -> tuple[Plan, Decision | None]:
    """The account's plan, once it is within the plan's studies per hour (checked before the
    stimulus upload is read)."""
    plan = services.settings.plans[account.plan]
    if plan.studies_per_hour is None:
        return plan, None
    return plan, rate_limit(
        services.rate_limiter, f"studies:{account.id}", plan.studies_per_hour / 3600, max(1, int(plan.studies_per_hour))
    )


def clip_seconds(clip: DecodedVideo | None) -> float:
    return (clip.info.duration_ms or 0) / 1000 if clip else 0.0


def runs_as_job(services: Services, clip: DecodedVideo | None, asked_async: bool) -> bool:
    """The sync/async rule: a job when the client asks for one, or when a clip is longer than a
    request may take to analyse."""
    return asked_async or clip_seconds(clip) > services.settings.sync_max_video_seconds


@contextmanager
def analysis_slot(slots: threading.BoundedSemaphore) -> Iterator[None]:
    """One of the process's analysis slots, or Overloaded at once: shed load rather than queue,
    since a client told to retry in a second beats one that times out."""
    if not slots.acquire(blocking=False):
        raise Overloaded()
    try:
        yield
    finally:
        slots.release()
