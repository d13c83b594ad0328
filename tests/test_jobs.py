"""Asynchronous jobs on the embedded defaults: in-process queue, local object storage, signed webhooks."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import time

import pytest

from tests.conftest import FACES, VIDEOS, sign_up
from tests.samples import reencode, variable_rate_clip
from tests.test_api import assert_problem
from tests.webhook_listener import WebhookListener

pytestmark = pytest.mark.data

PHOTO = reencode(FACES / "img1.jpg", "JPEG", max_side=400)


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def submit(client, secret: str, data: bytes, **fields):
    return client.post("/v1/analyze", headers=bearer(secret), data={"file": (io.BytesIO(data), "f"), **fields})


def wait_for(client, secret: str, location: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(location, headers=bearer(secret)).json
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job not finished after {timeout} s: {job}")


@pytest.fixture()
def listener():
    listener = WebhookListener()
    yield listener
    listener.close()


@pytest.fixture()
def app(app_factory):
    return app_factory(webhook_allow_loopback=True)


def test_async_image_job_runs_and_bills_once(app, assert_contract):
    client = app.test_client()
    secret = sign_up(client)["api_key"]["secret"]
    accepted = assert_contract(submit(client, secret, PHOTO, **{"async": "true"}))
    assert accepted.status_code == 202
    assert accepted.headers["Location"] == f"/v1/jobs/{accepted.json['id']}"
    assert accepted.json["status"] in ("queued", "running", "succeeded")
    job = wait_for(client, secret, accepted.headers["Location"])
    assert assert_contract(client.get(accepted.headers["Location"], headers=bearer(secret))).status_code == 200
    assert job["status"] == "succeeded" and job["result"]["faces"][0]["dominant_emotion"] == "happy"
    assert client.get("/v1/usage", headers=bearer(secret)).json["total_units"] == 1
    storage = app.extensions["emoscope"].jobs.storage
    assert not storage.exists(f"media/{job['id']}")  # media gone once the job is done


def test_long_clips_become_jobs_by_themselves_with_progress(app_factory, assert_contract):
    app = app_factory(sync_max_video_seconds=1.0)
    client = app.test_client()
    secret = sign_up(client)["api_key"]["secret"]
    accepted = assert_contract(submit(client, secret, (VIDEOS / "single_face.mp4").read_bytes(), fps="10"))
    assert accepted.status_code == 202 and accepted.json["progress"]["frames_total"] == 24
    job = wait_for(client, secret, accepted.headers["Location"])
    assert job["progress"]["frames_done"] == 24 and len(job["result"]["tracks"]) == 1


def test_a_finished_jobs_progress_is_the_frames_analysed(app_factory, assert_contract):
    # A variable-frame-rate clip sampled at 10 fps: the estimate counts its length at 10 fps, but a frame held
    # for half a second stands for several target times, so fewer frames are analysed (test_media).
    from tests.test_media import VFR_STEPS

    app = app_factory(sync_max_video_seconds=1.0)
    client = app.test_client()
    secret = sign_up(client)["api_key"]["secret"]
    clip = variable_rate_clip(VIDEOS / "single_face.mp4", VFR_STEPS)
    accepted = assert_contract(submit(client, secret, clip, fps="10", micro_expressions="false"))
    assert accepted.status_code == 202 and accepted.json["progress"]["frames_total"] == 15
    job = wait_for(client, secret, accepted.headers["Location"])
    assert job["status"] == "succeeded", job["error"]
    assert job["progress"] == {"frames_done": 11, "frames_total": 11} and len(job["result"]["frames"]) == 11


def test_webhook_is_signed_with_the_accounts_secret(app, listener, assert_contract):
    client = app.test_client()
    secret = sign_up(client)["api_key"]["secret"]
    signing = assert_contract(client.get("/v1/account", headers=bearer(secret))).json["webhook_signing_secret"]
    accepted = submit(client, secret, PHOTO, **{"async": "true", "webhook_url": listener.url})
    assert listener.arrived.wait(60)
    headers, body = listener.received[0]
    timestamp, signature = (part.split("=", 1)[1] for part in headers["emoscope-signature"].split(","))
    expected = hmac.new(signing.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signature, expected)
    payload = json.loads(body)
    assert payload["type"] == "job.succeeded" and payload["job"]["id"] == accepted.json["id"]
    assert payload["summary"] == {"media_type": "image", "faces": 1, "tracks": 0, "micro_expressions": 0}
    deadline = time.monotonic() + 10
    while client.get(accepted.headers["Location"], headers=bearer(secret)).json["webhook"]["status"] != "delivered":
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.8/hook",
        "http://169.254.169.254/latest/meta-data",
        "https://192.168.1.1/hook",
        "ftp://example.com/x",
    ],
)
def test_webhooks_to_private_addresses_are_refused(app, url, assert_contract):
    client = app.test_client()
    secret = sign_up(client)["api_key"]["secret"]
    response = assert_contract(submit(client, secret, PHOTO, **{"async": "true", "webhook_url": url}))
    assert_problem(response, 400, "invalid_request")


def test_loopback_webhooks_are_refused_outside_test_mode(app_factory):
    client = app_factory().test_client()
    secret = sign_up(client)["api_key"]["secret"]
    response = submit(client, secret, PHOTO, **{"async": "true", "webhook_url": "http://127.0.0.1:9/hook"})
    assert_problem(response, 400, "invalid_request")
    assert "webhook_url" in response.json["errors"]


def test_retention_zero_hands_the_result_out_once(app_factory):
    app = app_factory(media_retention_hours=0)
    client = app.test_client()
    secret = sign_up(client)["api_key"]["secret"]
    location = submit(client, secret, PHOTO, **{"async": "true"}).headers["Location"]
    first = wait_for(client, secret, location)
    assert first["result"] is not None
    second = client.get(location, headers=bearer(secret)).json
    assert second["result"] is None and second["result_expired"] is True


def test_delete_removes_media_and_result(app, assert_contract):
    client = app.test_client()
    secret = sign_up(client)["api_key"]["secret"]
    location = submit(client, secret, PHOTO, **{"async": "true"}).headers["Location"]
    job = wait_for(client, secret, location)
    storage = app.extensions["emoscope"].jobs.storage
    assert storage.exists(f"results/{job['id']}.json")
    assert assert_contract(client.delete(location, headers=bearer(secret))).status_code == 204
    assert not storage.exists(f"results/{job['id']}.json")
    assert_problem(assert_contract(client.get(location, headers=bearer(secret))), 404, "not_found")


def test_jobs_are_private_to_their_account(app):
    client = app.test_client()
    alice = sign_up(client, "alice@example.com")["api_key"]["secret"]
    bob = sign_up(client, "bob@example.com")["api_key"]["secret"]
    location = submit(client, alice, PHOTO, **{"async": "true"}).headers["Location"]
    assert_problem(client.get(location, headers=bearer(bob)), 404, "not_found")
    assert_problem(client.delete(location, headers=bearer(bob)), 404, "not_found")


def test_idempotent_job_submission_returns_the_same_job(app):
    client = app.test_client()
    secret = sign_up(client)["api_key"]["secret"]
    headers = bearer(secret) | {"Idempotency-Key": "job-1"}
    first = client.post("/v1/analyze", headers=headers, data={"file": (io.BytesIO(PHOTO), "f"), "async": "true"})
    again = client.post("/v1/analyze", headers=headers, data={"file": (io.BytesIO(PHOTO), "f"), "async": "true"})
    assert first.status_code == again.status_code == 202
    assert again.json["id"] == first.json["id"] and again.headers["Idempotent-Replayed"] == "true"
    wait_for(client, secret, first.headers["Location"])
    assert client.get("/v1/usage", headers=bearer(secret)).json["total_units"] == 1


def test_sweep_deletes_results_past_retention(app):
    from datetime import timedelta

    from api.domain import jobs

    client = app.test_client()
    secret = sign_up(client)["api_key"]["secret"]
    location = submit(client, secret, PHOTO, **{"async": "true"}).headers["Location"]
    job = wait_for(client, secret, location)
    storage = app.extensions["emoscope"].jobs.storage
    assert storage.exists(f"results/{job['id']}.json")
    _age_job(app, job["id"], timedelta(hours=25))
    assert jobs.sweep(app.extensions["emoscope"].jobs) == 1
    assert not storage.exists(f"results/{job['id']}.json")
    assert_problem(client.get(location, headers=bearer(secret)), 410, "job_expired")


def _age_job(app, job_id: str, by) -> None:
    """Move a finished job's expiry into the past, as time would, without running the sweeper."""
    from api.store.db import Job

    with app.extensions["emoscope"].db.session.begin() as session:
        job = session.get(Job, job_id)
        job.expires_at = job.expires_at - by


