"""Audience studies: the owner's study resource and report, participants' sessions, receipts."""
from __future__ import annotations

import json
from contextlib import contextmanager

from flask import Blueprint, Response, current_app, g, jsonify, request

from api import audience, metering, studies
from api.auth import enforce_rate_limit, presented_key, require_api_key
from api.billing import DELINQUENT
from api.db import Account
from api.engine.analyzer import AnalysisOptions
from api.engine.media import VIDEO_FORMATS, VIDEO_MIMETYPES, sniff_format
from api.errors import ApiError
from api.routes.metered import (estimated_units, frames_to_analyse, metering_problems, open_clip,
                                read_idempotency_key, replayable, submit_job)
from api.routes.parsing import form_fields, json_object, load
from api.schemas import ReportQuerySchema, StudyCreateSchema, StudySessionFormSchema
from api.storage import undone_on_error

bp = Blueprint("studies", __name__)

# Per client address: receipts are capabilities, so guessing them must be slow.
RECEIPT_RATE, RECEIPT_BURST = 1.0, 10
CSV = "text/csv"


def _services():
    return current_app.extensions["emoscope"]


def _owned(session, study_id: str):
    study = studies.find(session, g.account_id, study_id)
    if study is None:
        raise ApiError(404, "not_found", "Not found", f"no study {study_id} in this account")
    return study


def video_upload(name: str, required: bool) -> bytes | None:
    """The multipart part `name`: a video within the upload limit (the console's study form uses it too)."""
    upload = request.files.get(name)
    if upload is None or upload.filename == "":  # a form's file field left empty sends a nameless, empty part
        if required:
            raise ApiError(400, "invalid_request", "Invalid request", f"the multipart body needs a '{name}' part",
                           errors={name: ["Missing data for required field."]})
        return None
    max_bytes = _services().settings.limits.max_upload_bytes
    data = upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ApiError(413, "media_too_large", "Upload too large", f"uploads are limited to {max_bytes} bytes")
    if sniff_format(data) not in VIDEO_FORMATS:
        raise ApiError(415, "unsupported_media_type", "Unsupported media type",
                       f"'{name}' must be an MP4, MOV or WebM video")
    return data


def admit_new_study(services, account: Account) -> metering.Plan:
    """429 past the plan's studies per hour for this account (before the upload is read); the plan."""
    plan = services.settings.plans[account.plan]
    if plan.studies_per_hour is not None:
        enforce_rate_limit(services, f"studies:{account.id}", plan.studies_per_hour / 3600,
                           max(1, int(plan.studies_per_hour)))
    return plan


@contextmanager
def study_storage_problems():
    try:
        yield
    except studies.StudyStorageFull as exc:
        raise ApiError(413, "study_storage_full", "Study storage full", str(exc)) from None


@bp.post("/v1/studies")
@require_api_key("admin")
def create_study():
    services = _services()
    plan = admit_new_study(services, g.account)
    if request.mimetype == "multipart/form-data":
        fields, stimulus = load(StudyCreateSchema(), form_fields()), video_upload("stimulus", required=False)
    else:
        fields, stimulus = load(StudyCreateSchema(), json_object()), None
    with study_storage_problems(), undone_on_error(services.jobs.storage) as put, \
            services.db.session.begin() as session:
        study, token = studies.create(session, put, g.account_id, g.api_key_id, fields["name"],
                                      fields["stimulus_duration_ms"], stimulus, services.settings.api_key_pepper,
                                      plan.study_storage_bytes, fields["max_sessions"])
        body = studies.study_json(session, study, token)
    return jsonify(body), 201


@bp.get("/v1/studies/<study_id>")
@require_api_key("admin")
def get_study(study_id: str):
    with _services().db.session.begin() as session:
        study = _owned(session, study_id)
        return jsonify(studies.study_json(session, study))


@bp.delete("/v1/studies/<study_id>")
@require_api_key("admin")
def delete_study(study_id: str):
    services = _services()
    with services.db.session.begin() as session:
        study = _owned(session, study_id)
        stale = studies.delete(session, study)
    for key in stale:
        services.jobs.storage.delete(key)
    return "", 204


@bp.post("/v1/studies/<study_id>/participant-token")
@require_api_key("admin")
def rotate_participant_token(study_id: str):
    services = _services()
    with services.db.session.begin() as session:
        study = _owned(session, study_id)
        token = studies.rotate_token(study, g.api_key_id, services.settings.api_key_pepper)
        body = studies.study_json(session, study, token)
    return jsonify(body)


@bp.get("/v1/studies/<study_id>/report")
@require_api_key("admin")
def study_report(study_id: str):
    query = load(ReportQuerySchema(), request.args.to_dict())
    with _services().db.session.begin() as session:
        study = _owned(session, study_id)
        report = studies.report(session, study, query["bucket_ms"])
    if request.accept_mimetypes.best_match(["application/json", CSV]) == CSV:
        return report_csv_response(study_id, report)
    return jsonify(report)


def report_csv_response(study_id: str, report: dict) -> Response:
    """The report as a CSV download (also the console's export)."""
    return Response(audience.report_csv(report), mimetype=CSV,
                    headers={"Content-Disposition": f'attachment; filename="{study_id}-report.csv"'})


