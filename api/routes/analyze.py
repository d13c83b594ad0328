"""POST /v1/analyze: parse and validate, run the engine, serialise."""
from __future__ import annotations

import base64
import binascii
import json

from flask import Blueprint, Response, current_app, g, request

from api import metering
from api.auth import enforce_rate_limit, require_api_key
from api.billing import DELINQUENT
from api.db import utcnow
from api.engine.analyzer import AnalysisOptions, analyze_bytes
from api.errors import ApiError
from api.routes.parsing import json_object, load
from api.schemas import AnalyzeJsonSchema, AnalyzeOptionsSchema
from api.serializers import analysis_json

bp = Blueprint("analyze", __name__)


MAX_IDEMPOTENCY_KEY = 255


@bp.post("/v1/analyze")
@require_api_key("analyze")
def analyze():
    services = current_app.extensions["emoscope"]
    account, plan = g.account, services.settings.plans[g.account.plan]
    enforce_rate_limit(services, f"key:{g.api_key_id}", plan.requests_per_second, plan.burst)
    if account.subscription_status in DELINQUENT:
        raise ApiError(402, "payment_required", "Payment required",
                       "the account's subscription is past due; update the payment method in the billing portal")
    idempotency_key = request.headers.get("Idempotency-Key")
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
        raise ApiError(400, "invalid_request", "Invalid request", "Idempotency-Key must be 1-255 characters")
    data, options = _parse(services.settings.limits.max_upload_bytes)

    def work():
        # Shed load rather than queue: a client told to retry in a second beats one that times out.
        if not services.analysis_slots.acquire(blocking=False):
            raise ApiError(503, "overloaded", "Overloaded", "every analysis slot of this worker is busy; retry shortly",
                           headers={"Retry-After": "1"})
        try:
            analysis = analyze_bytes(services.analyzer, data, options, services.settings.limits)
        finally:
            services.analysis_slots.release()
        body = analysis_json(analysis, g.request_id, services.model_versions(options.detector), analysis.timing_ms)
        return analysis.media, json.dumps(body)

    try:
        body, replayed = metering.run_metered(services.db, account, plan, g.request_id, g.api_key_id,
                                              idempotency_key, metering.fingerprint(data, options), work)
    except metering.QuotaExceeded as exc:
        retry_after = max(1, int((exc.resets_at - utcnow()).total_seconds()))
        raise ApiError(402, "quota_exceeded", "Monthly quota exceeded",
                       f"{exc.used} of {exc.limit} units used this month; upgrade or wait for the reset",
                       headers={"Retry-After": str(retry_after)}) from exc
    except metering.IdempotencyConflict as exc:
        status = 409 if exc.code == "idempotency_in_progress" else 422
        raise ApiError(status, exc.code, "Idempotency conflict", str(exc)) from exc
    response = Response(body, mimetype="application/json")
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


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
        return upload.read(max_bytes + 1), _options(load(AnalyzeOptionsSchema(), form))
    if request.mimetype == "application/json":
        fields = load(AnalyzeJsonSchema(), json_object())
        media_field = "image_base64" if "image_base64" in fields else "video_base64"
        encoded = fields.pop(media_field)
        return _b64decode(encoded, max_bytes), _options(fields)
    raise ApiError(415, "unsupported_media_type", "Unsupported media type",
                   "send multipart/form-data with a 'file' part, or application/json with image_base64 or video_base64")


def _options(fields: dict) -> AnalysisOptions:
    micro = fields.pop("micro_expressions")
    return AnalysisOptions(**fields, micro_expressions=micro["enabled"], micro_sensitivity=micro["sensitivity"])


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
