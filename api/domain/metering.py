"""Plans, units, quotas and the request ledger that makes usage exact.

A request is recorded as `processing` before analysis and completed, together with its usage
event and (for paid accounts) its billing outbox row, in one transaction. The unique
(account, Idempotency-Key) pair means a retried request replays the stored answer and is never
billed twice; a unique request id on usage events means no request is ever counted twice.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.domain.plans import Plan
from api.engine.results import MediaInfo
from api.store import repository
from api.store.db import Account, ApiRequest, BillingOutbox, UsageEvent, utcnow

# Units: one per image; one per started 10 seconds of clip.
SECONDS_PER_VIDEO_UNIT = 10
# Ledger statuses whose stored answer a retry gets back: a finished request, or a job submission
# (its 202 answer), whatever became of the job since.
REPLAYABLE = {"succeeded", "accepted", "failed"}
# A request still `processing` after this long died with its worker; a retry may take it over.
STALE_PROCESSING = timedelta(minutes=5)
# A stored answer is replayed for this long after its request (as Stripe keeps idempotency keys), then
# forgotten: a synchronous answer may carry stills, which are pictures of faces. A retry after that is
# refused, never analysed and billed a second time.
REPLAY_WINDOW = timedelta(hours=24)


def units_for(media: MediaInfo) -> int:
    if media.kind == "image":
        return 1
    return max(1, math.ceil((media.duration_ms or 0) / 1000 / SECONDS_PER_VIDEO_UNIT))


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(now: datetime) -> datetime:
    first = month_start(now)
    return (first + timedelta(days=32)).replace(day=1)


class QuotaExceeded(Exception):
    def __init__(self, limit: int, used: int, resets_at: datetime) -> None:
        super().__init__(f"monthly quota of {limit} units used ({used})")
        self.limit, self.used, self.resets_at = limit, used, resets_at


def quota(session: Session, account_id: int, plan: Plan, now: datetime | None = None) -> dict:
    """This month's units against the plan's quota (`monthly_units` None: no hard quota)."""
    now = now or utcnow()
    used = repository.units_since(session, account_id, month_start(now))
    return {"monthly_units": plan.monthly_units, "used_units": used, "resets_at": next_month_start(now).isoformat()}


def check_quota(session: Session, account: Account, plan: Plan, now: datetime | None = None) -> None:
    """Refuse when the month's units are spent, counting the units reserved by queued and running
    jobs. Soft by design: requests already in flight may finish past the limit, which is cheaper
    than serialising every request of an account."""
    if plan.monthly_units is None:
        return
    now = now or utcnow()
    used = repository.units_since(session, account.id, month_start(now)) + repository.reserved_units(
        session, account.id
    )
    if used >= plan.monthly_units:
        raise QuotaExceeded(plan.monthly_units, used, next_month_start(now))


def fingerprint(data: bytes, options: object) -> str:
    digest = hashlib.sha256(data)
    digest.update(repr(options).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class MeteredRequest:
    """Whose request it is and how a retry of it is recognised: what the ledger needs to admit it."""

    account: Account
    plan: Plan
    api_key_id: int
    request_id: str
    idempotency_key: str | None
    fingerprint: str


class IdempotencyConflict(Exception):
    """The key is in use by a request still running, or was used for a different request."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


def begin(
    session: Session,
    request_id: str,
    account_id: int,
    api_key_id: int,
    idempotency_key: str | None,
    request_fingerprint: str,
) -> str | None:
    """Record the request as processing. Returns a stored response body to replay, or None."""
    if idempotency_key is not None:
        existing = repository.find_request(session, account_id, idempotency_key)
        if existing is not None:
            return _replay_or_take_over(session, existing, request_id, api_key_id, request_fingerprint)
    session.add(
        ApiRequest(
            id=request_id,
            account_id=account_id,
            api_key_id=api_key_id,
            idempotency_key=idempotency_key,
            fingerprint=request_fingerprint,
        )
    )
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent request with the same key won the insert
        raise IdempotencyConflict(
            "idempotency_in_progress", "a request with this Idempotency-Key is still being processed"
        ) from exc
    return None


