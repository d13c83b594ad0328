"""Audience studies through the API: the participant token's single power, sessions analysed as
jobs and kept only as timelines, receipts, the report (JSON and CSV), exact counting under load."""

from __future__ import annotations

import io
import json
import re
import threading
import time
import uuid
import zlib
from datetime import date

import pytest

from api.domain.report_pdf import report_pdf
from api.engine.preprocess import EMOTIONS
from tests.conftest import FACES, VIDEOS, sign_up
from tests.samples import pdf_text, reencode, short_clip
from tests.test_api import assert_problem

pytestmark = pytest.mark.data

# One second of a real face (10 frames at 10 fps) keeps 50 analysed sessions cheap.
CLIP = short_clip(VIDEOS / "single_face.mp4", frames=10, fps=10)
CONSENT = json.dumps({"version": "2026-11-v1", "accepted_at": "2026-12-02T10:00:00Z"})


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture()
def owner(app_factory):
    app = app_factory()
    client = app.test_client()
    return app, client, sign_up(client)["api_key"]["secret"]


def create_study(client, secret, **fields):
    body = {"name": "Spring ad", "stimulus_duration_ms": 1000, **fields}
    response = client.post("/v1/studies", headers=bearer(secret), json=body)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response


def submit_session(client, study, data=CLIP, headers=None, **fields):
    form = {"file": (io.BytesIO(data), "recording.mp4"), "stimulus_started_ms": "0", "consent": CONSENT, **fields}
    return client.post(
        f"/v1/studies/{study['id']}/sessions",
        data=form,
        headers={**bearer(study["participant_token"]), **(headers or {})},
    )


