"""Wiring: settings -> database, storage, job context and queue, and the Services a request uses.
No Flask here (workers use it too)."""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Protocol, runtime_checkable

from sqlalchemy.exc import SQLAlchemyError

from api.domain import jobs, orphans, studies, webhooks
from api.domain.billing import Billing
from api.domain.mailer import Mailer
from api.engine.analyzer import Analyzer
from api.store.db import Database
from api.store.ratelimit import RateLimiter
from api.store.storage import LocalStorage, S3Storage, Storage
from api.wiring.config import Settings

log = logging.getLogger(__name__)

JOB_TASK, JOB_QUEUE = "emoscope.run_job", "emoscope-jobs"


@runtime_checkable
class Queue(Protocol):
    """Runs a submitted job: InProcessQueue, CeleryQueue."""

    def enqueue(self, job_id: str) -> None: ...


@dataclass
class Services:
    """What a request handler may use: built once per process, read-only afterwards."""

    settings: Settings
    db: Database
    analyzer: Analyzer
    rate_limiter: RateLimiter
    billing: Billing | None
    analysis_slots: threading.BoundedSemaphore
    jobs: jobs.JobContext
    queue: Queue
    mailer: Mailer


def celery_transport_options() -> dict:
    """Broker options shared by the API (sending) and the workers (receiving)."""
    # Must exceed the longest job: an unacknowledged task is redelivered after this many seconds.
    options = {"visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", 3600))}
    if os.environ.get("SQS_QUEUE_URL"):
        # On AWS the queue exists already (Terraform) and the roles may not create or list queues.
        options.update(
            region=os.environ.get("AWS_REGION", "us-east-1"),
            predefined_queues={JOB_QUEUE: {"url": os.environ["SQS_QUEUE_URL"]}},
        )
    return options


def make_storage(settings: Settings) -> Storage:
    if settings.s3_bucket:
        return S3Storage(settings.s3_bucket, settings.s3_endpoint_url, settings.s3_kms_key_id)
    return LocalStorage(settings.state_dir / "objects")


def make_analyzer(settings: Settings) -> Analyzer:
    return Analyzer(settings.state_dir / "deepface", settings.emotion_model, settings.inference_threads)


def job_context(
    settings: Settings, with_analyzer: bool, analyzer: Analyzer | None = None, db: Database | None = None
) -> jobs.JobContext:
    if analyzer is None and with_analyzer:
        analyzer = make_analyzer(settings)
    return jobs.JobContext(
        db or Database(settings.database_url),
        make_storage(settings),
        analyzer,
        settings.limits,
        timedelta(hours=settings.media_retention_hours),
        settings.webhook_allow_loopback,
        kinds={jobs.ANALYSIS: jobs.JobKind(), studies.JOB_KIND: studies.session_job_kind()},
    )


SWEEP_EVERY_S = 600


def _started(pid: int) -> str:
    """When the process started (Linux: clock ticks after boot), "" where that cannot be read: a
    restarted container reuses the small pids of its previous life."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rpartition(")")[2].split()[19]  # field 22, counted after the command name


def _runner_id() -> str:
    return f"inproc:{socket.gethostname()}:{os.getpid()}:{_started(os.getpid())}"


def _runner_alive(runner: str) -> bool:
    """Whether the in-process queue `runner` names still runs. Another host's cannot be checked
    from here: it counts as alive, so its jobs are never run twice."""
    kind, host, pid, started = (runner.split(":") + ["", "", ""])[:4]
    if kind != "inproc" or host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, under another user
        pass
    return _started(int(pid)) == started


class _Timers:
    """Calls functions after a delay on one thread, so waiting never holds up the caller's thread."""

    def __init__(self, name: str) -> None:
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._added = threading.Condition()
        self._count = itertools.count()  # breaks ties between equal times; functions do not compare
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def call_later(self, delay_s: float, function: Callable[[], None]) -> None:
        with self._added:
            heapq.heappush(self._due, (time.monotonic() + delay_s, next(self._count), function))
            self._added.notify()

    def _run(self) -> None:
        while True:
            with self._added:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._added.wait(self._due[0][0] - time.monotonic() if self._due else None)
                _, _, function = heapq.heappop(self._due)
            try:
                function()
            except Exception:  # one failed call must not stop the others
                log.exception("a scheduled call failed")


class InProcessQueue:
    """The embedded default: jobs run on one background thread of the API process itself, webhooks
    are delivered (and retried, after a backoff) on others, and one more sweeps expired results and
    orphan objects (what Celery beat does in a deployment).

    Each job is marked with the process that holds it. On start, a process adopts the jobs of
    processes that are gone (a restart, a recycled gunicorn worker) and those no process took.
    """

    def __init__(self, context: jobs.JobContext) -> None:
        self._context = context
        self._runner = _runner_id()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="emoscope-job")
        # Deliveries wait for their endpoint (up to webhooks.TIMEOUT_S): a few at once, so one slow
        # endpoint does not hold up other accounts' webhooks; retries wait on the timer thread.
        self._deliveries = ThreadPoolExecutor(max_workers=4, thread_name_prefix="emoscope-webhook")
        self._timers = _Timers("emoscope-webhook-timers")
        threading.Thread(target=self._sweep_forever, name="emoscope-sweeper", daemon=True).start()
        self._adopt_orphans()

    def _sweep_forever(self) -> None:
        while True:
            time.sleep(SWEEP_EVERY_S)
            try:
                jobs.sweep(self._context)
                orphans.sweep(self._context)
            except Exception:  # a failed sweep is retried next time; it must not kill the thread
                log.exception("sweeping expired results or orphan objects failed")

    def _adopt_orphans(self) -> None:
        try:
            orphans = jobs.orphans(self._context, _runner_alive)
        except SQLAlchemyError as exc:  # e.g. a database not migrated yet: the next start tries again
            log.warning("could not look for jobs left by stopped processes: %s", type(exc).__name__)
            return
        for job_id, held_by in orphans:
            if jobs.take(self._context, job_id, self._runner, held_by):
                log.info("adopted a job left by a stopped process", extra={"job_id": job_id})
                self._pool.submit(self._run, job_id)

    def enqueue(self, job_id: str) -> None:
        if jobs.take(self._context, job_id, self._runner):
            self._pool.submit(self._run, job_id)

    def _run(self, job_id: str) -> None:
        jobs.execute(self._context, job_id)
        self._deliveries.submit(self._notify, job_id, 0)

    def _notify(self, job_id: str, attempt: int) -> None:
        if jobs.notify(self._context, job_id):
            return
        if attempt + 1 >= jobs.WEBHOOK_ATTEMPTS:
            jobs.give_up_webhook(self._context, job_id)
            return
        self._timers.call_later(
            webhooks.backoff_seconds(attempt), lambda: self._deliveries.submit(self._notify, job_id, attempt + 1)
        )


class CeleryQueue:
    """Sends jobs by task name, so the API process never imports the worker (or its models)."""

    def __init__(self, broker_url: str) -> None:
        from celery import Celery

        self._celery = Celery("emoscope-api", broker=broker_url)
        self._celery.conf.broker_transport_options = celery_transport_options()

    def enqueue(self, job_id: str) -> None:
        self._celery.send_task(JOB_TASK, args=[job_id], queue=JOB_QUEUE)


def make_queue(settings: Settings, context: jobs.JobContext) -> Queue:
    return CeleryQueue(settings.celery_broker_url) if settings.celery_broker_url else InProcessQueue(context)
