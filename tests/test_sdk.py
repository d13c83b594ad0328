"""The Python SDK (sdk/python) against the real service: gunicorn on loopback, no mocks of our API.

Three servers on the embedded defaults (in-process job queue, local storage): one with generous
limits for the typed results, owner calls, jobs with a signed webhook to a loopback listener, and the
CLI; one whose free plan allows 0.5 requests/s (bursts of 2) for a real 429; one with a single
analysis slot for a real 503 `overloaded` (and a 1 s sync limit, so clips become jobs by themselves).
Requests are observed (not altered) through httpx event hooks.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import dataclasses
import hashlib
import hmac
import io
import json
import os
import pty
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from api.wiring.config import REPO_ROOT
from tests.conftest import FACES, VIDEOS
from tests.servers import free_port, gunicorn
from tests.webhook_listener import WebhookListener

pytestmark = pytest.mark.data

SDK_SRC = REPO_ROOT / "sdk" / "python" / "src"
try:
    import emoscope
except ImportError:  # not installed into the venv (`pip install -e sdk/python`): use the source tree
    sys.path.insert(0, str(SDK_SRC))
    import emoscope

from emoscope import _batch, webhooks  # noqa: E402

PASSWORD = "correct horse battery"
HAPPY_PHOTO = FACES / "img1.jpg"  # one face, a broad smile
SMALL_HAPPY_PHOTO = FACES / "img25.jpg"  # 21 kB, one smiling face: cheap to analyse
COUPLE = FACES / "couple.jpg"
CLIP = VIDEOS / "single_face.mp4"


def _email(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@example.com"


def _recording_client(log: list) -> httpx.Client:
    """An httpx client that notes every request and answer (time, Idempotency-Key, status)."""

    def on_request(request: httpx.Request) -> None:
        log.append(("request", time.monotonic(), request.headers.get("Idempotency-Key"), dict(request.headers)))

    def on_response(response: httpx.Response) -> None:
        log.append(
            (
                "response",
                time.monotonic(),
                response.request.headers.get("Idempotency-Key"),
                response.status_code,
                response.headers.get("Retry-After"),
            )
        )

    return httpx.Client(event_hooks={"request": [on_request], "response": [on_response]})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with gunicorn(
        tmp_path_factory.mktemp("sdk"), EMOSCOPE_FREE_REQUESTS_PER_SECOND="100", EMOSCOPE_WEBHOOK_ALLOW_LOOPBACK="true"
    ) as base:
        yield base


@pytest.fixture(scope="module")
def owner(server):
    email = _email("owner")
    signup = emoscope.sign_up(email, PASSWORD, "SDK tests", base_url=server)
    return email, signup


@pytest.fixture()
def client(server, owner):
    with emoscope.Client(api_key=owner[1].api_key.secret, base_url=server) as c:
        yield c


# ---- owners ------------------------------------------------------------------------------------


def test_sign_up_gives_a_typed_admin_key_and_account(client, owner):
    email, signup = owner
    assert isinstance(signup, emoscope.SignUpResult) and signup.owner_email == email
    key = signup.api_key
    assert key.secret.startswith("emo_") and set(key.scopes) == {"analyze", "admin"} and not key.revoked
    assert key.secret not in repr(key)  # never printed by accident
    account = client.account.get()
    assert isinstance(account, emoscope.Account)
    assert (account.id, account.name, account.plan) == (signup.account.id, "SDK tests", "free")
    assert account.quota.monthly_units == 1000 and account.quota.resets_at > datetime.now(UTC)
    assert account.rate_limit.requests_per_second == 100 and isinstance(account.billing_enabled, bool)


def test_sign_in_and_credential_errors(server, owner):
    email, _ = owner
    key = emoscope.sign_in(email, PASSWORD, key_name="laptop", base_url=server)
    assert isinstance(key, emoscope.ApiKey) and key.name == "laptop" and key.secret.startswith("emo_")
    assert key.expires_at is not None  # sign-in keys are short-lived
    with pytest.raises(emoscope.AuthenticationError) as wrong:
        emoscope.sign_in(email, "not the password", base_url=server)
    assert (wrong.value.status, wrong.value.code) == (401, "invalid_credentials")
    with pytest.raises(emoscope.InvalidRequestError) as taken:
        emoscope.sign_up(email, PASSWORD, "again", base_url=server)
    assert (taken.value.status, taken.value.code) == (409, "email_taken")


def test_keys_create_list_revoke(client, server):
    created = client.keys.create("ci", ["analyze"])
    assert created.secret and created.scopes == ("analyze",) and created.name == "ci"
    listed = {k.id: k for k in client.keys.list()}
    assert created.id in listed and listed[created.id].secret is None and listed[created.id].prefix == created.prefix

    with emoscope.Client(api_key=created.secret, base_url=server) as analyze_only:
        with pytest.raises(emoscope.PermissionDeniedError) as denied:
            analyze_only.keys.list()
        assert (denied.value.status, denied.value.code) == (403, "insufficient_scope")

        client.keys.revoke(created)
        client.keys.revoke(created.id)  # twice is fine
        assert {k.id: k for k in client.keys.list()}[created.id].revoked
        with pytest.raises(emoscope.AuthenticationError) as revoked:
            analyze_only.analyze(SMALL_HAPPY_PHOTO)
        assert (revoked.value.status, revoked.value.code) == (401, "invalid_api_key")
        assert revoked.value.request_id

    with pytest.raises(emoscope.InvalidRequestError) as missing:
        client.keys.revoke(10_000_000)
    assert (missing.value.status, missing.value.code) == (404, "not_found")


# ---- analyses ----------------------------------------------------------------------------------


def test_analyze_photo_from_path_bytes_and_file(client):
    result = client.analyze(HAPPY_PHOTO)
    assert isinstance(result, emoscope.ImageResult) and not result.is_video and not result.replayed
    (face,) = result.faces
    assert isinstance(face, emoscope.Face) and isinstance(face.box, emoscope.Box)
    assert face.dominant_emotion == face.emotions.dominant == "happy" and face.emotions.happy > 0.5
    assert face.emotions.top(3)[0] == ("happy", face.emotions.happy) and len(face.emotions.top(3)) == 3
    assert sum(face.emotions.as_dict().values()) == pytest.approx(1, abs=2e-3)
    assert face.box.w > 100 and face.confidence is not None and face.landmarks is not None
    assert (result.media.type, result.media.format, result.media.frames_analyzed) == ("image", "jpeg", 1)
    assert result.raw["faces"][0]["box"] == {"x": face.box.x, "y": face.box.y, "w": face.box.w, "h": face.box.h}
    assert result.request_id == result.raw["request_id"] and result.model.detector == "blazeface"
    with pytest.raises(dataclasses.FrozenInstanceError):
        face.dominant_emotion = "sad"

    from_bytes = client.analyze(SMALL_HAPPY_PHOTO.read_bytes(), return_landmarks=False)
    with SMALL_HAPPY_PHOTO.open("rb") as handle:
        from_file = client.analyze(handle, return_landmarks=False)
    assert [f.box for f in from_bytes.faces] == [f.box for f in from_file.faces]
    assert from_bytes.faces[0].landmarks is None and from_file.faces[0].dominant_emotion == "happy"
    assert isinstance(face.head_pose, emoscope.HeadPose) and face.facing_camera is True and face.mesh is None
    (meshed,) = client.analyze(SMALL_HAPPY_PHOTO, detector="blazeface", return_mesh=True).faces
    assert len(meshed.mesh) == 468 and len(meshed.mesh[0]) == 3


def test_analyze_clip_typed_tracks(client):
    result = client.analyze(CLIP, fps=5, micro_expressions={"enabled": True, "sensitivity": 0.8})
    assert isinstance(result, emoscope.VideoResult) and result.is_video
    assert result.media.type == "video" and result.sample_fps == 5 and result.temporal_resolution_ms == 200
    (track,) = result.tracks
    assert isinstance(track, emoscope.Track) and track.frame_count == len(track.timeline) >= 5
    assert all(isinstance(p, emoscope.TimelinePoint) for p in track.timeline)
    assert track.summary.dominant_emotion == track.summary.emotions.dominant == "happy"
    assert track.start_ms <= track.end_ms and track.timeline[0].timestamp_ms == track.start_ms
    faces = [face for frame in result.frames for face in frame.faces]
    assert faces and {face.track_id for face in faces} == {track.track_id}
    assert isinstance(result.micro_expressions, tuple)
    assert all(isinstance(m, emoscope.MicroExpression) for m in result.micro_expressions)
    assert len(result.frames) == result.media.frames_analyzed


def test_usage_totals_and_idempotent_replay(client):
    today = datetime.now(UTC).date()
    before = client.usage.get(from_=today, to=today)
    assert isinstance(before, emoscope.Usage) and before.from_ == before.to == today

    key = f"sdk-test-{uuid.uuid4()}"
    first = client.analyze(SMALL_HAPPY_PHOTO, idempotency_key=key)
    again = client.analyze(SMALL_HAPPY_PHOTO, idempotency_key=key)
    assert not first.replayed and again.replayed and again.raw == first.raw

    after = client.usage.get(from_=today, to=today)
    assert after.total_requests == before.total_requests + 1  # the replay was not billed
    assert after.total_units == before.total_units + 1 and after.data[-1].date == today
    assert client.account.get().quota.used_units >= after.total_units

    with pytest.raises(emoscope.InvalidRequestError) as backwards:
        client.usage.get(from_=today, to=today - timedelta(days=1))
    assert backwards.value.code == "invalid_request" and "to" in backwards.value.errors


def test_problem_documents_map_to_exceptions(client, server, monkeypatch):
    with pytest.raises(emoscope.InvalidRequestError) as bad_option:
        client.analyze(SMALL_HAPPY_PHOTO, max_faces=0)
    error = bad_option.value
    assert (error.status, error.code) == (400, "invalid_request") and "max_faces" in error.errors
    assert error.invalid_params == (emoscope.InvalidParam("max_faces", error.errors["max_faces"][0]),)
    assert error.problem["type"] == "urn:emoscope:problem:invalid_request" and error.request_id
    assert isinstance(error, emoscope.EmoscopeError) and error.retry_after is None

    with pytest.raises(emoscope.InvalidRequestError) as corrupt:
        client.analyze(HAPPY_PHOTO.read_bytes()[:4000])  # a truncated JPEG
    assert (corrupt.value.status, corrupt.value.code) == (422, "media_corrupt")

    with pytest.raises(emoscope.InvalidRequestError) as unknown:
        client.analyze(b"just some text, no picture")
    assert (unknown.value.status, unknown.value.code) == (415, "unsupported_media_type")

    monkeypatch.delenv("EMOSCOPE_API_KEY", raising=False)
    with emoscope.Client(base_url=server) as anonymous:
        with pytest.raises(emoscope.AuthenticationError) as missing:
            anonymous.account.get()
    assert (missing.value.status, missing.value.code) == (401, "missing_api_key")


def test_a_400_names_its_invalid_fields_typed(client):
    with pytest.raises(emoscope.InvalidRequestError) as bad:
        client.analyze(SMALL_HAPPY_PHOTO, max_faces=0, micro_expressions={"enabled": True, "sensitivity": 3})
    params = {param.name: param for param in bad.value.invalid_params}
    assert set(params) == {"max_faces", "micro_expressions.sensitivity"}  # a nested field by its dotted path
    assert all(isinstance(p, emoscope.InvalidParam) and p.reason for p in params.values())
    assert "1" in params["max_faces"].reason  # the bound it broke

    # The problem's `invalid_params` member, where the server sends it, is taken as it is.
    problem = {
        "code": "invalid_request",
        "errors": {"fps": ["Not a number."]},
        "invalid_params": [{"name": "fps", "reason": "must be between 0.1 and 240"}, {"reason": "no name"}],
    }
    error = emoscope.InvalidRequestError("400 invalid_request", status=400, problem=problem)
    assert error.invalid_params == (emoscope.InvalidParam("fps", "must be between 0.1 and 240"),)
    assert emoscope.APIError("500 internal_error", status=500).invalid_params == ()


def test_environment_user_agent_and_options(server, owner, monkeypatch):
    monkeypatch.setenv("EMOSCOPE_API_KEY", owner[1].api_key.secret)
    monkeypatch.setenv("EMOSCOPE_BASE_URL", server)
    log: list = []
    with _recording_client(log) as http:
        client = emoscope.Client(http_client=http)
        assert client.base_url == server and client.max_retries == 2
        assert client.account.get().id == owner[1].account.id
        quick = client.with_options(max_retries=0, timeout=5)
        assert (quick.max_retries, quick.timeout, quick.api_key) == (0, 5, client.api_key)
        quick.keys.list()
    sent = [entry[3] for entry in log if entry[0] == "request"]
    assert len(sent) == 2
    for headers in sent:
        assert headers["user-agent"].startswith(f"emoscope-python/{emoscope.__version__}")
        assert headers["authorization"] == f"Bearer {owner[1].api_key.secret}"


def test_connection_errors_and_timeouts_are_retried():
    refused = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    log: list = []
    with _recording_client(log) as http:
        with pytest.raises(emoscope.APIConnectionError) as info:
            emoscope.Client(api_key="emo_x", base_url=refused, max_retries=1, http_client=http).account.get()
        assert not isinstance(info.value, emoscope.APITimeoutError)
        assert sum(entry[0] == "request" for entry in log) == 2

        log.clear()
        with socket.socket() as silent:  # accepts connections (kernel backlog) and never answers
            silent.bind(("127.0.0.1", 0))
            silent.listen(8)
            mute = f"http://127.0.0.1:{silent.getsockname()[1]}"
            with pytest.raises(emoscope.APITimeoutError):
                emoscope.Client(api_key="emo_x", base_url=mute, timeout=0.3, max_retries=1, http_client=http).analyze(
                    b"\xff\xd8\xff"
                )
    keys = [entry[2] for entry in log if entry[0] == "request"]
    assert len(keys) == 2 and keys[0] == keys[1] and uuid.UUID(keys[0])  # one key across the retry


def test_async_client_has_the_same_surface(server, owner):
    async def main():
        async with emoscope.AsyncClient(api_key=owner[1].api_key.secret, base_url=server) as client:
            photo, account = await asyncio.gather(client.analyze(SMALL_HAPPY_PHOTO), client.account.get())
            keys = await client.keys.list()
            usage = await client.usage.get()
            with pytest.raises(emoscope.InvalidRequestError) as error:
                await client.analyze(b"not media", detector="opencv")
            seen: list = []

            async def on_progress(job):
                seen.append(job.status)

            job = await client.jobs.create(SMALL_HAPPY_PHOTO)
            done = await client.jobs.wait(job, poll_interval=0.2, on_progress=on_progress)
            await client.jobs.delete(done)
            return photo, account, keys, usage, error.value, done, seen

    photo, account, keys, usage, error, job, seen = asyncio.run(main())
    assert isinstance(photo, emoscope.ImageResult) and photo.faces[0].emotions.dominant == "happy"
    assert account.id == owner[1].account.id and keys and usage.total_requests >= 1
    assert error.code == "unsupported_media_type"
    assert job.status == "succeeded" and job.result.faces[0].dominant_emotion == "happy" and seen[-1] == "succeeded"


def test_account_data_deletion(server):
    signup = emoscope.sign_up(_email("erase"), PASSWORD, "Erase me", base_url=server)
    with emoscope.Client(api_key=signup.api_key.secret, base_url=server) as client:
        job = client.jobs.wait(client.jobs.create(SMALL_HAPPY_PHOTO), poll_interval=0.2)
        deleted = client.account.delete_data()
        assert isinstance(deleted, emoscope.DataDeletion) and deleted.jobs_deleted == 1
        with pytest.raises(emoscope.InvalidRequestError) as gone:
            client.jobs.get(job)
        assert gone.value.status == 404
        assert client.usage.get().total_units >= 1  # usage stays: invoices are computed from it


def test_billing_subscribe_and_portal(tmp_path, server, owner, client):
    from tests.test_billing import PRICE_ID, WEBHOOK_SECRET, card, localstripe, stripe_config

    with emoscope.Client(api_key=owner[1].api_key.secret, base_url=server, max_retries=0) as no_stripe:
        with pytest.raises(emoscope.APIError) as off:
            no_stripe.billing.subscribe()
        assert off.value.code == "billing_not_configured"
    with (
        localstripe() as stripe_base,
        gunicorn(
            tmp_path,
            STRIPE_API_KEY=stripe_config(stripe_base).api_key,
            STRIPE_PRICE_ID=PRICE_ID,
            STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
            STRIPE_API_BASE=stripe_base,
        ) as base,
    ):
        signup = emoscope.sign_up(_email("payer"), PASSWORD, "Payer", base_url=base)
        with emoscope.Client(api_key=signup.api_key.secret, base_url=base) as payer:
            subscription = payer.billing.subscribe(payment_method=card(stripe_config(stripe_base)))
            assert isinstance(subscription, emoscope.Subscription)
            assert (subscription.plan, subscription.subscription_status) == ("paid", "active")
            assert payer.account.get().quota.monthly_units is None
            assert "/portal/" in payer.billing.portal_url("https://example.com/account")

        async def again():
            async with emoscope.AsyncClient(api_key=signup.api_key.secret, base_url=base) as payer:
                return await payer.billing.subscribe()

        assert asyncio.run(again()).stripe_customer_id == subscription.stripe_customer_id  # once per account


# ---- asynchronous jobs ---------------------------------------------------------------------------


@pytest.fixture()
def listener():
    listener = WebhookListener()
    yield listener
    listener.close()


def test_job_with_progress_and_a_signed_webhook(client, listener):
    job = client.jobs.create(CLIP, fps=5, webhook_url=listener.url)
    assert isinstance(job, emoscope.Job) and job.id.startswith("job_") and not job.replayed
    assert job.status in ("queued", "running", "succeeded") and job.progress.frames_total == 12
    assert job.webhook.url == listener.url and job.result is None

    seen: list = []
    done = client.jobs.wait(job, poll_interval=0.2, on_progress=seen.append)
    assert done.done and done.status == "succeeded" and seen[-1] == done
    assert done.progress.frames_done == 12 and done.progress.fraction == 1.0
    assert isinstance(done.result, emoscope.VideoResult) and len(done.result.tracks) == 1
    assert done.result_or_raise() is done.result and done.finished_at >= done.created_at

    assert listener.arrived.wait(30)
    headers, body = listener.received[0]
    secret = client.account.get().webhook_signing_secret
    assert secret and secret not in repr(client.account.get())
    event = webhooks.construct_event(body, headers["emoscope-signature"], secret)
    assert event["type"] == "job.succeeded" and event["job"]["id"] == job.id
    with pytest.raises(emoscope.SignatureVerificationError):
        webhooks.verify_signature(body.replace(b"succeeded", b"failed"), headers["emoscope-signature"], secret)

    client.jobs.delete(job)
    with pytest.raises(emoscope.InvalidRequestError) as gone:
        client.jobs.get(job.id)
    assert (gone.value.status, gone.value.code) == (404, "not_found")


def test_analyze_follows_a_202_to_the_jobs_result(client):
    # async=true takes the same 202 path that clips over the sync limit take by themselves.
    seen: list = []
    result = client.analyze(SMALL_HAPPY_PHOTO, extra_fields={"async": True}, on_progress=seen.append)
    assert isinstance(result, emoscope.ImageResult) and result.faces[0].dominant_emotion == "happy"
    assert seen and all(isinstance(j, emoscope.Job) for j in seen) and seen[-1].status == "succeeded"

    photo = HAPPY_PHOTO.read_bytes()
    with pytest.raises(emoscope.InvalidRequestError) as failed:  # the job itself fails: its header passed admission
        client.analyze(photo[: len(photo) // 2], extra_fields={"async": True})
    assert (failed.value.status, failed.value.code) == (422, "media_corrupt") and "job_" in str(failed.value)

    key = f"sdk-job-{uuid.uuid4()}"
    first = client.jobs.create(SMALL_HAPPY_PHOTO, idempotency_key=key)
    again = client.jobs.create(SMALL_HAPPY_PHOTO, idempotency_key=key)
    assert again.replayed and again.id == first.id  # a retried submission never makes a second job
    client.jobs.wait(first, poll_interval=0.2)


# ---- retries against real 429 and 503 answers ----------------------------------------------------


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory):
    # 0.5 requests/s, bursts of max(1, int(0.5 * 5)) = 2.
    with gunicorn(tmp_path_factory.mktemp("sdk-limited"), EMOSCOPE_FREE_REQUESTS_PER_SECOND="0.5") as base:
        yield base


def _empty_bucket(client: emoscope.Client) -> None:
    """Spend the key's tokens on cheap refused uploads (415, never billed) until the limiter asks for
    2 s (under half a token left), so the next request is surely limited, however slow the machine."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            client.analyze(b"not media")
        except emoscope.RateLimitError as exc:
            if exc.retry_after >= 2:
                return
        except emoscope.InvalidRequestError:
            pass
        time.sleep(0.05)
    pytest.fail("could not empty the rate-limit bucket")


