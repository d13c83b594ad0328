"""Owner passwords: what is long and uncommon enough, and scrypt from the standard library,
parameters stored with each hash."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string
from pathlib import Path

N, R, P = 2**14, 8, 1
MIN_LENGTH = 10
MAX_LENGTH = 200
# Ten characters of which three differ ("ababababab") are ten characters in name only.
MIN_DISTINCT = 5
COMMON = frozenset(
    line.strip()
    for line in (Path(__file__).parent / "common-passwords.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
)


class WeakPassword(ValueError):
    pass


def check_strength(password: str) -> None:
    """Raise WeakPassword unless the password is long, varied and not a common one.

    Length counts what is between the first and last non-space characters: a length check alone
    took ten spaces. A common password is also refused with digits and symbols appended
    ("dragon2026!"), the usual way of meeting a length rule.
    """
    core = password.strip()
    if len(core) < MIN_LENGTH:
        raise WeakPassword(f"use at least {MIN_LENGTH} characters, not counting spaces at either end")
    if len(set(core)) < MIN_DISTINCT:
        raise WeakPassword(f"use at least {MIN_DISTINCT} different characters")
    lowered = core.lower()
    if lowered in COMMON or lowered.rstrip(string.digits + string.punctuation + " ") in COMMON:
        raise WeakPassword("this password is among the most common ones; choose another")


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=32)
    return f"scrypt${N}${R}${P}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    _, n, r, p, salt, digest = stored.split("$")
    candidate = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=32)
    return hmac.compare_digest(candidate, base64.b64decode(digest))


# Spent on unknown emails too, so response time does not reveal which emails have accounts.
DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
