"""Stored objects that no row needs: job media, job results and study stimuli left behind.

Orphans come from a process killed between a write and its commit (or between a job's end and
its media's deletion), and from jobs left behind by a restart. This module knows every kind of
row that owns an object, so that jobs and studies need not know each other.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select

from api.domain.jobs import FINAL, JobContext
from api.store.db import Job, Study, utcnow

log = logging.getLogger(__name__)

# An object younger than this may belong to a submission whose transaction has not committed yet.
ORPHAN_GRACE = timedelta(minutes=15)
ORPHAN_BATCH = 500  # keys looked up per query

# Per key prefix, the query naming which of a batch of keys a row still needs: media only a job
# that has yet to finish, a result its job, a stimulus its study.
NEEDED = {
    "media/": lambda keys: select(Job.media_key).where(Job.media_key.in_(keys), Job.status.not_in(FINAL)),
    "results/": lambda keys: select(Job.result_key).where(Job.result_key.in_(keys)),
    "studies/": lambda keys: select(Study.stimulus_key).where(Study.stimulus_key.in_(keys)),
}


def sweep(ctx: JobContext, now: datetime | None = None) -> int:
    """Delete stored objects that no row needs; returns how many."""
    cutoff = (now or utcnow()) - ORPHAN_GRACE
    deleted = 0
    for prefix, query in NEEDED.items():
        old = [key for key, modified in ctx.storage.list(prefix) if modified < cutoff]
        for start in range(0, len(old), ORPHAN_BATCH):
            batch = old[start : start + ORPHAN_BATCH]
            with ctx.db.session.begin() as session:
                kept = set(session.scalars(query(batch)))
            for key in batch:
                if key not in kept:
                    ctx.storage.delete(key)
                    deleted += 1
    if deleted:
        log.info("deleted %d stored objects no row needed", deleted)
    return deleted
