"""Audience studies in a real browser: the participant page with Chromium's fake camera showing a real face,
and the console's study pages. Reuses tests/test_browser.py's server, page and screenshot fixtures."""

from __future__ import annotations

import io
import json
import re
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests

from api.engine.preprocess import EMOTIONS
from api.web.routes.participant import CONSENT_VERSION
from tests.conftest import FACES, VIDEOS
from tests.samples import pdf_text
from tests.test_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    RECORD_CAMERA_STREAMS,
    TRACK_STATES,
    browser,
    expect,
    page,  # noqa: F401  (a fixture)
    playwright_api,
    server,  # noqa: F401  (a fixture)
    shoot,  # noqa: F401  (a fixture)
    watched_page,
)

pytestmark = [pytest.mark.browser, pytest.mark.data]

CAMERA_SIZE = (640, 480)
CAMERA_FPS = 10  # the fake camera's rate: few frames to analyse per recorded second
CONSENT = json.dumps({"version": CONSENT_VERSION, "accepted_at": "2026-12-02T10:00:00Z"})


def photo_frames(photo: Path, count: int, size=CAMERA_SIZE) -> list[np.ndarray]:
    """A real photo fitted on a grey frame, drifting a few pixels from frame to frame like a person at a webcam."""
    width, height = size
    image = cv2.imread(str(photo))
    scale = min(width / image.shape[1], height / image.shape[0]) * 0.9
    face = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    frames = []
    for i in range(count):
        canvas = np.full((height, width, 3), 128, np.uint8)
        dx, dy = int(6 * np.sin(i / 3)), int(3 * np.cos(i / 4))
        top, left = (height - face.shape[0]) // 2 + dy, (width - face.shape[1]) // 2 + dx
        canvas[top : top + face.shape[0], left : left + face.shape[1]] = face
        frames.append(canvas)
    return frames


