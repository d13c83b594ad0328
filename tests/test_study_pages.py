"""The participant page and the console's study pages through Flask's test client (the browser tests drive them)."""

from __future__ import annotations

import io
import re

import pytest

from api.web.routes.participant import CONSENT_VERSION
from tests.conftest import VIDEOS, sign_up
from tests.test_console import console_post, hidden_fields, owner, sign_in  # noqa: F401  (owner: a fixture)
from tests.test_studies import bearer, submit_session, wait_until_analysed

pytestmark = pytest.mark.data

STIMULUS = (VIDEOS / "single_face.mp4").read_bytes()
INLINE = r"<script(?![^>]*\ssrc=)|\sstyle=|<style|\son\w+="


def create_in_console(client, key_id: int, **fields):
    form = {"name": "Spring ad", "duration_s": "2.4", "api_key_id": str(key_id), **fields}
    return client.post(
        "/console/studies",
        content_type="multipart/form-data",
        data={**hidden_fields(client.get("/console/studies")), **form},
    )


def participant_url(page) -> str:
    return re.search(r'id="participant-link"[^>]*value="([^"]+)"', page.get_data(as_text=True)).group(1)


def test_participant_page_names_the_study_and_asks_consent_first(owner):
    client, secret, _ = owner
    study = client.post(
        "/v1/studies", headers=bearer(secret), json={"name": "Spring ad", "stimulus_duration_ms": 3000}
    ).json
    page = client.get(study["participant_path"])
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Spring ad" in html
    assert f'data-study-id="{study["id"]}"' in html and f'data-consent-version="{CONSENT_VERSION}"' in html
    assert 'data-has-stimulus="false"' in html and 'data-duration-ms="3000"' in html
    assert page.headers["Cache-Control"] == "no-store" and page.headers["Referrer-Policy"] == "no-referrer"
    assert study["participant_token"] not in html  # the script reads it from the address, nothing echoes it
    assert not re.search(INLINE, html)
    assert "/console" not in html  # a participant is not sent to the owners' pages
    for unknown in ("/s/pt_guessed", "/s/not-even-a-token", "/s/pt_guessed/withdraw"):
        missing = client.get(unknown)
        assert missing.status_code == 404 and "does not work" in missing.get_data(as_text=True)


def test_the_withdrawal_page_asks_only_for_the_receipt(owner):
    client, secret, _ = owner
    study = client.post(
        "/v1/studies", headers=bearer(secret), json={"name": "Spring ad", "stimulus_duration_ms": 3000}
    ).json
    page = client.get(study["participant_path"] + "/withdraw")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Spring ad" in html and 'id="receipt"' in html
    assert page.headers["Cache-Control"] == "no-store" and page.headers["Referrer-Policy"] == "no-referrer"
    assert study["participant_token"] not in html and not re.search(INLINE, html)
    # Withdrawal stays open when the study no longer takes sessions: the viewer's right does not end with it.
    client.delete(
        f"/v1/keys/{client.get('/v1/keys', headers=bearer(secret)).json['data'][0]['id']}", headers=bearer(secret)
    )
    assert client.get(study["participant_path"]).status_code == 403  # closed: the study's key is revoked
    assert client.get(study["participant_path"] + "/withdraw").status_code == 200


