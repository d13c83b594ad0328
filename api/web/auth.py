"""Request guards: the API key (`Authorization: Bearer <key>` or `X-API-Key`) and rate limits."""

from __future__ import annotations

from functools import wraps

from flask import g, request

from api.store import repository
from api.store.db import Account
from api.store.ratelimit import Decision
from api.usecases.admission import rate_limit
from api.web.context import services as current_services
from api.web.errors import ApiError
from api.web.problems import admission_problems
from api.wiring.services import Services

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="emoscope"'}


def presented_key() -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return request.headers.get("X-API-Key") or None


def require_api_key(scope: str):
    def decorator(view):
        @wraps(view)
        def guarded(*args, **kwargs):
            secret = presented_key()
            if secret is None:
                raise ApiError(
                    401,
                    "missing_api_key",
                    "Authentication required",
                    "send your API key as 'Authorization: Bearer <key>' or 'X-API-Key'",
                    headers=CHALLENGE,
                )
            services = current_services()
            with services.db.session.begin() as session:
                key = repository.authenticate(session, secret, services.settings.api_key_pepper)
                if key is None:
                    raise ApiError(
                        401,
                        "invalid_api_key",
                        "Authentication failed",
                        "the API key is not valid or has been revoked",
                        headers=CHALLENGE,
                    )
                if scope not in key.scopes.split(","):
                    raise ApiError(403, "insufficient_scope", "Forbidden", f"this key lacks the '{scope}' scope")
                g.account_id, g.api_key_id = key.account_id, key.id
                g.account = session.get(Account, key.account_id)
            return view(*args, **kwargs)

        return guarded

    return decorator


def enforce_rate_limit(services: Services, bucket: str, rate: float, burst: int) -> None:
    """429 when the bucket is empty; the X-RateLimit-* headers go on the response either way."""
    with admission_problems():
        show_rate_limit(rate_limit(services.rate_limiter, bucket, rate, burst))


def show_rate_limit(decision: Decision | None) -> None:
    """The X-RateLimit-* headers of the bucket a request was admitted by, on its response."""
    if decision is not None:
        g.rate_limit_headers = decision.headers()
