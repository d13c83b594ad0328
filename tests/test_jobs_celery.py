"""Jobs as deployed: a Celery worker on Redis, media and results in S3 (moto's server), PostgreSQL.

Includes the worst case: the worker killed mid-job. The job must still finish exactly once and be
billed exactly once.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time

import boto3
import pytest
import redis
from botocore.exceptions import ClientError
from sqlalchemy import func, select

from api.store.db import Job, UsageEvent
from tests.conftest import VIDEOS, sign_up
from tests.samples import repeated_clip
from tests.servers import free_port, gunicorn, start_worker, stop_worker
from tests.test_sdk import emoscope
from tests.webhook_listener import WebhookListener

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.celery, pytest.mark.data]

BROKER = os.environ.get("EMOSCOPE_TEST_BROKER_URL", "redis://127.0.0.1:6379/14")
BUCKET = "emoscope-test-media"
CLIP = VIDEOS / "WolfgangLanger_Pexels.mp4"  # 19.7 s of a real face
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint():
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    for _ in range(100):
        try:
            client.create_bucket(Bucket=BUCKET)
            break
        except Exception:
            time.sleep(0.1)
    else:
        server.kill()
        pytest.fail("moto server did not start")
    yield endpoint
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture()
def deployment(app_factory, postgres_url, s3_endpoint, monkeypatch):
    """(app, environment for workers, s3 client) sharing one database, one broker and one bucket."""
    for name, value in AWS.items():
        monkeypatch.setenv(name, value)
    redis.Redis.from_url(BROKER).flushdb()
    env = {
        **os.environ,
        **AWS,
        "DATABASE_URL": postgres_url,
        "CELERY_BROKER_URL": BROKER,
        "S3_BUCKET": BUCKET,
        "S3_ENDPOINT_URL": s3_endpoint,
        "EMOSCOPE_WEBHOOK_ALLOW_LOOPBACK": "true",
        "CELERY_VISIBILITY_TIMEOUT": "5",
        "EMOSCOPE_API_KEY_PEPPER": "celery-test-pepper-" + "x" * 32,
    }
    app = app_factory(
        postgres_url,
        celery_broker_url=BROKER,
        s3_bucket=BUCKET,
        s3_endpoint_url=s3_endpoint,
        webhook_allow_loopback=True,
    )
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    yield app, env, s3
    app.extensions["emoscope"].db.engine.dispose()


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def poll(client, secret: str, location: str, until, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(location, headers=bearer(secret)).json
        if until(job):
            return job
        time.sleep(0.25)
    raise AssertionError(f"timed out: {job}")


def s3_has(s3, key: str) -> bool:
    try:
        s3.head_object(Bucket=BUCKET, Key=key)
    except ClientError:
        return False
    return True


def test_a_minute_long_clip_through_the_sdk_on_a_celery_worker(deployment, tmp_path):
    """Issue 6's acceptance path: SDK -> gunicorn -> Redis -> Celery worker -> S3, signed webhook back."""
    _, env, s3 = deployment
    service_env = {
        k: env[k]
        for k in (
            *AWS,
            "DATABASE_URL",
            "CELERY_BROKER_URL",
            "S3_BUCKET",
            "S3_ENDPOINT_URL",
            "EMOSCOPE_WEBHOOK_ALLOW_LOOPBACK",
            "EMOSCOPE_API_KEY_PEPPER",
        )
    }
    clip = repeated_clip(CLIP, 3, tmp_path)  # 59 s of a real face
    listener, worker, progress = WebhookListener(), start_worker(env, "w1"), []
    try:
        with gunicorn(tmp_path / "state", **service_env) as base:
            signup = emoscope.sign_up("minute@example.com", "correct horse battery", "Clips", base_url=base)
            with emoscope.Client(api_key=signup.api_key.secret, base_url=base) as client:
                signing_secret = client.account.get().raw["webhook_signing_secret"]
                job = client.jobs.create(clip, fps=2, webhook_url=listener.url)
                assert s3_has(s3, f"media/{job.id}")
                done = client.jobs.wait(job, timeout=300, on_progress=lambda j: progress.append(j.progress.frames_done))
                assert listener.arrived.wait(60)
                units = client.usage.get().total_units
                client.jobs.delete(done)
    finally:
        stop_worker(worker)
        listener.close()
    assert done.status == "succeeded" and done.result.media.duration_ms > 59_000
    assert len(done.result.tracks) >= 1
    assert any(0 < p < done.progress.frames_done for p in progress)  # progress was visible on the way
    headers, body = listener.received[0]
    event = emoscope.webhooks.construct_event(body, headers["emoscope-signature"], signing_secret)
    assert event["type"] == "job.succeeded" and event["job"]["id"] == job.id
    assert not s3_has(s3, f"media/{job.id}")  # the media went when the job finished
    assert units == 6  # 59 s: six started 10 s
    assert not s3_has(s3, f"results/{job.id}.json")  # and the result with DELETE


def test_results_in_s3_are_encrypted_at_rest(deployment):
    app, env, s3 = deployment
    client = app.test_client()
    secret = sign_up(client)["api_key"]["secret"]
    worker = start_worker(env, "w2")
    try:
        accepted = client.post(
            "/v1/analyze",
            headers=bearer(secret),
            data={
                "file": (io.BytesIO((VIDEOS / "single_face.mp4").read_bytes()), "c.mp4"),
                "fps": "5",
                "async": "true",
            },
        )
        job = poll(client, secret, accepted.headers["Location"], lambda j: j["status"] == "succeeded", 180)
    finally:
        stop_worker(worker)
    stored = s3.head_object(Bucket=BUCKET, Key=f"results/{job['id']}.json")
    assert stored["ServerSideEncryption"] == "AES256"


def test_a_worker_killed_mid_job_still_yields_one_result_and_one_bill(deployment):
    app, env, _ = deployment
    client = app.test_client()
    secret = sign_up(client)["api_key"]["secret"]
    first = start_worker(env, "doomed")
    accepted = client.post(
        "/v1/analyze",
        headers=bearer(secret),
        data={"file": (io.BytesIO(CLIP.read_bytes()), "clip.mp4"), "fps": "12", "async": "true"},
    )
    assert accepted.status_code == 202
    location = accepted.headers["Location"]
    poll(client, secret, location, lambda j: j["progress"]["frames_done"] >= 20, 180)
    stop_worker(first, signal.SIGKILL)  # no chance to acknowledge, requeue or clean up
    second = start_worker(env, "rescuer")
    try:
        job = poll(client, secret, location, lambda j: j["status"] in ("succeeded", "failed"), 300)
    finally:
        stop_worker(second)
    assert job["status"] == "succeeded"
    with app.extensions["emoscope"].db.session.begin() as session:
        assert session.get(Job, job["id"]).attempts == 2
        assert session.scalar(select(func.count()).select_from(UsageEvent)) == 1
    assert client.get("/v1/usage", headers=bearer(secret)).json["total_units"] == 2
