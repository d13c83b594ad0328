"""Submitting media for analysis, shared by the analyze route and study sessions: limits read from
headers before anything is decoded, stored or billed; then analysed now, in one of the process's
slots and billed exactly once, or stored as a job and queued. No Flask here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from api.domain import jobs, metering, studies, webhooks
from api.domain.metering import Plan
from api.domain.metrics import JOBS_QUEUED, observe_analysis
from api.domain.serializers import analysis_json
from api.engine import media
from api.engine.analyzer import AnalysisOptions, analyze_bytes, analyze_decoded
from api.engine.media import DecodedVideo
from api.store.db import Account, Job, Study
from api.usecases.admission import analysis_slot, clip_seconds, runs_as_job
from api.wiring.services import Services


@dataclass(frozen=True)
class Upload:
    """A request's media and whose it is, built once per request: metering and the job both need
    all of it, a retry of the request being recognised by its idempotency key and fingerprint."""

    metered: metering.MeteredRequest
    data: bytes
    options: AnalysisOptions


def open_clip(services: Services, data: bytes, options: AnalysisOptions) -> DecodedVideo | None:
    """`media.open_clip`: limits checked without decoding a pixel; clips longer than the sync limit
    become jobs, so their length is needed before anything runs."""
    return media.open_clip(data, services.settings.limits, options.sample_fps)


def estimated_units(clip: DecodedVideo | None) -> int:
    """What a job will cost, reserved against the quota at submission: its clip's packets' length."""
    return metering.units_for(clip.info) if clip else 1


def frames_to_analyse(clip: DecodedVideo | None) -> int:
    """Frames the analysis will cover (for job progress): 1 for a picture; a clip's length comes from its packets."""
    return max(1, round(clip_seconds(clip) * clip.sample_fps)) if clip else 1


def submit_job(
    services: Services,
    upload: Upload,
    clip: DecodedVideo | None,
    webhook_url: str | None,
    kind: str = jobs.ANALYSIS,
    attach: Callable[[Session, Job], None] = jobs.nothing,
    answer: dict | None = None,
) -> tuple[dict, bool]:
    """`jobs.submit`, its cost reserved from the clip's length, then the new job queued; returns
    (answer, replayed)."""
    body, job_id = jobs.submit(
        services.jobs,
        upload.metered,
        upload.data,
        upload.options,
        frames_to_analyse(clip),
        webhook_url,
        reserve_units=estimated_units(clip),
        kind=kind,
        attach=attach,
        answer=answer,
    )
    if job_id is not None:
        services.queue.enqueue(job_id)
        JOBS_QUEUED.inc()
    return body, job_id is None


def analyze(
    services: Services,
    upload: Upload,
    asked_async: bool,
    webhook_url: str | None,
) -> tuple[str, bool, str | None]:
    """Analyse an upload now, or as a job (`runs_as_job`); returns (the answer's JSON, replayed,
    the job's id when it became one).

    Raises MediaError on limits read from headers, before a slot or the quota is asked;
    webhooks.UnsafeWebhookUrl; metering's QuotaExceeded and IdempotencyConflict; Overloaded.
    """
    clip = open_clip(services, upload.data, upload.options)
    if runs_as_job(services, clip, asked_async):
        if clip:
            clip.close()
        if webhook_url is not None:
            webhooks.check_destination(webhook_url, services.settings.webhook_allow_loopback)
        body, replayed = submit_job(services, upload, clip, webhook_url)
        return json.dumps(body), replayed, body["id"]

    def work():
        with analysis_slot(services.analysis_slots):
            if clip is None:
                analysis = analyze_bytes(services.analyzer, upload.data, upload.options, services.settings.limits)
            else:  # opened to read its length; its frames decode here, in the slot
                analysis = analyze_decoded(services.analyzer, clip, upload.options)
        body = analysis_json(
            analysis, upload.metered.request_id, services.analyzer.model_versions(upload.options.detector)
        )
        observe_analysis(analysis.timing_ms, len(body.get("faces") or body.get("tracks") or []))
        return analysis.media, json.dumps(body)

    try:  # the quota is checked (after any replay) before work() decodes anything
        body, replayed = metering.run_metered(services.db, upload.metered, work)
    finally:
        if clip:
            clip.close()  # a replay or a refusal never reads the frames
    return body, replayed, None


def recording_clip(services: Services, data: bytes) -> DecodedVideo:
    """A participant's recording (a video by its magic bytes, so never None) with its header limits
    checked, before anything is stored or billed; closed, as only its length is needed."""
    clip = open_clip(services, data, AnalysisOptions())
    clip.close()
    return clip


def submit_session(
    services: Services,
    study: Study,
    account: Account,
    plan: Plan,
    request_id: str,
    data: bytes,
    clip: DecodedVideo,
    stimulus_started_ms: float,
    consent: studies.Consent,
    segment: str | None,
    variables: dict[str, str],
    idempotency_key: str | None,
) -> tuple[dict, bool]:
    """A participant's recording (`recording_clip`), analysed as a job of the study's account and
    metered against the study's key; returns (the session's JSON with its receipt, replayed).

    The stored answer (for idempotent replays) holds no receipt: a replay is given a new one, since
    the first answer may never have arrived.
    """
    pepper = services.settings.api_key_pepper
    row, receipt = studies.new_session(study, stimulus_started_ms, consent, segment, variables, pepper)
    fingerprint = metering.fingerprint(data, (study.id, stimulus_started_ms, segment, *sorted(variables.items())))
    metered = metering.MeteredRequest(account, plan, study.api_key_id, request_id, idempotency_key, fingerprint)
    upload = Upload(metered, data, AnalysisOptions())
    body, replayed = submit_job(
        services,
        upload,
        clip,
        None,
        kind=studies.JOB_KIND,
        attach=studies.attach(row),
        answer=studies.session_json(row),
    )
    if replayed:
        with services.db.session.begin() as session:
            receipt = studies.reissue_receipt(session, study.id, body["id"], pepper)
    return ({**body, "receipt": receipt} if receipt is not None else body), replayed
