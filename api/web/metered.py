"""What the billed routes share on the web side: the Idempotency-Key header and the replay header."""

from __future__ import annotations

from flask import Response, request

from api.web.errors import ApiError

MAX_IDEMPOTENCY_KEY = 255


def read_idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and (not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not key.isprintable()):
        raise ApiError(
            400,
            "invalid_request",
            "Invalid request",
            "Idempotency-Key must be 1-255 printable characters",
            errors={"Idempotency-Key": ["1-255 printable characters."]},
        )
    return key


def replayable(response: Response, replayed: bool) -> Response:
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response
