"""POST /v1/analyze: parse and validate, admit, submit, serialise."""

from __future__ import annotations

import base64
import binascii

from flask import Blueprint, Response, g, request

from api.domain import metering
from api.engine.analyzer import AnalysisOptions
from api.usecases import submission
from api.usecases.admission import admit_paid_work
from api.web.auth import require_api_key, show_rate_limit
from api.web.context import services as current_services
from api.web.errors import ApiError
from api.web.files import empty_upload, upload_bytes, upload_too_large
from api.web.metered import read_idempotency_key, replayable
from api.web.parsing import form_fields, json_object, load
from api.web.problems import admission_problems, media_problems, metering_problems, webhook_problems
from api.web.schemas import AnalyzeFormSchema, AnalyzeJsonSchema

bp = Blueprint("analyze", __name__)

PAST_DUE = "the account's subscription is past due; update the payment method in the billing portal"


@bp.post("/v1/analyze")
@require_api_key("analyze")
def analyze():
    services = current_services()
    with admission_problems(payment_detail=PAST_DUE):
        # Per account, not per key: keys are the account's to mint, so a per-key limit multiplies.
        plan, decision = admit_paid_work(services, g.account, f"account:{g.account_id}")
        show_rate_limit(decision)
    idempotency_key = read_idempotency_key()
    field, data, options, delivery = _parse(services.settings.limits.max_upload_bytes)
    fingerprint = metering.fingerprint(data, (options, delivery))
    metered = metering.MeteredRequest(g.account, plan, g.api_key_id, g.request_id, idempotency_key, fingerprint)
    upload = submission.Upload(metered, data, options)
    with metering_problems(), webhook_problems(), admission_problems(), media_problems(field):
        body, replayed, job_id = submission.analyze(services, upload, delivery["run_async"], delivery["webhook_url"])
    if job_id is None:
        return replayable(Response(body, mimetype="application/json"), replayed)
    response = Response(body, status=202, mimetype="application/json")
    response.headers["Location"] = f"/v1/jobs/{job_id}"
    return replayable(response, replayed)


def _parse(max_bytes: int) -> tuple[str, bytes, AnalysisOptions, dict]:
    """(the media's field, its bytes, the analysis options, delivery)."""
    if request.mimetype == "multipart/form-data":
        form = form_fields(json_fields=("micro_expressions",))
        upload = request.files.get("file")
        if upload is None:
            raise ApiError(
                400,
                "invalid_request",
                "Invalid request",
                "the multipart body needs a 'file' part",
                errors={"file": ["Missing data for required field."]},
            )
        return ("file", upload_bytes("file", upload, max_bytes), *_options(load(AnalyzeFormSchema(), form)))
    if request.mimetype == "application/json":
        fields = load(AnalyzeJsonSchema(), json_object())
        media_field = "image_base64" if "image_base64" in fields else "video_base64"
        encoded = fields.pop(media_field)
        return (media_field, _b64decode(media_field, encoded, max_bytes), *_options(fields))
    raise ApiError(
        415,
        "unsupported_media_type",
        "Unsupported media type",
        "send multipart/form-data with a 'file' part, or application/json with image_base64 or video_base64",
    )


def _options(fields: dict) -> tuple[AnalysisOptions, dict]:
    """Split loaded fields into analysis options and delivery (async, webhook_url)."""
    webhook_url = fields.pop("webhook_url")
    # A webhook only makes sense for a job, so asking for one asks for a job.
    delivery = {"run_async": fields.pop("run_async") or webhook_url is not None, "webhook_url": webhook_url}
    micro = fields.pop("micro_expressions")
    options = AnalysisOptions(**fields, micro_expressions=micro["enabled"], micro_sensitivity=micro["sensitivity"])
    return options, delivery


def _b64decode(field: str, encoded: str, max_bytes: int) -> bytes:
    if "," in encoded[:100] and encoded.startswith("data:"):
        encoded = encoded.split(",", 1)[1]  # accept data: URLs as browsers produce them
    # The decoded size, known from the text's length, is checked before the decoded copy is made.
    tail = encoded[-2:]
    size = len(encoded) * 3 // 4 - (len(tail) - len(tail.rstrip("=")))
    if size > max_bytes:
        raise upload_too_large(field, size, max_bytes)
    if size == 0:
        raise empty_upload(field)
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(
            400,
            "invalid_request",
            "Invalid request",
            f"{field} is not valid base64",
            errors={field: ["Not valid base64."]},
        ) from exc
