"""Application factory: `gunicorn 'api.web.app:create_app()'`."""

from __future__ import annotations

import contextlib
import os
import threading
import uuid

from flask import Flask, g, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from api.domain.billing import Billing
from api.domain.mailer import make_mailer
from api.engine.analyzer import Analyzer
from api.store.db import Database
from api.store.ratelimit import make_rate_limiter
from api.web import context, websecurity
from api.web.errors import register_error_handlers
from api.web.observability import configure_logging, install_metrics
from api.web.parsing import ApiRequest, JSONProvider
from api.web.routes import (
    account,
    analyze,
    billing,
    client_report,
    console,
    demo,
    docs,
    health,
    jobs,
    participant,
    studies,
)
from api.wiring.config import Settings
from api.wiring.services import Services, job_context, make_analyzer, make_queue

REQUEST_ID_HEADER = "X-Request-Id"


def create_app(settings: Settings | None = None, analyzer: Analyzer | None = None) -> Flask:
    settings = settings or Settings.from_env()
    configure_logging(os.environ.get("EMOSCOPE_LOG_LEVEL", "INFO"))
    app = Flask(__name__)
    app.request_class = ApiRequest
    app.json = JSONProvider(app)
    if settings.trusted_proxy_hops:
        # The client's address (rate limits) and scheme (links) as the configured proxies saw them.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxy_hops, x_proto=settings.trusted_proxy_hops)
    app.json.sort_keys = False  # keep request_id, media, faces in the documented order
    app.config["MAX_CONTENT_LENGTH"] = settings.limits.max_request_bytes
    analyzer = analyzer or make_analyzer(settings)
    db = Database(settings.database_url)
    jobs_context = job_context(settings, with_analyzer=True, analyzer=analyzer, db=db)
    context.install(
        app,
        Services(
            settings,
            db,
            analyzer,
            make_rate_limiter(settings.redis_url),
            Billing(settings.stripe) if settings.stripe else None,
            threading.BoundedSemaphore(settings.analysis_slots),
            jobs_context,
            make_queue(settings, jobs_context),
            make_mailer(settings.smtp_url, settings.mail_from),
        ),
    )

    @app.before_request
    def _assign_request_id():
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if 8 <= len(incoming) <= 64 and incoming.isalnum() else uuid.uuid4().hex

    @app.after_request
    def _read_unread_body(response):
        # An answer given before the body was read (401, 402, 429 to an upload): gunicorn discards at most
        # 64 KiB of what is left, then closes the connection mid-body, and nginx in front, still sending the
        # body it buffered, loses the answer and says 503. Behind nginx the body is already whole and
        # within the limit, so reading it to the end is quick.
        with contextlib.suppress(HTTPException):  # over MAX_CONTENT_LENGTH: gunicorn closes, as it should
            while request.stream.read(1 << 20):
                pass
        return response

    @app.after_request
    def _echo_request_id(response):
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
        response.headers.update(g.get("rate_limit_headers", {}))
        return response

    install_metrics(app, settings.metrics_token)
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
    app.register_blueprint(client_report.bp)
    app.register_blueprint(docs.bp)
    return app
