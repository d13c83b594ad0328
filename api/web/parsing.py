"""Request parsing shared by the blueprints: marshmallow errors become 400 problem documents."""

from __future__ import annotations

import json
import re

from flask import Request, request
from flask.json.provider import DefaultJSONProvider
from marshmallow import Schema, ValidationError
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser

from api.web.errors import ApiError, invalid_params


def load(schema: Schema, data: dict) -> dict:
    try:
        return schema.load(data)
    except ValidationError as exc:
        errors = exc.normalized_messages()
        names = ", ".join(param["name"] for param in invalid_params(errors))
        raise ApiError(400, "invalid_request", "Invalid request", f"invalid fields: {names}", errors=errors) from exc


def parse_json(text: str | bytes, **kwargs):
    """`json.loads`, with nesting too deep for the decoder (RecursionError) refused as invalid JSON."""
    try:
        return json.loads(text, **kwargs)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, with request bodies decoded by `parse_json` (`request.get_json` catches ValueError)."""

    def loads(self, s: str | bytes, **kwargs):
        return parse_json(s, **kwargs)


def form_fields(json_fields: tuple[str, ...] = ()) -> dict:
    """A multipart form's fields; a nested object travels as JSON text in a form field.

    A field or file part sent twice is refused: taking one silently would analyse, store or bill
    something other than what the client meant.
    """
    for name, values in [*request.form.lists(), *request.files.lists()]:
        if len(values) > 1:
            raise ApiError(
                400,
                "invalid_request",
                "Invalid request",
                f"the multipart body has {len(values)} '{name}' parts; send one",
                errors={name: ["Send this part once."]},
            )
    form = request.form.to_dict()
    for name in json_fields:
        if name in form:
            try:
                form[name] = parse_json(form[name])
            except ValueError as exc:
                raise ApiError(
                    400,
                    "invalid_request",
                    "Invalid request",
                    f"{name} must be a JSON object",
                    errors={name: ["Not valid JSON."]},
                ) from exc
    return form


def json_object() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(
            400,
            "invalid_request",
            "Invalid request",
            "the body must be a JSON object (valid JSON, not nested too deeply)",
        )
    return body


class _PartNames:
    """A multipart body read through to Werkzeug's parser, noting which part each read reached.

    Werkzeug refuses a form field over its memory limit with a bare 413 that names no field. It reads
    64 KiB at a time and parses each read before the next, and no field can pass the limit (500 KB)
    within one read, so the field it refused is the part that was open before the last read.
    """

    HEADER_ROOM = 1024  # a part's headers are found within this many bytes of its delimiter
    NAME = re.compile(rb'content-disposition:[^\r\n]*?\bname="([^"]*)"', re.IGNORECASE)

    def __init__(self, stream, boundary: bytes) -> None:
        self._stream, self._delimiter = stream, b"--" + boundary
        self._tail = b""
        self.open_part: str | None = None  # the part whose bytes the last read ended in
        self.open_before: str | None = None  # ... and the one before that read
        self.parts = 0
        self.body_too_large = False  # the stream itself refused to read on (a chunked body over the limit)

    def read(self, size: int = -1) -> bytes:
        try:
            data = self._stream.read(size)
        except RequestEntityTooLarge:
            self.body_too_large = True
            raise
        window = self._tail + data
        # Delimiters that end in the new bytes are new; those wholly in the tail were counted.
        self.parts += window.count(self._delimiter, max(0, len(self._tail) - len(self._delimiter) + 1))
        self.open_before = self.open_part
        last = window.rfind(self._delimiter)
        if last >= 0:
            headers = window[last : last + self.HEADER_ROOM].split(b"\r\n\r\n", 1)[0]
            found = self.NAME.search(headers)
            if found:
                self.open_part = found.group(1).decode("utf-8", "replace")
        self._tail = window[-(self.HEADER_ROOM + len(self._delimiter)) :]
        return data


class FormParser(FormDataParser):
    """Werkzeug's form parser, with its refusals of a multipart body as problems that name the part."""

    def parse(self, stream, mimetype, content_length, options=None):
        boundary = (options or {}).get("boundary", "")
        if mimetype != "multipart/form-data" or not boundary:
            return super().parse(stream, mimetype, content_length, options)
        watched = _PartNames(stream, boundary.encode("latin-1"))
        try:
            return super().parse(watched, mimetype, content_length, options)
        except RequestEntityTooLarge:
            if self.max_form_parts is not None and watched.parts > self.max_form_parts:
                raise ApiError(
                    413,
                    "too_many_parts",
                    "Too many parts",
                    f"the multipart body has more than {self.max_form_parts} parts",
                ) from None
            if watched.body_too_large or watched.open_before is None or self.max_form_memory_size is None:
                raise  # the body as a whole is over the limit (api.web.errors says so)
            name, limit = watched.open_before, self.max_form_memory_size
            raise ApiError(
                413,
                "field_too_large",
                "Form field too large",
                f"the form field '{name}' is more than {limit} bytes; a field other than a file is "
                f"limited to {limit} bytes (send media as a file part)",
                errors={name: [f"More than {limit} bytes."]},
            ) from None


class ApiRequest(Request):
    form_data_parser_class = FormParser
