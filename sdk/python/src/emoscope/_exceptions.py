"""Exceptions raised by the SDK, mapped from the API's RFC 7807 problem documents.

EmoscopeError
├── APIConnectionError            network failure, no HTTP answer
│   └── APITimeoutError           connect/read/write timeout
├── AuthenticationError           401 (missing_api_key, invalid_api_key, invalid_credentials)
├── PermissionDeniedError         403 (insufficient_scope)
├── InvalidRequestError           400, 404, 409, 413, 415, 422 (the `code` says which)
├── QuotaExceededError            402, any code
│   └── PaymentRequiredError      402 payment_required (subscription past due)
├── RateLimitError                429 (rate_limited)
├── APIError                      5xx (internal_error, overloaded, billing_unavailable, ...)
└── SignatureVerificationError    a webhook signature did not verify
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterator, Mapping, Optional, Tuple, Type


@dataclass(frozen=True)
class InvalidParam:
    """One field the API refused: its `name` (a nested one dotted, e.g. `micro_expressions.sensitivity`;
    a part of the request such as the `Idempotency-Key` header by that name) and the `reason` in words."""

    name: str
    reason: str


class EmoscopeError(Exception):
    """Base class. Every attribute but `message` may be None (e.g. for connection errors)."""

    def __init__(
        self,
        message: str,
        *,
        status: Optional[int] = None,
        code: Optional[str] = None,
        detail: Optional[str] = None,
        request_id: Optional[str] = None,
        problem: Optional[Mapping[str, Any]] = None,
        headers: Optional[Mapping[str, str]] = None,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.detail = detail
        self.request_id = request_id
        self.problem: Dict[str, Any] = dict(problem or {})
        self.headers: Dict[str, str] = dict(headers or {})
        #: Seconds the API asked us to wait (`Retry-After`), when it said so.
        self.retry_after = retry_after

    @property
    def errors(self) -> Dict[str, Any]:
        """Field name -> messages, for `invalid_request`."""
        return dict(self.problem.get("errors") or {})

    @property
    def invalid_params(self) -> Tuple[InvalidParam, ...]:
        """The fields a 400 refused: the problem's `invalid_params` member, or, from a server that
        does not send it yet, the same read from `errors`. Empty for other errors."""
        listed = self.problem.get("invalid_params")
        if isinstance(listed, list):
            return tuple(
                InvalidParam(str(item["name"]), _reason(item.get("reason")))
                for item in listed
                if isinstance(item, Mapping) and "name" in item
            )
        return tuple(_params_from_errors(self.errors))

    def __str__(self) -> str:
        parts = [self.message]
        if self.request_id:
            parts.append(f"(request id {self.request_id})")
        return " ".join(parts)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, detail={self.detail!r}, "
            f"request_id={self.request_id!r})"
        )


def _reason(messages: Any) -> str:
    if isinstance(messages, (list, tuple)):
        return " ".join(str(message) for message in messages)
    return "" if messages is None else str(messages)


def _params_from_errors(errors: Mapping[str, Any], prefix: str = "") -> Iterator[InvalidParam]:
    """marshmallow's messages: a list per field, a mapping per nested object or list item."""
    for name, messages in errors.items():
        if isinstance(messages, Mapping):
            yield from _params_from_errors(messages, f"{prefix}{name}.")
        else:
            yield InvalidParam(f"{prefix}{name}", _reason(messages))


class APIConnectionError(EmoscopeError):
    """The request never got an HTTP answer (refused, reset, DNS, TLS...)."""


class APITimeoutError(APIConnectionError):
    """The request timed out. With an analysis, the server may still have done (and billed) it."""


class AuthenticationError(EmoscopeError):
    """401: no key, an unknown or revoked key, or a wrong email/password at sign-in."""


class PermissionDeniedError(EmoscopeError):
    """403: the key lacks the scope the endpoint needs (owner calls need `admin`)."""


class InvalidRequestError(EmoscopeError):
    """400/404/409/413/415/422: fix the request; retrying it unchanged will not help."""


class QuotaExceededError(EmoscopeError):
    """402. `code == "quota_exceeded"`: the free plan's monthly units are spent and
    `retry_after` counts the seconds to the reset; see `PaymentRequiredError` for the other case."""


class PaymentRequiredError(QuotaExceededError):
    """402 `payment_required`: the paid subscription is past due. A subclass of QuotaExceededError
    so that `except QuotaExceededError` catches every 402."""


class RateLimitError(EmoscopeError):
    """429: too many requests for this key; `retry_after` says when one is allowed again."""


class APIError(EmoscopeError):
    """5xx: the service's fault or overload (`overloaded` comes with `retry_after`)."""


class SignatureVerificationError(EmoscopeError):
    """A webhook's `Emoscope-Signature` header is missing, malformed, stale or does not match."""


_BY_STATUS = {
    400: InvalidRequestError,
    401: AuthenticationError,
    402: QuotaExceededError,
    403: PermissionDeniedError,
    404: InvalidRequestError,
    409: InvalidRequestError,
    413: InvalidRequestError,
    415: InvalidRequestError,
    422: InvalidRequestError,
    429: RateLimitError,
}


def error_class(status: int, code: Optional[str]) -> Type[EmoscopeError]:
    if status == 402 and code == "payment_required":
        return PaymentRequiredError
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return APIError
    if code in ("rate_limited",):
        return RateLimitError
    if 400 <= status < 500:
        return InvalidRequestError
    return EmoscopeError
