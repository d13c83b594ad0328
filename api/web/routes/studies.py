"""Audience studies: the owner's study resource and report, participants' sessions, receipts."""

from __future__ import annotations

import json

from flask import Blueprint, Response, g, jsonify, request

from api.domain import studies
from api.store.db import Account
from api.store.storage import undone_on_error
from api.usecases import face_check, submission
from api.usecases.admission import admit_new_study, admit_paid_work
from api.web.auth import enforce_rate_limit, presented_key, require_api_key, show_rate_limit
from api.web.context import services as current_services
from api.web.errors import ApiError
from api.web.files import (
    CSV,
    PDF,
    report_csv_response,
    report_pdf_response,
    stimulus_response,
    upload_bytes,
    upload_too_large,
    video_upload,
)
from api.web.metered import read_idempotency_key, replayable
from api.web.parsing import form_fields, json_object, load
from api.web.problems import admission_problems, invalid_variables, metering_problems, study_storage_problems
from api.web.schemas import (
    CompareQuerySchema,
    ReportLinkCreateSchema,
    ReportQuerySchema,
    StudyCreateSchema,
    StudySessionFormSchema,
)

bp = Blueprint("studies", __name__)

# Per client address: receipts are capabilities, so guessing them must be slow.
RECEIPT_RATE, RECEIPT_BURST = 1.0, 10
# Per client address: a viewer retries the face check a few times; more is someone using it as a free detector.
FACE_CHECK_RATE, FACE_CHECK_BURST = 0.5, 10
STILL_FIELDS = tuple(f"still_{n}" for n in range(1, face_check.MAX_STILLS + 1))


def _owned(session, study_id: str):
    study = studies.find(session, g.account_id, study_id)
    if study is None:
        raise ApiError(404, "not_found", "Not found", f"no study {study_id} in this account")
    return study


@bp.post("/v1/studies")
@require_api_key("admin")
def create_study():
    services = current_services()
    with admission_problems():  # before the upload is read
        plan, decision = admit_new_study(services, g.account)
        show_rate_limit(decision)
    if request.mimetype == "multipart/form-data":
        fields = load(StudyCreateSchema(), form_fields(json_fields=("variables",)))
        stimulus = video_upload("stimulus", required=False)
    else:
        fields, stimulus = load(StudyCreateSchema(), json_object()), None
    with (
        study_storage_problems(),
        undone_on_error(services.jobs.storage) as put,
        services.db.session.begin() as session,
    ):
        study, _ = studies.create(
            session,
            put,
            g.account_id,
            g.api_key_id,
            fields["name"],
            fields["stimulus_duration_ms"],
            stimulus,
            services.settings.api_key_pepper,
            plan.study_storage_bytes,
            fields["max_sessions"],
            fields["variables"],
        )
        body = studies.study_json(session, study, services.settings.api_key_pepper)
    return jsonify(body), 201


@bp.get("/v1/studies/<study_id>")
@require_api_key("admin")
def get_study(study_id: str):
    services = current_services()
    with services.db.session.begin() as session:
        study = _owned(session, study_id)
        return jsonify(studies.study_json(session, study, services.settings.api_key_pepper))


@bp.delete("/v1/studies/<study_id>")
@require_api_key("admin")
def delete_study(study_id: str):
    services = current_services()
    with services.db.session.begin() as session:
        study = _owned(session, study_id)
        stale = studies.delete(session, study)
    for key in stale:
        services.jobs.storage.delete(key)
    return "", 204


@bp.post("/v1/studies/<study_id>/participant-token")
@require_api_key("admin")
def rotate_participant_token(study_id: str):
    services = current_services()
    with services.db.session.begin() as session:
        study = _owned(session, study_id)
        studies.rotate_token(study, g.api_key_id, services.settings.api_key_pepper)
        body = studies.study_json(session, study, services.settings.api_key_pepper)
    return jsonify(body)


@bp.get("/v1/studies/<study_id>/report")
@require_api_key("admin")
def study_report(study_id: str):
    args = request.args.to_dict()
    query = load(ReportQuerySchema(), {k: v for k, v in args.items() if not k.startswith(studies.FILTER_PREFIX)})
    with current_services().db.session.begin() as session, invalid_variables():
        study = _owned(session, study_id)
        report = studies.report(
            session, study, query["bucket_ms"], query["include_low_quality"], studies.report_filter(study, args)
        )
    wanted = request.accept_mimetypes.best_match(["application/json", CSV, PDF])
    if wanted == CSV:
        return report_csv_response(study_id, report, query["table"])
    if wanted == PDF:
        return report_pdf_response(study_id, study.name, report)
    return jsonify(report)


@bp.post("/v1/studies/<study_id>/report-links")
@require_api_key("admin")
def create_report_link(study_id: str):
    """A read-only link to the report for the owner's client, until it expires or is revoked."""
    fields = load(ReportLinkCreateSchema(), request.get_json(silent=True) or {})
    services = current_services()
    with services.db.session.begin() as session:
        link = studies.create_report_link(
            session, _owned(session, study_id), services.settings.api_key_pepper, fields["expires_in_days"]
        )
        body = studies.report_link_json(link, services.settings.api_key_pepper)
    return jsonify(body), 201


@bp.get("/v1/studies/<study_id>/report-links")
@require_api_key("admin")
def list_report_links(study_id: str):
    services = current_services()
    with services.db.session.begin() as session:
        links = studies.report_links(session, _owned(session, study_id))
        return jsonify({"data": [studies.report_link_json(link, services.settings.api_key_pepper) for link in links]})


