"""GET and DELETE /v1/jobs/{id}: status, progress and result of asynchronous analyses."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from api.domain import jobs
from api.web.auth import require_api_key
from api.web.context import services
from api.web.errors import ApiError

bp = Blueprint("jobs", __name__)


def _not_found(job_id: str) -> ApiError:
    return ApiError(404, "not_found", "Not found", f"no job {job_id} in this account")


@bp.get("/v1/jobs/<job_id>")
@require_api_key("analyze")
def get_job(job_id: str):
    try:
        body = jobs.load(services().jobs, g.account_id, job_id)
    except jobs.JobExpired:
        raise ApiError(
            410,
            "job_expired",
            "Job expired",
            f"job {job_id} finished longer ago than the retention window; its result is deleted",
        ) from None
    if body is None:
        raise _not_found(job_id)
    return jsonify(body)


@bp.delete("/v1/jobs/<job_id>")
@require_api_key("analyze")
def delete_job(job_id: str):
    if not jobs.delete(services().jobs, g.account_id, job_id):
        raise _not_found(job_id)
    return "", 204
