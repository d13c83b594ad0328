"""Celery worker: `celery -A api.wiring.worker worker` with CELERY_BROKER_URL (Redis here, SQS on AWS).

Tasks are acknowledged only after they finish (acks_late) and are handed back to the queue when
a worker dies mid-job, so a killed worker's job runs again elsewhere; `jobs.execute` is safe to
repeat and billing is exactly once by construction. The beat schedule sweeps expired results,
deletes stored objects no row needs, and reports usage to Stripe.
"""

from __future__ import annotations

import os
from functools import cache

from celery import Celery

from api.domain import jobs, orphans, webhooks
from api.wiring.config import Settings
from api.wiring.services import JOB_QUEUE, JOB_TASK, celery_transport_options, job_context

celery_app = Celery("emoscope", broker=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"))
celery_app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_default_queue=JOB_QUEUE,
    broker_connection_retry_on_startup=True,
    broker_transport_options=celery_transport_options(),
    # SQS roles cannot create the extra queues remote control and events would need.
    worker_enable_remote_control=not os.environ.get("SQS_QUEUE_URL"),
    worker_send_task_events=False,
    beat_schedule={
        "sweep-expired-results": {"task": "emoscope.sweep", "schedule": 600.0},
        "sweep-orphan-objects": {"task": "emoscope.sweep_orphans", "schedule": 3600.0},
        "push-usage-to-stripe": {"task": "emoscope.push_usage", "schedule": 10.0},
    },
)


@cache
def context() -> jobs.JobContext:
    """Built once per worker process, after fork: models load and warm up here, not per task."""
    return job_context(Settings.from_env(), with_analyzer=True)


@celery_app.task(name=JOB_TASK)
def run_job(job_id: str) -> str | None:
    status = jobs.execute(context(), job_id)
    notify_job.delay(job_id)
    return status


@celery_app.task(name="emoscope.notify_job", bind=True, max_retries=jobs.WEBHOOK_ATTEMPTS)
def notify_job(self, job_id: str) -> bool:
    if jobs.notify(context(), job_id):
        return True
    if self.request.retries >= self.max_retries:
        jobs.give_up_webhook(context(), job_id)
        return False
    raise self.retry(countdown=webhooks.backoff_seconds(self.request.retries))


@celery_app.task(name="emoscope.sweep")
def sweep() -> int:
    return jobs.sweep(context())


@celery_app.task(name="emoscope.sweep_orphans")
def sweep_orphans() -> int:
    return orphans.sweep(context())


@celery_app.task(name="emoscope.push_usage")
def push_usage() -> int:
    settings = Settings.from_env()
    if settings.stripe is None:
        return 0
    from api.domain.billing import Billing

    return Billing(settings.stripe).push_usage(context().db)
