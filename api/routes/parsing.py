"""Request parsing shared by the blueprints: marshmallow errors become 400 problem documents."""
from __future__ import annotations

import json

from flask import request
from marshmallow import Schema, ValidationError

from api.errors import ApiError


def load(schema: Schema, data: dict) -> dict:
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", "Invalid request", "some fields are invalid",
                       errors=exc.normalized_messages()) from exc


def form_fields(json_fields: tuple[str, ...] = ()) -> dict:
    """A multipart form's fields; a nested object travels as JSON text in a form field."""
    form = request.form.to_dict()
    for name in json_fields:
        if name in form:
            try:
                form[name] = json.loads(form[name])
            except ValueError as exc:
                raise ApiError(400, "invalid_request", "Invalid request", f"{name} must be a JSON object",
                               errors={name: ["Not valid JSON."]}) from exc
    return form


def json_object() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "Invalid request", "the body must be a JSON object")
    return body