def _replay_or_take_over(
    session: Session, existing: ApiRequest, request_id: str, api_key_id: int, request_fingerprint: str
) -> str | None:
    if existing.fingerprint != request_fingerprint:
        raise IdempotencyConflict(
            "idempotency_key_reused", "this Idempotency-Key was used with a different request body or options"
        )
    if existing.status in REPLAYABLE:
        if utcnow() - existing.created_at >= REPLAY_WINDOW:
            raise IdempotencyConflict(
                "idempotency_key_expired",
                f"this Idempotency-Key's answer was kept for {REPLAY_WINDOW.days * 24} hours "
                "and is gone; send the request again with a new key",
            )
        return existing.response_body
    if utcnow() - existing.created_at < STALE_PROCESSING:
        raise IdempotencyConflict(
            "idempotency_in_progress", "a request with this Idempotency-Key is still being processed"
        )
    session.delete(existing)  # its worker died: start over under the new request id
    session.flush()
    session.add(
        ApiRequest(
            id=request_id,
            account_id=existing.account_id,
            api_key_id=api_key_id,
            idempotency_key=existing.idempotency_key,
            fingerprint=request_fingerprint,
        )
    )
    session.flush()
    return None


def forget_old_answers(session: Session) -> int:
    """Clear the stored answers past REPLAY_WINDOW; returns how many."""
    return repository.forget_answers(session, before=utcnow() - REPLAY_WINDOW)


def admit(session: Session, request: MeteredRequest) -> str | None:
    """`begin`, then the quota check: a stored answer is replayed even when the quota is spent since
    (it was paid for). A refusal rolls the new ledger entry back with the caller's transaction."""
    replay = begin(
        session,
        request.request_id,
        request.account.id,
        request.api_key_id,
        request.idempotency_key,
        request.fingerprint,
    )
    if replay is None:
        check_quota(session, request.account, request.plan)
    return replay


def complete(
    session: Session, request_id: str, account: Account, media: MediaInfo, response_body: str, billed: bool = True
) -> UsageEvent:
    """Mark the request done and write its usage (and outbox row when billed) in this transaction.
    `billed=False` (a study session below the quality gate) records the request with 0 units."""
    record = session.get(ApiRequest, request_id)
    record.status, record.completed_at = "succeeded", utcnow()
    # Results are kept only where a retry may need them replayed, never by default.
    record.response_body = response_body if record.idempotency_key else None
    event = UsageEvent(
        account_id=account.id, request_id=request_id, media_kind=media.kind, units=units_for(media) if billed else 0
    )
    session.add(event)
    session.flush()
    if event.units and account.plan == "paid" and account.stripe_customer_id:
        session.add(
            BillingOutbox(
                usage_event_id=event.id,
                stripe_customer_id=account.stripe_customer_id,
                units=event.units,
                identifier=f"emoscope-usage-{event.id}-{request_id}",
            )
        )
    return event


def abandon(session: Session, request_id: str) -> None:
    """A failed request leaves no record, so it is never billed and its key can be retried."""
    record = session.get(ApiRequest, request_id)
    if record is not None:
        session.delete(record)


def run_metered(db, request: MeteredRequest, work) -> tuple[str, bool]:
    """Ledger entry (or replay), quota check, `work()` -> (MediaInfo, JSON body), then usage, exactly once.

    Returns (body, replayed). Any exception from `work` removes the ledger entry and propagates,
    so failed requests are never billed.
    """
    with db.session.begin() as session:
        replay = admit(session, request)
    if replay is not None:
        return replay, True
    try:
        media, body = work()
    except BaseException:
        with db.session.begin() as session:
            abandon(session, request.request_id)
        raise
    with db.session.begin() as session:
        complete(session, request.request_id, request.account, media, body)
    return body, False


def usage_report(session: Session, account_id: int, first_day, last_day) -> dict:
    """Units and requests per UTC day, inclusive of both days, with totals."""
    start = datetime.combine(first_day, datetime.min.time(), UTC)
    end = datetime.combine(last_day, datetime.min.time(), UTC) + timedelta(days=1)
    days: dict = {}
    for event in repository.usage_events_between(session, account_id, start, end):
        day = days.setdefault(event.created_at.date(), {"units": 0, "requests": 0})
        day["units"] += event.units
        day["requests"] += 1
    data = [{"date": day.isoformat(), **totals} for day, totals in sorted(days.items())]
    return {
        "from": first_day.isoformat(),
        "to": last_day.isoformat(),
        "granularity": "day",
        "total_units": sum(d["units"] for d in data),
        "total_requests": sum(d["requests"] for d in data),
        "data": data,
    }