def test_console_creates_a_study_and_shows_its_link_whenever_asked(owner):
    client, secret, _ = owner
    key_id = client.get("/v1/keys", headers=bearer(secret)).json["data"][0]["id"]
    created = create_in_console(client, key_id, stimulus=(io.BytesIO(STIMULUS), "ad.mp4", "video/mp4"))
    assert created.status_code == 201, created.get_data(as_text=True)
    link = participant_url(created)
    assert re.fullmatch(r"http://localhost/s/pt_[\w-]+", link)
    assert client.get(link.removeprefix("http://localhost")).status_code == 200
    listing = client.get("/console/studies").get_data(as_text=True)
    study_id = re.search(r'data-study-id="(study_\w+)"', listing).group(1)
    report = client.get(f"/console/studies/{study_id}")
    html = report.get_data(as_text=True)
    assert report.status_code == 200 and participant_url(report) == link  # the same link, any time
    # A new link: the old one stops working, the page shows the new one, and the API agrees.
    rotated = client.post(f"/console/studies/{study_id}/participant-token", data=hidden_fields(report))
    assert rotated.status_code == 303
    new_link = participant_url(client.get(f"/console/studies/{study_id}"))
    assert new_link != link and client.get(link.removeprefix("http://localhost")).status_code == 404
    api_view = client.get(f"/v1/studies/{study_id}", headers=bearer(secret)).json
    assert f"http://localhost{api_view['participant_path']}" == new_link
    assert 'id="player"' in html and not re.search(INLINE, html)
    # the stimulus streams to the signed-in owner in byte ranges (the player seeks)
    ranged = client.get(f"/console/studies/{study_id}/stimulus", headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and ranged.data == STIMULUS[:100] and ranged.mimetype == "video/mp4"
    assert client.get(f"/console/studies/{study_id}/stimulus").data == STIMULUS
    api = client.get(f"/v1/studies/{study_id}", headers=bearer(secret)).json
    assert api["has_stimulus"] and api["stimulus_duration_ms"] == 2400


def test_a_reloaded_create_study_form_creates_no_second_study(owner):
    client, secret, _ = owner
    key_id = client.get("/v1/keys", headers=bearer(secret)).json["data"][0]["id"]
    form = {
        **hidden_fields(client.get("/console/studies")),
        "name": "Once",
        "duration_s": "2",
        "api_key_id": str(key_id),
    }
    assert client.post("/console/studies", data=form).status_code == 201
    again = client.post("/console/studies", data=form)
    assert again.status_code == 409 and "already created" in again.get_data(as_text=True)
    assert client.get("/console/studies").get_data(as_text=True).count('class="study-row"') == 1


def test_console_study_form_validates(owner):
    client, secret, _ = owner
    key_id = client.get("/v1/keys", headers=bearer(secret)).json["data"][0]["id"]
    assert create_in_console(client, key_id, duration_s="0.5").status_code == 400
    assert create_in_console(client, key_id, duration_s="soon").status_code == 400
    assert create_in_console(client, key_id + 99).status_code == 400  # not a key of this account
    not_video = create_in_console(client, key_id, stimulus=(io.BytesIO(b"not a video"), "ad.mp4", "video/mp4"))
    assert not_video.status_code == 415 and not_video.mimetype == "text/html"
    assert client.get("/v1/usage", headers=bearer(secret)).status_code == 200
    assert client.get("/console/studies").get_data(as_text=True).count('class="study-row"') == 0


@pytest.mark.filterwarnings("error::sqlalchemy.exc.SAWarning")  # deleting a study with sessions deletes each once
def test_report_page_csv_and_deletion_are_the_owners_only(owner):
    client, secret, _ = owner
    study = client.post(
        "/v1/studies", headers=bearer(secret), json={"name": "Spring ad", "stimulus_duration_ms": 1000}
    ).json
    assert submit_session(client, study).status_code == 202
    wait_until_analysed(client, secret, study["id"], 1)
    page = client.get(f"/console/studies/{study['id']}").get_data(as_text=True)
    assert "1 viewer analysed" in page and 'id="withheld-note"' in page  # one face is not an audience
    assert 'id="no-moments"' in page
    assert "data-report='{" in page and 'id="player"' not in page
    csv = client.get(f"/console/studies/{study['id']}/report.csv")
    api_csv = client.get(f"/v1/studies/{study['id']}/report", headers={**bearer(secret), "Accept": "text/csv"})
    assert csv.status_code == 200 and csv.mimetype == "text/csv" and csv.data == api_csv.data
    assert "attachment" in csv.headers["Content-Disposition"]

    stranger = client.application.test_client()  # another account's owner, signed in to the console
    sign_up(stranger, "other@example.com", "Other")
    assert sign_in(stranger, email="other@example.com").status_code == 303
    for path in ("", "/report.csv"):
        assert stranger.get(f"/console/studies/{study['id']}{path}").status_code == 404
    assert console_post(stranger, f"/console/studies/{study['id']}/delete").status_code == 404

    assert console_post(client, f"/console/studies/{study['id']}/delete").status_code == 303
    assert "is deleted" in client.get("/console/studies").get_data(as_text=True)
    assert client.get(f"/v1/studies/{study['id']}", headers=bearer(secret)).status_code == 404
    assert client.get(study["participant_path"]).status_code == 404


def test_console_compares_the_owners_own_studies(owner):
    from tests.test_studies import seed_sessions, smiling_viewers

    client, secret, _ = owner
    ids = []
    for name, levels in (("Cut A", (0.1, 0.12, 0.14, 0.16, 0.18)), ("Cut B", (0.4, 0.42, 0.44, 0.46, 0.48))):
        study = client.post("/v1/studies", headers=bearer(secret), json={"name": name, "stimulus_duration_ms": 3000})
        ids.append(study.json["id"])
        seed_sessions(client.application, ids[-1], smiling_viewers(levels))
    listing = client.get("/console/studies").get_data(as_text=True)
    assert listing.count('form="compare-form"') == 2 + 1 and 'id="compare-button"' in listing
    page = client.get(f"/console/studies/compare?id={ids[0]}&id={ids[1]}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Cut B − Cut A" in html and "data-comparison='{" in html and not re.search(INLINE, html)
    happy = re.search(r'data-score="happy">(.*?)</tr>', html, re.S).group(1)
    assert "+30.0" in happy  # Cut B's viewers smile 30 points more
    assert client.get(f"/console/studies/compare?ids={ids[0]},{ids[1]}").status_code == 200
    assert client.get(f"/console/studies/compare?id={ids[0]}").status_code == 400

    stranger = client.application.test_client()
    sign_up(stranger, "other@example.com", "Other")
    assert sign_in(stranger, email="other@example.com").status_code == 303
    assert stranger.get(f"/console/studies/compare?id={ids[0]}&id={ids[1]}").status_code == 404


def test_link_variables_from_the_console_to_the_participant_page_and_the_breakdown(owner):
    import dataclasses

    from tests.test_studies import seed_sessions, smiling_viewers

    client, secret, _ = owner
    key_id = client.get("/v1/keys", headers=bearer(secret)).json["data"][0]["id"]
    created = create_in_console(client, key_id, duration_s="3", variables="age, region")
    assert created.status_code == 201 and 'id="link-variables"' in created.get_data(as_text=True)
    path = participant_url(created).removeprefix("http://localhost")
    study_id = re.search(r'data-study-id="(study_\w+)"', created.get_data(as_text=True)).group(1)
    assert client.get(f"/v1/studies/{study_id}", headers=bearer(secret)).json["variables"] == ["age", "region"]
    assert create_in_console(client, key_id, variables="Age!").status_code == 400

    # The page lists what it keeps from its address (the whitelisted variables only) before consent.
    page = client.get(f"{path}?age=18-24&utm_source=panel").get_data(as_text=True)
    assert "<code>age = 18-24</code>" in page and "utm_source" not in page
    assert 'data-variables=\'{"age": "18-24"}\'' in page
    bad = client.get(f"{path}?age=" + "x" * 65)
    assert bad.status_code == 400 and "malformed" in bad.get_data(as_text=True)

    young = [dataclasses.replace(t, variables={"age": "18-24"}) for t in smiling_viewers([0.6] * 5)]
    older = [dataclasses.replace(t, variables={"age": "25-34"}) for t in smiling_viewers([0.1] * 6)]
    seed_sessions(client.application, study_id, young + older)
    html = client.get(f"/console/studies/{study_id}").get_data(as_text=True)
    assert 'class="breakdown-row" data-value="18-24"' in html and 'data-value="25-34"' in html
    assert f'href="/console/studies/{study_id}?segment.age=18-24"' in html
    filtered = client.get(f"/console/studies/{study_id}?segment.age=25-34").get_data(as_text=True)
    assert 'id="report-filter"' in filtered and "6 viewers analysed" in filtered
    assert f"/console/studies/{study_id}/report.csv?segment.age=25-34" in filtered
    csv = client.get(f"/console/studies/{study_id}/report.csv?table=breakdown&segment.age=25-34")
    assert csv.status_code == 200 and csv.get_data(as_text=True).count("25-34,6,") == 10
    assert client.get(f"/console/studies/{study_id}?segment.city=Paris").status_code == 400


def test_console_shares_the_report_with_a_client_and_revokes_it(owner):
    client, secret, _ = owner
    study = client.post(
        "/v1/studies", headers=bearer(secret), json={"name": "Shared ad", "stimulus_duration_ms": 3000}
    ).json
    page = client.get(f"/console/studies/{study['id']}")
    form = hidden_fields(page)
    made = client.post(f"/console/studies/{study['id']}/report-links", data=form)
    assert made.status_code == 303 and made.headers["Location"].endswith("#sharing")
    assert client.post(f"/console/studies/{study['id']}/report-links", data=form).status_code == 303  # a reload
    html = client.get(f"/console/studies/{study['id']}").get_data(as_text=True)
    (link,) = re.findall(r'value="http://localhost(/r/rl_[\w-]+)"', html)  # one link, not two
    assert "A new client link is ready" in html and not re.search(INLINE, html)
    shared = client.application.test_client().get(link)  # no console session
    assert shared.status_code == 200 and "Shared ad" in shared.get_data(as_text=True)
    link_id = re.search(r'class="report-link" data-link-id="([\w]+)"', html).group(1)

    stranger = client.application.test_client()
    sign_up(stranger, "other@example.com", "Other")
    assert sign_in(stranger, email="other@example.com").status_code == 303
    assert console_post(stranger, f"/console/studies/{study['id']}/report-links/{link_id}/revoke").status_code == 404

    assert console_post(client, f"/console/studies/{study['id']}/report-links/{link_id}/revoke").status_code == 303
    assert 'class="report-link revoked"' in client.get(f"/console/studies/{study['id']}").get_data(as_text=True)
    assert client.get(link).status_code == 404