def test_rate_limit_error_then_retry_after(limited_server):
    key = emoscope.sign_up(_email("limited"), PASSWORD, "limited", base_url=limited_server).api_key.secret
    photo = SMALL_HAPPY_PHOTO.read_bytes()
    with emoscope.Client(api_key=key, base_url=limited_server, max_retries=0) as client:
        client.analyze(photo)
        client.analyze(photo)
        with pytest.raises(emoscope.RateLimitError) as info:
            client.analyze(photo)
    error = info.value
    assert (error.status, error.code) == (429, "rate_limited") and error.retry_after >= 1
    assert error.headers["x-ratelimit-limit"] == "2"

    log: list = []
    with _recording_client(log) as http:
        client = emoscope.Client(api_key=key, base_url=limited_server, max_retries=2, http_client=http)
        _empty_bucket(client.with_options(max_retries=0))
        log.clear()
        started = time.monotonic()
        result = client.analyze(photo)
        elapsed = time.monotonic() - started
        assert result.faces[0].dominant_emotion == "happy"
        responses = [entry for entry in log if entry[0] == "response"]
        requests_ = [entry for entry in log if entry[0] == "request"]
        assert [r[3] for r in responses] == [429, 200]
        retry_after = float(responses[0][4])
        slept = requests_[1][1] - responses[0][1]
        # Waited what the server asked (plus at most 25 % jitter), with the same Idempotency-Key.
        assert retry_after <= slept <= retry_after * 1.25 + 0.3 and elapsed < 5
        assert requests_[0][2] == requests_[1][2]

        # A Retry-After beyond max_retry_wait is raised at once rather than slept through.
        impatient = client.with_options(max_retry_wait=0.5)
        _empty_bucket(impatient.with_options(max_retries=0))
        started = time.monotonic()
        with pytest.raises(emoscope.RateLimitError):
            impatient.analyze(photo)
        assert time.monotonic() - started < 0.9

        usage = client.usage.get()
    assert usage.total_requests == 3  # two before the 429, one after the retry; 429s are free