def write_y4m(path: Path, frames: list[np.ndarray], fps: int) -> Path:
    """YUV4MPEG2, the format Chromium's fake camera plays (in a loop): a header, then raw I420 frames."""
    height, width = frames[0].shape[:2]
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            out.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Chromium whose fake camera films a real face, granting camera access without a prompt (overrides
    tests/test_browser.py's browser, so its `page` fixture runs here)."""
    camera = write_y4m(tmp_path_factory.mktemp("camera") / "face.y4m", photo_frames(FACES / "img1.jpg", 20), CAMERA_FPS)
    args = [*CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", f"--use-file-for-fake-video-capture={camera}"]
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def owner(server):
    """(base URL, the admin key of a signed-up owner) on the browser tests' server."""
    base, _ = server
    signup = requests.post(
        f"{base}/v1/signup",
        timeout=30,
        json={"email": "studies@example.com", "password": PASSWORD, "account_name": "Studies Co"},
    )
    assert signup.status_code == 201, signup.text
    return base, signup.json()["api_key"]["secret"]


def api(owner, method: str, path: str, **kwargs) -> requests.Response:
    base, key = owner
    return requests.request(method, f"{base}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=60, **kwargs)


def wait_until_analysed(owner, study_id: str, expected: int, timeout: float = 90.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        counts = api(owner, "GET", f"/v1/studies/{study_id}").json()["sessions"]
        if counts["processing"] == 0 and counts["succeeded"] + counts["low_quality"] + counts["failed"] >= expected:
            return counts
        assert time.monotonic() < deadline, f"sessions still processing after {timeout} s: {counts}"
        time.sleep(0.3)


def sessions_posted(page) -> list:
    posted = []
    page.on(
        "request",
        lambda request: (
            posted.append(request) if request.method == "POST" and request.url.endswith("/sessions") else None
        ),
    )
    return posted


def start_viewing(page):
    """Consent, then past the face check (whatever it says) to the stimulus."""
    page.click("#consent-accept")
    expect(page.locator("#check")).to_be_visible()
    page.click("#check-start")


def test_refusing_consent_records_nothing(page, owner):
    study = api(owner, "POST", "/v1/studies", json={"name": "Refused", "stimulus_duration_ms": 2000}).json()
    page.add_init_script(RECORD_CAMERA_STREAMS)
    posted = sessions_posted(page)
    page.goto(study["participant_path"])
    expect(page.locator("#consent")).to_be_visible()
    expect(page.locator("#consent")).to_contain_text("No sound is recorded")
    page.click("#consent-refuse")
    expect(page.locator("#refused")).to_contain_text("Nothing was recorded")
    expect(page.locator("#viewing")).to_be_hidden()
    assert page.evaluate(TRACK_STATES) == []  # the camera was never asked for
    assert posted == []
    assert api(owner, "GET", f"/v1/studies/{study['id']}").json()["sessions"] == {
        "processing": 0,
        "succeeded": 0,
        "low_quality": 0,
        "failed": 0,
    }


def test_stopping_midway_turns_the_camera_off_and_sends_nothing(page, owner):
    study = api(owner, "POST", "/v1/studies", json={"name": "Stopped", "stimulus_duration_ms": 30000}).json()
    page.add_init_script(RECORD_CAMERA_STREAMS)
    posted = sessions_posted(page)
    page.goto(study["participant_path"])
    start_viewing(page)
    page.click("#cancel")  # as soon as it shows: the recorder may still be starting
    expect(page.locator("#status")).to_contain_text("nothing was sent")
    assert page.evaluate(TRACK_STATES) == ["ended"]
    expect(page.locator("#consent")).to_be_visible()  # free to start again, or to leave
    assert posted == []


def test_the_face_check_passes_a_real_face_and_hints_without_one(browser, page, owner, shoot, tmp_path):
    base, _ = owner
    study = api(owner, "POST", "/v1/studies", json={"name": "Checked", "stimulus_duration_ms": 1000}).json()
    page.add_init_script(RECORD_CAMERA_STREAMS)
    posted = sessions_posted(page)
    page.goto(study["participant_path"])
    with page.expect_response("**/face-check") as answer:
        page.click("#consent-accept")
    assert answer.value.status == 200, answer.value.text()
    assert answer.value.request.headers["authorization"] == f"Bearer {study['participant_token']}"
    assert answer.value.json()["stills"] == 3
    expect(page.locator("#check-state")).to_contain_text("clearly visible")
    expect(page.locator("#check-hints li")).to_have_count(0)
    expect(page.locator("#check-start")).to_have_text("Start")
    shoot(page, "participant_face_check")
    page.click("#check-cancel")
    expect(page.locator("#status")).to_contain_text("nothing was sent")
    assert page.evaluate(TRACK_STATES) == ["ended"]
    assert posted == []  # nothing recorded nor sent during the check

    # Another viewer of the same study, whose fake camera films an animation with no face: the hint,
    # then 'Continue anyway' records as usual.
    capture, frames = cv2.VideoCapture(str(VIDEOS / "no_face.mp4")), []
    while len(frames) < 20:
        ok, frame = capture.read()
        assert ok
        frames.append(cv2.resize(frame, CAMERA_SIZE))
    capture.release()
    camera = write_y4m(tmp_path / "no_face.y4m", frames, CAMERA_FPS)
    args = [*CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", f"--use-file-for-fake-video-capture={camera}"]
    # A second Chromium from the module's Playwright (one sync Playwright per thread), its own fake camera.
    empty_room = browser.browser_type.launch(executable_path=str(CHROMIUM), args=args)
    try:
        with watched_page(empty_room, base, "participant_face_check_no_face", shoot) as page:
            page.on("dialog", lambda dialog: dialog.accept())
            page.goto(study["participant_path"])
            with page.expect_response("**/face-check") as answer:
                page.click("#consent-accept")
            assert answer.value.status == 200
            assert answer.value.json()["checks"]["face_visible"] is False
            expect(page.locator("#check-hints li")).to_have_count(1)
            expect(page.locator("#check-hints")).to_contain_text("We can't see a face")
            expect(page.locator("#check-start")).to_have_text("Continue anyway")
            with page.expect_response("**/sessions") as recorded:
                page.click("#check-start")
            assert recorded.value.status == 202  # continuing is allowed; the quality gate judges the upload
            expect(page.locator("#done")).to_be_visible()
    finally:
        empty_room.close()


def test_consent_records_uploads_and_the_session_is_in_the_report(page, owner, shoot):
    study = api(owner, "POST", "/v1/studies", json={"name": "Countdown", "stimulus_duration_ms": 2000}).json()
    page.add_init_script(RECORD_CAMERA_STREAMS)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(study["participant_path"])
    with page.expect_response("**/sessions") as answer:
        start_viewing(page)
        expect(page.locator("#countdown")).to_be_visible()  # no stored stimulus: a countdown of its duration
        assert page.evaluate(TRACK_STATES) == ["live"]
        shoot(page, "participant_recording")
    assert answer.value.status == 202, answer.value.text()
    sent = answer.value.request
    assert sent.headers["authorization"] == f"Bearer {study['participant_token']}"
    assert len(sent.headers["idempotency-key"]) >= 32
    receipt = answer.value.json()["receipt"]
    expect(page.locator("#done")).to_be_visible()
    assert page.input_value("#receipt") == receipt
    assert page.evaluate(TRACK_STATES) == ["ended"]  # the camera is off once the stimulus is over
    assert page.evaluate("document.getElementById('upload-progress').value") == 1

    assert wait_until_analysed(owner, study["id"], 1) == {
        "processing": 0,
        "succeeded": 1,
        "low_quality": 0,
        "failed": 0,
    }
    report = api(owner, "GET", f"/v1/studies/{study['id']}/report").json()
    assert report["viewers"] == 1 and len(report["buckets"]) == 2
    assert all(b["viewers"] == 1 for b in report["buckets"])  # the recording covers the whole stimulus
    assert max(b["viewers_with_face"] for b in report["buckets"]) == 1  # the real face on the fake camera

    with page.expect_download() as saved:
        page.click("#receipt-download")
    assert receipt in Path(saved.value.path()).read_text()
    page.click("#withdraw")
    expect(page.locator("#withdrawn")).to_be_visible()
    assert api(owner, "GET", f"/v1/studies/{study['id']}/report").json()["viewers"] == 0


def test_a_viewer_who_left_withdraws_with_the_receipt_on_the_withdrawal_page(browser, owner, shoot):
    base, _ = owner
    study = api(owner, "POST", "/v1/studies", json={"name": "Later", "stimulus_duration_ms": 2000}).json()
    sent = requests.post(
        f"{base}/v1/studies/{study['id']}/sessions",
        timeout=60,
        headers={"Authorization": f"Bearer {study['participant_token']}"},
        files={"file": ("webcam.mp4", expression_change_clip(), "video/mp4")},
        data={"stimulus_started_ms": "0", "consent": CONSENT},
    )
    assert sent.status_code == 202, sent.text
    wait_until_analysed(owner, study["id"], 1)
    # The browser logs the 404 of a mistyped receipt; nothing else may fail.
    with watched_page(
        browser, base, "participant_withdrawal", shoot, expected_console_errors=("status of 404",)
    ) as page:
        page.goto(study["participant_path"] + "/withdraw")
        page.fill("#receipt", "rcpt_mistyped")
        page.click("#withdraw")
        expect(page.locator("#error")).to_be_visible()
        page.fill("#receipt", sent.json()["receipt"])
        page.click("#withdraw")
        expect(page.locator("#withdrawn")).to_be_visible()
    assert api(owner, "GET", f"/v1/studies/{study['id']}/report").json()["viewers"] == 0


def expression_change_clip(fps: int = 5) -> bytes:
    """2.6 s at a webcam: a real neutral face (img10) for 2 s, then a real smiling one (img1), as H.264 MP4.
    Seven viewers like this make happiness rise at 2 s: a top moment the report must list, significant
    after the correction for the 18 (second, expression) pairs a 3-second stimulus tests."""
    return webcam_clip(photo_frames(FACES / "img10.jpg", 2 * fps) + photo_frames(FACES / "img1.jpg", 3 * fps)[:3], fps)


def webcam_clip(frames: list[np.ndarray], fps: int) -> bytes:
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = CAMERA_SIZE[0], CAMERA_SIZE[1], "yuv420p"
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return buffer.getvalue()


def sign_in_to_console(page) -> None:
    page.goto("/console/signin")
    page.fill("input[name=email]", "studies@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")


def submit_viewers(owner, study: dict, clip: bytes, count: int) -> None:
    base, _ = owner
    for i in range(count):
        sent = requests.post(
            f"{base}/v1/studies/{study['id']}/sessions",
            timeout=60,
            headers={
                "Authorization": f"Bearer {study['participant_token']}",
                "Idempotency-Key": f"viewer-{i}-{study['id']}",
            },
            files={"file": ("webcam.mp4", clip, "video/mp4")},
            data={"stimulus_started_ms": "0", "consent": CONSENT},
        )
        assert sent.status_code == 202, sent.text


def test_console_study_from_creation_to_report(page, owner, shoot):
    base, _ = owner
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in_to_console(page)
    page.click("#studies-link")
    page.fill("#create-study input[name=name]", "Spring ad")
    page.set_input_files("#stimulus-file", str(VIDEOS / "single_face.mp4"))
    expect(page.locator("#duration-s")).not_to_have_value("")  # read from the video by the page
    duration_s = float(page.input_value("#duration-s"))
    page.click("#create-study button[type=submit]")
    link = page.input_value("#participant-link")
    assert link.startswith(f"{base}/s/pt_")
    study_id = page.get_attribute("#report-chart", "data-study-id")
    shoot(page, "console_study_created")
    study = api(owner, "GET", f"/v1/studies/{study_id}").json()
    assert study["has_stimulus"] and study["stimulus_duration_ms"] == pytest.approx(duration_s * 1000)

    # One viewer through the participant page, watching the stored stimulus...
    page.goto(link)
    with page.expect_response("**/sessions") as answer:
        start_viewing(page)
        expect(page.locator("#stimulus")).to_be_visible()
    assert answer.value.status == 202
    # ...and seven more through the API, whose face turns from neutral to smiling at 2 s.
    submit_viewers(owner, {"id": study_id, "participant_token": link.rsplit("/", 1)[1]}, expression_change_clip(), 7)
    assert wait_until_analysed(owner, study_id, 8)["succeeded"] == 8

    page.goto(f"/console/studies/{study_id}")
    expect(page.locator("#viewers")).to_contain_text("8 viewers analysed, attending 100% of the time")
    expect(page.locator("svg.study-chart")).to_be_visible()
    assert page.locator("polyline.emotion-curve").count() >= len(EMOTIONS)
    # The eight viewers face the camera throughout: the attention curve stands at 100%.
    attention = page.locator("polyline.attention-curve")
    expect(attention).to_have_count(1)
    heights = {point.split(",")[1] for point in attention.get_attribute("points").split()}
    assert heights == {f"{20:.1f}"}  # y of 100% (the chart's top margin)
    moments = page.locator(".moment-button")
    expect(moments.first).to_be_visible()
    first = int(moments.first.get_attribute("data-time-ms"))
    assert moments.first.get_attribute("data-emotion") == "happy" and first == 2000
    significance = page.locator(".moment-significance").first
    expect(significance).to_contain_text("8 viewers, p = ")
    assert float(significance.text_content().split("p = ")[1].split()[0]) < 0.05
    page.wait_for_function("() => document.getElementById('player').readyState >= 1")
    moments.first.click()
    page.wait_for_function("ms => Math.abs(document.getElementById('player').currentTime * 1000 - ms) < 50", arg=first)
    assert page.get_attribute(".scrubber", "data-ms") == str(first)
    # The scrubber follows the player, and clicking the chart seeks the player.
    page.evaluate("document.getElementById('player').currentTime = 0.5")
    page.wait_for_function("() => document.querySelector('.scrubber').dataset.ms === '500'")
    page.locator("svg.study-chart").click(position={"x": 45, "y": 100})  # just right of the time axis' start
    page.wait_for_function("() => document.getElementById('player').currentTime < 0.2")
    shoot(page, "console_study_report")

    with page.expect_download() as csv_download:
        page.click("#csv-export")
    lines = Path(csv_download.value.path()).read_text().splitlines()
    assert lines[0].startswith("start_ms,viewers,viewers_with_face") and len(lines) == 1 + 3
    with page.expect_download() as png_download:
        page.click("#png-export")
    assert png_download.value.suggested_filename == f"{study_id}-chart.png"
    png = cv2.imread(png_download.value.path())
    assert png.shape[:2] == (580, 1600) and png.std() > 10  # titled chart, drawn at twice its size
    # Hovering a second shows its figures.
    band = page.locator("rect.bucket-band").nth(2)
    assert "8 viewers with a face" in band.locator("title").text_content()
    assert "happy" in band.locator("title").text_content() and "attention 100%" in band.locator("title").text_content()
    # The summary: each score with its interval over the eight viewers; happy peaks where the faces smile.
    summary = page.locator("#summary-table")
    expect(summary.locator("tr[data-score=happy]")).to_contain_text("2 s:")
    for score in ("valence", "engagement", "attention"):
        expect(summary.locator(f"tr[data-score={score}]")).not_to_contain_text("withheld")
    expect(summary.locator("tr[data-score=attention]")).to_contain_text("100%")
    with page.expect_download() as summary_download:
        page.click("#summary-csv-export")
    rows = Path(summary_download.value.path()).read_text().splitlines()
    assert rows[0].startswith("score,mean,ci95_low,ci95_high") and len(rows) == 1 + len(EMOTIONS) + 3
    assert rows[1 + EMOTIONS.index("happy")].split(",")[5] == "2000"  # the peak second
    shoot(page, "console_study_summary")


def test_the_owner_sees_the_link_again_and_a_new_link_retires_the_old_one(browser, owner, shoot):
    retired = ("status of 404",)  # the old link, opened on purpose
    with watched_page(browser, owner[0], "console_study_new_link", shoot, expected_console_errors=retired) as page:
        page.on("dialog", lambda dialog: dialog.accept())
        sign_in_to_console(page)
        page.click("#studies-link")
        page.fill("#create-study input[name=name]", "Link ad")
        page.fill("#duration-s", "3")
        page.click("#create-study button[type=submit]")
        link = page.input_value("#participant-link")
        study_id = page.get_attribute("#report-chart", "data-study-id")
        page.goto("/console/studies")  # away and back: the same link, whenever asked
        page.goto(f"/console/studies/{study_id}")
        assert page.input_value("#participant-link") == link
        page.click("button:has-text('Make a new link')")
        expect(page.locator("#participant-link")).not_to_have_value(link)
        new_link = page.input_value("#participant-link")
        assert new_link.startswith(link.rsplit("/", 1)[0] + "/pt_")
        assert page.goto(link).status == 404
        assert page.goto(new_link).status == 200
        expect(page.locator("body")).to_contain_text("Link ad")


def test_console_compares_two_cuts_of_an_ad(page, owner, shoot):
    # Cut A: five viewers who turn from neutral to smiling at 2 s; cut B: five who stay neutral.
    fps = 5
    cuts = {"Cut A": expression_change_clip(fps), "Cut B": webcam_clip(photo_frames(FACES / "img10.jpg", 13), fps)}
    ids = []
    for name, clip in cuts.items():
        study = api(owner, "POST", "/v1/studies", json={"name": name, "stimulus_duration_ms": 2600}).json()
        submit_viewers(owner, study, clip, 5)
        ids.append(study["id"])
    for study_id in ids:
        assert wait_until_analysed(owner, study_id, 5)["succeeded"] == 5

    sign_in_to_console(page)
    page.goto("/console/studies")
    for study_id in ids:
        page.check(f"tr[data-study-id='{study_id}'] input[type=checkbox]")
    page.click("#compare-button")
    expect(page.locator("h1")).to_have_text("Comparing 2 studies")
    curves = page.locator("polyline.compare-curve")
    expect(curves).to_have_count(2)
    expect(page.locator("polygon.compare-band")).to_have_count(2)
    assert {curves.nth(i).get_attribute("data-study-id") for i in range(2)} == set(ids)
    # B minus A: cut B's viewers smile less, and the interval says so (it stays below zero).
    happy = page.locator("tr.compare-row[data-score=happy] td.difference")
    difference, low, high = (float(v) for v in re.findall(r"[+-]\d+\.\d", happy.text_content()))
    assert difference < 0 and low <= difference <= high < 0
    shoot(page, "console_study_compare")
    page.select_option("#compare-score", "attention")
    expect(page.locator("svg.compare-chart")).to_have_attribute("aria-label", "attention per second, study by study")
    expect(curves).to_have_count(2)


def test_a_panel_link_s_variables_are_kept_with_the_session_and_filter_the_report(page, owner, shoot):
    study = api(
        owner, "POST", "/v1/studies", json={"name": "Panel ad", "stimulus_duration_ms": 2000, "variables": ["age"]}
    ).json()
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{study['participant_path']}?age=18-24&utm_source=panel")
    expect(page.locator("#link-variables")).to_contain_text("age = 18-24")  # said before consent
    expect(page.locator("#link-variables")).not_to_contain_text("utm_source")
    shoot(page, "participant_link_variables")
    with page.expect_response("**/sessions") as answer:
        start_viewing(page)
    # Accepted: the page sent no utm_source (a key the study does not take is refused with a 400).
    assert answer.value.status == 202, answer.value.text()
    assert wait_until_analysed(owner, study["id"], 1)["succeeded"] == 1

    path = f"/v1/studies/{study['id']}/report"
    assert api(owner, "GET", f"{path}?segment.age=18-24").json()["viewers"] == 1
    assert api(owner, "GET", f"{path}?segment.age=25-34").json()["viewers"] == 0
    (age,) = api(owner, "GET", path).json()["breakdown"]
    assert age["smaller_groups"] == {"values": 1, "viewers": 1}  # one viewer is never shown alone

    sign_in_to_console(page)
    page.goto(f"/console/studies/{study['id']}?segment.age=18-24")
    expect(page.locator("#report-filter")).to_contain_text("age = 18-24")
    expect(page.locator("#viewers")).to_contain_text("1 viewer analysed")
    expect(page.locator("#breakdown")).to_contain_text("1 more value with fewer viewers")
    shoot(page, "console_study_filtered")
    page.click("#report-filter a")
    expect(page.locator("#report-filter")).to_have_count(0)


def test_a_client_reads_the_report_through_a_shared_link_until_it_is_revoked(browser, page, owner, shoot):
    study = api(owner, "POST", "/v1/studies", json={"name": "Client ad", "stimulus_duration_ms": 2600}).json()
    submit_viewers(owner, study, expression_change_clip(), 5)
    assert wait_until_analysed(owner, study["id"], 5)["succeeded"] == 5
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in_to_console(page)
    page.goto(f"/console/studies/{study['id']}")
    page.click("#create-report-link")
    link = page.locator("#report-links input.secret").first.input_value()
    assert "/r/rl_" in link

    base, _ = owner
    # Another browser context: no console cookie. The revoked link's page answers 404, which Chromium logs.
    with watched_page(browser, base, "client_report", shoot, expected_console_errors=("status of 404",)) as client_page:
        client_page.goto(link)
        expect(client_page.locator("#shared-note")).to_contain_text("read-only")
        expect(client_page.locator("svg.study-chart")).to_be_visible()
        expect(client_page.locator("#viewers")).to_contain_text("5 viewers analysed")
        expect(client_page.locator("#summary-table tr[data-score=happy]")).to_contain_text("2 s:")
        assert client_page.locator("#participant, #sharing, #delete-study, #player").count() == 0
        with client_page.expect_download() as csv_download:
            client_page.click("#csv-export")
        assert Path(csv_download.value.path()).read_text().startswith("start_ms,viewers")
        with client_page.expect_download() as png_download:
            client_page.click("#png-export")
        assert png_download.value.suggested_filename == f"{study['id']}-chart.png"
        with client_page.expect_download() as pdf_download:
            client_page.click("#pdf-export")
        assert pdf_download.value.suggested_filename == f"{study['id']}-report.pdf"
        assert "Audience report: Client ad" in pdf_text(Path(pdf_download.value.path()).read_bytes())
        shoot(client_page, "client_report_page")

        page.click(".revoke-report-link")
        expect(page.locator("#report-links tr.revoked")).to_have_count(1)
        client_page.reload()
        expect(client_page.locator("h1")).to_have_text("This report link does not work")


PHONE = {"width": 390, "height": 844}
SIDEWAYS_SCROLL = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


def test_on_a_phone_the_consent_the_player_and_the_report_chart_fit_the_screen(browser, server, shoot):
    """At 390 x 844 px nothing scrolls sideways, and the report chart is tall enough to read."""
    base, _ = server
    signup = requests.post(  # an account of its own: the studies owner's hourly study allowance is spent above
        f"{base}/v1/signup",
        timeout=30,
        json={"email": "phone@example.com", "password": PASSWORD, "account_name": "Phone Co"},
    )
    assert signup.status_code == 201, signup.text
    owner = (base, signup.json()["api_key"]["secret"])
    study = api(
        owner,
        "POST",
        "/v1/studies",
        data={"name": "An advertisement with a rather long name on a phone", "stimulus_duration_ms": "3000"},
        files={"stimulus": ("ad.mp4", (VIDEOS / "single_face.mp4").read_bytes(), "video/mp4")},
    ).json()
    link = api(owner, "POST", f"/v1/studies/{study['id']}/report-links", json={}).json()
    context = browser.new_context(base_url=base, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        page.goto(study["participant_path"])
        expect(page.locator("#consent")).to_be_visible()
        assert page.evaluate(SIDEWAYS_SCROLL) == 0
        shoot(page, "phone_consent")
        start_viewing(page)
        expect(page.locator("#stimulus")).to_be_visible()
        player = page.locator("#stimulus").bounding_box()
        assert player["x"] >= 0 and player["x"] + player["width"] <= PHONE["width"]
        assert page.evaluate(SIDEWAYS_SCROLL) == 0
        shoot(page, "phone_player")
        page.click("#cancel")

        page.goto(link["path"])
        chart = page.locator("svg.study-chart")
        expect(chart).to_be_visible()
        assert page.evaluate(SIDEWAYS_SCROLL) == 0
        box = chart.bounding_box()
        assert box["height"] >= 200 and box["x"] + box["width"] <= PHONE["width"]
        # Tick labels at least 10 CSS px tall once the chart is scaled to the screen.
        label_heights = page.eval_on_selector_all(
            "svg.study-chart text", "ts => ts.map(t => t.getBoundingClientRect().height)"
        )
        assert label_heights and min(label_heights) >= 10
        shoot(page, "phone_report_chart")
    finally:
        context.close()
