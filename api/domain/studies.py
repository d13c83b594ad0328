"""Audience studies: the owner's study, its participant link, viewers' sessions and the report. No Flask here.

A participant token can do one thing: submit sessions to its study (and fetch the stimulus to
play). A session's recording is analysed as a job of the owner's account, billed like any clip,
mapped onto the stimulus clock, and deleted; only the timeline (api/domain/audience.py) is kept, with
no face images, boxes or embeddings. Each session's receipt code deletes it and its results.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.domain import audience, jobs
from api.engine import media
from api.engine.results import ImageAnalysis, VideoAnalysis
from api.store import keys
from api.store.db import ApiKey, Job, ReportLink, Study, StudySession, utcnow

PARTICIPANT_TOKEN_PREFIX = "pt_"
REPORT_TOKEN_PREFIX = "rl_"
# A client's report link lasts this long unless the owner says otherwise (at most a year): a link in a
# forwarded email should not stay a way in forever.
REPORT_LINK_DAYS, MAX_REPORT_LINK_DAYS = 30, 365
LOW_QUALITY = "low_quality"  # analysed, but the face was found over too little of the stimulus
SESSION_STATUSES = ("processing", "succeeded", LOW_QUALITY, "failed")
RECEIPT_PREFIX = "rcpt_"
JOB_KIND = "study_session"  # a session's recording, analysed as a job of the owner's account
# Link variables: a panel provider appends its own (?age=18-24&pid=...) to the participant link. Only
# keys the owner whitelisted are stored; a few short ones are enough to describe an audience segment,
# and the limits keep a link from smuggling free text (or a person's name) into the database.
VARIABLE_KEY = re.compile(r"[a-z][a-z0-9_]{0,31}")
MAX_VARIABLE_KEYS = 5
MAX_VARIABLE_VALUE = 64
VARIABLE_VALUE = re.compile(rf"[\w.+:/@ -]{{1,{MAX_VARIABLE_VALUE}}}")  # letters, digits and a little punctuation
FILTER_PREFIX = "segment."  # report?segment.age=18-24


@dataclass(frozen=True)
class Consent:
    version: str
    accepted_at: datetime


def participant_path(token: str) -> str:
    return f"/s/{token}"


class StudyClosed(Exception):
    """The study takes no more sessions; `code` says why (study_closed, study_full)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


class InvalidVariables(ValueError):
    """Link variables or a report filter the study does not take: `errors` maps each field to why."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


def variable_keys(study: Study) -> list[str]:
    return json.loads(study.variable_keys) if study.variable_keys else []


def check_variables(study: Study, variables: dict[str, str]) -> dict[str, str]:
    """A session's variables, each a whitelisted key with a short plain value; raises InvalidVariables."""
    allowed, errors = variable_keys(study), {}
    for key, value in variables.items():
        if key not in allowed:
            errors[key] = [f"not one of this study's variables ({', '.join(allowed) or 'it has none'})"]
        elif not isinstance(value, str) or not VARIABLE_VALUE.fullmatch(value):
            errors[key] = [f"1 to {MAX_VARIABLE_VALUE} letters, digits, spaces or . + : / @ _ -"]
    if errors:
        raise InvalidVariables(errors)
    return dict(variables)


def link_variables(study: Study, query: dict[str, str]) -> dict[str, str]:
    """The whitelisted variables among a participant link's query parameters (others, a panel's own,
    are ignored and never stored); raises InvalidVariables for a whitelisted one with a bad value."""
    return check_variables(study, {k: v for k, v in query.items() if k in variable_keys(study)})


def report_filter(study: Study, query: dict[str, str]) -> dict[str, str]:
    """The `segment.<key>=<value>` filters among a report's query parameters."""
    wanted = {k.removeprefix(FILTER_PREFIX): v for k, v in query.items() if k.startswith(FILTER_PREFIX)}
    try:
        return check_variables(study, wanted)
    except InvalidVariables as exc:
        raise InvalidVariables({FILTER_PREFIX + k: v for k, v in exc.errors.items()}) from None


