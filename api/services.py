"""Wiring: settings -> database, storage, job context and queue. No Flask here (workers use it too)."""
from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from api import jobs
from api.config import Settings
from api.db import Database
from api.engine.analyzer import Analyzer
from api.storage import LocalStorage, S3Storage

log = logging.getLogger(__name__)

JOB_TASK, JOB_QUEUE = "emoscope.run_job", "emoscope-jobs"


def celery_transport_options() -> dict:
    """Broker options shared by the API (sending) and the workers (receiving)."""
    # Must exceed the longest job: an unacknowledged task is redelivered after this many seconds.
    options = {"visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", 3600))}
    if os.environ.get("SQS_QUEUE_URL"):
        # On AWS the queue exists already (Terraform) and the roles may not create or list queues.
        options.update(region=os.environ.get("AWS_REGION", "us-east-1"),
                       predefined_queues={JOB_QUEUE: {"url": os.environ["SQS_QUEUE_URL"]}})
    return options


def make_storage(settings: Settings):
    if settings.s3_bucket:
        return S3Storage(settings.s3_bucket, settings.s3_endpoint_url, settings.s3_kms_key_id)
    return LocalStorage(settings.state_dir / "objects")


def make_analyzer(settings: Settings) -> Analyzer:
    return Analyzer(settings.state_dir / "deepface", settings.emotion_model, settings.inference_threads)


def job_context(settings: Settings, with_analyzer: bool, analyzer: Analyzer | None = None,
                db: Database | None = None) -> jobs.JobContext:
    if analyzer is None and with_analyzer:
        analyzer = make_analyzer(settings)
    return jobs.JobContext(db or Database(settings.database_url), make_storage(settings), analyzer, settings.limits,
                           timedelta(hours=settings.media_retention_hours), settings.webhook_allow_loopback)


SWEEP_EVERY_S = 600


class InProcessQueue:
    """The embedded default: jobs run on one background thread of the API process itself, and
    another sweeps expired results (what Celery beat does in a deployment)."""

    def __init__(self, context: jobs.JobContext) -> None:
        self._context = context
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="emoscope-job")
        threading.Thread(target=self._sweep_forever, name="emoscope-sweeper", daemon=True).start()

    def _sweep_forever(self) -> None:
        while True:
            time.sleep(SWEEP_EVERY_S)
            try:
                jobs.sweep(self._context)
                jobs.sweep_orphans(self._context)
            except Exception:  # a failed sweep is retried next time; it must not kill the thread
                log.exception("sweeping expired results or orphan objects failed")

    def enqueue(self, job_id: str) -> None:
        self._pool.submit(self._run, job_id)

    def _run(self, job_id: str) -> None:
        jobs.execute(self._context, job_id)
        jobs.notify_with_retries(self._context, job_id)


class CeleryQueue:
    """Sends jobs by task name, so the API process never imports the worker (or its models)."""

    def __init__(self, broker_url: str) -> None:
        from celery import Celery

        self._celery = Celery("emoscope-api", broker=broker_url)
        self._celery.conf.broker_transport_options = celery_transport_options()

    def enqueue(self, job_id: str) -> None:
        self._celery.send_task(JOB_TASK, args=[job_id], queue=JOB_QUEUE)


def make_queue(settings: Settings, context: jobs.JobContext):
    return CeleryQueue(settings.celery_broker_url) if settings.celery_broker_url else InProcessQueue(context)
