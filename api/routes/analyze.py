"""POST /v1/analyze: parse and validate, run the engine, serialise."""
from __future__ import annotations

import base64
import binascii
import json

from flask import Blueprint, current_app, g, jsonify, request
from marshmallow import ValidationError

from api.auth import require_api_key
from api.engine.analyzer import AnalysisOptions, analyze_bytes
from api.errors import ApiError
from api.schemas import AnalyzeJsonSchema, AnalyzeOptionsSchema
from api.serializers import analysis_json

bp = Blueprint("analyze", __name__)


@bp.post("/v1/analyze")
@require_api_key("analyze")
def analyze():
    services = current_app.extensions["emoscope"]
    data, options = _parse(services.settings.limits.max_upload_bytes)
    analysis = analyze_bytes(services.analyzer, data, options, services.settings.limits)
    return jsonify(analysis_json(analysis, g.request_id, services.model_versions(options.detector), analysis.timing_ms))


def _parse(max_bytes: int) -> tuple[bytes, AnalysisOptions]:
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise ApiError(400, "invalid_request", "Invalid request", "the multipart body needs a 'file' part",
                           errors={"file": ["Missing data for required field."]})
        form = request.form.to_dict()
        if "micro_expressions" in form:  # a nested object travels as JSON text in a form field
            try:
                form["micro_expressions"] = json.loads(form["micro_expressions"])
            except ValueError as exc:
                raise ApiError(400, "invalid_request", "Invalid request", "micro_expressions must be a JSON object",
                               errors={"micro_expressions": ["Not valid JSON."]}) from exc
        return upload.read(max_bytes + 1), _options(_load(AnalyzeOptionsSchema(), form))
    if request.mimetype == "application/json":
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_request", "Invalid request", "the body is not a JSON object")
        fields = _load(AnalyzeJsonSchema(), body)
        media_field = "image_base64" if "image_base64" in fields else "video_base64"
        encoded = fields.pop(media_field)
        return _b64decode(encoded, max_bytes), _options(fields)
    raise ApiError(415, "unsupported_media_type", "Unsupported media type",
                   "send multipart/form-data with a 'file' part, or application/json with image_base64 or video_base64")


def _options(fields: dict) -> AnalysisOptions:
    micro = fields.pop("micro_expressions")
    return AnalysisOptions(**fields, micro_expressions=micro["enabled"], micro_sensitivity=micro["sensitivity"])


def _load(schema, data: dict) -> dict:
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", "Invalid request", "some fields are invalid",
                       errors=exc.normalized_messages()) from exc


def _b64decode(encoded: str, max_bytes: int) -> bytes:
    if len(encoded) * 3 // 4 > max_bytes + 3:  # refuse before allocating the decoded copy
        raise ApiError(413, "media_too_large", "Upload too large", f"the decoded media would exceed {max_bytes} bytes")
    if "," in encoded[:100] and encoded.startswith("data:"):
        encoded = encoded.split(",", 1)[1]  # accept data: URLs as browsers produce them
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, "invalid_request", "Invalid request", "the media field is not valid base64",
                       errors={"media": ["Not valid base64."]}) from exc