@pytest.fixture(scope="module")
def overload_server(tmp_path_factory):
    with gunicorn(
        tmp_path_factory.mktemp("sdk-overload"), EMOSCOPE_ANALYSIS_SLOTS="1", EMOSCOPE_SYNC_MAX_VIDEO_SECONDS="1"
    ) as base:
        yield base


def _concurrently(client: emoscope.Client, photo: bytes, n: int) -> list:
    barrier = threading.Barrier(n)
    outcomes: list = [None] * n

    def work(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = client.analyze(photo)
        except emoscope.EmoscopeError as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_overloaded_503_is_retried_with_the_same_idempotency_key(overload_server):
    key = emoscope.sign_up(_email("overload"), PASSWORD, "overload", base_url=overload_server).api_key.secret
    photo = COUPLE.read_bytes()

    with emoscope.Client(api_key=key, base_url=overload_server, max_retries=0) as client:
        outcomes = _concurrently(client, photo, 4)
    shed = [o for o in outcomes if isinstance(o, Exception)]
    done = [o for o in outcomes if isinstance(o, emoscope.ImageResult)]
    assert shed and done and len(shed) + len(done) == 4
    for error in shed:
        assert isinstance(error, emoscope.APIError) and (error.status, error.code) == (503, "overloaded")
        assert error.retry_after == 1

    log: list = []
    with _recording_client(log) as http:
        client = emoscope.Client(api_key=key, base_url=overload_server, max_retries=5, http_client=http)
        retried = _concurrently(client, photo, 4)
        assert all(isinstance(o, emoscope.ImageResult) and len(o.faces) == 2 for o in retried), retried
        usage = client.usage.get()

    statuses = defaultdict(list)
    for entry in log:
        if entry[0] == "response" and entry[2] is not None:
            statuses[entry[2]].append(entry[3])
    assert len(statuses) == 4  # one Idempotency-Key per call, kept across its retries
    assert all(seq[-1] == 200 and set(seq[:-1]) <= {503} for seq in statuses.values())
    assert any(len(seq) > 1 for seq in statuses.values())  # some call really was shed, then retried
    # Shed attempts are never billed, and no retried call was billed twice.
    assert usage.total_requests == len(done) + 4


def test_clips_over_the_sync_limit_come_back_through_a_job(overload_server):
    key = emoscope.sign_up(_email("long"), PASSWORD, "long clips", base_url=overload_server).api_key.secret
    seen: list = []
    with emoscope.Client(api_key=key, base_url=overload_server) as client:
        result = client.analyze(CLIP, fps=5, on_progress=seen.append)  # 2.4 s > the 1 s sync limit
    assert isinstance(result, emoscope.VideoResult) and len(result.tracks) == 1
    assert seen and seen[-1].status == "succeeded" and seen[-1].progress.frames_done == 12


# ---- webhooks ------------------------------------------------------------------------------------


def _sign(body: bytes, secret: str, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def test_webhook_signature_verification():
    secret = "whsec_test_secret"
    event = {"type": "job.succeeded", "job": {"id": "job_123", "status": "succeeded"}}
    body = json.dumps(event).encode()
    now = int(time.time())
    header = _sign(body, secret, now)

    webhooks.verify_signature(body, header, secret)
    assert webhooks.construct_event(body, header, secret) == event
    assert webhooks.generate_header(body, secret, timestamp=now) == header
    webhooks.verify_signature(body, f"t={now},v1={'0' * 64},{header.split(',')[1]}", secret)  # rotation

    rejected = {
        "tampered body": (body.replace(b"succeeded", b"failed"), header, secret),
        "wrong secret": (body, header, "whsec_other"),
        "stale": (body, _sign(body, secret, now - 301), secret),
        "from the future": (body, _sign(body, secret, now + 301), secret),
        "no signature": (body, f"t={now}", secret),
        "no timestamp": (body, header.split(",")[1], secret),
        "garbage": (body, "nonsense", secret),
        "missing header": (body, None, secret),
    }
    for case, (payload, value, key) in rejected.items():
        with pytest.raises(emoscope.SignatureVerificationError):
            webhooks.verify_signature(payload, value, key)
            pytest.fail(f"accepted: {case}")
    webhooks.verify_signature(body, _sign(body, secret, now - 3600), secret, tolerance=None)
    assert issubclass(emoscope.SignatureVerificationError, emoscope.EmoscopeError)


# ---- CLI -----------------------------------------------------------------------------------------


def _cli(server: str, key: str, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "EMOSCOPE_API_KEY": key,
        "EMOSCOPE_BASE_URL": server,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SDK_SRC), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run(
        [sys.executable, "-m", "emoscope", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_cli_table_and_json(server, owner):
    key = owner[1].api_key.secret
    photo = _cli(server, key, "analyze", str(HAPPY_PHOTO))
    assert photo.returncode == 0, photo.stderr
    assert "1 face" in photo.stdout and "happy" in photo.stdout and "top 3" in photo.stdout

    clip = _cli(server, key, "analyze", str(CLIP), "--fps", "5", "--progress")
    assert clip.returncode == 0, clip.stderr
    assert "Tracks" in clip.stdout and "happy" in clip.stdout and "Micro-expressions" in clip.stdout
    assert "done in" in clip.stderr

    raw = _cli(server, key, "analyze", str(SMALL_HAPPY_PHOTO), "--json", "--detector", "dlib")
    assert raw.returncode == 0, raw.stderr
    body = json.loads(raw.stdout)
    assert body["media"]["type"] == "image" and body["faces"][0]["dominant_emotion"] == "happy"

    job = _cli(server, key, "analyze", str(CLIP), "--fps", "5", "--async", "--progress")
    assert job.returncode == 0, job.stderr
    assert "Tracks" in job.stdout and "(job job_" in job.stderr and "12 frames" in job.stderr

    refused = _cli(server, "emo_not_a_key", "analyze", str(SMALL_HAPPY_PHOTO))
    assert refused.returncode == 1 and "invalid_api_key" in refused.stderr


def test_cli_names_the_invalid_fields(server, owner):
    refused = _cli(server, owner[1].api_key.secret, "analyze", str(SMALL_HAPPY_PHOTO), "--max-faces", "0")
    assert refused.returncode == 1 and "400 invalid_request" in refused.stderr
    assert "emoscope:   max_faces: Must be greater than or equal to 1" in refused.stderr


@pytest.fixture()
def batch_folder(tmp_path):
    """Two real photos (three faces), a file that is no picture, and what a folder's walk leaves out."""
    folder = tmp_path / "shoot"
    (folder / "later").mkdir(parents=True)
    (folder / "a.jpg").write_bytes(SMALL_HAPPY_PHOTO.read_bytes())
    (folder / "b.jpg").write_bytes(COUPLE.read_bytes())
    (folder / "c.jpg").write_bytes(b"not a picture at all")
    (folder / "notes.txt").write_text("not media, by its name")
    (folder / ".hidden.jpg").write_bytes(SMALL_HAPPY_PHOTO.read_bytes())
    (folder / "later" / "d.jpg").write_bytes(SMALL_HAPPY_PHOTO.read_bytes())
    return folder


def test_cli_batch_of_a_folder_as_json_lines(server, owner, batch_folder):
    key = owner[1].api_key.secret
    run = _cli(server, key, "analyze", str(batch_folder), "--json", "-j", "3")
    assert run.returncode == 1, run.stderr  # one file failed; the others were analysed
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(batch_folder / name) for name in ("a.jpg", "b.jpg", "c.jpg")]
    assert [line["ok"] for line in lines] == [True, True, False]
    assert [len(line["result"]["faces"]) for line in lines[:2]] == [1, 2]
    assert lines[2]["error"]["code"] == "unsupported_media_type" and lines[2]["error"]["status"] == 415
    assert len({line["idempotency_key"] for line in lines}) == 3  # one per file
    assert f"{batch_folder / 'c.jpg'}: 415 unsupported_media_type" in run.stderr
    assert "3 files: 2 analysed, 1 failed" in run.stderr
    assert "\x1b[" not in run.stderr  # stderr is no terminal: no bar drawn

    again = _cli(server, key, "analyze", str(batch_folder), "-r", "--json", "--batch-key", "shoot-1")
    repeat = _cli(server, key, "analyze", str(batch_folder), "-r", "--json", "--batch-key", "shoot-1")
    first, second = ([json.loads(line) for line in r.stdout.splitlines()] for r in (again, repeat))
    assert [line["file"] for line in first][-1] == str(batch_folder / "later" / "d.jpg")
    assert [line["idempotency_key"] for line in first] == [line["idempotency_key"] for line in second]
    assert [line.get("replayed") for line in second] == [True, True, None, True]  # answered again, not billed again
    assert first[0]["result"]["request_id"] == second[0]["result"]["request_id"]


def test_cli_batch_of_files_and_patterns_as_csv(server, owner, batch_folder):
    # One at a time: a clip analysed beside other requests can crash the server's worker (reported, issue 22 work).
    run = _cli(
        server,
        owner[1].api_key.secret,
        "analyze",
        str(batch_folder / "b.jpg"),
        str(batch_folder / "a.jpg"),
        str(batch_folder / "*" / "*.jpg"),
        str(CLIP),
        "--csv",
        "--fps",
        "5",
        "--concurrency",
        "1",
    )
    assert run.returncode == 0, run.stderr
    rows = list(csv.DictReader(io.StringIO(run.stdout)))
    assert list(rows[0]) == [
        "file",
        "frame",
        "time_ms",
        "face",
        "track",
        "x",
        "y",
        "w",
        "h",
        "emotion",
        *emoscope.EMOTIONS,
    ]
    photos = [row for row in rows if row["frame"] == ""]
    assert [(Path(row["file"]).name, row["face"]) for row in photos] == [
        ("b.jpg", "0"),
        ("b.jpg", "1"),
        ("a.jpg", "0"),
        ("d.jpg", "0"),
    ]
    assert photos[2]["emotion"] == "happy" and float(photos[2]["happy"]) > 0.5
    assert sum(float(photos[0][label]) for label in emoscope.EMOTIONS) == pytest.approx(1, abs=1e-3)
    frames = [row for row in rows if row["file"] == str(CLIP)]
    assert len(frames) == 12 and frames[1]["frame"] == "6" and float(frames[1]["time_ms"]) == pytest.approx(200)
    assert {row["track"] for row in frames} == {"1"}


def test_cli_batch_usage_errors(server, owner, batch_folder):
    key = owner[1].api_key.secret
    for args in (
        [str(batch_folder / "missing.jpg")],
        [str(batch_folder / "*.png")],
        [str(batch_folder / "later"), "--concurrency", "0"],
    ):
        run = _cli(server, key, "analyze", *args)
        assert run.returncode == 2 and run.stdout == "", (args, run.stderr)
    (batch_folder / "empty").mkdir()
    assert _cli(server, key, "analyze", str(batch_folder / "empty")).returncode == 2


def test_cli_batch_draws_a_bar_when_stderr_is_a_terminal(server, owner, batch_folder):
    primary, secondary = pty.openpty()
    env = {
        **os.environ,
        "EMOSCOPE_API_KEY": owner[1].api_key.secret,
        "EMOSCOPE_BASE_URL": server,
        "TERM": "xterm",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SDK_SRC), os.environ.get("PYTHONPATH")])),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "emoscope", "analyze", str(batch_folder), "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=secondary,
    )
    os.close(secondary)
    stdout, _ = process.communicate(timeout=120)
    drawn = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the terminal's other end is closed once the CLI has exited
            break
        if not chunk:
            break
        drawn += chunk
    os.close(primary)
    assert process.returncode == 1
    assert len(stdout.splitlines()) == 3  # piped stdout keeps the JSON lines; the bar is on the terminal only
    assert b"analysing" in drawn and b"3/3" in drawn and b"1 failed" in drawn