def test_a_job_past_its_expiry_is_gone_before_the_sweeper_runs(app, assert_contract):
    from datetime import timedelta

    client = app.test_client()
    secret = sign_up(client)["api_key"]["secret"]
    location = submit(client, secret, PHOTO, **{"async": "true"}).headers["Location"]
    job = wait_for(client, secret, location)
    assert job["result"] is not None
    _age_job(app, job["id"], timedelta(hours=25))
    gone = assert_contract(client.get(location, headers=bearer(secret)))
    assert_problem(gone, 410, "job_expired")
    assert "result" not in gone.json
    # The read deleted the result at once rather than leaving it to the sweeper.
    assert not app.extensions["emoscope"].jobs.storage.exists(f"results/{job['id']}.json")


def _job_row(app, job_id: str):
    from api.store.db import Job

    with app.extensions["emoscope"].db.session.begin() as session:
        return session.get(Job, job_id)


def _until(condition, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_jobs_left_by_a_dead_process_run_when_the_next_one_starts(app_factory, monkeypatch):
    import socket
    import subprocess
    import sys
    from datetime import timedelta

    from api.store.db import Job
    from api.wiring.services import InProcessQueue

    app = app_factory()
    services = app.extensions["emoscope"]
    monkeypatch.setattr(services.queue, "enqueue", lambda job_id: None)  # the process dies before running them
    client = app.test_client()
    secret = sign_up(client)["api_key"]["secret"]
    never_queued = submit(client, secret, PHOTO, **{"async": "true"}).json["id"]
    interrupted = submit(client, secret, PHOTO, **{"async": "true", "detector": "skip"}).json["id"]
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    ).stdout.strip()
    with services.db.session.begin() as session:
        for job_id in (never_queued, interrupted):
            session.get(Job, job_id).created_at -= timedelta(minutes=10)
        running = session.get(Job, interrupted)
        running.status, running.runner = "running", f"inproc:{socket.gethostname()}:{dead}:0"

    InProcessQueue(services.jobs)  # the restarted process
    _until(lambda: {_job_row(app, j).status for j in (never_queued, interrupted)} == {"succeeded"})
    assert client.get("/v1/usage", headers=bearer(secret)).json["total_units"] == 2
    assert not list(services.jobs.storage.root.rglob("media/*"))