@bp.delete("/v1/studies/<study_id>/report-links/<link_id>")
@require_api_key("admin")
def revoke_report_link(study_id: str, link_id: str):
    with current_services().db.session.begin() as session:
        if studies.revoke_report_link(session, _owned(session, study_id), link_id) is None:
            raise ApiError(404, "not_found", "Not found", f"no report link {link_id} on this study")
    return "", 204


@bp.get("/v1/studies/compare")
@require_api_key("admin")
def compare_studies():
    """The owner's own studies only: another account's study is not found, exactly like a missing one."""
    query = load(CompareQuerySchema(), request.args.to_dict())
    with current_services().db.session.begin() as session:
        compared = [_owned(session, study_id) for study_id in query["ids"]]
        return jsonify(studies.compare(session, compared, query["include_low_quality"]))


def _participant_study(study_id: str, taking_session: bool = False):
    """The study a participant token opens (401 without one, 403 for another study's); with
    `taking_session`, 403 `study_closed` or 409 `study_full` when it takes no more sessions."""
    token = presented_key()
    if token is None or not token.startswith(studies.PARTICIPANT_TOKEN_PREFIX):
        raise ApiError(
            401,
            "missing_participant_token",
            "Authentication required",
            "send the study's participant token as 'Authorization: Bearer <token>'",
        )
    services = current_services()
    with services.db.session.begin() as session:
        study = studies.for_participant(session, study_id, token, services.settings.api_key_pepper)
        if study is None:
            raise ApiError(
                403, "invalid_participant_token", "Forbidden", "this participant token does not open this study"
            )
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
    return stimulus_response(current_services().jobs.storage.get(study.stimulus_key), study.stimulus_content_type)


@bp.post("/v1/studies/<study_id>/face-check")
def check_face(study_id: str):
    """The stills are judged and dropped: nothing stored, nothing billed."""
    services = current_services()
    _participant_study(study_id, taking_session=True)
    enforce_rate_limit(services, f"face-check:ip:{request.remote_addr}", FACE_CHECK_RATE, FACE_CHECK_BURST)
    body_limit = face_check.MAX_STILLS * face_check.MAX_STILL_BYTES + 16 * 1024  # the parts' headers
    if request.content_length is not None and request.content_length > body_limit:
        raise upload_too_large("body", request.content_length, body_limit)
    if request.mimetype != "multipart/form-data":
        raise ApiError(
            415,
            "unsupported_media_type",
            "Unsupported media type",
            "send multipart/form-data with 'still_1'..'still_3'",
        )
    unknown = sorted((set(request.files) | set(request.form)) - set(STILL_FIELDS))
    stills = {
        name: upload_bytes(name, request.files[name], face_check.MAX_STILL_BYTES)
        for name in STILL_FIELDS
        if name in request.files
    }
    if unknown or not stills:
        raise ApiError(
            400,
            "invalid_request",
            "Invalid request",
            "send one to three JPEG stills as parts 'still_1', 'still_2', 'still_3'",
            errors={name: ["Unknown field."] for name in unknown} or {"still_1": ["Missing data for required field."]},
        )
    try:
        with admission_problems():  # every analysis slot busy: 503, retry
            return jsonify(face_check.check_faces(services, stills))
    except face_check.StillRefused as exc:
        raise ApiError(
            422, "invalid_still", "Still refused", f"'{exc.field}': {exc}", errors={exc.field: [str(exc)]}
        ) from None


@bp.post("/v1/studies/<study_id>/sessions")
def submit_session(study_id: str):
    services = current_services()
    study, account = _participant_study(study_id, taking_session=True)
    with admission_problems(payment_detail="the study's account cannot take sessions now"):
        plan, decision = admit_paid_work(services, account, f"study:{study.id}")
        show_rate_limit(decision)
    if request.mimetype != "multipart/form-data":
        raise ApiError(
            415,
            "unsupported_media_type",
            "Unsupported media type",
            "send multipart/form-data with a 'file' part (the webcam recording)",
        )
    fields = load(StudySessionFormSchema(), form_fields(json_fields=("consent", "variables")))
    with invalid_variables():
        variables = studies.check_variables(study, fields["variables"])
    data = video_upload("file", required=True)
    clip = submission.recording_clip(services, data)
    consent = studies.Consent(fields["consent"]["version"], fields["consent"]["accepted_at"])
    with metering_problems():
        body, replayed = submission.submit_session(
            services,
            study,
            account,
            plan,
            g.request_id,
            data,
            clip,
            fields["stimulus_started_ms"],
            consent,
            fields["segment"],
            variables,
            read_idempotency_key(),
        )
    return replayable(Response(json.dumps(body), status=202, mimetype="application/json"), replayed)


@bp.delete("/v1/studies/<study_id>/sessions/<receipt>")
def delete_session(study_id: str, receipt: str):
    """The receipt is the participant's only credential: it deletes that session and nothing else."""
    services = current_services()
    enforce_rate_limit(services, f"receipts:ip:{request.remote_addr}", RECEIPT_RATE, RECEIPT_BURST)
    with services.db.session.begin() as session:
        stale = studies.delete_session(session, study_id, receipt, services.settings.api_key_pepper)
    if stale is None:
        raise ApiError(404, "not_found", "Not found", "no session with this receipt in this study")
    for key in stale:
        services.jobs.storage.delete(key)
    return "", 204
