"""Asynchronous analysis jobs: submit, execute (idempotent under redelivery), notify, delete, sweep.

Media waits in object storage only until its job finishes; results stay for the retention window.
With retention 0 a result is kept only until it has been handed out once (GET or webhook); the
sweeper deletes any that nobody collected.
A job is billed when it succeeds, in the same transaction that marks it done; the unique request
id on usage events makes a redelivered job impossible to bill twice.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.domain import metering, webhooks
from api.domain.serializers import analysis_json
from api.engine.analyzer import AnalysisOptions, Analyzer, analyze_bytes
from api.engine.limits import Limits
from api.engine.media import MediaError
from api.engine.results import ImageAnalysis, VideoAnalysis
from api.store.db import Account, ApiRequest, Database, Job, utcnow
from api.store.storage import Storage, undone_on_error

log = logging.getLogger(__name__)

FINAL = {"succeeded", "failed"}
PROGRESS_EVERY_FRAMES = 10
WEBHOOK_ATTEMPTS = 6
ANALYSIS = "analysis"  # the kind of the API's own jobs
OPTIONS_VERSION = 1


def nothing(*args: object) -> None:
    """The hook of a kind that adds nothing there."""


@dataclass(frozen=True)
class JobKind:
    """What another module adds to the jobs it submits (a job's `kind` names its entry in
    `JobContext.kinds`); the hooks run in the transaction that ends the job."""

    keeps_result: bool = True  # False: no result file; `on_done` keeps what it needs of the analysis
    accept: Callable[[ImageAnalysis | VideoAnalysis], None] = nothing  # raises MediaError to fail the job
    on_done: Callable[[Session, Job, ImageAnalysis | VideoAnalysis], None] = nothing
    on_failed: Callable[[Session, Job], None] = nothing
    # Whether a job that succeeded is billed, asked after `on_done` in the same transaction.
    billable: Callable[[Session, Job], bool] = lambda session, job: True


@dataclass
class JobContext:
    """Everything a job needs, in the API process or a worker."""

    db: Database
    storage: Storage
    analyzer: Analyzer | None
    limits: Limits
    retention: timedelta
    allow_loopback_webhooks: bool = False
    kinds: dict[str, JobKind] = field(default_factory=lambda: {ANALYSIS: JobKind()})

    def kind(self, name: str) -> JobKind:
        if name not in self.kinds:
            raise LookupError(f"no job kind {name!r} is registered in this process")
        return self.kinds[name]


def dump_options(options: AnalysisOptions) -> str:
    return json.dumps({"version": OPTIONS_VERSION, **dataclasses.asdict(options)})


def load_options(stored: str) -> AnalysisOptions:
    """A job's options as `dump_options` wrote them, or as rows before version 1 hold them (the
    bare fields): a job queued before an upgrade still runs after it."""
    fields = json.loads(stored)
    version = fields.pop("version", None)
    if version not in (None, OPTIONS_VERSION):
        raise ValueError(f"job options of schema version {version} are newer than this process reads")
    return AnalysisOptions(**fields)


def job_json(job: Job, result: dict | None = None) -> dict:
    iso = lambda t: t.isoformat() if t else None  # noqa: E731
    return {
        "id": job.id,
        "status": job.status,
        "progress": {"frames_done": job.frames_done, "frames_total": job.frames_total},
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "expires_at": iso(job.expires_at),
        "result": result,
        "result_expired": job.status == "succeeded" and job.result_key is None,
        "error": json.loads(job.error) if job.error else None,
        "webhook": {"url": job.webhook_url, "status": job.webhook_status} if job.webhook_url else None,
    }


def submit(
    ctx: JobContext,
    request: metering.MeteredRequest,
    data: bytes,
    options: AnalysisOptions,
    frames_total: int | None,
    webhook_url: str | None,
    *,
    reserve_units: int,
    kind: str = ANALYSIS,
    attach: Callable[[Session, Job], None] = nothing,
    answer: dict | None = None,
) -> tuple[dict, str | None]:
    """Store the media and record the job; returns (the answer, the new job's id to queue), the id
    None when an earlier submission with this Idempotency-Key is replayed.

    The job holds `reserve_units` (its estimated cost) against the quota until it ends: success
    bills what was decoded in the same transaction, failure bills nothing.

    A job of another module's `kind` is tied to that module's rows by `attach(session, job)`, in
    the job's transaction; its answer is `answer` rather than the job's JSON, when the client
    is not the account that the job belongs to.
    """
    with undone_on_error(ctx.storage) as put, ctx.db.session.begin() as session:
        replay = metering.admit(session, request)
        if replay is not None:
            return json.loads(replay), None
        owner = session.get(Account, request.account.id)
        owner.webhook_secret = owner.webhook_secret or webhooks.new_webhook_secret()
        job = Job(
            id=f"job_{uuid.uuid4().hex}",
            account_id=request.account.id,
            request_id=request.request_id,
            kind=kind,
            options=dump_options(options),
            frames_total=frames_total,
            webhook_url=webhook_url,
            webhook_status="pending" if webhook_url else None,
            reserved_units=reserve_units,
        )
        job.media_key = f"media/{job.id}"
        put(job.media_key, data)  # inside the transaction: no job row without its media, nor media without its row
        attach(session, job)
        session.add(job)
        session.flush()
        body = answer if answer is not None else job_json(job)
        record = session.get(ApiRequest, request.request_id)
        record.status = "accepted"
        record.response_body = json.dumps(body) if request.idempotency_key else None
    return body, job.id


def execute(ctx: JobContext, job_id: str) -> str | None:
    """Run one job to its end. Safe to call again for the same job (a redelivered task)."""
    with ctx.db.session.begin() as session:
        job = session.get(Job, job_id)
        if job is None or job.status in FINAL:
            return job.status if job else None
        job.status, job.started_at, job.attempts = "running", utcnow(), job.attempts + 1
        media_key, options, request_id = job.media_key, load_options(job.options), job.request_id
        kind = ctx.kind(job.kind)
    try:
        data = ctx.storage.get(media_key)
        analysis = analyze_bytes(ctx.analyzer, data, options, ctx.limits, _progress_writer(ctx.db, job_id))
        kind.accept(analysis)
    except MediaError as exc:
        return _fail(ctx, job_id, exc.code, str(exc))
    except FileNotFoundError:
        return _fail(ctx, job_id, "media_gone", "the job's media was deleted before it could run")
    body = analysis_json(analysis, request_id, ctx.analyzer.model_versions(options.detector))
    result_key = f"results/{job_id}.json" if kind.keeps_result else None
    if result_key:
        ctx.storage.put(result_key, json.dumps(body).encode())
    try:
        with ctx.db.session.begin() as session:
            job = session.get(Job, job_id)
            if job is None:  # deleted while running (by its owner, or with what its kind tied it to)
                if result_key:
                    ctx.storage.delete(result_key)
                return None
            kind.on_done(session, job, analysis)
            now = utcnow()
            job.status, job.finished_at, job.result_key = "succeeded", now, result_key
            job.expires_at = now + ctx.retention
            # The total was an estimate until decoding ended; a finished job's is what was analysed.
            job.frames_done = job.frames_total = len(getattr(analysis, "frames", [])) or 1
            record = session.get(ApiRequest, request_id)
            metering.complete(
                session,
                request_id,
                session.get(Account, job.account_id),
                analysis.media,
                record.response_body,
                billed=kind.billable(session, job),
            )
    except IntegrityError:
        log.info("job already billed by an earlier delivery", extra={"job_id": job_id})
        return "succeeded"
    ctx.storage.delete(media_key)
    return "succeeded"


def take(ctx: JobContext, job_id: str, runner: str, held_by: str | None = None) -> bool:
    """Make `runner` the job's only runner, if it is still held by `held_by`; False if another took it."""
    with ctx.db.session.begin() as session:
        taken = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.runner.is_(None) if held_by is None else Job.runner == held_by)
            .values(runner=runner)
        )
        return taken.rowcount == 1