def test_batch_pacing_keeps_to_the_rate_a_429_states():
    now = [100.0]
    slept: list = []

    def sleep(seconds: float) -> None:
        slept.append(round(seconds, 3))
        now[0] += seconds

    pacer = _batch.RatePacer(clock=lambda: now[0], sleep=sleep)
    request = httpx.Request("POST", "http://127.0.0.1/v1/analyze")
    for _ in range(3):
        pacer.before_request(request)  # the burst: nothing waits
    assert slept == []
    # A 429 of a plan of 2 requests/s in bursts of 10: the bucket refills in 5 s.
    pacer.after_response(
        httpx.Response(
            429, headers={"Retry-After": "1", "X-RateLimit-Limit": "10", "X-RateLimit-Reset": "5"}, request=request
        )
    )
    for _ in range(3):
        pacer.before_request(request)
    assert slept == [1.0, 0.556, 0.556]  # Retry-After, then evenly at no more than 9 requests per 5 s
    pacer.after_response(httpx.Response(503, headers={"Retry-After": "2"}, request=request))
    pacer.before_request(request)
    assert slept[-1] == 2.0  # an overloaded server's Retry-After holds every thread


def test_cli_batch_on_a_rate_limited_account_finishes_every_file(limited_server, tmp_path):
    key = emoscope.sign_up(_email("batch"), PASSWORD, "batch", base_url=limited_server).api_key.secret
    for i in range(4):
        (tmp_path / f"{i}.jpg").write_bytes(SMALL_HAPPY_PHOTO.read_bytes())
    # 0.5 requests/s in bursts of 2: four at once meet 429s, and the batch slows to the stated rate.
    run = _cli(limited_server, key, "analyze", str(tmp_path), "--json", "-j", "4", "--max-retries", "3")
    assert run.returncode == 0, run.stderr
    assert [json.loads(line)["ok"] for line in run.stdout.splitlines()] == [True] * 4


