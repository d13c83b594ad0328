"""Storage operations on accounts and keys, behind plain functions taking a Session."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from api import keys
from api.db import Account, ApiKey, utcnow

# Writing last_used_at on every request would make every read a write; once a minute is enough.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def create_account(session: Session, name: str) -> Account:
    account = Account(name=name)
    session.add(account)
    session.flush()
    return account


def account_by_name(session: Session, name: str) -> Account | None:
    return session.scalars(select(Account).where(Account.name == name).order_by(Account.id)).first()


def create_api_key(session: Session, account: Account, pepper: str, name: str = "",
                   scopes: tuple[str, ...] = ("analyze",)) -> tuple[ApiKey, str]:
    """Returns the row and the secret key, which exists only in this return value."""
    prefix, secret = keys.generate_key()
    row = ApiKey(account_id=account.id, prefix=prefix, key_hash=keys.hash_key(secret, pepper),
                 name=name, scopes=",".join(scopes))
    session.add(row)
    session.flush()
    return row, secret


def authenticate(session: Session, secret: str, pepper: str) -> ApiKey | None:
    """The active key matching `secret`, or None. Compares hashes in constant time."""
    prefix = keys.prefix_of(secret)
    if prefix is None:
        return None
    row = session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)).first()
    if row is None or row.revoked_at is not None or not keys.key_matches(secret, row.key_hash, pepper):
        return None
    now = utcnow()
    last = row.last_used_at
    if last is None or now - (last if last.tzinfo else last.replace(tzinfo=now.tzinfo)) > LAST_USED_RESOLUTION:
        row.last_used_at = now
    return row
