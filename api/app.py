"""Application factory: `gunicorn 'api.app:create_app()'`."""
from __future__ import annotations

import os
import threading
import uuid
from dataclasses import dataclass

from flask import Flask, g, request

from api import websecurity
from api.billing import Billing
from api.config import Settings
from api.db import Database
from api.engine.analyzer import Analyzer
from api.errors import register_error_handlers
from api.jobs import JobContext
from api.observability import configure_logging, install_metrics
from api.ratelimit import make_rate_limiter
from api.routes import account, analyze, billing, console, demo, health, jobs, participant, studies
from api.routes.parsing import JSONProvider
from api.services import job_context, make_analyzer, make_queue

# Base64 inflates by 4/3; the engine enforces the exact byte limit after decoding.
BASE64_OVERHEAD = 4 / 3
REQUEST_ID_HEADER = "X-Request-Id"


@dataclass
class Services:
    """What a request handler may use: built once per process, read-only afterwards."""

    settings: Settings
    db: Database
    analyzer: Analyzer
    rate_limiter: object
    billing: Billing | None
    analysis_slots: threading.BoundedSemaphore
    jobs: JobContext
    queue: object


def create_app(settings: Settings | None = None, analyzer: Analyzer | None = None) -> Flask:
    settings = settings or Settings.from_env()
    configure_logging(os.environ.get("EMOSCOPE_LOG_LEVEL", "INFO"))
    app = Flask(__name__)
    app.json = JSONProvider(app)
    app.json.sort_keys = False  # keep request_id, media, faces in the documented order
    app.config["MAX_CONTENT_LENGTH"] = int(settings.limits.max_upload_bytes * BASE64_OVERHEAD) + 64 * 1024
    analyzer = analyzer or make_analyzer(settings)
    db = Database(settings.database_url)
    context = job_context(settings, with_analyzer=True, analyzer=analyzer, db=db)
    app.extensions["emoscope"] = Services(settings, db, analyzer, make_rate_limiter(settings.redis_url),
                                          Billing(settings.stripe) if settings.stripe else None,
                                          threading.BoundedSemaphore(settings.analysis_slots),
                                          context, make_queue(settings, context))

    @app.before_request
    def _assign_request_id():
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if 8 <= len(incoming) <= 64 and incoming.isalnum() else uuid.uuid4().hex

    @app.after_request
    def _echo_request_id(response):
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
        response.headers.update(g.get("rate_limit_headers", {}))
        return response

    install_metrics(app)
    register_error_handlers(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(analyze.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(billing.bp)
    app.register_blueprint(jobs.bp)
    app.register_blueprint(studies.bp)
    websecurity.install(app, settings)
    app.register_blueprint(demo.bp)
    app.register_blueprint(console.bp)
    app.register_blueprint(participant.bp)
    return app
