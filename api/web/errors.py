"""RFC 7807 problem responses with stable machine-readable codes."""

from __future__ import annotations

from flask import Flask, g, jsonify, request
from werkzeug.exceptions import HTTPException

from api.engine import media

PROBLEM_TYPE = "urn:emoscope:problem:{code}"

MEDIA_STATUS = {
    media.UnsupportedMedia: 415,
    media.MediaTooLarge: 413,
    media.MediaDimensionsTooLarge: 413,
    media.MediaCorrupt: 422,
    media.MediaEmpty: 400,
    media.ClipTooLong: 422,
}

HTTP_CODES = {
    400: ("invalid_request", "Invalid request"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    408: ("request_timeout", "Request timeout"),
    413: ("media_too_large", "Upload too large"),
    414: ("uri_too_long", "URI too long"),
    415: ("unsupported_media_type", "Unsupported media type"),
    431: ("request_header_too_large", "Request header too large"),
}


def body_too_large() -> str:
    """Werkzeug's 413 for a body over MAX_CONTENT_LENGTH, with the body's declared size (none when chunked)."""
    limit = request.max_content_length
    size = f"{request.content_length} bytes" if request.content_length else f"more than {limit} bytes"
    return f"the request body is {size}; a request is limited to {limit} bytes (the upload limit, with room for base64)"


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, title: str, detail: str, errors: dict | None = None, headers: dict | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.title, self.detail = status, code, title, detail
        self.errors, self.headers = errors, headers or {}


def invalid_params(errors: dict) -> list[dict[str, str]]:
    """`errors` (field -> messages, nested for nested fields) as RFC 7807's list of invalid parameters:
    one {name, reason} per field, nested names joined with dots; `_schema` (a rule across fields) names
    the object it is about, "body" at the top."""
    params = []
    pending: list[tuple[tuple[str, ...], object]] = [((), errors)]
    while pending:
        path, messages = pending.pop(0)
        if isinstance(messages, dict):
            pending.extend(((*path, str(key)) if key != "_schema" else path, value) for key, value in messages.items())
        else:
            reasons = messages if isinstance(messages, list) else [messages]
            params.append({"name": ".".join(path) or "body", "reason": " ".join(map(str, reasons))})
    return params


def problem(status: int, code: str, title: str, detail: str, errors: dict | None = None, headers=None):
    body = {
        "type": PROBLEM_TYPE.format(code=code),
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "instance": request.path,
        "request_id": g.get("request_id"),
    }
    if errors:
        body["errors"] = errors
        body["invalid_params"] = invalid_params(errors)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    response.headers.update(headers or {})
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return problem(exc.status, exc.code, exc.title, exc.detail, exc.errors, exc.headers)

    @app.errorhandler(media.MediaError)
    def _media_error(exc: media.MediaError):
        status = MEDIA_STATUS.get(type(exc), 422)
        return problem(status, exc.code, "Media refused", str(exc))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        code, title = HTTP_CODES.get(exc.code, ("http_error", exc.name))
        detail = body_too_large() if exc.code == 413 else exc.description or exc.name
        return problem(exc.code, code, title, detail)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        app.logger.exception("unhandled error")
        return problem(500, "internal_error", "Internal error", "something went wrong on our side; it was logged")
