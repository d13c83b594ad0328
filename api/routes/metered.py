"""What the billed routes share: opening clips before billing, metering outcomes as problem documents,
replay headers, queuing jobs."""
from __future__ import annotations

from contextlib import contextmanager

from flask import Response, request

from api import jobs, metering
from api.db import utcnow
from api.engine import media
from api.engine.analyzer import AnalysisOptions
from api.engine.media import DecodedVideo
from api.errors import ApiError
from api.observability import JOBS_QUEUED


MAX_IDEMPOTENCY_KEY = 255


def read_idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and (not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not key.isprintable()):
        raise ApiError(400, "invalid_request", "Invalid request",
                       "Idempotency-Key must be 1-255 printable characters",
                       errors={"Idempotency-Key": ["1-255 printable characters."]})
    return key


@contextmanager
def metering_problems():
    try:
        yield
    except metering.QuotaExceeded as exc:
        retry_after = max(1, int((exc.resets_at - utcnow()).total_seconds()))
        raise ApiError(402, "quota_exceeded", "Monthly quota exceeded",
                       f"{exc.used} of {exc.limit} units used this month; upgrade or wait for the reset",
                       headers={"Retry-After": str(retry_after)}) from exc
    except metering.IdempotencyConflict as exc:
        status = 409 if exc.code == "idempotency_in_progress" else 422
        raise ApiError(status, exc.code, "Idempotency conflict", str(exc)) from exc


def replayable(response: Response, replayed: bool) -> Response:
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def submit_job(services, *args, **kwargs) -> tuple[dict, bool]:
    """`jobs.submit` with its arguments, then the new job queued; returns (answer, replayed)."""
    body, job_id = jobs.submit(services.jobs, *args, **kwargs)
    if job_id is not None:
        services.queue.enqueue(job_id)
        JOBS_QUEUED.inc()
    return body, job_id is None


def open_clip(services, data: bytes, options: AnalysisOptions) -> DecodedVideo | None:
    """`media.open_clip`: limits checked without decoding a pixel; clips longer than the sync limit
    become jobs, so their length is needed before anything runs."""
    return media.open_clip(data, services.settings.limits, options.sample_fps)


def clip_seconds(clip: DecodedVideo | None) -> float:
    return (clip.info.duration_ms or 0) / 1000 if clip else 0.0


def estimated_units(clip: DecodedVideo | None) -> int:
    """What a job will cost, reserved against the quota at submission: its clip's packets' length."""
    return metering.units_for(clip.info) if clip else 1


def frames_to_analyse(clip: DecodedVideo | None) -> int:
    """Frames the analysis will cover (for job progress): 1 for a picture; a clip's length comes from its packets."""
    return max(1, round(clip_seconds(clip) * clip.sample_fps)) if clip else 1
