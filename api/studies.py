"""Audience studies: the owner's study, its participant link, viewers' sessions and the report. No Flask here.

A participant token can do one thing: submit sessions to its study (and fetch the stimulus to
play). A session's recording is analysed as a job of the owner's account, billed like any clip,
mapped onto the stimulus clock, and deleted; only the timeline (api/audience.py) is kept, with
no face images, boxes or embeddings. Each session's receipt code deletes it and its results.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api import audience, jobs, keys
from api.db import ApiKey, Job, Study, StudySession, utcnow
from api.engine import media
from api.engine.results import ImageAnalysis, VideoAnalysis

PARTICIPANT_TOKEN_PREFIX = "pt_"
LOW_QUALITY = "low_quality"  # analysed, but the face was found over too little of the stimulus
SESSION_STATUSES = ("processing", "succeeded", LOW_QUALITY, "failed")
RECEIPT_PREFIX = "rcpt_"
JOB_KIND = "study_session"  # a session's recording, analysed as a job of the owner's account


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


class StudyStorageFull(Exception):
    """The account's stored stimuli would exceed its plan's study storage."""


def participant_token(study: Study, pepper: str) -> str | None:
    """The study's participant token, derived from its nonce and the server's pepper, so that the owner
    can see the link again at any time while the database alone (a backup, a leak) holds no link:
    the nonce without the pepper derives nothing. None for a study made before nonces existed."""
    if study.participant_token_nonce is None:
        return None
    digest = hmac.new(pepper.encode(), f"participant-token:{study.participant_token_nonce}".encode(), hashlib.sha256)
    return f"{PARTICIPANT_TOKEN_PREFIX}{base64.urlsafe_b64encode(digest.digest()).decode().rstrip('=')}"


def _new_token(study: Study, pepper: str) -> str:
    """A fresh token for the study (a new nonce); its hash is what participants' requests are looked up by."""
    study.participant_token_nonce = secrets.token_hex(16)
    token = participant_token(study, pepper)
    study.participant_token_hash = keys.hash_key(token, pepper)
    return token


def create(session: Session, put_object, account_id: int, api_key_id: int, name: str, stimulus_duration_ms: float,
           stimulus: bytes | None, pepper: str, storage_limit: int | None = None,
           max_sessions: int | None = None) -> tuple[Study, str]:
    """A new study and its participant token (stored hashed; `participant_token` derives it again). The stimulus
    (a video by its magic bytes) is stored with the type its container names, never the client's.

    `put_object(key, data)` stores the stimulus; it must undo that if the transaction fails
    (api.storage.undone_on_error). Raises StudyStorageFull, before anything is stored, when the
    stimulus would take the account's stimuli past `storage_limit` bytes (None: no limit).
    """
    if stimulus is not None and storage_limit is not None:
        used = session.scalar(select(func.coalesce(func.sum(Study.stimulus_bytes), 0))
                              .where(Study.account_id == account_id))
        if used + len(stimulus) > storage_limit:
            raise StudyStorageFull(f"the account's stimuli take {used} of {storage_limit} bytes; this one needs "
                                   f"{len(stimulus)} more: delete a study or upgrade")
    study = Study(id=f"study_{uuid.uuid4().hex}", account_id=account_id, api_key_id=api_key_id, name=name,
                  stimulus_duration_ms=stimulus_duration_ms, max_sessions=max_sessions)
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
        raise StudyClosed("study_closed", "the API key this study is billed to was revoked; the study's owner "
                                          "must rotate its participant token before it takes sessions again")
    limit = min(study.max_sessions or max_sessions, max_sessions)
    taken = session.scalar(select(func.count()).select_from(StudySession).where(StudySession.study_id == study.id))
    if taken >= limit:
        raise StudyClosed("study_full", f"this study has reached its limit of {limit} sessions")


def study_json(session: Session, study: Study, pepper: str) -> dict:
    """The owner's view of a study, with its participant link whenever it can be derived."""
    counts = {status: 0 for status in SESSION_STATUSES}
    for status in session.scalars(select(StudySession.status).where(StudySession.study_id == study.id)):
        counts[status] += 1
    body = {"id": study.id, "name": study.name, "stimulus_duration_ms": study.stimulus_duration_ms,
            "has_stimulus": study.stimulus_key is not None, "created_at": study.created_at.isoformat(),
            "max_sessions": study.max_sessions, "sessions": counts}
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


