"""Liveness, readiness and the API contract."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text

from api.web.context import services as current_services
from api.web.errors import problem
from api.wiring.config import REPO_ROOT

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    services = current_services()
    try:
        with services.db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        current_app.logger.exception("database unreachable")
        return problem(503, "not_ready", "Not ready", "the database is unreachable", headers={"Retry-After": "5"})
    return jsonify({"status": "ready", "checks": {"models": "loaded", "database": "ok"}})


@bp.get("/openapi.yaml")
def openapi():
    return Response((REPO_ROOT / "openapi.yaml").read_text(), mimetype="application/yaml")
