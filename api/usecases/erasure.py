"""Deleting an account's data on its owner's request: what goes now, and what stays for invoicing.

Deleted: every audience study with its stimulus and its viewers' session timelines; every job (a
queued one never runs, a running one stops being tracked and is not billed), its media and its
result in object storage; and what finished requests keep that derives from
their media (answers stored for Idempotency-Key replays, the keys themselves, media fingerprints).
A retry with an Idempotency-Key used before the deletion is therefore a new, billed request.

Kept: the request ledger's rows (id, status, times), usage events (units, image or clip, time) and
billing outbox rows, because the month's quota, the usage report, Stripe's meter and invoices are
computed from them; none of them holds anything derived from the media. The account, its owners
and its API keys stay too: deleting data is not closing the account. Requests still running at
that moment finish normally.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.domain import jobs, studies
from api.store import repository


@dataclass(frozen=True)
class Erasure:
    studies_deleted: int
    jobs_deleted: int
    requests_scrubbed: int


def erase_account_data(ctx: jobs.JobContext, account_id: int) -> Erasure:
    # Studies first: their sessions' jobs go with them, as when a study is deleted on its own.
    with ctx.db.session.begin() as session:
        owned = studies.of_account(session, account_id)
        stale = [key for study in owned for key in studies.delete(session, study)]
    for key in stale:
        ctx.storage.delete(key)
    with ctx.db.session.begin() as session:
        job_ids = repository.job_ids(session, account_id)
    # One job at a time through jobs.delete, so that object storage is cleaned exactly as by
    # DELETE /v1/jobs/{id}; a job deleted concurrently just counts as not deleted here.
    deleted = sum(jobs.delete(ctx, account_id, job_id) for job_id in job_ids)
    with ctx.db.session.begin() as session:
        scrubbed = repository.scrub_finished_requests(session, account_id)
    return Erasure(len(owned), deleted, scrubbed)