class StudyStorageFull(Exception):
    """The account's stored stimuli would exceed its plan's study storage."""


def _signed_token(prefix: str, purpose: str, nonce: str, pepper: str) -> str:
    """A token signed with the server's pepper over a stored nonce: the owner can see it again at any
    time, while the database alone (a backup, a leak) holds no token, as the nonce without the pepper
    derives nothing."""
    digest = hmac.new(pepper.encode(), f"{purpose}:{nonce}".encode(), hashlib.sha256)
    return f"{prefix}{base64.urlsafe_b64encode(digest.digest()).decode().rstrip('=')}"


def participant_token(study: Study, pepper: str) -> str | None:
    """The study's participant token (_signed_token); None for a study made before nonces existed."""
    if study.participant_token_nonce is None:
        return None
    return _signed_token(PARTICIPANT_TOKEN_PREFIX, "participant-token", study.participant_token_nonce, pepper)


def _new_token(study: Study, pepper: str) -> str:
    """A fresh token for the study (a new nonce); its hash is what participants' requests are looked up by."""
    study.participant_token_nonce = secrets.token_hex(16)
    token = participant_token(study, pepper)
    study.participant_token_hash = keys.hash_key(token, pepper)
    return token


def create(
    session: Session,
    put_object,
    account_id: int,
    api_key_id: int,
    name: str,
    stimulus_duration_ms: float,
    stimulus: bytes | None,
    pepper: str,
    storage_limit: int | None = None,
    max_sessions: int | None = None,
    variables: Sequence[str] = (),
) -> tuple[Study, str]:
    """A new study and its participant token (stored hashed; `participant_token` derives it again). The stimulus
    (a video by its magic bytes) is stored with the type its container names, never the client's.

    `put_object(key, data)` stores the stimulus; it must undo that if the transaction fails
    (api.store.storage.undone_on_error). Raises StudyStorageFull, before anything is stored, when the
    stimulus would take the account's stimuli past `storage_limit` bytes (None: no limit).
    """
    if stimulus is not None and storage_limit is not None:
        used = session.scalar(
            select(func.coalesce(func.sum(Study.stimulus_bytes), 0)).where(Study.account_id == account_id)
        )
        if used + len(stimulus) > storage_limit:
            raise StudyStorageFull(
                f"the account's stimuli take {used} of {storage_limit} bytes; this one needs "
                f"{len(stimulus)} more: delete a study or upgrade"
            )
    study = Study(
        id=f"study_{uuid.uuid4().hex}",
        account_id=account_id,
        api_key_id=api_key_id,
        name=name,
        stimulus_duration_ms=stimulus_duration_ms,
        max_sessions=max_sessions,
        variable_keys=json.dumps(list(variables)) if variables else None,
    )
    token = _new_token(study, pepper)
    if stimulus is not None:
        study.stimulus_key = f"studies/{study.id}/stimulus"
        study.stimulus_content_type = media.VIDEO_MIMETYPES[media.sniff_format(stimulus)]
        study.stimulus_bytes = len(stimulus)
        put_object(study.stimulus_key, stimulus)  # inside the transaction: no study row pointing at nothing
    session.add(study)
    session.flush()
    return study, token


def rotate_token(study: Study, api_key_id: int, pepper: str) -> str:
    """A new participant token for the study (the old one stops working at commit), metered from now
    on against `api_key_id`, the owner's key that rotated it: this is how a study whose key was
    revoked takes sessions again."""
    token = _new_token(study, pepper)
    study.api_key_id = api_key_id
    return token


def check_open(session: Session, study: Study, max_sessions: int) -> None:
    """Raise StudyClosed unless the study may take one more session: its key is active, and it has
    fewer sessions than its own cap and the deployment's `max_sessions`.

    The cap is counted before the session is added, so concurrent submissions may overshoot it by
    the few that race; it bounds a leaked link's cost, it is not an exact count.
    """
    key = session.get(ApiKey, study.api_key_id)
    if key is None or key.revoked_at is not None:
        raise StudyClosed(
            "study_closed",
            "the API key this study is billed to was revoked; the study's owner "
            "must rotate its participant token before it takes sessions again",
        )
    limit = min(study.max_sessions or max_sessions, max_sessions)
    taken = session.scalar(select(func.count()).select_from(StudySession).where(StudySession.study_id == study.id))
    if taken >= limit:
        raise StudyClosed("study_full", f"this study has reached its limit of {limit} sessions")