# Uploaded bytes on our origin: a <video> element plays them, but a browser opening the address
# downloads them (attachment), never sniffs them (nosniff), and would run them without our origin
# (sandbox) even if it rendered them as a page.
INERT_MEDIA_HEADERS = {"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff",
                       "Content-Disposition": "attachment", "Content-Security-Policy": "sandbox; default-src 'none'"}


def stimulus_response(data: bytes, content_type: str | None) -> Response:
    """The stored stimulus video (also the console's player), with byte ranges: without them a
    browser cannot seek its player, e.g. to a moment of the report. Only a video type is served:
    rows stored before types were sniffed may hold whatever the client declared."""
    mimetype = content_type if content_type in VIDEO_MIMETYPES.values() else "application/octet-stream"
    response = Response(data, mimetype=mimetype, headers=INERT_MEDIA_HEADERS)
    return response.make_conditional(request, accept_ranges=True, complete_length=len(data))


def _participant_study(study_id: str, taking_session: bool = False):
    """The study a participant token opens (401 without one, 403 for another study's); with
    `taking_session`, 403 `study_closed` or 409 `study_full` when it takes no more sessions."""
    token = presented_key()
    if token is None or not token.startswith(studies.PARTICIPANT_TOKEN_PREFIX):
        raise ApiError(401, "missing_participant_token", "Authentication required",
                       "send the study's participant token as 'Authorization: Bearer <token>'")
    services = _services()
    with services.db.session.begin() as session:
        study = studies.for_participant(session, study_id, token, services.settings.api_key_pepper)
        if study is None:
            raise ApiError(403, "invalid_participant_token", "Forbidden",
                           "this participant token does not open this study")
        if taking_session:
            try:
                studies.check_open(session, study, services.settings.study_max_sessions)
            except studies.StudyClosed as exc:
                status = 409 if exc.code == "study_full" else 403
                raise ApiError(status, exc.code, "Study takes no sessions", str(exc)) from None
        return study, session.get(Account, study.account_id)


@bp.get("/v1/studies/<study_id>/stimulus")
def stimulus(study_id: str):
    study, _ = _participant_study(study_id)
    if study.stimulus_key is None:
        raise ApiError(404, "not_found", "Not found", "this study has no stored stimulus")
    return stimulus_response(_services().jobs.storage.get(study.stimulus_key), study.stimulus_content_type)


@bp.post("/v1/studies/<study_id>/sessions")
def submit_session(study_id: str):
    services = _services()
    study, account = _participant_study(study_id, taking_session=True)
    plan = services.settings.plans[account.plan]
    enforce_rate_limit(services, f"study:{study.id}", plan.requests_per_second, plan.burst)
    if account.subscription_status in DELINQUENT:
        raise ApiError(402, "payment_required", "Payment required", "the study's account cannot take sessions now")
    if request.mimetype != "multipart/form-data":
        raise ApiError(415, "unsupported_media_type", "Unsupported media type",
                       "send multipart/form-data with a 'file' part (the webcam recording)")
    fields = load(StudySessionFormSchema(), form_fields(json_fields=("consent",)))
    data = video_upload("file", required=True)
    options = AnalysisOptions()
    clip = open_clip(services, data, options)  # header limits, before anything is stored or billed
    clip.close()  # a video by its magic bytes (video_upload), so never None
    consent = studies.Consent(fields["consent"]["version"], fields["consent"]["accepted_at"])
    row, receipt = studies.new_session(study, fields["stimulus_started_ms"], consent, fields["segment"],
                                       services.settings.api_key_pepper)
    fingerprint = metering.fingerprint(data, (study.id, fields["stimulus_started_ms"], fields["segment"]))
    # The stored answer (for idempotent replays) holds no receipt: a replay is given a new one.
    with metering_problems():
        body, replayed = submit_job(services, account, plan, study.api_key_id, g.request_id, data, options,
                                    frames_to_analyse(clip), None, read_idempotency_key(),
                                    fingerprint, reserve_units=estimated_units(clip), kind=studies.JOB_KIND,
                                    attach=studies.attach(row), answer=studies.session_json(row))
    if replayed:
        with services.db.session.begin() as session:
            receipt = studies.reissue_receipt(session, study.id, body["id"], services.settings.api_key_pepper)
    if receipt is not None:
        body = {**body, "receipt": receipt}
    return replayable(Response(json.dumps(body), status=202, mimetype="application/json"), replayed)


@bp.delete("/v1/studies/<study_id>/sessions/<receipt>")
def delete_session(study_id: str, receipt: str):
    """The receipt is the participant's only credential: it deletes that session and nothing else."""
    services = _services()
    enforce_rate_limit(services, f"receipts:ip:{request.remote_addr}", RECEIPT_RATE, RECEIPT_BURST)
    with services.db.session.begin() as session:
        stale = studies.delete_session(session, study_id, receipt, services.settings.api_key_pepper)
    if stale is None:
        raise ApiError(404, "not_found", "Not found", "no session with this receipt in this study")
    for key in stale:
        services.jobs.storage.delete(key)
    return "", 204

