"""POST /v1/analyze: parse and validate, run the engine, serialise."""
from __future__ import annotations

import base64
import binascii
import json

from flask import Blueprint, Response, current_app, g, request

from api import metering, webhooks
from api.auth import enforce_rate_limit, require_api_key
from api.billing import DELINQUENT
from api.engine.analyzer import AnalysisOptions, analyze_bytes, analyze_decoded
from api.errors import ApiError
from api.observability import observe_analysis
from api.routes.metered import (clip_seconds, estimated_units, frames_to_analyse, metering_problems, open_clip,
                                read_idempotency_key, replayable, submit_job)
from api.routes.parsing import form_fields, json_object, load
from api.schemas import AnalyzeFormSchema, AnalyzeJsonSchema
from api.serializers import analysis_json

bp = Blueprint("analyze", __name__)


@bp.post("/v1/analyze")
@require_api_key("analyze")
def analyze():
    services = current_app.extensions["emoscope"]
    account, plan = g.account, services.settings.plans[g.account.plan]
    # Per account, not per key: keys are the account's to mint, so a per-key limit multiplies.
    enforce_rate_limit(services, f"account:{g.account_id}", plan.requests_per_second, plan.burst)
    if account.subscription_status in DELINQUENT:
        raise ApiError(402, "payment_required", "Payment required",
                       "the account's subscription is past due; update the payment method in the billing portal")
    idempotency_key = read_idempotency_key()
    data, options, delivery = _parse(services.settings.limits.max_upload_bytes)
    fingerprint = metering.fingerprint(data, (options, delivery))
    with metering_problems():
        # Limits from headers, packets and GIF blocks: no pixel decoded, no slot taken, quota not yet asked.
        clip = open_clip(services, data, options)
        if delivery["run_async"] or clip_seconds(clip) > services.settings.sync_max_video_seconds:
            if clip:
                clip.close()
            return _submit_job(services, account, plan, data, options, delivery, clip, idempotency_key, fingerprint)

        def work():
            # Shed load rather than queue: a client told to retry in a second beats one that times out.
            if not services.analysis_slots.acquire(blocking=False):
                raise ApiError(503, "overloaded", "Overloaded",
                               "every analysis slot of this worker is busy; retry shortly",
                               headers={"Retry-After": "1"})
            try:
                if clip is None:
                    analysis = analyze_bytes(services.analyzer, data, options, services.settings.limits)
                else:  # opened to read its length; its frames decode here, in the slot
                    analysis = analyze_decoded(services.analyzer, clip, options)
            finally:
                services.analysis_slots.release()
            body = analysis_json(analysis, g.request_id, services.analyzer.model_versions(options.detector))
            observe_analysis(analysis.timing_ms, len(body.get("faces") or body.get("tracks") or []))
            return analysis.media, json.dumps(body)

        try:  # the quota is checked (after any replay) before work() decodes anything
            body, replayed = metering.run_metered(services.db, account, plan, g.request_id, g.api_key_id,
                                                  idempotency_key, fingerprint, work)
        finally:
            if clip:
                clip.close()  # a replay or a refusal never reads the frames
    return replayable(Response(body, mimetype="application/json"), replayed)


def _submit_job(services, account, plan, data, options, delivery, clip, idempotency_key, fingerprint):
    webhook_url = delivery["webhook_url"]
    if webhook_url is not None:
        try:
            webhooks.check_destination(webhook_url, services.settings.webhook_allow_loopback)
        except webhooks.UnsafeWebhookUrl as exc:
            raise ApiError(400, "invalid_request", "Invalid request", str(exc),
                           errors={"webhook_url": [str(exc)]}) from exc
    body, replayed = submit_job(services, account, plan, g.api_key_id, g.request_id, data, options,
                                frames_to_analyse(clip), webhook_url, idempotency_key, fingerprint,
                                reserve_units=estimated_units(clip))
    response = Response(json.dumps(body), status=202, mimetype="application/json")
    response.headers["Location"] = f"/v1/jobs/{body['id']}"
    return replayable(response, replayed)


def _parse(max_bytes: int) -> tuple[bytes, AnalysisOptions, dict]:
    if request.mimetype == "multipart/form-data":
        form = form_fields(json_fields=("micro_expressions",))
        upload = request.files.get("file")
        if upload is None:
            raise ApiError(400, "invalid_request", "Invalid request", "the multipart body needs a 'file' part",
                           errors={"file": ["Missing data for required field."]})
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
