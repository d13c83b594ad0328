"""Request parsing shared by the blueprints: marshmallow errors become 400 problem documents."""
from __future__ import annotations

import json

from flask import request
from flask.json.provider import DefaultJSONProvider
from marshmallow import Schema, ValidationError

from api.errors import ApiError


def load(schema: Schema, data: dict) -> dict:
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", "Invalid request", "some fields are invalid",
                       errors=exc.normalized_messages()) from exc


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
            raise ApiError(400, "invalid_request", "Invalid request", f"the multipart body has {len(values)} "
                           f"'{name}' parts; send one", errors={name: ["Send this part once."]})
    form = request.form.to_dict()
    for name in json_fields:
        if name in form:
            try:
                form[name] = parse_json(form[name])
            except ValueError as exc:
                raise ApiError(400, "invalid_request", "Invalid request", f"{name} must be a JSON object",
                               errors={name: ["Not valid JSON."]}) from exc
    return form


def json_object() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "Invalid request", "the body must be a JSON object (valid JSON, "
                       "not nested too deeply)")
    return body
