"""What the browser pages (demo and console) need: the console's session cookie, CSRF tokens, headers.

The JSON API authenticates each request by its key and never reads a cookie, so a forged
cross-site request cannot act through it; the console does use a cookie, so each of its
state-changing forms carries a synchroniser token that is kept in the session and compared in
constant time. The security headers go on every response: one policy is easier to audit than two.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Flask, request, session

from api.wiring.config import Settings

CSRF_FIELD = "csrf_token"
# Forms that create something show its secret once, so their answer is rendered, not redirected to;
# each such form carries a fresh id, and the session remembers the last few sent, so a reload or a
# double click does not create a second key or study.
SUBMISSION_FIELD = "submission_id"
REMEMBERED_SUBMISSIONS = 20
# Long enough for a working day in the console; a stolen cookie stops working this long after sign-in.
SESSION_LIFETIME = timedelta(hours=12)

# Everything is served by us: no inline script or style, no CDN. blob: URLs show the visitor's own
# upload and webcam picture; the only other place a form may lead is Stripe's customer portal.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' blob:",
        "media-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self' https://billing.stripe.com",
    ]
)
# Stripe's own hosts for Stripe.js: its card fields are frames of js.stripe.com, card checks
# (3-D Secure) frames of hooks.stripe.com, and it calls api.stripe.com.
STRIPE_FRAMES = "https://js.stripe.com https://hooks.stripe.com"
STRIPE_API = "https://api.stripe.com"


def card_form_policy(stripe_js_url: str) -> str:
    """The policy of the one page that loads Stripe.js (the console's card form), from wherever it
    is configured to come from (a local Stripe double in tests)."""
    parts = urlsplit(stripe_js_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    return "; ".join(
        [
            CONTENT_SECURITY_POLICY,
            f"script-src 'self' {origin}",
            f"frame-src {origin} {STRIPE_FRAMES}",
            f"connect-src 'self' {origin} {STRIPE_API}",
        ]
    )


SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def session_secret(settings: Settings) -> str:
    """EMOSCOPE_SESSION_SECRET, or one derived from the pepper, so that a deployment that sets its
    pepper (it must) gets a private session secret shared by all its workers without a second secret."""
    if settings.session_secret:
        return settings.session_secret
    return hmac.new(settings.api_key_pepper.encode(), b"emoscope console session", hashlib.sha256).hexdigest()


def install(app: Flask, settings: Settings) -> None:
    app.secret_key = session_secret(settings)
    app.config.update(
        SESSION_COOKIE_NAME="emoscope_console",
        # Only the console reads the session; the API and the demo never receive the cookie.
        SESSION_COOKIE_PATH="/console",
        SESSION_COOKIE_SECURE=settings.cookie_secure,
        SESSION_COOKIE_HTTPONLY=True,
        # Lax, not Strict: coming back from Stripe's portal is a cross-site navigation that should
        # find the owner still signed in. Cross-site POSTs carry no cookie either way.
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
    )
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["CSRF_FIELD"] = CSRF_FIELD
    app.jinja_env.globals["new_submission_id"] = lambda: secrets.token_urlsafe(16)
    app.jinja_env.globals["SUBMISSION_FIELD"] = SUBMISSION_FIELD

    @app.after_request
    def _security_headers(response):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response


def csrf_token() -> str:
    """The session's token, created on first use (the sign-in form needs one before any sign-in)."""
    if CSRF_FIELD not in session:
        session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return session[CSRF_FIELD]


def csrf_valid() -> bool:
    expected, sent = session.get(CSRF_FIELD), request.form.get(CSRF_FIELD, "")
    return expected is not None and hmac.compare_digest(sent.encode(), expected.encode())


def first_submission() -> bool:
    """Whether this form's submission id has not been sent before in this session; remembers it."""
    sent, sent_before = request.form.get(SUBMISSION_FIELD, ""), session.get("submissions", [])
    if not sent or sent in sent_before:
        return False
    session["submissions"] = (sent_before + [sent])[-REMEMBERED_SUBMISSIONS:]
    return True


def start_session(**values) -> None:
    """A fresh session (new CSRF token) on sign-in, so that a token or cookie planted before it is worthless."""
    session.clear()
    session.permanent = True
    session.update(values, signed_in_at=time.time())
    csrf_token()


def session_expired(ended_at: float | None = None) -> bool:
    """Counted from sign-in: Flask re-signs the cookie whenever the session changes, which alone
    would let a session in use (or a stolen cookie) live forever. `ended_at` (a timestamp) ends
    every session that began before it."""
    started = session.get("signed_in_at")
    return (
        started is None
        or time.time() - started > SESSION_LIFETIME.total_seconds()
        or (ended_at is not None and started <= ended_at)
    )