def study_json(session: Session, study: Study, pepper: str) -> dict:
    """The owner's view of a study, with its participant link whenever it can be derived."""
    counts = {status: 0 for status in SESSION_STATUSES}
    for status in session.scalars(select(StudySession.status).where(StudySession.study_id == study.id)):
        counts[status] += 1
    body = {
        "id": study.id,
        "name": study.name,
        "stimulus_duration_ms": study.stimulus_duration_ms,
        "has_stimulus": study.stimulus_key is not None,
        "created_at": study.created_at.isoformat(),
        "max_sessions": study.max_sessions,
        "variables": variable_keys(study),
        "sessions": counts,
    }
    token = participant_token(study, pepper)
    body["participant_token"] = token
    body["participant_path"] = participant_path(token) if token else None
    return body


def find(session: Session, account_id: int, study_id: str) -> Study | None:
    study = session.get(Study, study_id)
    return study if study is not None and study.account_id == account_id else None


def of_account(session: Session, account_id: int) -> list[Study]:
    return list(session.scalars(select(Study).where(Study.account_id == account_id)))


def by_token(session: Session, token: str, pepper: str) -> Study | None:
    """The study this participant token opens (the participant page knows only the token)."""
    if not token.startswith(PARTICIPANT_TOKEN_PREFIX):
        return None
    return session.scalars(select(Study).where(Study.participant_token_hash == keys.hash_key(token, pepper))).first()


def for_participant(session: Session, study_id: str, token: str, pepper: str) -> Study | None:
    """The study this participant token opens, if it is `study_id`'s."""
    study = by_token(session, token, pepper)
    return study if study is not None and study.id == study_id else None


def report_link_token(link: ReportLink, pepper: str) -> str:
    return _signed_token(REPORT_TOKEN_PREFIX, "report-link", link.nonce, pepper)


def create_report_link(session: Session, study: Study, pepper: str, days: int = REPORT_LINK_DAYS) -> ReportLink:
    """A read-only link to the study's report for `days` days; only its token's hash is looked up."""
    link = ReportLink(
        id=f"rl_{uuid.uuid4().hex[:16]}",
        study_id=study.id,
        nonce=secrets.token_hex(16),
        created_at=utcnow(),
        expires_at=utcnow() + timedelta(days=days),
    )
    link.token_hash = keys.hash_key(report_link_token(link, pepper), pepper)
    session.add(link)
    session.flush()
    return link


def report_links(session: Session, study: Study) -> list[ReportLink]:
    return list(
        session.scalars(select(ReportLink).where(ReportLink.study_id == study.id).order_by(ReportLink.created_at))
    )


def revoke_report_link(session: Session, study: Study, link_id: str) -> ReportLink | None:
    """Revoke the study's link `link_id` (at once, for good); None when the study has no such link."""
    link = session.get(ReportLink, link_id)
    if link is None or link.study_id != study.id:
        return None
    link.revoked_at = link.revoked_at or utcnow()
    return link


def report_link_json(link: ReportLink, pepper: str) -> dict:
    """The owner's view of a link, with its token (derived again: revoked or expired ones say so)."""
    token = report_link_token(link, pepper)
    return {
        "id": link.id,
        "token": token,
        "path": f"/r/{token}",
        "created_at": link.created_at.isoformat(),
        "expires_at": link.expires_at.isoformat(),
        "revoked_at": link.revoked_at.isoformat() if link.revoked_at else None,
    }


