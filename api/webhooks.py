"""Outgoing job webhooks: SSRF-safe destinations, Stripe-style HMAC signatures, bounded delivery."""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
import time
from urllib.parse import urlsplit

import requests

SIGNATURE_HEADER = "Emoscope-Signature"
TIMEOUT_S = 10


class UnsafeWebhookUrl(ValueError):
    pass


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """`t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<payload>">`, as Stripe signs its webhooks."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def check_destination(url: str, allow_loopback: bool) -> None:
    """Refuse anything but https to public addresses; `allow_loopback` (tests only) admits http://127.0.0.1.

    Checked at submission and again at each delivery, because DNS answers can change in between.
    """
    parts = urlsplit(url)
    if not parts.hostname:
        raise UnsafeWebhookUrl("the webhook URL has no host")
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)}
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeWebhookUrl(f"the webhook host {parts.hostname!r} does not resolve") from exc
    ips = [ipaddress.ip_address(a.split("%")[0]) for a in addresses]
    if allow_loopback and all(ip.is_loopback for ip in ips):
        if parts.scheme not in ("http", "https"):
            raise UnsafeWebhookUrl("webhook URLs must use https")
        return
    if parts.scheme != "https":
        raise UnsafeWebhookUrl("webhook URLs must use https")
    if not all(ip.is_global for ip in ips):
        raise UnsafeWebhookUrl("webhook URLs must point to public internet addresses")


def deliver(url: str, payload: bytes, secret: str, allow_loopback: bool) -> bool:
    """One signed attempt. Redirects are not followed: they could lead past the address check."""
    try:
        check_destination(url, allow_loopback)
        response = requests.post(url, data=payload, timeout=TIMEOUT_S, allow_redirects=False,
                                 headers={"Content-Type": "application/json", SIGNATURE_HEADER: sign(payload, secret),
                                          "User-Agent": "Emoscope-Webhooks/1"})
    except (requests.RequestException, UnsafeWebhookUrl):
        return False
    return 200 <= response.status_code < 300


def backoff_seconds(attempt: int) -> float:
    """1, 2, 4, 8 … seconds between attempts, at most 10 minutes."""
    return min(600.0, 2.0 ** attempt)
