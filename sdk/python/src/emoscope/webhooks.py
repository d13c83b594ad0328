"""Verify the signature of webhooks sent by Emoscope.

The service signs every webhook with a header `Emoscope-Signature: t=<unix time>,v1=<hex>` where
`<hex>` is HMAC-SHA256, keyed with the endpoint's secret (its UTF-8 bytes, used as is), over
`f"{t}.{raw request body}"`. Several `v1=` entries may appear while a secret is being rotated; one
match is enough. Verify against the raw body bytes, before any JSON parsing.

    from emoscope import webhooks

    event = webhooks.construct_event(request.get_data(), request.headers["Emoscope-Signature"], SECRET)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any, List, Optional, Tuple, Union

from ._exceptions import SignatureVerificationError

SIGNATURE_HEADER = "Emoscope-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE = 300


def _bytes(value: Union[bytes, bytearray, str]) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def compute_signature(payload: Union[bytes, str], secret: Union[str, bytes], timestamp: int) -> str:
    """Hex HMAC-SHA256 of `f"{timestamp}.{payload}"`."""
    signed = f"{int(timestamp)}.".encode("ascii") + _bytes(payload)
    return hmac.new(_bytes(secret), signed, hashlib.sha256).hexdigest()


def generate_header(payload: Union[bytes, str], secret: Union[str, bytes], timestamp: Optional[int] = None) -> str:
    """A valid header value for `payload`, e.g. to test your own webhook handler."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={ts},{SCHEME}={compute_signature(payload, secret, ts)}"


def _parse(header: str) -> Tuple[int, List[str]]:
    timestamp: Optional[int] = None
    signatures: List[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureVerificationError("the signature header's timestamp is not an integer") from None
        elif key == SCHEME:
            signatures.append(value.strip())
    if timestamp is None:
        raise SignatureVerificationError("the signature header has no timestamp (t=...)")
    if not signatures:
        raise SignatureVerificationError(f"the signature header has no {SCHEME} signature")
    return timestamp, signatures


def verify_signature(
    payload: Union[bytes, str],
    header: Optional[str],
    secret: Union[str, bytes],
    tolerance: Optional[int] = DEFAULT_TOLERANCE,
) -> None:
    """Return quietly when `header` signs `payload` with `secret` within `tolerance` seconds of now
    (None disables the time check); raise SignatureVerificationError otherwise."""
    if not header:
        raise SignatureVerificationError(f"no {SIGNATURE_HEADER} header")
    timestamp, signatures = _parse(header)
    expected = compute_signature(payload, secret, timestamp)
    # Compare against every candidate without stopping early, in constant time each.
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected.encode("ascii"), candidate.encode("utf-8"))
    if not matched:
        raise SignatureVerificationError("no signature matches the payload (wrong secret, or the body changed)")
    if tolerance is not None and abs(time.time() - timestamp) > tolerance:
        raise SignatureVerificationError(
            f"the signature's timestamp is more than {tolerance} s from now (a replayed or delayed webhook)"
        )


def construct_event(
    payload: Union[bytes, str],
    header: Optional[str],
    secret: Union[str, bytes],
    tolerance: Optional[int] = DEFAULT_TOLERANCE,
) -> Any:
    """verify_signature, then the payload parsed as JSON."""
    verify_signature(payload, header, secret, tolerance)
    return json.loads(_bytes(payload))
