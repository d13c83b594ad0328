"""Exact usage under concurrency, on PostgreSQL over a real connection, and limits shared through Redis."""

from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from sqlalchemy import func, select

from api.domain.metering import Plan
from api.store.db import ApiRequest, UsageEvent
from api.store.ratelimit import RedisRateLimiter
from tests.conftest import FACES, sign_up
from tests.samples import reencode

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.data]

TINY_FACE = reencode(FACES / "img1.jpg", "JPEG", max_side=64)
THREADS, REQUESTS_EACH = 8, 50
REDIS_URL = os.environ.get("EMOSCOPE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def post(app, secret: str, idempotency_key: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {secret}"} | ({"Idempotency-Key": idempotency_key} if idempotency_key else {})
    with app.test_client() as client:
        return client.post(
            "/v1/analyze", headers=headers, data={"file": (io.BytesIO(TINY_FACE), "f"), "detector": "skip"}
        ).status_code


@pytest.fixture()
def pg_app(app_factory, postgres_url):
    app = app_factory(postgres_url, analysis_slots=THREADS)  # every thread may analyse at once
    yield app
    app.extensions["emoscope"].db.engine.dispose()


def counts(app) -> tuple[int, int]:
    with app.extensions["emoscope"].db.session.begin() as session:
        return (
            session.scalar(select(func.count()).select_from(UsageEvent)),
            session.scalar(select(func.count()).select_from(ApiRequest)),
        )


def test_concurrent_requests_on_one_key_are_counted_exactly(pg_app):
    secret = sign_up(pg_app.test_client())["api_key"]["secret"]
    with ThreadPoolExecutor(THREADS) as pool:
        statuses = list(pool.map(lambda _: post(pg_app, secret), range(THREADS * REQUESTS_EACH)))
    assert statuses.count(200) == THREADS * REQUESTS_EACH
    assert counts(pg_app) == (THREADS * REQUESTS_EACH, THREADS * REQUESTS_EACH)


def test_concurrent_retries_with_one_idempotency_key_bill_once(pg_app):
    secret = sign_up(pg_app.test_client())["api_key"]["secret"]
    with ThreadPoolExecutor(THREADS) as pool:
        statuses = list(pool.map(lambda _: post(pg_app, secret, "same-key"), range(THREADS * 4)))
    # Every attempt either got the (replayed) answer or was told the first is still running.
    assert set(statuses) <= {200, 409} and 200 in statuses
    assert counts(pg_app) == (1, 1)


def test_rate_limit_is_shared_by_every_worker_through_redis(app_factory):
    redis.Redis.from_url(REDIS_URL).flushdb()  # database 15 is this test's own; key ids repeat across runs
    plans = {"free": Plan("free", 1000, 0.01, 3), "paid": Plan("paid", None, 0.01, 3)}
    worker_a = app_factory(plans=plans, redis_url=REDIS_URL)
    worker_b = app_factory(plans=plans, redis_url=REDIS_URL)
    worker_b.extensions["emoscope"].db = worker_a.extensions["emoscope"].db  # one database, two workers
    assert isinstance(worker_a.extensions["emoscope"].rate_limiter, RedisRateLimiter)
    secret = sign_up(worker_a.test_client())["api_key"]["secret"]
    statuses = [post(worker, secret) for worker in (worker_a, worker_b, worker_a, worker_b)]
    assert statuses == [200, 200, 200, 429]