def test_cli_renders_micro_expressions():
    emotions = {
        "angry": 0.01,
        "disgust": 0.0,
        "fear": 0.01,
        "happy": 0.9,
        "sad": 0.02,
        "surprise": 0.05,
        "neutral": 0.01,
    }
    doc = {
        "request_id": "r1",
        "model": {},
        "timing_ms": {"total": 1.0},
        "sample_fps": 30.0,
        "temporal_resolution_ms": 33.3,
        "frames": [],
        "future_field": {"ignored": True},
        "media": {
            "type": "video",
            "format": "mp4",
            "width": 640,
            "height": 360,
            "duration_ms": 2000.0,
            "fps": 30.0,
            "frames_analyzed": 60,
        },
        "tracks": [
            {
                "track_id": 1,
                "start_ms": 0.0,
                "end_ms": 1966.7,
                "frame_count": 60,
                "summary": {"emotions": emotions, "dominant_emotion": "happy"},
                "timeline": [],
            }
        ],
        "micro_expressions": [
            {
                "track_id": 1,
                "kind": "micro",
                "onset_ms": 400.0,
                "apex_ms": 500.0,
                "offset_ms": 633.3,
                "duration_ms": 233.3,
                "intensity": 0.42,
                "regions": [{"name": "mouth", "magnitude": 0.42, "action_units": ["AU12"]}],
                "emotion": "happy",
                "emotion_probability": 0.61,
            }
        ],
    }
    result = emoscope.parse_analysis(doc)
    assert isinstance(result, emoscope.VideoResult) and result.raw["future_field"] == {"ignored": True}
    (micro,) = result.micro_expressions
    assert micro.regions[0].action_units == ("AU12",) and micro.kind == "micro"
    from emoscope.cli import render

    table = render(result, "clip.mp4")
    assert "mouth 0.42 (AU12)" in table and "0.40 s" in table and "happy 61.0%" in table and "233 ms" in table


