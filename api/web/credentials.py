"""What every door that takes an owner's credentials shares (the API and the console): the
per-address budget, the per-email lock-out, capped keys and reset links."""

from __future__ import annotations

import hashlib
import logging
import smtplib
from urllib.parse import urlencode

from flask import request
from sqlalchemy.orm import Session

from api.domain import accounts
from api.store.db import Account, ApiKey, Owner
from api.web.auth import enforce_rate_limit
from api.web.context import services
from api.web.errors import ApiError
from api.web.problems import key_limit_problems

# Per client address, against sign-up spam and password guessing.
CREDENTIAL_RATE, CREDENTIAL_BURST = 0.2, 5
# Per email, counting failures only, from any address: ten wrong passwords lock the email, then one
# more guess every 90 s. An attacker can keep an owner locked out of signing in this way (not out
# of the keys or console sessions the owner has); with many addresses they would otherwise guess freely.
FAILED_SIGN_IN_RATE, FAILED_SIGN_IN_BURST = 1 / 90, 10
# Per email: reset links are emails we send, so asking for them must not become a way to flood a mailbox.
RESET_RATE, RESET_BURST = 1 / 600, 3
log = logging.getLogger(__name__)


def credentials_guard() -> None:
    """One budget per address, whichever door the credentials come through."""
    enforce_rate_limit(services(), f"credentials:ip:{request.remote_addr}", CREDENTIAL_RATE, CREDENTIAL_BURST)


def _email_bucket(email: str) -> str:
    """Buckets per email name a hash, so that no address is kept in Redis."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def sign_up(email: str, password: str, account_name: str) -> tuple[Account, Owner, ApiKey, str]:
    """`accounts.sign_up`: (account, owner, first key, its secret shown once). Raises accounts.EmailTaken.
    Both doors call `credentials_guard` first, before parsing, so that refused forms count too."""
    built = services()
    with built.db.session.begin() as session:
        return accounts.sign_up(session, email, password, account_name, built.settings.api_key_pepper)


def check_password(session: Session, email: str, password: str) -> Owner | None:
    """`accounts.verify_owner` behind the address's budget and the email's lock-out."""
    credentials_guard()
    limiter = services().rate_limiter
    bucket = f"failed-sign-ins:{_email_bucket(email)}"
    state = limiter.hit(bucket, FAILED_SIGN_IN_RATE, FAILED_SIGN_IN_BURST, take=False)
    if not state.allowed:
        raise ApiError(
            429,
            "sign_in_locked",
            "Sign-in locked",
            f"too many failed sign-ins for this email; retry after {state.retry_after_s} s",
            headers={"Retry-After": str(state.retry_after_s)},
        )
    owner = accounts.verify_owner(session, email, password)
    if owner is None:
        limiter.hit(bucket, FAILED_SIGN_IN_RATE, FAILED_SIGN_IN_BURST)
    return owner


def create_capped_key(session: Session, account: Account, name: str, scopes: list[str]) -> tuple[ApiKey, str]:
    """`accounts.create_key` with this deployment's cap."""
    settings = services().settings
    with key_limit_problems():
        return accounts.create_key(
            session, account, settings.api_key_pepper, name, tuple(dict.fromkeys(scopes)), settings.max_keys_per_account
        )


def send_reset_link(email: str) -> None:
    """Mail a reset link if an owner has this email; nothing tells the caller whether one does."""
    credentials_guard()
    built = services()
    enforce_rate_limit(built, f"password-resets:{_email_bucket(email)}", RESET_RATE, RESET_BURST)
    with built.db.session.begin() as session:
        issued = accounts.request_password_reset(session, email, built.settings.api_key_pepper, accounts.RESET_LIFETIME)
        if issued is None:
            return
        address, token = issued[0].email, issued[1]
    link = f"{built.settings.public_url.rstrip('/')}/console/password-reset?{urlencode({'token': token})}"
    try:
        built.mailer.send(
            address,
            "Reset your Emoscope password",
            f"Someone asked to reset the password of the Emoscope account owner {address}.\n\n"
            f"Set a new password here (the link works once, within an hour):\n{link}\n\n"
            "If it was not you, ignore this email: the password stays as it is.",
        )
    except (smtplib.SMTPException, OSError):
        log.exception("the password reset email could not be sent")
