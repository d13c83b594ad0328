"""Issue 19: the order of admission on billed routes, and bad text in any field (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import json
import time

import pytest

from api.domain.metering import Plan
from tests.conftest import FACES, VIDEOS, sign_up
from tests.samples import (
    animated_gif,
    empty_fragmented_mp4,
    gif_bomb,
    png_bomb,
    recorder_webm,
    reencode,
    webm_with_random_blocks,
    webm_with_random_clusters,
)
from tests.test_accounts import TINY_FACE, analyze, bearer
from tests.test_api import assert_problem

pytestmark = [pytest.mark.postgres, pytest.mark.data]

TWO_UNITS = {"free": Plan("free", 2, 1000.0, 1000), "paid": Plan("paid", None, 1000.0, 1000)}


def test_an_idempotent_replay_is_served_after_the_quota_is_spent(app_factory, assert_contract):
    client = app_factory(plans=TWO_UNITS).test_client()
    secret = sign_up(client)["api_key"]["secret"]
    first = analyze(client, secret, idempotency_key="paid-answer")
    assert analyze(client, secret).status_code == 200
    assert_problem(analyze(client, secret), 402, "quota_exceeded")
    replay = assert_contract(analyze(client, secret, idempotency_key="paid-answer"))
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json == first.json


def test_two_file_parts_are_refused_naming_the_field(client, auth, assert_contract):
    body = {"file": [(io.BytesIO(TINY_FACE), "a.jpg"), (io.BytesIO(TINY_FACE), "b.jpg")], "detector": "skip"}
    response = assert_contract(client.post("/v1/analyze", headers=auth, data=body))
    assert_problem(response, 400, "invalid_request")
    assert "file" in response.json["errors"]


def test_a_repeated_form_field_is_refused_naming_it(client, auth):
    body = {"file": (io.BytesIO(TINY_FACE), "a.jpg"), "detector": ["skip", "dlib"]}
    response = client.post("/v1/analyze", headers=auth, data=body)
    assert_problem(response, 400, "invalid_request")
    assert "detector" in response.json["errors"]


NESTED = "[" * 100_000 + "]" * 100_000


def nested_json(field: str) -> str:
    return '{"%s": %s}' % (field, NESTED)


@pytest.mark.parametrize(
    "path, field", [("/v1/analyze", "image_base64"), ("/v1/signin", "email"), ("/v1/keys", "name")]
)
def test_deeply_nested_json_is_400(app_factory, path, field):
    client = app_factory().test_client()
    secret = sign_up(client)["api_key"]["secret"]
    response = client.post(path, headers=bearer(secret), data=nested_json(field), content_type="application/json")
    assert_problem(response, 400, "invalid_request")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_client(request, app_factory):
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    app = app_factory(url)
    yield app.test_client()
    app.extensions["emoscope"].db.engine.dispose()


@pytest.mark.parametrize("bad", ["a\x00b", "a\ud800b"], ids=["nul", "lone-surrogate"])
def test_nul_and_lone_surrogates_are_400_naming_the_field(db_client, bad):
    secret = sign_up(db_client)["api_key"]["secret"]
    body = json.dumps({"name": bad, "scopes": ["analyze"]})  # json.dumps escapes both as \u0000 / \ud800
    response = db_client.post("/v1/keys", headers=bearer(secret), data=body, content_type="application/json")
    assert_problem(response, 400, "invalid_request")
    assert "name" in response.json["errors"]
    signup = db_client.post(
        "/v1/signup",
        data=json.dumps({"email": "x@example.com", "password": "long enough pw", "account_name": bad}),
        content_type="application/json",
    )
    assert_problem(signup, 400, "invalid_request")
    assert "account_name" in signup.json["errors"]


def test_a_nul_in_the_idempotency_key_is_400(client, auth):
    response = client.post(
        "/v1/analyze",
        headers={**auth, "Idempotency-Key": "a\x00b"},
        data={"file": (io.BytesIO(TINY_FACE), "a.jpg"), "detector": "skip"},
    )
    assert_problem(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "fields, named",
    [
        ({"consent": NESTED}, "consent"),
        ({"segment": "a\x00b"}, "segment"),
        ({"consent": '{"version": "v\\u0000", "accepted_at": "2026-12-02T10:00:00Z"}'}, "consent"),
    ],
)
def test_bad_text_in_a_participant_session_is_400_naming_the_field(app_factory, fields, named):
    from tests.test_studies import create_study, submit_session

    client = app_factory().test_client()
    secret = sign_up(client)["api_key"]["secret"]
    study = create_study(client, secret).json
    response = submit_session(client, study, **fields)
    assert_problem(response, 400, "invalid_request")
    assert named in response.json["errors"]


# --- Media: cheap checks before the slot, quota before decoding, billing by what decodes ---


def bearer_post(client, secret: str, data: bytes, **fields):
    return client.post("/v1/analyze", headers=bearer(secret), data={"file": (io.BytesIO(data), "f"), **fields})


@pytest.mark.parametrize("upload", ["animated.gif", "still.gif", "photo.png", "clip.mp4"])
def test_an_over_quota_key_gets_402_before_any_pixel_is_decoded(app_factory, monkeypatch, upload):
    from api.engine import media

    data = {
        "animated.gif": lambda: animated_gif(FACES / "img1.jpg", frames=6),
        "still.gif": lambda: reencode(FACES / "img1.jpg", "GIF", max_side=200),
        "photo.png": lambda: reencode(FACES / "img1.jpg", "PNG", max_side=200),
        "clip.mp4": lambda: (VIDEOS / "single_face.mp4").read_bytes(),
    }[upload]()
    client = app_factory(plans=TWO_UNITS).test_client()
    secret = sign_up(client)["api_key"]["secret"]
    assert analyze(client, secret).status_code == analyze(client, secret).status_code == 200
    for decoder in ("_to_bgr", "luma"):
        monkeypatch.setattr(media, decoder, lambda *_: pytest.fail("a picture was decoded"))
    assert_problem(bearer_post(client, secret, data, detector="skip"), 402, "quota_exceeded")


def test_a_gif_bomb_is_413_within_a_second_of_cpu(client, auth, assert_contract):
    started = time.process_time()
    response = assert_contract(
        client.post("/v1/analyze", headers=auth, data={"file": (io.BytesIO(gif_bomb(4096, 2160, 900)), "bomb.gif")})
    )
    assert_problem(response, 413, "media_dimensions_too_large")
    assert time.process_time() - started < 1.0


def test_bombs_are_413_even_when_every_analysis_slot_is_busy(app, client, auth, assert_contract):
    slots = app.extensions["emoscope"].analysis_slots
    taken = 0
    while slots.acquire(blocking=False):
        taken += 1
    try:
        for bomb in (png_bomb(), gif_bomb()):
            response = client.post("/v1/analyze", headers=auth, data={"file": (io.BytesIO(bomb), "bomb")})
            assert_problem(assert_contract(response), 413, "media_dimensions_too_large")
        busy = client.post("/v1/analyze", headers=auth, data={"file": (io.BytesIO(TINY_FACE), "f"), "detector": "skip"})
        assert_problem(busy, 503, "overloaded")
    finally:
        for _ in range(taken):
            slots.release()


@pytest.mark.parametrize(
    "data",
    [empty_fragmented_mp4(), webm_with_random_clusters(), webm_with_random_blocks()],
    ids=["fragmented-mp4-no-frames", "webm-random-clusters", "webm-random-blocks"],
)
def test_a_clip_without_a_decodable_frame_is_422_media_corrupt(client, auth, assert_contract, data):
    response = client.post("/v1/analyze", headers=auth, data={"file": (io.BytesIO(data), "clip"), "detector": "skip"})
    assert_problem(assert_contract(response), 422, "media_corrupt")


def test_a_webm_without_duration_is_routed_and_billed_by_its_decoded_length(app_factory, assert_contract):
    from tests.test_jobs import wait_for

    client = app_factory().test_client()
    secret = sign_up(client)["api_key"]["secret"]
    accepted = assert_contract(bearer_post(client, secret, recorder_webm(58), detector="skip"))
    assert accepted.status_code == 202  # 58 s is past the 20 s sync limit, whatever the header says
    job = wait_for(client, secret, accepted.headers["Location"])
    assert job["status"] == "succeeded" and job["result"]["media"]["duration_ms"] == 58_000
    assert client.get("/v1/usage", headers=bearer(secret)).json["total_units"] == 6


def test_a_participant_recording_without_duration_is_billed_by_its_decoded_length(app_factory):
    from tests.test_studies import create_study, submit_session, wait_until_analysed

    client = app_factory().test_client()
    secret = sign_up(client)["api_key"]["secret"]
    study = create_study(client, secret, stimulus_duration_ms=30_000).json
    # A real face throughout: a faceless recording would be low quality, and not billed at all.
    assert submit_session(client, study, data=recorder_webm(25, side=256, face=FACES / "img1.jpg")).status_code == 202
    assert wait_until_analysed(client, secret, study["id"], 1)["succeeded"] == 1
    assert client.get("/v1/usage", headers=bearer(secret)).json["total_units"] == 3


def test_async_jobs_reserve_units_against_the_quota_until_they_end(app_factory, monkeypatch):
    from api.domain import jobs

    app = app_factory(plans={"free": Plan("free", 3, 1000.0, 1000), "paid": Plan("paid", None, 1000.0, 1000)})
    services = app.extensions["emoscope"]
    queued = []
    monkeypatch.setattr(services.queue, "enqueue", queued.append)  # jobs wait until this test runs them
    client = app.test_client()
    secret = sign_up(client)["api_key"]["secret"]
    for _ in range(3):
        assert bearer_post(client, secret, TINY_FACE, detector="skip", **{"async": "true"}).status_code == 202
    assert_problem(bearer_post(client, secret, TINY_FACE, detector="skip", **{"async": "true"}), 402, "quota_exceeded")
    assert_problem(analyze(client, secret), 402, "quota_exceeded")
    assert jobs.execute(services.jobs, queued[0]) == "succeeded"  # settled: 1 used + 2 reserved
    assert_problem(analyze(client, secret), 402, "quota_exceeded")
    assert client.get("/v1/usage", headers=bearer(secret)).json["total_units"] == 1


def test_a_failed_job_releases_its_reservation(app_factory, monkeypatch):
    from api.domain import jobs

    app = app_factory(plans={"free": Plan("free", 1, 1000.0, 1000), "paid": Plan("paid", None, 1000.0, 1000)})
    services = app.extensions["emoscope"]
    queued = []
    monkeypatch.setattr(services.queue, "enqueue", queued.append)
    client = app.test_client()
    secret = sign_up(client)["api_key"]["secret"]
    assert bearer_post(client, secret, webm_with_random_blocks(), **{"async": "true"}).status_code == 202
    assert_problem(analyze(client, secret), 402, "quota_exceeded")
    assert jobs.execute(services.jobs, queued[0]) == "failed"
    assert analyze(client, secret).status_code == 200
    assert client.get("/v1/usage", headers=bearer(secret)).json["total_units"] == 1