def delete(session: Session, study: Study) -> list[str]:
    """Delete the study, its sessions and their jobs; returns the storage keys to delete after commit."""
    sessions = list(session.scalars(select(StudySession).where(StudySession.study_id == study.id)))
    stale = _delete_jobs(session, [s.id for s in sessions])
    for each in sessions:
        session.delete(each)
    # Sessions first: no ORM relationship orders these deletes, and a study deleted first would take
    # its sessions with it by the database's cascade, leaving the ORM's deletes matching nothing.
    session.flush()
    session.delete(study)
    return stale + [k for k in (study.stimulus_key,) if k]


def _new_receipt() -> str:
    return f"{RECEIPT_PREFIX}{secrets.token_urlsafe(16)}"


def new_session(study: Study, stimulus_started_ms: float, consent: Consent, segment: str | None,
                pepper: str) -> tuple[StudySession, str]:
    """An unsaved session and its receipt code (shown to the participant once)."""
    receipt = _new_receipt()
    row = StudySession(id=f"ses_{uuid.uuid4().hex}", study_id=study.id, receipt_hash=keys.hash_key(receipt, pepper),
                       status="processing", stimulus_started_ms=stimulus_started_ms, consent_version=consent.version,
                       consented_at=consent.accepted_at, segment=segment, created_at=utcnow())
    return row, receipt


def session_json(row: StudySession, receipt: str | None = None) -> dict:
    body = {"id": row.id, "study_id": row.study_id, "status": row.status,
            "created_at": row.created_at.isoformat()}
    if receipt is not None:
        body["receipt"] = receipt
    return body


def reissue_receipt(session: Session, study_id: str, session_id: str, pepper: str) -> str | None:
    """A new receipt for a session whose submission is replayed (its first answer may never have
    arrived), replacing the one given before; None when the session was deleted meanwhile."""
    row = session.scalars(select(StudySession).where(StudySession.id == session_id,
                                                     StudySession.study_id == study_id)).first()
    if row is None:
        return None
    receipt = _new_receipt()
    row.receipt_hash = keys.hash_key(receipt, pepper)
    return receipt


def delete_session(session: Session, study_id: str, receipt: str, pepper: str) -> list[str] | None:
    """Delete the session this receipt names, and its job; None if there is none, else the
    storage keys to delete after commit (a recording not yet analysed)."""
    row = session.scalars(select(StudySession).where(StudySession.receipt_hash == keys.hash_key(receipt, pepper),
                                                     StudySession.study_id == study_id)).first()
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
    return jobs.JobKind(keeps_result=False, accept=_accept_recording, on_done=_record_result,
                        on_failed=_record_failure, billable=_billable)


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
    timeline = audience.timeline_from_analysis(analysis, row.stimulus_started_ms, study.stimulus_duration_ms,
                                               row.segment)
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


def _timelines(session: Session, study: Study, include_low_quality: bool) -> list[audience.SessionTimeline]:
    """The analysed sessions' timelines; those below the quality gate only when asked for."""
    statuses = ("succeeded", LOW_QUALITY) if include_low_quality else ("succeeded",)
    rows = session.execute(select(StudySession.timeline, StudySession.micro_onsets, StudySession.segment)
                           .where(StudySession.study_id == study.id, StudySession.status.in_(statuses))).all()
    n_buckets = audience.grid_size(study.stimulus_duration_ms)
    return [audience.SessionTimeline.from_bytes(t, n_buckets, json.loads(m), seg) for t, m, seg in rows]


def _low_quality_count(session: Session, study: Study) -> int:
    return session.scalar(select(func.count()).select_from(StudySession)
                          .where(StudySession.study_id == study.id, StudySession.status == LOW_QUALITY))


def report(session: Session, study: Study, bucket_ms: int = 1000, include_low_quality: bool = False) -> dict:
    """Over the analysed sessions; those below the quality gate only when asked for."""
    timelines = _timelines(session, study, include_low_quality)
    return {"study_id": study.id, "low_quality_sessions": _low_quality_count(session, study),
            "low_quality_included": include_low_quality,
            **audience.study_report(timelines, study.stimulus_duration_ms, bucket_ms)}


def compare(session: Session, compared: list[Study], include_low_quality: bool = False) -> dict:
    """Studies side by side (the caller found each among the owner's own): per-second curves on the
    stimulus clock, summary scores, and each one's differences from the first (audience.compare_audiences)."""
    comparison = audience.compare_audiences([(_timelines(session, study, include_low_quality),
                                              study.stimulus_duration_ms) for study in compared])
    for study, body in zip(compared, comparison["studies"], strict=True):
        body.update({"study_id": study.id, "name": study.name,
                     "low_quality_sessions": _low_quality_count(session, study)})
    for study, difference in zip(compared[1:], comparison["differences"], strict=True):
        difference.update({"study_id": study.id, "baseline_study_id": compared[0].id})
    return {**comparison, "low_quality_included": include_low_quality}