def test_video_results_carry_stills_only_when_asked():
    doc = {
        "request_id": "r1",
        "sample_fps": 5.0,
        "temporal_resolution_ms": 200.0,
        "frames": [],
        "tracks": [],
        "micro_expressions": [],
        "media": {
            "type": "video",
            "format": "mov",
            "width": 960,
            "height": 540,
            "duration_ms": 6400.0,
            "fps": 26.4,
            "frames_analyzed": 32,
        },
    }
    assert emoscope.parse_analysis(doc).stills == ()
    jpeg = b"\xff\xd8\xff\xe0 a still"
    with_stills = emoscope.parse_analysis(
        {**doc, "stills": [{"frame_index": 3, "timestamp_ms": 100.0, "jpeg_base64": base64.b64encode(jpeg).decode()}]}
    )
    assert with_stills.stills == (emoscope.Still(3, 100.0, jpeg),)


# ---- audience studies --------------------------------------------------------------------------


def test_studies_create_report_csv_cli_and_delete(server, owner, client, tmp_path):
    from tests.samples import short_clip

    study = client.studies.create("SDK ad", 1000, stimulus=CLIP)
    assert isinstance(study, emoscope.Study) and study.has_stimulus and study.participant_path.startswith("/s/pt_")
    assert study.participant_token not in repr(study)
    recording = short_clip(CLIP, frames=10, fps=10)
    consent = json.dumps({"version": "v1", "accepted_at": "2026-12-02T10:00:00Z"})
    submitted = httpx.post(
        f"{server}/v1/studies/{study.id}/sessions",
        headers={"Authorization": f"Bearer {study.participant_token}"},
        files={"file": ("r.mp4", recording)},
        data={"stimulus_started_ms": "0", "consent": consent},
    )
    assert submitted.status_code == 202, submitted.text
    deadline = time.monotonic() + 120
    while client.studies.get(study).sessions["succeeded"] < 1:
        assert time.monotonic() < deadline, "the session was not analysed in 120 s"
        time.sleep(0.2)
    report = client.studies.report(study, bucket_ms=500)
    assert isinstance(report, emoscope.StudyReport) and report.viewers == 1 and report.bucket_ms == 500
    assert [b["start_ms"] for b in report.buckets] == [0, 500]
    assert client.studies.report_csv(study).splitlines()[0].startswith("start_ms,viewers")
    pdf = client.studies.report_pdf(study, bucket_ms=500)
    assert isinstance(pdf, bytes) and pdf.startswith(b"%PDF")

    table = _cli(server, owner[1].api_key.secret, "study", "report", study.id)
    assert table.returncode == 0, table.stderr
    assert "1 viewers" in table.stdout and "too few viewers" in table.stdout
    csv_out = _cli(server, owner[1].api_key.secret, "study", "report", study.id, "--csv")
    assert csv_out.returncode == 0 and csv_out.stdout.startswith("start_ms,viewers,viewers_with_face")
    pdf_path = tmp_path / "report.pdf"
    pdf_out = _cli(server, owner[1].api_key.secret, "study", "report", study.id, "--pdf", str(pdf_path))
    assert pdf_out.returncode == 0, pdf_out.stderr
    assert pdf_path.read_bytes().startswith(b"%PDF") and pdf_out.stdout == ""

    client.studies.delete(study)
    with pytest.raises(emoscope.InvalidRequestError) as gone:
        client.studies.get(study)
    assert (gone.value.status, gone.value.code) == (404, "not_found")