def by_report_token(session: Session, token: str, pepper: str) -> Study | None:
    """The study a client's report token opens while it is neither revoked nor expired."""
    if not token.startswith(REPORT_TOKEN_PREFIX):
        return None
    link = session.scalars(select(ReportLink).where(ReportLink.token_hash == keys.hash_key(token, pepper))).first()
    if link is None or link.revoked_at is not None or link.expires_at <= utcnow():
        return None
    return session.get(Study, link.study_id)


def delete(session: Session, study: Study) -> list[str]:
    """Delete the study, its sessions and their jobs; returns the storage keys to delete after commit."""
    sessions = list(session.scalars(select(StudySession).where(StudySession.study_id == study.id)))
    stale = _delete_jobs(session, [s.id for s in sessions])
    for each in [*sessions, *report_links(session, study)]:
        session.delete(each)
    # Sessions first: no ORM relationship orders these deletes, and a study deleted first would take
    # its sessions with it by the database's cascade, leaving the ORM's deletes matching nothing.
    session.flush()
    session.delete(study)
    return stale + [k for k in (study.stimulus_key,) if k]


def _new_receipt() -> str:
    return f"{RECEIPT_PREFIX}{secrets.token_urlsafe(16)}"


def new_session(
    study: Study,
    stimulus_started_ms: float,
    consent: Consent,
    segment: str | None,
    variables: dict[str, str],
    pepper: str,
) -> tuple[StudySession, str]:
    """An unsaved session and its receipt code (shown to the participant once); `variables` already
    checked (check_variables)."""
    receipt = _new_receipt()
    row = StudySession(
        id=f"ses_{uuid.uuid4().hex}",
        study_id=study.id,
        receipt_hash=keys.hash_key(receipt, pepper),
        status="processing",
        stimulus_started_ms=stimulus_started_ms,
        consent_version=consent.version,
        consented_at=consent.accepted_at,
        segment=segment,
        variables=json.dumps(variables) if variables else None,
        created_at=utcnow(),
    )
    return row, receipt


def session_json(row: StudySession, receipt: str | None = None) -> dict:
    body = {"id": row.id, "study_id": row.study_id, "status": row.status, "created_at": row.created_at.isoformat()}
    if receipt is not None:
        body["receipt"] = receipt
    return body


def reissue_receipt(session: Session, study_id: str, session_id: str, pepper: str) -> str | None:
    """A new receipt for a session whose submission is replayed (its first answer may never have
    arrived), replacing the one given before; None when the session was deleted meanwhile."""
    row = session.scalars(
        select(StudySession).where(StudySession.id == session_id, StudySession.study_id == study_id)
    ).first()
    if row is None:
        return None
    receipt = _new_receipt()
    row.receipt_hash = keys.hash_key(receipt, pepper)
    return receipt


def delete_session(session: Session, study_id: str, receipt: str, pepper: str) -> list[str] | None:
    """Delete the session this receipt names, and its job; None if there is none, else the
    storage keys to delete after commit (a recording not yet analysed)."""
    row = session.scalars(
        select(StudySession).where(
            StudySession.receipt_hash == keys.hash_key(receipt, pepper), StudySession.study_id == study_id
        )
    ).first()
    if row is None:
        return None
    stale = _delete_jobs(session, [row.id])
    session.delete(row)
    return stale


def _delete_jobs(session: Session, session_ids: list[str]) -> list[str]:
    """A session's job is internal to it: it goes with the session. Its usage events stay (billing)."""
    stale = []
    for job in session.scalars(select(Job).where(Job.study_session_id.in_(session_ids))) if session_ids else []:
        stale += [k for k in (job.media_key, job.result_key) if k]
        session.delete(job)
    return stale


def session_job_kind() -> jobs.JobKind:
    """How a session's job ends: a video's timeline is kept on the session, and no result file."""
    return jobs.JobKind(
        keeps_result=False,
        accept=_accept_recording,
        on_done=_record_result,
        on_failed=_record_failure,
        billable=_billable,
    )


def attach(row: StudySession):
    """`jobs.submit`'s `attach` for a session's recording: the session is saved with its job."""

    def to_job(session: Session, job: Job) -> None:
        job.study_session_id = row.id
        session.add(row)

    return to_job


