"""Outgoing job webhooks: SSRF-safe destinations, Stripe-style HMAC signatures, bounded delivery."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import urllib3

SIGNATURE_HEADER = "Emoscope-Signature"
TIMEOUT_S = 10


class UnsafeWebhookUrl(ValueError):
    pass


def new_webhook_secret() -> str:
    """An account's signing secret, made at sign-up (or at its first job, for older accounts)."""
    return f"whsec_{secrets.token_urlsafe(24)}"


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """`t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<payload>">`, as Stripe signs its webhooks."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass(frozen=True)
class Destination:
    """A checked webhook URL and the address it resolved to, which is the one delivery connects to."""

    scheme: str
    hostname: str
    address: str
    port: int
    target: str  # path and query
    host_header: str


# NAT64 (RFC 6052) translates the last 32 bits to IPv4, so 64:ff9b::a00:8 reaches 10.0.0.8.
NAT64 = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _reached(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list:
    """The address and every IPv4 address an IPv6 form carries (mapped, compatible, NAT64, 6to4, Teredo)."""
    if ip.version == 4:
        return [ip]
    embedded = [ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None]
    if ip in NAT64 or ip in IPV4_COMPATIBLE:
        embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return [ip, *(v4 for v4 in embedded if v4 is not None)]


def check_destination(url: str, allow_loopback: bool) -> Destination:
    """Refuse anything but https to public addresses; `allow_loopback` (tests only) admits http://127.0.0.1.

    Checked at submission and again at each delivery, because DNS answers can change in between;
    the delivery then connects to the address checked here, so a second answer cannot redirect it.
    """
    parts = urlsplit(url)
    if not parts.hostname:
        raise UnsafeWebhookUrl("the webhook URL has no host")
    try:
        port = parts.port if parts.port is not None else (443 if parts.scheme == "https" else 80)
    except ValueError as exc:  # not a number, or outside 0-65535
        raise UnsafeWebhookUrl("the webhook URL's port is not a valid port") from exc
    if not 0 < port < 65536:
        raise UnsafeWebhookUrl("the webhook URL's port is not a valid port")
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeWebhookUrl(f"the webhook host {parts.hostname!r} does not resolve") from exc
    addresses = list(dict.fromkeys(info[4][0].split("%")[0] for info in infos))
    reached = [v for a in addresses for v in _reached(ipaddress.ip_address(a))]
    if allow_loopback and all(ip.is_loopback for ip in reached):
        if parts.scheme not in ("http", "https"):
            raise UnsafeWebhookUrl("webhook URLs must use https")
    elif parts.scheme != "https":
        raise UnsafeWebhookUrl("webhook URLs must use https")
    elif not all(ip.is_global for ip in reached):
        raise UnsafeWebhookUrl("webhook URLs must point to public internet addresses")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{port}"
    if ":" in parts.hostname:  # an IPv6 literal
        host_header = f"[{parts.hostname}]" + ("" if parts.port is None else f":{port}")
    return Destination(parts.scheme, parts.hostname, addresses[0], port, target, host_header)


def deliver(url: str, payload: bytes, secret: str, allow_loopback: bool) -> bool:
    """One signed attempt to the checked address, with the URL's host name for TLS (SNI and the
    certificate check) and the Host header. Redirects are not followed: they could lead past the check."""
    try:
        destination = check_destination(url, allow_loopback)
        if destination.scheme == "https":
            pool = urllib3.HTTPSConnectionPool(
                destination.address,
                destination.port,
                timeout=TIMEOUT_S,
                retries=False,
                server_hostname=destination.hostname,
                assert_hostname=destination.hostname,
                ca_certs=certifi.where(),
            )
        else:
            pool = urllib3.HTTPConnectionPool(destination.address, destination.port, timeout=TIMEOUT_S, retries=False)
        with pool:
            response = pool.urlopen(
                "POST",
                destination.target,
                body=payload,
                redirect=False,
                headers={
                    "Host": destination.host_header,
                    "Content-Type": "application/json",
                    SIGNATURE_HEADER: sign(payload, secret),
                    "User-Agent": "Emoscope-Webhooks/1",
                },
            )
    except (urllib3.exceptions.HTTPError, OSError, UnsafeWebhookUrl):
        return False
    return 200 <= response.status < 300


def backoff_seconds(attempt: int) -> float:
    """1, 2, 4, 8 … seconds between attempts, at most 10 minutes."""
    return min(600.0, 2.0**attempt)