def test_studies_rotate_the_participant_token(server, owner, client):
    study = client.studies.create("Rotated ad", 1000, max_sessions=5)
    assert study.max_sessions == 5
    rotated = client.studies.rotate_participant_token(study)
    assert rotated.id == study.id and rotated.participant_token not in (None, study.participant_token)
    assert rotated.participant_path == f"/s/{rotated.participant_token}"
    assert httpx.get(f"{server}{study.participant_path}").status_code == 404

    async def main():
        async with emoscope.AsyncClient(api_key=owner[1].api_key.secret, base_url=server) as aclient:
            return await aclient.studies.rotate_participant_token(study)

    again = asyncio.run(main())
    assert again.participant_token not in (None, rotated.participant_token)


def test_study_summary_and_moments_are_typed_and_printed():
    """The report's summary scores as typed values, from a report the service computes, and as the CLI prints them."""
    from emoscope.cli import render_summary

    from api.domain import audience
    from tests.test_audience import viewer

    report = {"study_id": "study_x", **audience.study_report([viewer(h) for h in (0.1, 0.2, 0.3, 0.4, 0.5)], 3000)}
    summary = emoscope.StudyReport.from_dict(report).summary
    assert isinstance(summary, emoscope.StudySummary)
    happy = summary.emotions["happy"]
    assert happy.mean == emoscope.ScoreInterval(0.3, (0.1037, 0.4963), 5)
    assert happy.peak is not None and happy.peak.time_ms == 0
    assert summary.valence is not None and summary.valence.mean == pytest.approx(-1 / 6, abs=1e-4)
    assert summary.positive_emotions == ("happy",) and summary.engagement.mean == 0.2
    printed = render_summary(summary)
    assert "happy" in printed and "30.0% (10.4%-49.6%)" in printed and "-17 (-49-+16)" in printed
    smiling = [
        viewer(lambda t, h=h: 0.9 if t >= 2000 else h, seconds=4.0, stimulus_ms=4000)
        for h in (0.1, 0.12, 0.14, 0.16, 0.18, 0.2)
    ]
    moment = emoscope.StudyReport.from_dict({"study_id": "s", **audience.study_report(smiling, 4000)}).top_moments[0]
    assert isinstance(moment, emoscope.TopMoment) and (moment.emotion, moment.time_ms, moment.viewers) == (
        "happy",
        2000,
        6,
    )
    assert moment.ci95[0] < moment.lift < moment.ci95[1] and moment.p <= moment.p_adjusted < 0.05
    withheld = {"study_id": "study_y", **audience.study_report([viewer(0.3)], 3000)}
    assert emoscope.StudyReport.from_dict(withheld).summary.valence is None