def _accept_recording(analysis: ImageAnalysis | VideoAnalysis) -> None:
    if not isinstance(analysis, VideoAnalysis):
        raise media.UnsupportedMedia("a study session must be a video recording, not a still picture")


def _record_result(session: Session, job: Job, analysis: VideoAnalysis) -> None:
    """Keep the session's timeline (its job row is deleted with it, so it exists here)."""
    row = session.get(StudySession, job.study_session_id)
    study = session.get(Study, row.study_id)
    timeline = audience.timeline_from_analysis(
        analysis, row.stimulus_started_ms, study.stimulus_duration_ms, row.segment
    )
    row.timeline, row.micro_onsets = timeline.to_bytes(), json.dumps(timeline.micro_onsets_ms)
    low_quality = audience.face_share(timeline) < audience.MIN_FACE_SHARE
    row.status, row.finished_at = LOW_QUALITY if low_quality else "succeeded", utcnow()


def _billable(session: Session, job: Job) -> bool:
    """A session below the quality gate is not billed (audience.MIN_FACE_SHARE)."""
    return session.get(StudySession, job.study_session_id).status != LOW_QUALITY


def _record_failure(session: Session, job: Job) -> None:
    row = session.get(StudySession, job.study_session_id)
    if row is not None:
        row.status, row.finished_at = "failed", utcnow()


def _timelines(
    session: Session, study: Study, include_low_quality: bool, only: dict[str, str] | None = None
) -> list[audience.SessionTimeline]:
    """The analysed sessions' timelines; those below the quality gate only when asked for; with `only`,
    those whose variables have these values."""
    statuses = ("succeeded", LOW_QUALITY) if include_low_quality else ("succeeded",)
    rows = session.execute(
        select(StudySession.timeline, StudySession.micro_onsets, StudySession.segment, StudySession.variables).where(
            StudySession.study_id == study.id, StudySession.status.in_(statuses)
        )
    ).all()
    n_buckets = audience.grid_size(study.stimulus_duration_ms)
    timelines = [
        audience.SessionTimeline.from_bytes(t, n_buckets, json.loads(m), seg, json.loads(v) if v else {})
        for t, m, seg, v in rows
    ]
    return [t for t in timelines if all(t.variables.get(k) == v for k, v in (only or {}).items())]


def _low_quality_count(session: Session, study: Study) -> int:
    return session.scalar(
        select(func.count())
        .select_from(StudySession)
        .where(StudySession.study_id == study.id, StudySession.status == LOW_QUALITY)
    )


def report(
    session: Session,
    study: Study,
    bucket_ms: int = 1000,
    include_low_quality: bool = False,
    only: dict[str, str] | None = None,
) -> dict:
    """Over the analysed sessions; those below the quality gate only when asked for; with `only`
    (report_filter), those whose link variables have these values. Broken down by each variable."""
    timelines = _timelines(session, study, include_low_quality, only)
    return {
        "study_id": study.id,
        "low_quality_sessions": _low_quality_count(session, study),
        "low_quality_included": include_low_quality,
        "filter": only or {},
        **audience.study_report(timelines, study.stimulus_duration_ms, bucket_ms, variable_keys(study)),
    }


def compare(session: Session, compared: list[Study], include_low_quality: bool = False) -> dict:
    """Studies side by side (the caller found each among the owner's own): per-second curves on the
    stimulus clock, summary scores, and each one's differences from the first (audience.compare_audiences)."""
    comparison = audience.compare_audiences(
        [(_timelines(session, study, include_low_quality), study.stimulus_duration_ms) for study in compared]
    )
    for study, body in zip(compared, comparison["studies"], strict=True):
        body.update(
            {"study_id": study.id, "name": study.name, "low_quality_sessions": _low_quality_count(session, study)}
        )
    for study, difference in zip(compared[1:], comparison["differences"], strict=True):
        difference.update({"study_id": study.id, "baseline_study_id": compared[0].id})
    return {**comparison, "low_quality_included": include_low_quality}