def wait_until_analysed(client, secret, study_id, expected, timeout=240.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = client.get(f"/v1/studies/{study_id}", headers=bearer(secret)).json["sessions"]
        if counts["processing"] == 0 and counts["succeeded"] + counts["low_quality"] + counts["failed"] >= expected:
            return counts
        time.sleep(0.2)
    raise AssertionError(f"sessions still processing after {timeout} s: {counts}")


def test_a_session_becomes_a_timeline_and_its_media_is_gone(owner, assert_contract):
    app, client, secret = owner
    study = assert_contract(create_study(client, secret)).json
    assert study["participant_path"] == f"/s/{study['participant_token']}"
    accepted = assert_contract(submit_session(client, study, segment="returning"))
    assert accepted.status_code == 202 and accepted.json["receipt"].startswith("rcpt_")
    assert wait_until_analysed(client, secret, study["id"], 1) == {
        "processing": 0,
        "succeeded": 1,
        "low_quality": 0,
        "failed": 0,
    }

    report = assert_contract(client.get(f"/v1/studies/{study['id']}/report", headers=bearer(secret))).json
    assert report["viewers"] == 1 and len(report["buckets"]) == 1
    (second,) = report["buckets"]
    assert second["viewers"] == second["viewers_with_face"] == 1
    assert second["enough_viewers"] is False and second["emotions"] is None  # one face is not an audience
    assert report["segments"][0]["segment"] == "returning"
    assert client.get("/v1/usage", headers=bearer(secret)).json["total_units"] == 1

    storage = app.extensions["emoscope"].jobs.storage
    assert not list(storage.root.rglob("media/*")) and not list(storage.root.rglob("results/*"))


def test_the_participant_token_only_submits_sessions(owner):
    _, client, secret = owner
    study = create_study(client, secret).json
    other = create_study(client, secret, name="Other").json
    token = bearer(study["participant_token"])
    photo = reencode(FACES / "img1.jpg", "JPEG", max_side=300)
    analyze = client.post("/v1/analyze", headers=token, data={"file": (io.BytesIO(photo), "p.jpg")})
    assert_problem(analyze, 401, "invalid_api_key")
    assert_problem(client.get(f"/v1/studies/{study['id']}/report", headers=token), 401, "invalid_api_key")
    assert_problem(client.get(f"/v1/studies/{study['id']}", headers=token), 401, "invalid_api_key")
    elsewhere = client.post(
        f"/v1/studies/{other['id']}/sessions",
        headers=token,
        data={"file": (io.BytesIO(CLIP), "r.mp4"), "stimulus_started_ms": "0", "consent": CONSENT},
    )
    assert_problem(elsewhere, 403, "invalid_participant_token")
    anonymous = client.post(f"/v1/studies/{study['id']}/sessions", data={"stimulus_started_ms": "0"})
    assert_problem(anonymous, 401, "missing_participant_token")
    # and an owner's API key is no participant token
    assert_problem(
        client.post(f"/v1/studies/{study['id']}/sessions", headers=bearer(secret)), 401, "missing_participant_token"
    )


def test_sessions_need_consent_and_a_video(owner, assert_contract):
    _, client, secret = owner
    study = create_study(client, secret).json
    no_consent = client.post(
        f"/v1/studies/{study['id']}/sessions",
        headers=bearer(study["participant_token"]),
        data={"file": (io.BytesIO(CLIP), "r.mp4"), "stimulus_started_ms": "0"},
    )
    assert_problem(no_consent, 400, "invalid_request")
    assert "consent" in no_consent.json["errors"]
    photo = reencode(FACES / "img1.jpg", "JPEG", max_side=300)
    assert_problem(assert_contract(submit_session(client, study, data=photo)), 415, "unsupported_media_type")
    assert_problem(submit_session(client, study, data=CLIP[: len(CLIP) // 3]), 422, "media_corrupt")
    assert client.get("/v1/usage", headers=bearer(secret)).json["total_units"] == 0


def test_the_receipt_deletes_that_session_only(owner, assert_contract):
    _, client, secret = owner
    study = create_study(client, secret).json
    first = submit_session(client, study).json
    submit_session(client, study)
    wait_until_analysed(client, secret, study["id"], 2)
    path = f"/v1/studies/{study['id']}/sessions/{first['receipt']}"
    assert assert_contract(client.delete(path)).status_code == 204
    assert client.get(f"/v1/studies/{study['id']}/report", headers=bearer(secret)).json["viewers"] == 1
    assert_problem(assert_contract(client.delete(path)), 404, "not_found")
    assert_problem(client.delete(f"/v1/studies/{study['id']}/sessions/rcpt_guessed"), 404, "not_found")


def test_report_as_csv_and_in_frame_buckets(owner, assert_contract):
    _, client, secret = owner
    study = create_study(client, secret).json
    submit_session(client, study)
    wait_until_analysed(client, secret, study["id"], 1)
    csv_response = client.get(f"/v1/studies/{study['id']}/report", headers={**bearer(secret), "Accept": "text/csv"})
    assert csv_response.status_code == 200 and csv_response.mimetype == "text/csv"
    lines = csv_response.get_data(as_text=True).splitlines()
    assert lines[0].startswith("start_ms,viewers,viewers_with_face") and len(lines) == 2
    fine = assert_contract(client.get(f"/v1/studies/{study['id']}/report?bucket_ms=200", headers=bearer(secret)))
    assert [b["start_ms"] for b in fine.json["buckets"]] == [0, 200, 400, 600, 800]
    assert_problem(
        client.get(f"/v1/studies/{study['id']}/report?bucket_ms=250", headers=bearer(secret)), 400, "invalid_request"
    )


def seed_sessions(app, study_id, timelines, status="succeeded"):
    """Analysed sessions written straight into the database, as their jobs leave them: reports over many
    viewers with known timelines, without analysing a recording each."""
    from api.store.db import StudySession, utcnow

    with app.extensions["emoscope"].db.session.begin() as session:
        for timeline in timelines:
            session.add(
                StudySession(
                    id=f"ses_{uuid.uuid4().hex}",
                    study_id=study_id,
                    receipt_hash=uuid.uuid4().hex,
                    status=status,
                    stimulus_started_ms=0,
                    consent_version="test",
                    consented_at=utcnow(),
                    segment=timeline.segment,
                    timeline=timeline.to_bytes(),
                    micro_onsets=json.dumps(timeline.micro_onsets_ms),
                    variables=json.dumps(timeline.variables) if timeline.variables else None,
                )
            )


def smiling_viewers(levels, stimulus_ms=3000, smile_from_ms=None):
    """A timeline per happy level; with `smile_from_ms`, each smiles at 0.9 from then on."""
    from tests.test_audience import viewer

    def level(h):
        return h if smile_from_ms is None else (lambda t: 0.9 if t >= smile_from_ms else h)

    return [viewer(level(h), seconds=stimulus_ms / 1000, stimulus_ms=stimulus_ms) for h in levels]


def test_the_report_sums_the_study_up_with_intervals(owner, assert_contract):
    app, client, secret = owner
    study = create_study(client, secret, stimulus_duration_ms=3000).json
    seed_sessions(app, study["id"], smiling_viewers((0.1, 0.2, 0.3, 0.4, 0.5)))
    path = f"/v1/studies/{study['id']}/report"
    summary = assert_contract(client.get(path, headers=bearer(secret))).json["summary"]
    assert summary["emotions"]["happy"]["mean"]["mean"] == pytest.approx(0.3, abs=1e-4)
    assert summary["valence"]["mean"] == pytest.approx(-1 / 6, abs=1e-4)
    assert summary["engagement"]["mean"] == pytest.approx(0.2, abs=1e-4)
    table = client.get(f"{path}?table=summary", headers={**bearer(secret), "Accept": "text/csv"})
    assert table.status_code == 200 and table.headers["Content-Disposition"].endswith('-summary.csv"')
    assert table.get_data(as_text=True).splitlines()[0].startswith("score,mean,ci95_low,ci95_high,viewers")
    assert_problem(client.get(f"{path}?table=everything", headers=bearer(secret)), 400, "invalid_request")


def test_top_moments_carry_their_significance(owner, assert_contract):
    app, client, secret = owner
    study = create_study(client, secret, stimulus_duration_ms=4000).json
    seed_sessions(app, study["id"], smiling_viewers([0.1 + 0.02 * i for i in range(8)], 4000, smile_from_ms=2000))
    path = f"/v1/studies/{study['id']}/report"
    # The largest lift first; the other expressions, at their lowest while everyone smiles, lift before it.
    moment = assert_contract(client.get(path, headers=bearer(secret))).json["top_moments"][0]
    assert (moment["emotion"], moment["time_ms"], moment["viewers"]) == ("happy", 2000, 8)
    assert moment["p_adjusted"] < 0.05 and moment["ci95"][0] < moment["lift"] < moment["ci95"][1]
    table = client.get(f"{path}?table=moments", headers={**bearer(secret), "Accept": "text/csv"})
    header, row, *_ = table.get_data(as_text=True).splitlines()
    assert header == "emotion,time_ms,mean,lift,ci95_low,ci95_high,effect_size,p,p_adjusted,viewers"
    assert row.startswith("happy,2000,")


def test_studies_compare_side_by_side_with_bootstrap_differences(owner, assert_contract):
    app, client, secret = owner
    a = create_study(client, secret, name="Cut A", stimulus_duration_ms=3000).json
    b = create_study(client, secret, name="Cut B", stimulus_duration_ms=4000).json
    seed_sessions(app, a["id"], smiling_viewers([0.1 + 0.02 * i for i in range(8)]))
    seed_sessions(app, b["id"], smiling_viewers([0.3 + 0.02 * i for i in range(8)], 4000))
    path = f"/v1/studies/compare?ids={a['id']},{b['id']}"
    comparison = assert_contract(client.get(path, headers=bearer(secret))).json
    assert [s["name"] for s in comparison["studies"]] == ["Cut A", "Cut B"]
    assert [len(s["buckets"]) for s in comparison["studies"]] == [3, 4]  # each on its own stimulus clock
    (difference,) = comparison["differences"]
    assert (difference["study_id"], difference["baseline_study_id"]) == (b["id"], a["id"])
    happy = difference["scores"]["happy"]
    assert happy["difference"] == pytest.approx(0.2, abs=1e-4)  # b - a
    assert happy["ci95"][0] < 0.2 < happy["ci95"][1]
    assert comparison["bootstrap"]["resamples"] == 2000
    assert client.get(path, headers=bearer(secret)).json == comparison  # a fixed seed: the same every time

    stranger = sign_up(client, "stranger@example.com", "Stranger")["api_key"]["secret"]
    theirs = create_study(client, stranger).json
    for ids in (f"{a['id']},{theirs['id']}", f"{a['id']},study_missing"):
        assert_problem(
            assert_contract(client.get(f"/v1/studies/compare?ids={ids}", headers=bearer(secret))), 404, "not_found"
        )
    for ids in (a["id"], f"{a['id']},{a['id']}", ",".join([a["id"]] + [f"s{i}" for i in range(5)]), f"{a['id']},"):
        assert_problem(client.get(f"/v1/studies/compare?ids={ids}", headers=bearer(secret)), 400, "invalid_request")


def test_link_variables_are_whitelisted_stored_filtered_and_broken_down(owner, assert_contract):
    import dataclasses

    app, client, secret = owner
    study = assert_contract(create_study(client, secret, stimulus_duration_ms=3000, variables=["age", "pid"])).json
    assert study["variables"] == ["age", "pid"]
    for bad in (["a", "b", "c", "d", "e", "f"], ["Age"], ["age", "age"], ["x" * 33]):
        refused = client.post(
            "/v1/studies", headers=bearer(secret), json={"name": "x", "stimulus_duration_ms": 1000, "variables": bad}
        )
        assert_problem(refused, 400, "invalid_request") and "variables" in refused.json["errors"]

    # Sessions: only whitelisted keys, short plain values.
    accepted = submit_session(client, study, variables=json.dumps({"age": "18-24", "pid": "p-1"}))
    assert accepted.status_code == 202, accepted.get_data(as_text=True)
    for variables in ({"city": "Paris"}, {"age": "x" * 65}, {"age": "<script>"}, {"age": 18}):
        refused = submit_session(client, study, variables=json.dumps(variables))
        assert_problem(assert_contract(refused), 400, "invalid_request")
    wait_until_analysed(client, secret, study["id"], 1)
    from api.store.db import StudySession

    with app.extensions["emoscope"].db.session.begin() as session:
        (stored,) = [json.loads(r.variables) for r in session.query(StudySession).filter_by(study_id=study["id"])]
    assert stored == {"age": "18-24", "pid": "p-1"}

    # Seven viewers aged 18-24 who smile, each with their pid, and five aged 25-34 who do not (the recorded
    # session above covers a third of the stimulus: it is low quality, left out).
    young = smiling_viewers([0.6 + 0.02 * i for i in range(7)])
    older = smiling_viewers([0.1 + 0.02 * i for i in range(5)])
    seed_sessions(
        app,
        study["id"],
        [dataclasses.replace(t, variables={"age": "18-24", "pid": f"p{i}"}) for i, t in enumerate(young)]
        + [dataclasses.replace(t, variables={"age": "25-34"}) for t in older],
    )
    path = f"/v1/studies/{study['id']}/report"
    report = assert_contract(client.get(path, headers=bearer(secret))).json
    age, pid = report["breakdown"]
    assert [(v["value"], v["viewers"]) for v in age["values"]] == [("18-24", 7), ("25-34", 5)]
    assert age["values"][1]["scores"]["happy"]["mean"] == pytest.approx(0.14, abs=1e-3)
    assert age["values"][1]["scores"]["valence"]["viewers"] == 5
    # No pid has five viewers: none is shown, they are only counted.
    assert pid["values"] == [] and pid["smaller_groups"] == {"values": 7, "viewers": 7} and pid["without_value"] == 5
    filtered = assert_contract(client.get(f"{path}?segment.age=25-34", headers=bearer(secret))).json
    assert filtered["viewers"] == 5 and filtered["filter"] == {"age": "25-34"}
    assert filtered["summary"]["emotions"]["happy"]["mean"]["mean"] == pytest.approx(0.14, abs=1e-3)
    csv_rows = (
        client.get(f"{path}?segment.age=25-34&table=breakdown", headers={**bearer(secret), "Accept": "text/csv"})
        .get_data(as_text=True)
        .splitlines()
    )
    assert csv_rows[0] == "variable,value,viewers,score,mean,ci95_low,ci95_high"
    assert {row.split(",")[1] for row in csv_rows[1:]} == {"25-34"}
    for bad in ("segment.city=Paris", "segment.age=" + "x" * 65):
        assert_problem(client.get(f"{path}?{bad}", headers=bearer(secret)), 400, "invalid_request")


def test_a_client_report_link_is_read_only_and_revocable(owner, assert_contract):
    from datetime import timedelta

    from api.store.db import ReportLink, utcnow

    app, client, secret = owner
    study = create_study(client, secret, stimulus_duration_ms=3000).json
    seed_sessions(app, study["id"], smiling_viewers([0.1 + 0.02 * i for i in range(6)]))
    links = f"/v1/studies/{study['id']}/report-links"
    link = assert_contract(client.post(links, headers=bearer(secret), json={"expires_in_days": 7})).json
    assert link["token"].startswith("rl_") and link["path"] == f"/r/{link['token']}" and link["revoked_at"] is None
    listed = assert_contract(client.get(links, headers=bearer(secret))).json["data"]
    assert [item["token"] for item in listed] == [link["token"]]  # shown again: derived, not stored

    page = client.get(link["path"])
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Spring ad" in html and 'id="summary-table"' in html
    assert page.headers["Cache-Control"] == "no-store" and page.headers["Referrer-Policy"] == "no-referrer"
    assert study["participant_token"] not in html and "/console/" not in html and 'id="player"' not in html
    csv = client.get(f"{link['path']}/report.csv?table=summary")
    assert csv.status_code == 200 and csv.get_data(as_text=True).startswith("score,mean")
    with app.extensions["emoscope"].db.session.begin() as session:
        stored = " ".join(str(v) for v in vars(session.get(ReportLink, link["id"])).values())
    assert link["token"] not in stored  # the database alone opens no report

    stranger = sign_up(client, "stranger@example.com", "Stranger")["api_key"]["secret"]
    assert_problem(client.post(links, headers=bearer(stranger)), 404, "not_found")
    assert_problem(client.delete(f"{links}/{link['id']}", headers=bearer(stranger)), 404, "not_found")
    assert_problem(client.post(links, headers=bearer(secret), json={"expires_in_days": 400}), 400, "invalid_request")
    assert client.get("/r/rl_guessed").status_code == 404

    assert assert_contract(client.delete(f"{links}/{link['id']}", headers=bearer(secret))).status_code == 204
    revoked = client.get(link["path"])
    assert revoked.status_code == 404 and "does not work" in revoked.get_data(as_text=True)
    assert client.get(f"{link['path']}/report.csv").status_code == 404
    assert client.get(links, headers=bearer(secret)).json["data"][0]["revoked_at"] is not None

    later = client.post(links, headers=bearer(secret)).json
    with app.extensions["emoscope"].db.session.begin() as session:
        session.get(ReportLink, later["id"]).expires_at = utcnow() - timedelta(seconds=1)
    assert client.get(later["path"]).status_code == 404  # expired
    assert client.delete(f"/v1/studies/{study['id']}", headers=bearer(secret)).status_code == 204


def test_stimulus_is_stored_served_to_participants_and_deleted_with_the_study(owner, assert_contract):
    app, client, secret = owner
    stimulus = (VIDEOS / "single_face.mp4").read_bytes()
    created = client.post(
        "/v1/studies",
        headers=bearer(secret),
        data={
            "name": "With video",
            "stimulus_duration_ms": "2400",
            "stimulus": (io.BytesIO(stimulus), "ad.mp4", "video/mp4"),
        },
    )
    assert assert_contract(created).status_code == 201 and created.json["has_stimulus"]
    study = created.json
    served = client.get(f"/v1/studies/{study['id']}/stimulus", headers=bearer(study["participant_token"]))
    assert served.status_code == 200 and served.data == stimulus and served.mimetype == "video/mp4"
    ranged = client.get(
        f"/v1/studies/{study['id']}/stimulus",  # the participant's player seeks too
        headers={**bearer(study["participant_token"]), "Range": "bytes=100-199"},
    )
    assert ranged.status_code == 206 and ranged.data == stimulus[100:200]
    assert assert_contract(client.delete(f"/v1/studies/{study['id']}", headers=bearer(secret))).status_code == 204
    assert_problem(client.get(f"/v1/studies/{study['id']}", headers=bearer(secret)), 404, "not_found")
    assert not list(app.extensions["emoscope"].jobs.storage.root.rglob("studies/*/stimulus"))


def test_fifty_concurrent_sessions_are_fifty_viewers_billed_once_each(owner):
    app, _, secret = owner
    client = app.test_client()
    study = create_study(client, secret).json
    retried_key = f"retry-{uuid.uuid4().hex}"
    statuses, lock = [], threading.Lock()

    def participant(i):
        headers = {"Idempotency-Key": retried_key if i < 2 else f"p-{i}-{uuid.uuid4().hex}"}
        status = submit_session(app.test_client(), study, headers=headers).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=participant, args=(i,)) for i in range(51)]  # two share one key
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # the shared key: one is accepted, the other replayed (202) or refused while the first is in flight (409)
    assert statuses.count(202) in (50, 51) and set(statuses) <= {202, 409}
    assert wait_until_analysed(client, secret, study["id"], 50)["succeeded"] == 50
    report = client.get(f"/v1/studies/{study['id']}/report", headers=bearer(secret)).json
    assert report["viewers"] == 50 and report["buckets"][0]["viewers"] == 50
    assert report["buckets"][0]["enough_viewers"] and report["buckets"][0]["emotions"] is not None
    usage = client.get("/v1/usage", headers=bearer(secret)).json
    assert usage["total_units"] == 50


def test_sessions_are_refused_once_the_studys_key_is_revoked_until_the_owner_rotates(owner, assert_contract):
    _, client, secret = owner
    second = client.post("/v1/keys", headers=bearer(secret), json={"name": "studies", "scopes": ["admin"]}).json
    study = create_study(client, second["secret"]).json
    assert client.delete(f"/v1/keys/{second['id']}", headers=bearer(secret)).status_code == 204
    refused = assert_contract(submit_session(client, study))
    assert_problem(refused, 403, "study_closed")
    assert "revoked" in refused.json["detail"]
    closed = client.get(study["participant_path"])  # the viewer learns it before recording
    assert closed.status_code == 403 and "not taking participants" in closed.get_data(as_text=True)
    assert client.get("/v1/usage", headers=bearer(secret)).json["total_units"] == 0

    rotated = assert_contract(client.post(f"/v1/studies/{study['id']}/participant-token", headers=bearer(secret)))
    assert rotated.status_code == 200
    fresh = rotated.json
    assert fresh["id"] == study["id"] and fresh["participant_token"] != study["participant_token"]
    assert fresh["participant_path"] == f"/s/{fresh['participant_token']}"
    assert_problem(submit_session(client, study), 403, "invalid_participant_token")  # the old link is dead
    assert client.get(study["participant_path"]).status_code == 404
    assert submit_session(client, fresh).status_code == 202  # metered against the rotating key now
    wait_until_analysed(client, secret, study["id"], 1)
    assert client.get("/v1/usage", headers=bearer(secret)).json["total_units"] == 1


def test_only_the_studys_owner_rotates_its_token(owner):
    _, client, secret = owner
    study = create_study(client, secret).json
    stranger = sign_up(client, "stranger@example.com")["api_key"]["secret"]
    assert_problem(
        client.post(f"/v1/studies/{study['id']}/participant-token", headers=bearer(stranger)), 404, "not_found"
    )
    assert_problem(
        client.post(f"/v1/studies/{study['id']}/participant-token", headers=bearer(study["participant_token"])),
        401,
        "invalid_api_key",
    )


def test_a_study_takes_at_most_its_session_cap(app_factory, assert_contract):
    app = app_factory(study_max_sessions=2)
    client = app.test_client()
    secret = sign_up(client)["api_key"]["secret"]
    study = create_study(client, secret).json
    assert submit_session(client, study).status_code == 202
    assert submit_session(client, study).status_code == 202
    full = assert_contract(submit_session(client, study))
    assert_problem(full, 409, "study_full")
    assert client.get(study["participant_path"]).status_code == 403
    wait_until_analysed(client, secret, study["id"], 2)
    assert client.get("/v1/usage", headers=bearer(secret)).json["total_units"] == 2


def _plans(**free):
    from api.domain.metering import Plan
    from tests.conftest import UNTHROTTLED

    return {**UNTHROTTLED, "free": Plan("free", 1_000_000, 10_000.0, 10_000, **free)}


def test_creating_studies_is_rate_limited_per_account(app_factory, assert_contract):
    app = app_factory(plans=_plans(studies_per_hour=2))
    client = app.test_client()
    secret = sign_up(client)["api_key"]["secret"]
    other_key = client.post("/v1/keys", headers=bearer(secret), json={"name": "b", "scopes": ["admin"]}).json["secret"]
    create_study(client, secret)
    create_study(client, other_key)
    limited = assert_contract(
        client.post("/v1/studies", headers=bearer(other_key), json={"name": "third", "stimulus_duration_ms": 1000})
    )
    assert_problem(limited, 429, "rate_limited")
    assert int(limited.headers["Retry-After"]) > 60  # two an hour: the next one in about 30 minutes
    stranger = sign_up(client, "stranger@example.com")["api_key"]["secret"]
    create_study(client, stranger)  # another account has its own bucket


def test_stimuli_are_capped_in_bytes_per_account(app_factory, assert_contract):
    app = app_factory(plans=_plans(study_storage_bytes=2 * len(CLIP) + 100))
    client = app.test_client()
    secret = sign_up(client)["api_key"]["secret"]

    def with_stimulus():
        return client.post(
            "/v1/studies",
            headers=bearer(secret),
            data={"name": "ad", "stimulus_duration_ms": "1000", "stimulus": (io.BytesIO(CLIP), "ad.mp4")},
        )

    first = with_stimulus().json
    assert with_stimulus().status_code == 201
    full = assert_contract(with_stimulus())
    assert_problem(full, 413, "study_storage_full")
    storage = app.extensions["emoscope"].jobs.storage
    assert len(list(storage.root.rglob("studies/*/stimulus"))) == 2  # the refused one was never stored
    create_study(client, secret)  # a study without a stimulus costs no storage
    assert client.delete(f"/v1/studies/{first['id']}", headers=bearer(secret)).status_code == 204
    assert with_stimulus().status_code == 201  # deleting frees its bytes


def _commits_fail(app):
    """From now on every commit that writes a new job or study fails, as a database refusing a row would."""
    from sqlalchemy import event
    from sqlalchemy.exc import OperationalError

    from api.store.db import Job, Study

    sessions = app.extensions["emoscope"].db.session

    def note(session, _context):
        if any(isinstance(row, (Job, Study)) for row in session.new):
            session.info["refuse_commit"] = True

    def refuse(session):
        if session.info.pop("refuse_commit", False):
            raise OperationalError("COMMIT", {}, Exception("the database refused the commit"))

    event.listen(sessions, "after_flush", note)
    event.listen(sessions, "before_commit", refuse)


def test_a_failed_commit_leaves_no_recording_or_stimulus_behind(owner):
    app, client, secret = owner
    study = create_study(client, secret).json
    _commits_fail(app)
    assert submit_session(client, study).status_code == 500
    stimulus = client.post(
        "/v1/studies",
        headers=bearer(secret),
        data={"name": "ad", "stimulus_duration_ms": "1000", "stimulus": (io.BytesIO(CLIP), "ad.mp4")},
    )
    assert stimulus.status_code == 500
    storage = app.extensions["emoscope"].jobs.storage
    assert [p for p in storage.root.rglob("*") if p.is_file()] == []


def test_the_sweep_deletes_objects_no_row_points_at(owner):
    import os
    import time as clock

    from api.domain import orphans

    app, client, secret = owner
    study = client.post(
        "/v1/studies",
        headers=bearer(secret),
        data={"name": "ad", "stimulus_duration_ms": "1000", "stimulus": (io.BytesIO(CLIP), "ad.mp4")},
    ).json
    context = app.extensions["emoscope"].jobs
    storage = context.storage
    for key in ("media/job_lost", "results/job_lost.json", "studies/study_lost/stimulus", "media/job_fresh"):
        storage.put(key, b"orphan")
    hour_ago = clock.time() - 3600
    for path in storage.root.rglob("*"):
        if path.is_file() and "fresh" not in path.name:
            os.utime(path, (hour_ago, hour_ago))
    assert orphans.sweep(context) == 3
    assert not storage.exists("media/job_lost") and not storage.exists("results/job_lost.json")
    assert not storage.exists("studies/study_lost/stimulus")
    assert storage.exists("media/job_fresh")  # may belong to a submission still committing
    assert storage.exists(f"studies/{study['id']}/stimulus")  # its row is there


def test_an_owner_caps_a_studys_sessions_below_the_deployments_cap(owner, assert_contract):
    _, client, secret = owner
    study = assert_contract(create_study(client, secret, max_sessions=1)).json
    assert study["max_sessions"] == 1
    assert submit_session(client, study).status_code == 202
    assert_problem(submit_session(client, study), 409, "study_full")
    assert client.get(f"/v1/studies/{study['id']}", headers=bearer(secret)).json["max_sessions"] == 1
    assert create_study(client, secret).json["max_sessions"] is None  # the deployment's cap only
    refused = client.post(
        "/v1/studies", headers=bearer(secret), json={"name": "x", "stimulus_duration_ms": 1000, "max_sessions": 0}
    )
    assert_problem(refused, 400, "invalid_request")
    assert "max_sessions" in refused.json["errors"]
    wait_until_analysed(client, secret, study["id"], 1)


def test_a_session_without_a_face_for_most_of_the_stimulus_is_low_quality_unbilled_and_left_out(owner, assert_contract):
    _, client, secret = owner
    study = create_study(client, secret).json
    assert submit_session(client, study).status_code == 202  # a face throughout
    empty_room = short_clip(VIDEOS / "no_face.mp4", frames=10, fps=10)
    assert submit_session(client, study, data=empty_room).status_code == 202  # a whole second without one
    counts = wait_until_analysed(client, secret, study["id"], 2)
    assert counts == {"processing": 0, "succeeded": 1, "low_quality": 1, "failed": 0}
    assert client.get("/v1/usage", headers=bearer(secret)).json["total_units"] == 1  # only the good session

    path = f"/v1/studies/{study['id']}/report"
    report = assert_contract(client.get(path, headers=bearer(secret))).json
    assert report["viewers"] == 1 and report["low_quality_sessions"] == 1 and not report["low_quality_included"]
    everyone = assert_contract(client.get(f"{path}?include_low_quality=true", headers=bearer(secret))).json
    assert everyone["viewers"] == 2 and everyone["low_quality_included"]
    assert everyone["buckets"][0]["viewers_with_face"] == 1


def test_the_participant_link_is_derived_again_never_stored(owner):
    from api.domain import studies
    from api.store.db import Study

    app, client, secret = owner
    created = create_study(client, secret).json
    shown_later = client.get(f"/v1/studies/{created['id']}", headers=bearer(secret)).json
    assert shown_later["participant_path"] == created["participant_path"]
    services = app.extensions["emoscope"]
    with services.db.session.begin() as session:
        row = session.get(Study, created["id"])
        stored = " ".join(str(v) for v in vars(row).values())
        assert created["participant_token"] not in stored  # the database alone holds no link
        assert studies.participant_token(row, "another-pepper-" + "x" * 32) != created["participant_token"]
        row.participant_token_nonce = None  # a study made before links could be shown again
    legacy = client.get(f"/v1/studies/{created['id']}", headers=bearer(secret)).json
    assert legacy["participant_token"] is None and legacy["participant_path"] is None
    assert client.get(created["participant_path"]).status_code == 200  # its old link still works


def preview_still(video, frame=5, width=640, brightness=1.0, shift=0) -> bytes:
    """One frame of a real clip as the participant page sends it: a JPEG 640 px wide (moved `shift`
    px to the right, grey where the frame no longer covers)."""
    import cv2
    import numpy as np

    capture = cv2.VideoCapture(str(video))
    for _ in range(frame + 1):
        ok, pixels = capture.read()
        assert ok
    capture.release()
    pixels = cv2.resize(pixels, (width, round(pixels.shape[0] * width / pixels.shape[1])))
    pixels = cv2.convertScaleAbs(pixels, alpha=brightness)
    if shift:
        moved = np.float32([[1, 0, shift], [0, 1, 0]])
        pixels = cv2.warpAffine(pixels, moved, (width, pixels.shape[0]), borderValue=(128, 128, 128))
    return cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()


def face_check(client, study, stills, token=None):
    form = {f"still_{n}": (io.BytesIO(data), f"still{n}.jpg") for n, data in enumerate(stills, 1)}
    return client.post(
        f"/v1/studies/{study['id']}/face-check", data=form, headers=bearer(token or study["participant_token"])
    )


def test_the_face_check_passes_a_real_face_and_hints_without_one(owner, assert_contract):
    _, client, secret = owner
    study = create_study(client, secret).json
    face = [preview_still(VIDEOS / "single_face.mp4", frame) for frame in (2, 8, 14)]
    passed = assert_contract(face_check(client, study, face)).json
    assert passed == {
        "ok": True,
        "stills": 3,
        "checks": {"face_visible": True, "framed": True, "facing": True, "lit": True},
        "hints": [],
    }
    empty = assert_contract(face_check(client, study, [preview_still(VIDEOS / "no_face.mp4", 20)])).json
    assert empty["ok"] is False and empty["checks"]["face_visible"] is False
    assert [hint["check"] for hint in empty["hints"]] == ["face_visible"]
    dark = face_check(client, study, [preview_still(VIDEOS / "single_face.mp4", 8, brightness=0.15)]).json
    assert dark["checks"]["lit"] is False or dark["checks"]["face_visible"] is False


def test_the_face_check_hints_at_a_face_cut_by_the_edge(owner, assert_contract):
    """Face boxes are clamped to the picture, so a cut face's box reaches the edge (bench/face_check.py)."""
    _, client, secret = owner
    study = create_study(client, secret).json
    # The man's face spans about x 200-385 of the 640 px still: moved 280 px left, 40 % of it is outside.
    cut = [preview_still(VIDEOS / "single_face.mp4", frame, shift=-280) for frame in (2, 8, 14)]
    answer = assert_contract(face_check(client, study, cut)).json
    assert answer["checks"]["face_visible"] is True and answer["checks"]["framed"] is False
    assert "framed" in [hint["check"] for hint in answer["hints"]]


def test_the_face_check_takes_only_the_participant_token_and_small_pictures(owner, assert_contract):
    _, client, secret = owner
    study = create_study(client, secret).json
    other = create_study(client, secret).json
    still = preview_still(VIDEOS / "single_face.mp4")
    assert_problem(assert_contract(face_check(client, study, [still], token=secret)), 401, "missing_participant_token")
    assert_problem(
        assert_contract(face_check(client, study, [still], token=other["participant_token"])),
        403,
        "invalid_participant_token",
    )
    big = b"\xff\xd8\xff" + b"\0" * (256 * 1024)
    assert_problem(assert_contract(face_check(client, study, [big])), 413, "media_too_large")
    assert_problem(assert_contract(face_check(client, study, [b"GIF89a" + b"\0" * 64])), 422, "invalid_still")
    assert_problem(
        assert_contract(face_check(client, study, [])), 415, "unsupported_media_type"
    )  # no parts: no multipart body


def test_the_report_as_a_pdf_to_hand_over(owner, assert_contract):
    _, client, secret = owner
    study = create_study(client, secret, name="Spring ad (cut B)").json
    assert submit_session(client, study).status_code == 202
    wait_until_analysed(client, secret, study["id"], 1)
    response = client.get(f"/v1/studies/{study['id']}/report", headers={**bearer(secret), "Accept": "application/pdf"})
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == f'attachment; filename="{study["id"]}-report.pdf"'
    text = pdf_text(response.data)
    assert "Audience report: Spring ad (cut B)" in text
    assert "1 viewer analysed" in text and "1.0 s stimulus" in text
    assert time.strftime("%Y-%m-%d") in text
    assert all(emotion in text for emotion in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"))
    assert "neutral\nattention" in text  # the chart's legend names the attention curve after the emotions
    assert "Summary scores" in text and "valence" in text and "attention" in text
    assert "withheld (too few viewers)" in text  # one viewer: no score is shown
    assert client.get(f"/v1/studies/{study['id']}/report", headers={"Accept": "application/pdf"}).status_code == 401


def test_the_report_pdf_shades_a_band_per_emotion_only_over_shown_seconds():
    def bucket(second: int, shown: bool) -> dict:
        statistic = {"mean": 0.3, "ci95": [0.2, 0.4], "share_above_threshold": 0.1}
        return {
            "start_ms": second * 1000,
            "emotions": {emotion: statistic for emotion in EMOTIONS} if shown else None,
            "attention": {"share": 0.8, "viewers_attending": 4, "ci95": [0.4, 0.96]} if shown else None,
        }

    def filled_paths(shown: list[bool]) -> int:
        summary = {"emotions": {emotion: {"mean": None} for emotion in EMOTIONS}, "valence": None, "engagement": None}
        report = {
            "viewers": 5,
            "low_quality_included": False,
            "low_quality_sessions": 0,
            "stimulus_duration_ms": len(shown) * 1000,
            "bucket_ms": 1000,
            "buckets": [bucket(second, s) for second, s in enumerate(shown)],
            "summary": {**summary, "attention": None},
        }
        pdf = report_pdf("Bands", report, date(2026, 1, 1))
        content = b"".join(zlib.decompress(s) for s in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S))
        return len(re.findall(rb"\bh\s+f\b", content))  # closed and filled polygons; the legend's squares are `re f`

    assert filled_paths([True, True, False, True]) == len(EMOTIONS)  # one band per curve
    assert filled_paths([False, True, False, False]) == 0  # one second alone: no curve, so no band
