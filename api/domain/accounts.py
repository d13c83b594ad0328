"""Owners and their accounts: sign-up, sign-in, passwords. Owners act through admin-scoped API keys.

Why keys rather than a second credential for owners: machine clients and the SDK already speak
`Authorization: Bearer`, keys are hashed, scoped and revocable, and revocation is checked on
every request by every worker. The password is only for a person to obtain such a key.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.domain import passwords
from api.domain.webhooks import new_webhook_secret
from api.store import keys, repository
from api.store.db import Account, ApiKey, Owner, PasswordReset, utcnow

OWNER_SCOPES = ("analyze", "admin")
RESET_TOKEN_PREFIX = "pwr_"
RESET_LIFETIME = timedelta(hours=1)


class EmailTaken(Exception):
    pass


class KeyLimitReached(Exception):
    pass


def create_key(
    session: Session,
    account: Account,
    pepper: str,
    name: str,
    scopes: tuple[str, ...],
    max_keys: int,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new key (returned secret, shown once), unless the account holds `max_keys` active keys."""
    if repository.count_active_keys(session, account.id) >= max_keys:
        raise KeyLimitReached(max_keys)
    return repository.create_api_key(session, account, pepper, name, scopes, expires_at)


def sign_up(
    session: Session, email: str, password: str, account_name: str, pepper: str
) -> tuple[Account, Owner, ApiKey, str]:
    """New account with its owner and a first admin key (returned secret, shown once)."""
    email = email.strip().lower()
    if repository.owner_by_email(session, email) is not None:
        raise EmailTaken(email)
    account = repository.create_account(session, account_name)
    account.webhook_secret = new_webhook_secret()
    try:
        owner = repository.create_owner(session, account, email, passwords.hash_password(password))
    except IntegrityError as exc:  # the same email signed up concurrently
        raise EmailTaken(email) from exc
    key, secret = repository.create_api_key(session, account, pepper, "owner", OWNER_SCOPES)
    return account, owner, key, secret


def verify_owner(session: Session, email: str, password: str) -> Owner | None:
    """The owner with this email and password, or None when either is wrong (indistinguishably:
    an unknown email costs the same hashing time as a wrong password)."""
    owner = repository.owner_by_email(session, email.strip().lower())
    if owner is None:
        passwords.verify_password(password, passwords.DUMMY_HASH)
        return None
    return owner if passwords.verify_password(password, owner.password_hash) else None


def sign_in(
    session: Session, owner: Owner, key_name: str, pepper: str, max_keys: int, lifetime: timedelta
) -> tuple[ApiKey, str]:
    """A short-lived admin key for an owner whose password was verified. It replaces the key an
    earlier sign-in issued under the same name, so signing in again and again does not pile up
    admin keys (each one a credential that outlives the need for it)."""
    repository.revoke_expiring_keys(session, owner.account_id, key_name)
    return create_key(
        session,
        session.get(Account, owner.account_id),
        pepper,
        key_name,
        OWNER_SCOPES,
        max_keys,
        expires_at=utcnow() + lifetime,
    )


def set_password(session: Session, owner: Owner, new_password: str) -> None:
    """Replace the password (checked by the caller's schema) and end every console session of the
    owner: whoever had the old password may be signed in with it."""
    owner.password_hash = passwords.hash_password(new_password)
    owner.sessions_ended_at = utcnow()
    session.execute(
        update(PasswordReset)
        .where(PasswordReset.owner_id == owner.id, PasswordReset.used_at.is_(None))
        .values(used_at=utcnow())
    )


def request_password_reset(session: Session, email: str, pepper: str, lifetime: timedelta) -> tuple[Owner, str] | None:
    """A single-use reset token for the owner with this email (returned once; only its hash is
    stored), or None when there is no such owner."""
    owner = repository.owner_by_email(session, email.strip().lower())
    if owner is None:
        return None
    token = f"{RESET_TOKEN_PREFIX}{secrets.token_urlsafe(32)}"
    session.add(
        PasswordReset(owner_id=owner.id, token_hash=keys.hash_key(token, pepper), expires_at=utcnow() + lifetime)
    )
    return owner, token


def reset_password(session: Session, token: str, new_password: str, pepper: str) -> Owner | None:
    """Set the password of the owner this unused, unexpired token names; None for any other token."""
    reset = session.scalars(
        select(PasswordReset).where(
            PasswordReset.token_hash == keys.hash_key(token, pepper),
            PasswordReset.used_at.is_(None),
            PasswordReset.expires_at > utcnow(),
        )
    ).first()
    if reset is None:
        return None
    owner = session.get(Owner, reset.owner_id)
    set_password(session, owner, new_password)  # marks this token used, with the owner's others
    return owner