# A job no runner took this long after its submission lost its process between commit and queueing.
UNQUEUED_GRACE = timedelta(minutes=1)


def orphans(ctx: JobContext, alive) -> list[tuple[str, str | None]]:
    """(job id, its runner) of jobs whose runner is gone (`alive(runner)` False) or that no runner
    took, and that still need work: to run, or a webhook to deliver."""
    with ctx.db.session.begin() as session:
        rows = session.execute(
            select(Job.id, Job.runner, Job.created_at).where(
                or_(Job.status.not_in(FINAL), Job.webhook_status == "pending")
            )
        ).all()
    unqueued_before = utcnow() - UNQUEUED_GRACE
    return [
        (job_id, runner)
        for job_id, runner, created_at in rows
        if (runner is None and created_at < unqueued_before) or (runner is not None and not alive(runner))
    ]


def _progress_writer(db: Database, job_id: str):
    def write(frames_done: int) -> None:
        if frames_done % PROGRESS_EVERY_FRAMES == 0:
            with db.session.begin() as session:
                job = session.get(Job, job_id)
                if job is not None:
                    job.frames_done = frames_done
                    if job.frames_total is not None:  # an estimate from the packets' length: never below what is done
                        job.frames_total = max(job.frames_total, frames_done)

    return write


def _fail(ctx: JobContext, job_id: str, code: str, detail: str) -> str | None:
    with ctx.db.session.begin() as session:
        job = session.get(Job, job_id)
        if job is None:
            return None
        job.status, job.finished_at = "failed", utcnow()
        job.expires_at = job.finished_at + ctx.retention
        job.error = json.dumps(
            {
                "type": f"urn:emoscope:problem:{code}",
                "title": "Job failed",
                "status": 422,
                "detail": detail,
                "code": code,
            }
        )
        session.get(ApiRequest, job.request_id).status = "failed"  # never billed
        ctx.kind(job.kind).on_failed(session, job)
        media_key = job.media_key
    ctx.storage.delete(media_key)
    log.warning("job failed: %s", code, extra={"job_id": job_id, "code": code})
    return "failed"


