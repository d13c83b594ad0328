"""Jobs as deployed: a Celery worker on Redis, media and results in S3 (moto's server), PostgreSQL.

Includes the worst case: the worker killed mid-job. The job must still finish exactly once and be
billed exactly once.
"""
from __future__ import annotations

import hashlib
import hmac
import io
import json
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

from api.config import REPO_ROOT
from api.db import Job, UsageEvent
from tests.conftest import VIDEOS, sign_up
from tests.servers import free_port
from tests.webhook_listener import WebhookListener

BROKER = os.environ.get("EMOSCOPE_TEST_BROKER_URL", "redis://127.0.0.1:6379/14")
BUCKET = "emoscope-test-media"
CLIP = VIDEOS / "WolfgangLanger_Pexels.mp4"  # 19.7 s of a real face
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint():
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                          region_name="us-east-1")
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
    env = {**os.environ, **AWS, "DATABASE_URL": postgres_url, "CELERY_BROKER_URL": BROKER, "S3_BUCKET": BUCKET,
           "S3_ENDPOINT_URL": s3_endpoint, "EMOSCOPE_WEBHOOK_ALLOW_LOOPBACK": "true",
           "CELERY_VISIBILITY_TIMEOUT": "5"}
    app = app_factory(postgres_url, celery_broker_url=BROKER, s3_bucket=BUCKET, s3_endpoint_url=s3_endpoint,
                      webhook_allow_loopback=True)
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    yield app, env, s3
    app.extensions["emoscope"].db.engine.dispose()


def start_worker(env: dict, name: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "celery", "-A", "api.worker", "worker", "--concurrency=1",
                             "--pool=prefork", "--loglevel=WARNING", "-n", f"{name}@%h"], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def stop(worker: subprocess.Popen, sig=signal.SIGTERM) -> None:
    os.killpg(worker.pid, sig)
    worker.wait(timeout=60)


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


def test_clip_job_on_a_celery_worker_with_s3_and_a_signed_webhook(deployment):
    app, env, s3 = deployment
    client = app.test_client()
    owner = sign_up(client)
    secret = owner["api_key"]["secret"]
    signing = client.get("/v1/account", headers=bearer(secret)).json["webhook_signing_secret"]
    listener = WebhookListener()
    worker = start_worker(env, "w1")
    try:
        accepted = client.post("/v1/analyze", headers=bearer(secret), data={
            "file": (io.BytesIO(CLIP.read_bytes()), "clip.mp4"), "fps": "2", "webhook_url": listener.url})
        assert accepted.status_code == 202  # a webhook asks for a job
        job_id = accepted.json["id"]
        assert s3_has(s3, f"media/{job_id}")
        job = poll(client, secret, accepted.headers["Location"], lambda j: j["status"] == "succeeded", 240)
        assert job["result"]["media"]["duration_ms"] > 19_000 and len(job["result"]["tracks"]) >= 1
        assert listener.arrived.wait(60)
    finally:
        stop(worker)
        listener.close()
    headers, body = listener.received[0]
    timestamp, signature = (part.split("=", 1)[1] for part in headers["emoscope-signature"].split(","))
    assert hmac.compare_digest(signature, hmac.new(signing.encode(), f"{timestamp}.".encode() + body,
                                                   hashlib.sha256).hexdigest())
    assert json.loads(body)["job"]["id"] == job_id
    assert not s3_has(s3, f"media/{job_id}")  # media deleted when the job finished
    stored = s3.head_object(Bucket=BUCKET, Key=f"results/{job_id}.json")
    assert stored["ServerSideEncryption"] == "AES256"
    assert client.get("/v1/usage", headers=bearer(secret)).json["total_units"] == 2  # 19.7 s: two started 10 s
    assert client.delete(f"/v1/jobs/{job_id}", headers=bearer(secret)).status_code == 204
    assert not s3_has(s3, f"results/{job_id}.json")


def test_a_worker_killed_mid_job_still_yields_one_result_and_one_bill(deployment):
    app, env, _ = deployment
    client = app.test_client()
    secret = sign_up(client)["api_key"]["secret"]
    first = start_worker(env, "doomed")
    accepted = client.post("/v1/analyze", headers=bearer(secret), data={
        "file": (io.BytesIO(CLIP.read_bytes()), "clip.mp4"), "fps": "12", "async": "true"})
    assert accepted.status_code == 202
    location = accepted.headers["Location"]
    poll(client, secret, location, lambda j: j["progress"]["frames_done"] >= 20, 180)
    stop(first, signal.SIGKILL)  # no chance to acknowledge, requeue or clean up
    second = start_worker(env, "rescuer")
    try:
        job = poll(client, secret, location, lambda j: j["status"] in ("succeeded", "failed"), 300)
    finally:
        stop(second)
    assert job["status"] == "succeeded"
    with app.extensions["emoscope"].db.session.begin() as session:
        assert session.get(Job, job["id"]).attempts == 2
        assert session.scalar(select(func.count()).select_from(UsageEvent)) == 1
    assert client.get("/v1/usage", headers=bearer(secret)).json["total_units"] == 2