def test_studies_compare_typed_through_the_api_and_the_cli(server, owner, client):
    a, b = client.studies.create("Cut A", 2000), client.studies.create("Cut B", 3000)
    comparison = client.studies.compare([a, b.id])
    assert isinstance(comparison, emoscope.StudyComparison) and comparison.resamples == 2000
    assert [s.name for s in comparison.studies] == ["Cut A", "Cut B"]
    assert [len(s.buckets) for s in comparison.studies] == [2, 3]
    (differences,) = comparison.differences
    assert (differences.study_id, differences.baseline_study_id) == (b.id, a.id)
    assert set(differences.scores.values()) == {None}  # no viewers yet
    printed = _cli(server, owner[1].api_key.secret, "study", "compare", a.id, b.id)
    assert printed.returncode == 0, printed.stderr
    assert "Cut B - Cut A" in printed.stdout and "withheld" in printed.stdout
    with pytest.raises(emoscope.InvalidRequestError) as one:
        client.studies.compare([a])
    assert (one.value.status, one.value.code) == (400, "invalid_request")


def test_a_comparison_with_audiences_is_typed_and_printed():
    from emoscope.cli import render_comparison

    from api.domain import audience
    from tests.test_audience import viewer

    cuts = [[viewer(h + lift) for h in (0.1, 0.2, 0.3, 0.4, 0.5)] for lift in (0.0, 0.2)]
    body = audience.compare_audiences([(cut, 3000) for cut in cuts])
    for i, study in enumerate(body["studies"]):
        study.update(study_id=f"study_{i}", name=f"Cut {'AB'[i]}")
    body["differences"][0].update(study_id="study_1", baseline_study_id="study_0")
    comparison = emoscope.StudyComparison.from_dict(body)
    happy = comparison.differences[0].scores["happy"]
    assert isinstance(happy, emoscope.ScoreDifference) and happy.difference == pytest.approx(0.2, abs=1e-4)
    assert happy.ci95[0] < 0.2 < happy.ci95[1]
    assert comparison.studies[1].summary.emotions["happy"].mean.mean == pytest.approx(0.5, abs=1e-4)
    printed = render_comparison(comparison)
    assert "Cut A (5)" in printed and "+20.0 (" in printed


def test_study_variables_filter_and_breakdown_through_the_sdk_and_the_cli(server, owner, client):
    study = client.studies.create("Panel ad", 2000, variables=["age", "pid"])
    assert study.variables == ("age", "pid") and client.studies.get(study).variables == ("age", "pid")
    report = client.studies.report(study, segment={"age": "18-24"})
    assert report.filter == {"age": "18-24"} and report.viewers == 0
    assert [b.key for b in report.breakdown] == ["age", "pid"] and report.breakdown[0].groups == ()
    assert client.studies.report_csv(study, table="breakdown", segment={"age": "18-24"}).startswith("variable,value")

    async def pdf():
        async with emoscope.AsyncClient(api_key=owner[1].api_key.secret, base_url=server) as aclient:
            return await aclient.studies.report_pdf(study, segment={"age": "18-24"})

    assert asyncio.run(pdf()).startswith(b"%PDF")
    with pytest.raises(emoscope.InvalidRequestError) as unknown:
        client.studies.report(study, segment={"city": "Paris"})
    assert unknown.value.status == 400
    printed = _cli(server, owner[1].api_key.secret, "study", "report", study.id, "--segment", "age=18-24")
    assert printed.returncode == 0, printed.stderr
    assert "0 viewers, age = 18-24" in printed.stdout and "By age" in printed.stdout


def test_a_breakdown_is_typed():
    import dataclasses

    from api.domain import audience
    from tests.test_audience import viewer

    viewers = [dataclasses.replace(viewer(h), variables={"age": "18-24"}) for h in (0.5, 0.6, 0.7, 0.8, 0.9)]
    report = {
        "study_id": "s",
        "filter": {},
        **audience.study_report(viewers + [viewer(0.1)], 3000, variable_keys=["age"]),
    }
    (age,) = emoscope.StudyReport.from_dict(report).breakdown
    (group,) = age.groups
    assert isinstance(age, emoscope.VariableBreakdown) and (group.value, group.viewers) == ("18-24", 5)
    assert group.scores["happy"].mean == pytest.approx(0.7, abs=1e-4) and age.without_value == 1


def test_client_report_links_through_the_sdk_and_the_cli(server, owner, client):
    study = client.studies.create("Shared ad", 2000)
    link = client.studies.create_report_link(study, expires_in_days=7)
    assert isinstance(link, emoscope.ReportLink) and link.path.startswith("/r/rl_") and link.token not in repr(link)
    assert httpx.get(f"{server}{link.path}").status_code == 200
    assert [item.id for item in client.studies.report_links(study)] == [link.id]
    client.studies.revoke_report_link(study, link)
    assert httpx.get(f"{server}{link.path}").status_code == 404
    assert client.studies.report_links(study)[0].revoked_at is not None

    shared = _cli(server, owner[1].api_key.secret, "study", "share", study.id, "--days", "3")
    assert shared.returncode == 0, shared.stderr
    url = shared.stdout.strip()
    assert url.startswith(f"{server}/r/rl_") and httpx.get(url).status_code == 200
    link_id = shared.stderr.split("unshare ")[1].split()[1]
    unshared = _cli(server, owner[1].api_key.secret, "study", "unshare", study.id, link_id)
    assert unshared.returncode == 0 and httpx.get(url).status_code == 404
