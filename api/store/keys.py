"""API key format, hashing and constant-time verification. No Flask here."""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_PREFIX = "emo_"


def generate_key() -> tuple[str, str]:
    """Return (public prefix, full secret key). The key carries 256 random bits."""
    prefix = secrets.token_hex(6)
    return prefix, f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"


def prefix_of(key: str) -> str | None:
    if not key.startswith(KEY_PREFIX):
        return None
    prefix, sep, secret = key[len(KEY_PREFIX) :].partition("_")
    return prefix if sep and secret and len(prefix) == 12 else None


def hash_key(key: str, pepper: str) -> str:
    # A keyed fast hash is enough: keys are random, not guessable passwords. The pepper means a
    # leaked table alone cannot be used to test candidate keys.
    return hmac.new(pepper.encode(), key.encode(), hashlib.sha256).hexdigest()


def key_matches(key: str, stored_hash: str, pepper: str) -> bool:
    return hmac.compare_digest(hash_key(key, pepper), stored_hash)
