"""The demo page and the console in a real browser: Debian's Chromium driven by Playwright, gunicorn on loopback.

Screenshots go to var/test-artifacts/ (or EMOSCOPE_TEST_ARTIFACTS); each test prints where.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from api.wiring.config import REPO_ROOT
from tests.conftest import FACES, VIDEOS
from tests.servers import gunicorn, server_env
from tests.test_billing import PRICE_ID, WEBHOOK_SECRET, stripe_base  # noqa: F401  (stripe_base: localstripe)

pytestmark = [pytest.mark.browser, pytest.mark.data]

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

CHROMIUM = Path(os.environ.get("EMOSCOPE_CHROMIUM", "/usr/bin/chromium"))
# Root in CI needs --no-sandbox; the rest keep Chromium from calling home on a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # A synthetic camera (a moving test pattern) for the webcam test.
    "--use-fake-device-for-media-stream",
]
ARTIFACTS = Path(os.environ.get("EMOSCOPE_TEST_ARTIFACTS", REPO_ROOT / "var" / "test-artifacts"))
ANALYSIS_TIMEOUT_MS = 90_000
PASSWORD = "a long passphrase for the browser"

if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)", allow_module_level=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(base URL, demo key) of gunicorn on embedded defaults, the console cookie allowed over plain http.
    The study tests' one free account creates more studies than the free plan's 10 an hour."""
    state = tmp_path_factory.mktemp("browser")
    with gunicorn(state, EMOSCOPE_COOKIE_SECURE="false", EMOSCOPE_FREE_STUDIES_PER_HOUR="60") as base:
        admin = subprocess.run(
            [sys.executable, "-m", "api.wiring.cli", "demo-key"],
            env=server_env(state, port=0),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        yield base, re.search(r"(emo_\w+_[\w-]+)", admin.stdout).group(1)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture()
def shoot(capsys):
    """Saves a full-page screenshot and prints its path, also when the test passes."""

    def take(page, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        with capsys.disabled():
            print(f"\n  screenshot: {path}")

    return take


@contextlib.contextmanager
def watched_page(browser, base_url: str, name: str, shoot, expected_console_errors: tuple[str, ...] = ()):
    """A fresh page; the test fails on any script error or console error (a CSP violation is one)
    other than those the test expects (text fragments)."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(ANALYSIS_TIMEOUT_MS)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text} at {message.location['url']}")
            if message.type == "error" and not any(text in message.text for text in expected_console_errors)
            else None
        ),
    )
    yield page
    shoot(page, name)
    context.close()
    assert not problems, problems


@pytest.fixture()
def page(browser, server, request, shoot):
    with watched_page(browser, server[0], request.node.name, shoot) as page:
        yield page


OVERLAY_ALPHA = """([id, sourceWidth, points]) => {
    const canvas = document.getElementById(id);
    const scale = canvas.width / sourceWidth;  // the overlay may be drawn at a reduced scale
    const context = canvas.getContext('2d');
    return points.map(([x, y]) => context.getImageData(Math.floor(x * scale), Math.floor(y * scale), 1, 1).data[3]);
}"""


def analyze_in_page(page) -> dict:
    with page.expect_response("**/v1/analyze") as answer:
        page.click("#analyze")
    assert answer.value.status == 200, answer.value.text()
    return answer.value.json()


def test_photo_gets_boxes_and_emotion_bars(page, server):
    base, key = server
    page.goto(f"/demo#key={key}")
    assert page.url == f"{base}/demo"  # the key left the address bar for this tab's storage
    page.set_input_files("#media", str(FACES / "couple.jpg"))
    result = analyze_in_page(page)
    assert len(result["faces"]) == 2
    expect(page.locator(".face-card")).to_have_count(2)
    expect(page.locator("meter.emotion-bar")).to_have_count(14)
    expect(page.locator("#result-title")).to_have_text("2 faces")
    for face in result["faces"]:
        dominant = face["dominant_emotion"]
        assert page.locator(f"meter[data-emotion={dominant}]").first.is_visible()
    # Each box is outlined where the API says, and the face inside it is left uncovered.
    for face in result["faces"]:
        x, y, w, h = (face["box"][k] for k in "xywh")
        left_edge, bottom_edge, centre = (x, y + h / 2), (x + w / 2, y + h), (x + w / 2, y + h / 2)
        points = [left_edge, bottom_edge, centre]
        assert page.evaluate(OVERLAY_ALPHA, ["photo-overlay", result["media"]["width"], points]) == [255, 255, 0]


def test_blazeface_with_the_mesh_shows_head_pose_and_draws_the_mesh(page, server):
    _, key = server
    page.goto(f"/demo#key={key}")
    page.set_input_files("#media", str(FACES / "img1.jpg"))
    page.select_option("#detector", "blazeface")
    page.check("#mesh")
    result = analyze_in_page(page)
    (face,) = result["faces"]
    assert result["model"]["detector"] == "blazeface" and len(face["mesh"]) == 468
    expect(page.locator(".face-card .pose")).to_contain_text("facing the camera")
    # The mesh is drawn: the nose tip (point 1), inside the face and uncovered without the mesh, is painted.
    nose = face["mesh"][1][:2]
    assert page.evaluate(OVERLAY_ALPHA, ["photo-overlay", result["media"]["width"], [nose]]) == [255]


def with_an_event(result: dict) -> dict:
    """The answer with one micro-expression on its first real track, at a real analysed frame."""
    track = result["tracks"][0]
    apex = track["timeline"][len(track["timeline"]) // 2]["timestamp_ms"]
    event = {
        "track_id": track["track_id"],
        "kind": "micro",
        "onset_ms": max(0, apex - 100),
        "apex_ms": apex,
        "offset_ms": apex + 150,
        "duration_ms": 250,
        "intensity": 0.4,
        "regions": [],
        "emotion": "surprise",
        "emotion_probability": 0.3,
    }
    return {**result, "micro_expressions": [event]}


def test_clip_gets_overlays_timelines_and_seekable_events(page, server):
    _, key = server
    page.goto(f"/demo#key={key}")
    page.set_input_files("#media", str(VIDEOS / "single_face.mp4"))
    page.select_option("#fps", "10")
    result = analyze_in_page(page)
    tracks = result["tracks"]
    assert tracks
    expect(page.locator("figure.timeline")).to_have_count(len(tracks))
    expect(page.locator("figure.timeline polyline.emotion-line")).to_have_count(7 * len(tracks))
    page.wait_for_function("() => document.getElementById('clip').readyState >= 2")  # Chromium plays the clip
    if not result["micro_expressions"]:
        # The spotter found nothing in this calm clip: the same real answer once more, with one event
        # added on its real track, so that the markers and seeking to an apex are exercised.
        page.route("**/v1/analyze", lambda route: route.fulfill(json=with_an_event(result)))
        result = analyze_in_page(page)
        page.wait_for_function("() => document.getElementById('clip').readyState >= 2")
    events = result["micro_expressions"]
    expect(page.locator(".micro-event")).to_have_count(len(events))
    expect(page.locator(".event-button")).to_have_count(len(events))

    first = events[0]
    at_apex = "ms => Math.abs(document.getElementById('clip').currentTime * 1000 - ms) < 50"
    page.locator(".micro-event").first.click()
    page.wait_for_function(at_apex, arg=first["apex_ms"])
    assert page.evaluate("document.getElementById('clip').paused")
    # The overlay follows the video: at the apex it outlines that track's box of the nearest analysed frame.
    frame = min(result["frames"], key=lambda f: abs(f["timestamp_ms"] - first["apex_ms"]))
    box = next(f["box"] for f in frame["faces"] if f["track_id"] == first["track_id"])
    page.wait_for_function(
        f"args => ({OVERLAY_ALPHA})(args)[0] === 255",
        arg=["clip-overlay", result["media"]["width"], [(box["x"], box["y"] + box["h"] / 2)]],
    )
    # Clicking the chart elsewhere seeks there; the list's buttons seek to the apex too.
    page.locator("figure.timeline svg").first.click(position={"x": 5, "y": 60})
    page.wait_for_function("() => document.getElementById('clip').currentTime < 0.2")
    page.locator(".event-button").first.click()
    page.wait_for_function(at_apex, arg=first["apex_ms"])
    expect(page.locator(".event-button").first).to_contain_text(f"lasted {round(first['duration_ms'])} ms from onset")


def test_a_failed_file_clears_the_previous_answer(browser, server, shoot, tmp_path):
    base, key = server
    # The browser logs the 415 answer; nothing else may fail.
    with watched_page(browser, base, "demo_failed_file", shoot, expected_console_errors=("status of 415",)) as page:
        page.goto(f"/demo#key={key}")
        page.set_input_files("#media", str(FACES / "couple.jpg"))
        analyze_in_page(page)
        expect(page.locator(".face-card")).to_have_count(2)
        junk = tmp_path / "notes.jpg"
        junk.write_bytes(b"not a picture at all")
        page.set_input_files("#media", str(junk))
        page.click("#analyze")
        expect(page.locator("#error")).to_be_visible()
        expect(page.locator("#result")).to_be_hidden()
        expect(page.locator(".face-card")).to_have_count(0)


# Counts the page's camera streams; injected by the browser before any page script (CSP does not apply).
RECORD_CAMERA_STREAMS = """
window.cameraStreams = [];
const getUserMedia = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
navigator.mediaDevices.getUserMedia = async (constraints) => {
  const stream = await getUserMedia(constraints);
  window.cameraStreams.push(stream);
  return stream;
};
"""
TRACK_STATES = "() => window.cameraStreams.flatMap(stream => stream.getTracks().map(track => track.readyState))"


def test_webcam_only_after_consent_and_off_after_capture(page, server):
    base, key = server
    page.context.grant_permissions(["camera"], origin=base)
    page.add_init_script(RECORD_CAMERA_STREAMS)
    page.goto(f"/demo#key={key}")
    page.click("#webcam-open")
    expect(page.locator("#webcam-consent")).to_be_visible()
    assert page.evaluate(TRACK_STATES) == []  # opening the panel asks nothing of the camera
    page.click("#webcam-allow")
    page.wait_for_function("() => document.getElementById('webcam-video').videoWidth > 0")
    assert page.evaluate(TRACK_STATES) == ["live"]
    with page.expect_response("**/v1/analyze") as answer:
        page.click("#webcam-capture")
    assert answer.value.status == 200 and answer.value.json()["media"]["format"] == "jpeg"
    assert page.evaluate(TRACK_STATES) == ["ended"]
    expect(page.locator("#webcam")).to_be_hidden()
    expect(page.locator("#result-title")).to_have_text("0 faces")  # the synthetic camera shows no one


def sign_in_to_console(page, email: str) -> None:
    """On the sign-in page (where /console leads a visitor without a session)."""
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")


def test_console_creates_and_revokes_a_key(page, server, shoot):
    base, _ = server
    signup = requests.post(
        f"{base}/v1/signup",
        timeout=30,
        json={"email": "browser@example.com", "password": PASSWORD, "account_name": "Browser Co"},
    )
    assert signup.status_code == 201, signup.text
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page.on("dialog", lambda dialog: dialog.accept())

    page.goto("/console")
    expect(page).to_have_url(f"{base}/console/signin")
    sign_in_to_console(page, "browser@example.com")
    expect(page.locator("h1")).to_have_text("Browser Co")
    expect(page.locator("#billing-off")).to_be_visible()  # embedded defaults run without Stripe

    page.fill("#create-key input[name=name]", "from the browser")
    page.click("#create-key button[type=submit]")
    secret = page.input_value("#new-secret")
    assert secret.startswith("emo_")
    page.click("button[data-copy=new-secret]")
    expect(page.locator("button[data-copy=new-secret]")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    probe = f"{base}/v1/jobs/job_none"  # 404 with a valid key, 401 with a revoked one
    assert requests.get(probe, headers={"X-API-Key": secret}, timeout=30).status_code == 404

    row = page.locator("tr.key-row", has_text="from the browser")
    row.locator("button:has-text('Revoke')").click()
    expect(page.locator(".notice")).to_contain_text("is revoked")
    expect(page.locator("tr.key-row", has_text="from the browser")).to_contain_text("revoked")
    assert requests.get(probe, headers={"X-API-Key": secret}, timeout=30).status_code == 401
    expect(page.locator("#new-secret")).to_have_count(0)  # never shown again
    shoot(page, "console_after_revoking")

    page.click("button:has-text('Sign out')")
    expect(page).to_have_url(f"{base}/console/signin")


def fill_card(page, number: str) -> None:
    for field, value in {
        "number": number,
        "exp_month": "12",
        "exp_year": "35",
        "cvc": "123",
        "postal_code": "75001",
    }.items():
        page.fill(f"#card-element input[placeholder={field}]", value)


def test_console_moves_to_the_paid_plan_with_stripe_js(browser, stripe_base, tmp_path, shoot):
    # localstripe serves its stand-in for Stripe.js; the page's policy must let it run and call Stripe.
    stripe_env = {
        "STRIPE_API_KEY": "sk_test_emoscope",
        "STRIPE_PRICE_ID": PRICE_ID,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": stripe_base,
        "STRIPE_PUBLISHABLE_KEY": "pk_test_emoscope",
        "STRIPE_JS_URL": f"{stripe_base}/js.stripe.com/v3/",
    }
    with gunicorn(tmp_path / "state", EMOSCOPE_COOKIE_SECURE="false", **stripe_env) as base:
        signup = requests.post(
            f"{base}/v1/signup",
            timeout=30,
            json={"email": "payer@example.com", "password": PASSWORD, "account_name": "Payer Co"},
        )
        assert signup.status_code == 201, signup.text
        secret = signup.json()["api_key"]["secret"]
        # A declined card is answered 402 by Stripe; the browser logs that response, nothing else may fail.
        declined = ("status of 402",)
        with watched_page(browser, base, "console_paid_plan", shoot, expected_console_errors=declined) as page:
            page.goto("/console")
            sign_in_to_console(page, "payer@example.com")
            page.click("#upgrade")
            fill_card(page, "4000000000000002")
            page.click("#card-submit")
            expect(page.locator("#card-error")).to_contain_text("declined")
            expect(page.locator("#card-submit")).to_be_enabled()
            assert (
                requests.get(f"{base}/v1/account", headers={"X-API-Key": secret}, timeout=30).json()["plan"] == "free"
            )
            fill_card(page, "4242424242424242")
            shoot(page, "console_card_form")
            page.click("#card-submit")
            expect(page.locator(".notice")).to_contain_text("on the paid plan")
            expect(page.locator("#billing")).to_contain_text("Subscription: active")
        account = requests.get(f"{base}/v1/account", headers={"X-API-Key": secret}, timeout=30).json()
        assert account["plan"] == "paid" and account["subscription_status"] == "active"
