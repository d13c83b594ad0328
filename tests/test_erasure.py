"""DELETE /v1/account/data: studies, jobs and what requests keep of their media go; usage for invoicing stays."""

from __future__ import annotations

import io
import time

import pytest
from sqlalchemy import select

from api.domain import metering
from api.store.db import ApiRequest, StudySession, UsageEvent
from tests.conftest import FACES, VIDEOS, sign_up
from tests.samples import reencode, short_clip
from tests.test_api import assert_problem

pytestmark = [pytest.mark.postgres, pytest.mark.data]

TINY_FACE = reencode(FACES / "img1.jpg", "JPEG", max_side=64)


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def analyze(client, secret: str, idempotency_key: str | None = None, **fields):
    headers = bearer(secret) | ({"Idempotency-Key": idempotency_key} if idempotency_key else {})
    return client.post(
        "/v1/analyze", headers=headers, data={"file": (io.BytesIO(TINY_FACE), "f"), "detector": "skip", **fields}
    )


def finished_job(client, secret: str) -> str:
    job_id = analyze(client, secret, **{"async": "true"}).json["id"]
    deadline = time.monotonic() + 60
    while client.get(f"/v1/jobs/{job_id}", headers=bearer(secret)).json["status"] != "succeeded":
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.1)
    return job_id


@pytest.fixture(params=["sqlite", "postgresql"])
def app(request, app_factory):
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    app = app_factory(url)
    yield app
    app.extensions["emoscope"].db.engine.dispose()


def test_deletes_jobs_and_stored_answers_and_keeps_usage(app, assert_contract):
    client, services = app.test_client(), app.extensions["emoscope"]
    owner = sign_up(client)
    secret, account_id, key_id = owner["api_key"]["secret"], owner["account"]["id"], owner["api_key"]["id"]
    assert analyze(client, secret, idempotency_key="first").status_code == 200
    job_id = finished_job(client, secret)
    assert services.jobs.storage.exists(f"results/{job_id}.json")
    with services.db.session.begin() as session:  # a request still being analysed at that moment
        metering.begin(session, "still-running", account_id, key_id, "running", "f" * 64)

    deleted = assert_contract(client.delete("/v1/account/data", headers=bearer(secret)))
    assert deleted.status_code == 200
    assert deleted.json == {"studies_deleted": 0, "jobs_deleted": 1, "requests_scrubbed": 2}

    assert client.get(f"/v1/jobs/{job_id}", headers=bearer(secret)).status_code == 404
    assert not services.jobs.storage.exists(f"results/{job_id}.json")
    with services.db.session.begin() as session:
        requests = {r.id: r for r in session.scalars(select(ApiRequest).where(ApiRequest.account_id == account_id))}
        assert len(requests) == 3  # the ledger rows stay: usage events point at them
        finished = [r for r in requests.values() if r.id != "still-running"]
        assert all((r.response_body, r.idempotency_key, r.fingerprint) == (None, None, "") for r in finished)
        running = requests["still-running"]
        assert (running.idempotency_key, running.fingerprint) == ("running", "f" * 64)
        assert len(list(session.scalars(select(UsageEvent).where(UsageEvent.account_id == account_id)))) == 2
    usage = client.get("/v1/usage", headers=bearer(secret)).json
    assert (usage["total_units"], usage["total_requests"]) == (2, 2)

    again = client.delete("/v1/account/data", headers=bearer(secret))
    assert again.json == {"studies_deleted": 0, "jobs_deleted": 0, "requests_scrubbed": 0}
    # The stored answer is gone, so a retry with the old key is analysed (and billed) anew, not replayed.
    retried = analyze(client, secret, idempotency_key="first")
    assert retried.status_code == 200 and "Idempotent-Replayed" not in retried.headers
    assert client.get("/v1/usage", headers=bearer(secret)).json["total_units"] == 3


def test_other_accounts_keep_their_data(app):
    client = app.test_client()
    mine = sign_up(client, "me@example.com")["api_key"]["secret"]
    theirs = sign_up(client, "them@example.com", "Them")["api_key"]["secret"]
    their_job = finished_job(client, theirs)
    assert client.delete("/v1/account/data", headers=bearer(mine)).json["jobs_deleted"] == 0
    assert client.get(f"/v1/jobs/{their_job}", headers=bearer(theirs)).json["result"] is not None


def test_deleting_data_needs_an_admin_key(app, assert_contract):
    client = app.test_client()
    owner = sign_up(client)["api_key"]["secret"]
    app_key = client.post("/v1/keys", json={"name": "app"}, headers=bearer(owner)).json["secret"]
    refused = client.delete("/v1/account/data", headers=bearer(app_key))
    assert_problem(assert_contract(refused), 403, "insufficient_scope")
    assert_problem(assert_contract(client.delete("/v1/account/data")), 401, "missing_api_key")


def test_deletes_studies_with_their_stimulus_and_session_timelines(app):
    client, services = app.test_client(), app.extensions["emoscope"]
    secret = sign_up(client)["api_key"]["secret"]
    clip = short_clip(VIDEOS / "single_face.mp4", frames=5, fps=10)
    study = client.post(
        "/v1/studies",
        headers=bearer(secret),
        data={"name": "ad", "stimulus_duration_ms": "1000", "stimulus": (io.BytesIO(clip), "ad.mp4")},
    ).json
    consent = '{"version": "v1", "accepted_at": "2026-12-02T10:00:00Z"}'
    submitted = client.post(
        f"/v1/studies/{study['id']}/sessions",
        headers=bearer(study["participant_token"]),
        data={"file": (io.BytesIO(clip), "r.mp4"), "stimulus_started_ms": "0", "consent": consent},
    )
    assert submitted.status_code == 202
    deleted = client.delete("/v1/account/data", headers=bearer(secret)).json
    assert deleted["studies_deleted"] == 1
    assert client.get(f"/v1/studies/{study['id']}", headers=bearer(secret)).status_code == 404
    assert not [p for p in services.jobs.storage.root.rglob("*") if p.is_file()]  # stimulus and recording gone
    with services.db.session.begin() as session:
        assert session.scalars(select(StudySession)).first() is None