def test_a_live_process_keeps_its_jobs_when_another_starts(app_factory, monkeypatch):
    from api.store.db import Job
    from api.wiring.services import InProcessQueue, _runner_id

    app = app_factory()
    services = app.extensions["emoscope"]
    monkeypatch.setattr(services.queue, "enqueue", lambda job_id: None)
    client = app.test_client()
    secret = sign_up(client)["api_key"]["secret"]
    job_id = submit(client, secret, PHOTO, **{"async": "true"}).json["id"]
    with services.db.session.begin() as session:
        row = session.get(Job, job_id)
        row.status, row.runner = "running", _runner_id()  # alive: this very process
    InProcessQueue(services.jobs)
    time.sleep(1)
    assert _job_row(app, job_id).status == "running"


def test_webhook_retries_wait_off_the_job_thread(app):
    from tests.servers import free_port

    client = app.test_client()
    secret = sign_up(client)["api_key"]["secret"]
    failing = submit(client, secret, PHOTO, **{"async": "true", "webhook_url": f"http://127.0.0.1:{free_port()}/h"})
    other = submit(client, secret, PHOTO, **{"async": "true"})
    assert wait_for(client, secret, other.headers["Location"])["status"] == "succeeded"
    # Retries back off 1, 2, 4, 8, 16 s: had they slept on the job thread, the other job would have
    # waited for all of them and the first job's webhook would be given up on by now.
    first = client.get(failing.headers["Location"], headers=bearer(secret)).json
    assert first["status"] == "succeeded" and first["webhook"]["status"] == "pending"


def test_the_sweep_deletes_media_whose_job_is_finished_or_gone(app):
    import os

    from api.domain import orphans

    client = app.test_client()
    secret = sign_up(client)["api_key"]["secret"]
    done = wait_for(client, secret, submit(client, secret, PHOTO, **{"async": "true"}).headers["Location"])
    context = app.extensions["emoscope"].jobs
    context.storage.put(f"media/{done['id']}", PHOTO)  # as a crash between its commit and the delete leaves it
    context.storage.put("media/job_deleted_meanwhile", PHOTO)
    hour_ago = time.time() - 3600
    for path in context.storage.root.rglob("media/*"):
        os.utime(path, (hour_ago, hour_ago))
    assert orphans.sweep(context) == 2
    assert not list(context.storage.root.rglob("media/*"))
    assert context.storage.exists(f"results/{done['id']}.json")  # still within retention
