"""A newcomer's first steps in Chromium: sign-up in the console, the keyless demo, the timeline's axes,
the still-frame player for a clip the browser cannot play, and the demo on a phone (390 x 844)."""

from __future__ import annotations

import copy
import itertools

import pytest

from tests.conftest import FACES, VIDEOS

# test_browser skips this module too where Playwright or Chromium is missing.
from tests.test_browser import PASSWORD, analyze_in_page, browser, expect, page, server, shoot, watched_page  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.data]

PHONE = {"width": 390, "height": 844}
LABEL_RECTS = """() => [...document.querySelectorAll('#result .face-label')]
    .filter(label => label.offsetParent !== null)
    .map(label => { const r = label.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })"""


def test_sign_up_in_the_console_lands_on_the_dashboard_and_the_demo(browser, server, shoot):  # noqa: F811
    # The browser logs the refused form's 400; nothing else may fail.
    with watched_page(browser, server[0], "console_sign_up", shoot, expected_console_errors=("status of 400",)) as page:  # noqa: F811
        sign_up_and_try_the_demo(page)


def sign_up_and_try_the_demo(page) -> None:  # noqa: F811  (a page, not the fixture)
    page.goto("/console/signin")
    page.click("#signup-link")
    page.fill("input[name=account_name]", "Newcomer Ltd")
    page.fill("input[name=email]", "newcomer@example.com")
    page.fill("input[name=password]", "password123")  # a common one: refused, and said so beside the field
    page.click("button:has-text('Create the account')")
    expect(page.locator(".field-error[data-field=password]")).to_contain_text("common")
    expect(page.locator("input[name=email]")).to_have_value("newcomer@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Create the account')")
    expect(page.locator("h1")).to_have_text("Newcomer Ltd")
    secret = page.locator("#new-secret").input_value()
    assert secret.startswith("emo_")
    page.click("a:has-text('Try it in the demo')")
    expect(page.locator("#api-key")).to_have_value(secret)
    expect(page.locator("#keyless")).to_be_hidden()
    page.set_input_files("#media", str(FACES / "img1.jpg"))
    assert analyze_in_page(page)["faces"]


def test_a_keyless_visitor_is_offered_sign_up(page, server):
    page.goto("/demo")
    expect(page.locator("#keyless")).to_be_visible()
    expect(page.locator("#dev-key-hint")).to_be_visible()  # the test server runs in development mode
    assert "make run" not in page.locator("main").inner_text()
    page.fill("#api-key", "emo_typed")
    expect(page.locator("#keyless")).to_be_hidden()
    page.fill("#api-key", "")
    page.click("#keyless-signup")
    expect(page.locator("h1")).to_have_text("Create an account")


def test_the_timeline_has_labelled_axes_in_seconds_and_probability(page, server):
    _, key = server
    page.goto(f"/demo#key={key}")
    page.set_input_files("#media", str(VIDEOS / "single_face.mp4"))  # 2.4 s
    page.select_option("#fps", "5")
    result = analyze_in_page(page)
    chart = page.locator("figure.timeline svg").first
    expect(chart.locator(".y-axis .tick-label")).to_have_text(["0", "0.5", "1"])
    expect(chart.locator(".y-axis .axis-title")).to_have_text("probability")
    expect(chart.locator(".x-axis .axis-title")).to_have_text("time (s)")
    ticks = [float(text) for text in chart.locator(".x-axis .tick-label").all_text_contents()]
    assert ticks[0] == 0 and len(ticks) >= 3 and ticks == sorted(ticks)
    assert ticks[-1] <= result["media"]["duration_ms"] / 1000
    # Tick labels read at a legible size and never run into each other.
    boxes = chart.locator(".x-axis .tick-label").evaluate_all(
        "labels => labels.map(l => { const r = l.getBoundingClientRect(); return [r.left, r.right, r.height]; })"
    )
    assert all(height >= 9 for _, _, height in boxes)
    assert all(right < next_left for (_, right, _), (next_left, _, _) in itertools.pairwise(boxes))


def test_a_clip_the_browser_cannot_play_gets_a_still_frame_player(page, server):
    _, key = server
    page.goto(f"/demo#key={key}")
    page.set_input_files("#media", str(VIDEOS / "face_noface.mov"))  # HEVC: Chromium plays its sound only
    page.select_option("#fps", "5")
    result = analyze_in_page(page)
    stills = result["stills"]  # the page asked for them
    assert len(stills) >= 20
    expect(page.locator("#still-player")).to_be_visible()
    expect(page.locator("#video-stage")).to_be_hidden()
    page.wait_for_function("() => document.getElementById('still').naturalWidth > 0")
    expect(page.locator("#still-time")).to_contain_text(f"still 1 of {len(stills)}")
    # The first stills show the man: his box and label are drawn over the picture.
    expect(page.locator("#still-labels .face-label")).to_have_count(1)
    first_src = page.locator("#still").get_attribute("src")
    page.locator("#still-scrubber").focus()
    page.keyboard.press("End")
    expect(page.locator("#still-time")).to_contain_text(f"still {len(stills)} of {len(stills)}")
    assert page.locator("#still").get_attribute("src") != first_src
    expect(page.locator("#still-labels .face-label")).to_have_count(0)  # the title at the end has no face
    # Clicking the chart's start steps back to the first still.
    page.locator("figure.timeline svg").first.click(position={"x": 50, "y": 60})
    expect(page.locator("#still-time")).to_contain_text("still 1 of")


def test_on_a_phone_face_labels_never_overlap(browser, server, shoot):  # noqa: F811
    base, key = server
    with watched_page(browser, base, "demo_phone", shoot) as page:  # noqa: F811
        page.set_viewport_size(PHONE)
        page.goto(f"/demo#key={key}")
        page.set_input_files("#media", str(FACES / "couple.jpg"))
        result = analyze_in_page(page)
        assert len(result["faces"]) == 2
        # The same real answer with the second face moved just beside the first: their labels would share a spot.
        crowded = copy.deepcopy(result)
        first = crowded["faces"][0]["box"]
        crowded["faces"][1]["box"] = {**first, "x": first["x"] + 12, "y": first["y"] + 6}
        page.route("**/v1/analyze", lambda route: route.fulfill(json=crowded))
        analyze_in_page(page)
        page.wait_for_function("() => document.querySelectorAll('#photo-labels .face-label').length === 2")
        labels = page.evaluate(LABEL_RECTS)
        (x1, y1, w1, h1), (x2, y2, w2, h2) = labels
        assert x1 + w1 <= x2 or x2 + w2 <= x1 or y1 + h1 <= y2 or y2 + h2 <= y1, labels
        assert all(x >= 0 and x + w <= PHONE["width"] for x, _, w, _ in labels)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # nothing scrolls sideways
