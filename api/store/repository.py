"""Storage operations on accounts and keys, behind plain functions taking a Session."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from api.store import keys
from api.store.db import Account, ApiKey, ApiRequest, BillingOutbox, Job, Owner, UsageEvent, utcnow

# Writing last_used_at on every request would make every read a write; once a minute is enough.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def create_account(session: Session, name: str) -> Account:
    account = Account(name=name)
    session.add(account)
    session.flush()
    return account


def account_by_name(session: Session, name: str) -> Account | None:
    return session.scalars(select(Account).where(Account.name == name).order_by(Account.id)).first()


def create_api_key(
    session: Session,
    account: Account,
    pepper: str,
    name: str = "",
    scopes: tuple[str, ...] = ("analyze",),
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Returns the row and the secret key, which exists only in this return value."""
    prefix, secret = keys.generate_key()
    row = ApiKey(
        account_id=account.id,
        prefix=prefix,
        key_hash=keys.hash_key(secret, pepper),
        name=name,
        scopes=",".join(scopes),
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return row, secret


def authenticate(session: Session, secret: str, pepper: str) -> ApiKey | None:
    """The active key matching `secret`, or None. Compares hashes in constant time."""
    prefix = keys.prefix_of(secret)
    if prefix is None:
        return None
    row = session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)).first()
    now = utcnow()
    if (
        row is None
        or row.revoked_at is not None
        or (row.expires_at is not None and row.expires_at <= now)
        or not keys.key_matches(secret, row.key_hash, pepper)
    ):
        return None
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        row.last_used_at = now
    return row


def create_owner(session: Session, account: Account, email: str, password_hash: str) -> Owner:
    owner = Owner(account_id=account.id, email=email, password_hash=password_hash)
    session.add(owner)
    session.flush()
    return owner


def owner_by_email(session: Session, email: str) -> Owner | None:
    return session.scalars(select(Owner).where(Owner.email == email)).first()


def _active(account_id: int):
    return (
        ApiKey.account_id == account_id,
        ApiKey.revoked_at.is_(None),
        (ApiKey.expires_at.is_(None)) | (ApiKey.expires_at > utcnow()),
    )


def count_active_keys(session: Session, account_id: int) -> int:
    return session.scalar(select(func.count()).select_from(ApiKey).where(*_active(account_id)))


def revoke_expiring_keys(session: Session, account_id: int, name: str) -> None:
    """Revoke the account's live short-lived keys of this name (an earlier sign-in's)."""
    session.execute(
        update(ApiKey)
        .where(*_active(account_id), ApiKey.expires_at.is_not(None), ApiKey.name == name)
        .values(revoked_at=utcnow())
    )


def list_api_keys(session: Session, account_id: int) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).where(ApiKey.account_id == account_id).order_by(ApiKey.id)))


def revoke_api_key(session: Session, account_id: int, key_id: int) -> ApiKey | None:
    """Revokes the key only if it belongs to `account_id`; another account's key looks absent."""
    row = session.get(ApiKey, key_id)
    if row is None or row.account_id != account_id:
        return None
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


def find_request(session: Session, account_id: int, idempotency_key: str) -> ApiRequest | None:
    return session.scalars(
        select(ApiRequest).where(ApiRequest.account_id == account_id, ApiRequest.idempotency_key == idempotency_key)
    ).first()


def scrub_finished_requests(session: Session, account_id: int) -> int:
    """Wipe what finished requests keep that derives from their media: the stored answer, and the
    Idempotency-Key and media fingerprint that matched retries to it. The rows themselves stay
    (usage events point at them). Requests still processing are left to finish. Returns how many
    rows were scrubbed; a second call finds none."""
    result = session.execute(
        update(ApiRequest)
        .where(ApiRequest.account_id == account_id, ApiRequest.status != "processing", ApiRequest.fingerprint != "")
        .values(response_body=None, idempotency_key=None, fingerprint="")
    )
    return result.rowcount


def forget_answers(session: Session, before: datetime) -> int:
    """Clear the stored answers of requests made before `before`; the rows and their keys stay, so a
    retry is still recognised (and refused). Returns how many were cleared."""
    result = session.execute(
        update(ApiRequest)
        .where(ApiRequest.created_at < before, ApiRequest.response_body.is_not(None))
        .values(response_body=None)
    )
    return result.rowcount


def job_ids(session: Session, account_id: int) -> list[str]:
    return list(session.scalars(select(Job.id).where(Job.account_id == account_id).order_by(Job.created_at)))


def units_since(session: Session, account_id: int, since: datetime) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(UsageEvent.units), 0)).where(
            UsageEvent.account_id == account_id, UsageEvent.created_at >= since
        )
    )
    return int(total)


def reserved_units(session: Session, account_id: int) -> int:
    """Units held by the account's jobs still queued or running (see Job.reserved_units)."""
    total = session.scalar(
        select(func.coalesce(func.sum(Job.reserved_units), 0)).where(
            Job.account_id == account_id, Job.status.in_(("queued", "running"))
        )
    )
    return int(total)


def usage_events_between(session: Session, account_id: int, start: datetime, end: datetime) -> list[UsageEvent]:
    return list(
        session.scalars(
            select(UsageEvent)
            .where(UsageEvent.account_id == account_id, UsageEvent.created_at >= start, UsageEvent.created_at < end)
            .order_by(UsageEvent.created_at)
        )
    )


def claim_due_outbox(session: Session, limit: int, now: datetime) -> list[BillingOutbox]:
    """Pending rows whose backoff is over, locked so that two senders never push the same row at the
    same time."""
    due = or_(BillingOutbox.next_attempt_at.is_(None), BillingOutbox.next_attempt_at <= now)
    query = (
        select(BillingOutbox)
        .where(BillingOutbox.status == "pending", due)
        .order_by(BillingOutbox.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(query))


def outbox_counts(session: Session) -> dict[str, int]:
    """Rows still waiting and rows given up on (sent rows, the great majority, are not counted)."""
    counts = {"pending": 0, "dead": 0}
    query = (
        select(BillingOutbox.status, func.count())
        .where(BillingOutbox.status.in_(counts))
        .group_by(BillingOutbox.status)
    )
    counts.update(dict(session.execute(query).all()))
    return counts
