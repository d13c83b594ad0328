"""POST /v1/analyze: parse and validate, run the engine, serialise."""
from __future__ import annotations

import base64
import binascii
import json
from contextlib import contextmanager

from flask import Blueprint, Response, current_app, g, request

from api import jobs, metering, webhooks
from api.auth import enforce_rate_limit, require_api_key
from api.billing import DELINQUENT
from api.db import utcnow
from api.engine.analyzer import AnalysisOptions, analyze_bytes, analyze_decoded
from api.engine.media import IMAGE_FORMATS, DecodedImage, DecodedVideo, decode, sniff_format
from api.errors import ApiError
from api.observability import JOBS_QUEUED, observe_analysis
from api.routes.parsing import json_object, load
from api.schemas import AnalyzeFormSchema, AnalyzeJsonSchema
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
    data, options, delivery = _parse(services.settings.limits.max_upload_bytes)
    fingerprint = metering.fingerprint(data, (options, delivery))
    with _metering_problems():
        clip = _open_clip(services, data, options)
        if delivery["run_async"] or _seconds(clip) > services.settings.sync_max_video_seconds:
            if clip:
                clip.frames.close()
            return _submit_job(services, account, plan, data, options, delivery, _frames_total(clip),
                               idempotency_key, fingerprint)

        def work():
            # Shed load rather than queue: a client told to retry in a second beats one that times out.
            if not services.analysis_slots.acquire(blocking=False):
                raise ApiError(503, "overloaded", "Overloaded", "every analysis slot of this worker is busy; retry shortly",
                               headers={"Retry-After": "1"})
            try:
                if clip is None:
                    analysis = analyze_bytes(services.analyzer, data, options, services.settings.limits)
                else:  # already opened to read its length; a GIF's frames were walked once already
                    analysis = analyze_decoded(services.analyzer, clip, options)
            finally:
                services.analysis_slots.release()
            body = analysis_json(analysis, g.request_id, services.analyzer.model_versions(options.detector))
            observe_analysis(analysis.timing_ms, len(body.get("faces") or body.get("tracks") or []))
            return analysis.media, json.dumps(body)

        body, replayed = metering.run_metered(services.db, account, plan, g.request_id, g.api_key_id,
                                              idempotency_key, fingerprint, work)
    return _replayable(Response(body, mimetype="application/json"), replayed)


def _open_clip(services, data: bytes, options: AnalysisOptions) -> DecodedVideo | None:
    """The upload opened as a clip (headers read, GIFs their frame timing), or None for a picture.

    Clips longer than the sync limit become jobs on their own, so their length is needed before
    anything runs; pictures are told apart by their magic bytes alone and decoded later.
    """
    if sniff_format(data) in IMAGE_FORMATS:
        return None
    decoded = decode(data, services.settings.limits, options.sample_fps)
    return None if isinstance(decoded, DecodedImage) else decoded  # a single-frame GIF is a picture


def _seconds(clip: DecodedVideo | None) -> float:
    return (clip.info.duration_ms or 0) / 1000 if clip else 0.0


def _frames_total(clip: DecodedVideo | None) -> int | None:
    """Frames the analysis will cover (for job progress): 1 for a picture, None if the header is silent."""
    if clip is None:
        return 1
    return max(1, round(_seconds(clip) * clip.sample_fps)) if _seconds(clip) else None


def _submit_job(services, account, plan, data, options, delivery, frames_total, idempotency_key, fingerprint):
    webhook_url = delivery["webhook_url"]
    if webhook_url is not None:
        try:
            webhooks.check_destination(webhook_url, services.settings.webhook_allow_loopback)
        except webhooks.UnsafeWebhookUrl as exc:
            raise ApiError(400, "invalid_request", "Invalid request", str(exc), errors={"webhook_url": [str(exc)]}) from exc
    body, replayed = jobs.submit(services.jobs, account, plan, g.api_key_id, g.request_id, data, options, frames_total,
                                 webhook_url, idempotency_key, fingerprint)
    if not replayed:
        services.queue.enqueue(body["id"])
        JOBS_QUEUED.inc()
    response = Response(json.dumps(body), status=202, mimetype="application/json")
    response.headers["Location"] = f"/v1/jobs/{body['id']}"
    return _replayable(response, replayed)


def _replayable(response: Response, replayed: bool) -> Response:
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@contextmanager
def _metering_problems():
    """Metering outcomes as problem documents."""
    try:
        yield
    except metering.QuotaExceeded as exc:
        retry_after = max(1, int((exc.resets_at - utcnow()).total_seconds()))
        raise ApiError(402, "quota_exceeded", "Monthly quota exceeded",
                       f"{exc.used} of {exc.limit} units used this month; upgrade or wait for the reset",
                       headers={"Retry-After": str(retry_after)}) from exc
    except metering.IdempotencyConflict as exc:
        status = 409 if exc.code == "idempotency_in_progress" else 422
        raise ApiError(status, exc.code, "Idempotency conflict", str(exc)) from exc


def _parse(max_bytes: int) -> tuple[bytes, AnalysisOptions, dict]:
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
        return (upload.read(max_bytes + 1), *_options(load(AnalyzeFormSchema(), form)))
    if request.mimetype == "application/json":
        fields = load(AnalyzeJsonSchema(), json_object())
        media_field = "image_base64" if "image_base64" in fields else "video_base64"
        encoded = fields.pop(media_field)
        return (_b64decode(encoded, max_bytes), *_options(fields))
    raise ApiError(415, "unsupported_media_type", "Unsupported media type",
                   "send multipart/form-data with a 'file' part, or application/json with image_base64 or video_base64")


def _options(fields: dict) -> tuple[AnalysisOptions, dict]:
    """Split loaded fields into analysis options and delivery (async, webhook_url)."""
    webhook_url = fields.pop("webhook_url")
    # A webhook only makes sense for a job, so asking for one asks for a job.
    delivery = {"run_async": fields.pop("run_async") or webhook_url is not None, "webhook_url": webhook_url}
    micro = fields.pop("micro_expressions")
    options = AnalysisOptions(**fields, micro_expressions=micro["enabled"], micro_sensitivity=micro["sensitivity"])
    return options, delivery


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
