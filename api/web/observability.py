"""Prometheus metrics and structured JSON logs. Nothing here ever records media or secrets."""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import time

from flask import Flask, Response, g, has_request_context, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

from api.store import repository
from api.web.context import services
from api.web.errors import ApiError

REQUESTS = Counter("emoscope_requests_total", "HTTP requests", ["route", "method", "status"])
LATENCY = Histogram(
    "emoscope_request_seconds",
    "HTTP request latency",
    ["route"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


def _registry():
    """Under gunicorn every worker writes to PROMETHEUS_MULTIPROC_DIR; a scrape sums them all."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    from prometheus_client import REGISTRY

    return REGISTRY


def _may_scrape(token: str | None) -> bool:
    """With a token, whoever presents it; without one, only a request made on this machine, and not
    one a local proxy forwarded (that would be the internet, seen from loopback)."""
    if token is not None:
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(sent.encode(), token.encode())
    if "X-Forwarded-For" in request.headers or "Forwarded" in request.headers:
        return False
    return ipaddress.ip_address(request.remote_addr or "0.0.0.0").is_loopback


def install_metrics(app: Flask, token: str | None = None) -> None:
    @app.before_request
    def _start_timer():
        g.started_at = time.perf_counter()

    @app.after_request
    def _count(response):
        # The route template, not the path: job ids must not explode the label space.
        route = request.url_rule.rule if request.url_rule else "unmatched"
        REQUESTS.labels(route, request.method, str(response.status_code)).inc()
        LATENCY.labels(route).observe(time.perf_counter() - g.get("started_at", time.perf_counter()))
        return response

    @app.get("/metrics")
    def metrics():
        if not _may_scrape(token):
            if token is not None:
                raise ApiError(
                    401,
                    "missing_metrics_token",
                    "Authentication required",
                    "send the metrics token as 'Authorization: Bearer <token>'",
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
            raise ApiError(
                403,
                "metrics_forbidden",
                "Forbidden",
                "metrics are served to loopback only; set EMOSCOPE_METRICS_TOKEN to scrape from elsewhere",
            )
        outbox = _outbox_registry(services().db)
        return Response(generate_latest(_registry()) + generate_latest(outbox), mimetype=CONTENT_TYPE_LATEST)


class _OutboxRows:
    """Read from the database at each scrape: the rows are pushed by a worker, not by this process."""

    def __init__(self, db) -> None:
        self._db = db

    def collect(self):
        gauge = GaugeMetricFamily(
            "emoscope_billing_outbox_rows",
            "Usage rows not yet reported to Stripe: pending (incl. backing off) or dead",
            labels=["status"],
        )
        with self._db.session.begin() as session:
            for status, count in repository.outbox_counts(session).items():
                gauge.add_metric([status], count)
        yield gauge


def _outbox_registry(db) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_OutboxRows(db))
    return registry


class JsonFormatter(logging.Formatter):
    """One JSON object per line with the request id when there is one."""

    FIELDS = ("job_id", "outbox_id", "models")

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context() and g.get("request_id"):
            entry["request_id"] = g.request_id
        entry.update({k: getattr(record, k) for k in self.FIELDS if hasattr(record, k)})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    handler.formatter.converter = time.gmtime
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