def _expire(ctx: JobContext, job_id: str) -> None:
    with ctx.db.session.begin() as session:
        job = session.get(Job, job_id)
        if job is not None and job.result_key:
            ctx.storage.delete(job.result_key)
            job.result_key = None


def _keeps_results(ctx: JobContext) -> bool:
    return ctx.retention > timedelta(0)


class JobExpired(Exception):
    """The job finished longer ago than the retention window: nothing of it is shown any more."""


def _past_retention(ctx: JobContext, job: Job) -> bool:
    # With retention 0 a result lives until its first reading, so only a kept one can be overdue.
    return _keeps_results(ctx) and job.expires_at is not None and job.expires_at <= utcnow()


def load(ctx: JobContext, account_id: int, job_id: str) -> dict | None:
    """The job as the API shows it, with its result while it is kept; None if not this account's.

    Raises JobExpired past the job's expiry even before the sweeper has run, whose next pass may be
    minutes away; the overdue result is deleted now.
    """
    with ctx.db.session.begin() as session:
        job = session.get(Job, job_id)
        if job is None or job.account_id != account_id:
            return None
        overdue = _past_retention(ctx, job)
        result = json.loads(ctx.storage.get(job.result_key)) if job.result_key and not overdue else None
        body = job_json(job, result)
    if overdue:
        _expire(ctx, job_id)
        raise JobExpired(job_id)
    if result is not None and not _keeps_results(ctx):
        _expire(ctx, job_id)
    return body


def delete(ctx: JobContext, account_id: int, job_id: str) -> bool:
    """Delete the job's media and result now; a running job stops being tracked."""
    with ctx.db.session.begin() as session:
        job = session.get(Job, job_id)
        if job is None or job.account_id != account_id:
            return False
        keys = [k for k in (job.media_key, job.result_key) if k]
        session.delete(job)
    for key in keys:
        ctx.storage.delete(key)
    return True


def notify(ctx: JobContext, job_id: str) -> bool:
    """One signed delivery attempt of the job's webhook; True when delivered (or nothing to deliver)."""
    with ctx.db.session.begin() as session:
        job = session.get(Job, job_id)
        if job is None or not job.webhook_url or job.webhook_status == "delivered" or job.status not in FINAL:
            return True
        url, secret = job.webhook_url, session.get(Account, job.account_id).webhook_secret
        result = json.loads(ctx.storage.get(job.result_key)) if job.result_key else None
        payload = {"type": f"job.{job.status}", "job": job_json(job), "summary": _summary(result)}
        if result is not None and not _keeps_results(ctx):
            payload["job"]["result"] = result  # nothing is kept, so the webhook is the only delivery
    delivered = webhooks.deliver(url, json.dumps(payload).encode(), secret, ctx.allow_loopback_webhooks)
    if delivered and result is not None and not _keeps_results(ctx):
        _expire(ctx, job_id)
    with ctx.db.session.begin() as session:
        job = session.get(Job, job_id)
        if job is not None:
            job.webhook_status = "delivered" if delivered else "pending"
    return delivered


def _summary(result: dict | None) -> dict | None:
    if result is None:
        return None
    faces = result.get("faces") or [f for frame in result.get("frames", []) for f in frame["faces"]]
    return {
        "media_type": result["media"]["type"],
        "faces": len(faces),
        "tracks": len(result.get("tracks", [])),
        "micro_expressions": len(result.get("micro_expressions", [])),
    }


def give_up_webhook(ctx: JobContext, job_id: str) -> None:
    with ctx.db.session.begin() as session:
        job = session.get(Job, job_id)
        if job is not None:
            job.webhook_status = "failed"
    # The URL is not logged: an owner may have put a token in it.
    log.warning("webhook given up after %d attempts", WEBHOOK_ATTEMPTS, extra={"job_id": job_id})


def sweep(ctx: JobContext) -> int:
    """Delete results past their retention window, and stored idempotent answers past theirs; returns how
    many job results."""
    with ctx.db.session.begin() as session:
        expired = list(session.scalars(select(Job.id).where(Job.expires_at < utcnow(), Job.result_key.is_not(None))))
        forgotten = metering.forget_old_answers(session)
    if forgotten:
        log.info("forgot %d stored answers past the replay window", forgotten)
    for job_id in expired:
        _expire(ctx, job_id)
    return len(expired)
