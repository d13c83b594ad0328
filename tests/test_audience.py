"""Audience maths on hand-checked inputs: the stimulus grid, means and intervals, early leavers,
missing faces, mixed frame rates, top moments."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from api.domain import audience
from api.engine.preprocess import EMOTIONS

HAPPY = EMOTIONS.index("happy")


def probs(happy: float) -> np.ndarray:
    """Seven probabilities with `happy` and the rest spread evenly (they sum to 1)."""
    p = np.full(len(EMOTIONS), (1 - happy) / (len(EMOTIONS) - 1), np.float32)
    p[HAPPY] = happy
    return p


def viewer(
    happy,
    fps=10.0,
    seconds=3.0,
    stimulus_started_ms=0.0,
    stimulus_ms=3000.0,
    face=lambda t: True,
    micro=(),
    segment=None,
    facing=lambda t: True,
) -> audience.SessionTimeline:
    """A recording at `fps`; `happy(t_ms)` on the recording clock, or a constant."""
    times = np.arange(int(seconds * fps)) * 1000.0 / fps
    level = happy if callable(happy) else (lambda t: happy)
    frames = [probs(level(t)) if face(t) else None for t in times]
    return audience.session_timeline(
        times,
        frames,
        seconds * 1000,
        fps,
        stimulus_started_ms,
        stimulus_ms,
        list(micro),
        segment,
        [facing(t) for t in times],
    )


def test_frames_land_on_the_stimulus_clock():
    # Playback began 1 s into the recording: stimulus 0-100 ms is recording 1000-1100 ms.
    t = viewer(lambda t: 0.9 if 1500 <= t < 1600 else 0.1, seconds=4.0, stimulus_started_ms=1000, stimulus_ms=2000)
    assert len(t.recorded) == 20 and t.recorded.all() and t.visible.all()
    assert t.probabilities[5, HAPPY] == pytest.approx(0.9)  # stimulus 500-600 ms
    assert t.probabilities[4, HAPPY] == pytest.approx(0.1)
    assert t.probabilities[6, HAPPY] == pytest.approx(0.1)


def test_micro_onsets_move_to_the_stimulus_clock_and_outside_ones_drop():
    t = viewer(
        0.1,
        seconds=4.0,
        stimulus_started_ms=1000,
        stimulus_ms=2000,
        micro=[(500.0, "happy"), (1200.0, "surprise"), (3500.0, "fear")],
    )
    assert t.micro_onsets_ms == [(200.0, "surprise")]


def test_means_intervals_and_shares_by_hand():
    viewers = [viewer(h) for h in (0.1, 0.2, 0.3, 0.4, 0.5)]
    report = audience.study_report(viewers, 3000)
    second = report["buckets"][0]
    assert second["viewers"] == second["viewers_with_face"] == 5 and second["enough_viewers"]
    happy = second["emotions"]["happy"]
    # mean 0.3; sample sd 0.158114; t(0.975, 4) = 2.776; half-width 2.776 * 0.158114 / sqrt(5) = 0.19629
    assert happy["mean"] == pytest.approx(0.3, abs=1e-4)
    assert happy["ci95"] == pytest.approx([0.1037, 0.4963], abs=2e-4)
    assert happy["share_above_threshold"] == pytest.approx(0.2)  # only 0.5 reaches the threshold
    assert len(report["buckets"]) == 3 and report["top_moments"] == []


def test_too_few_viewers_withholds_the_figures():
    report = audience.study_report([viewer(0.5) for _ in range(audience.MIN_VIEWERS - 1)], 3000)
    second = report["buckets"][0]
    assert second["viewers_with_face"] == audience.MIN_VIEWERS - 1
    assert second["enough_viewers"] is False and second["emotions"] is None


def test_early_leavers_stop_counting_when_their_recording_ends():
    stayers = [viewer(0.2) for _ in range(5)]
    leaver = viewer(0.8, seconds=1.5)  # records the first 1.5 s of a 3 s stimulus
    buckets = audience.study_report(stayers + [leaver], 3000)["buckets"]
    assert [b["viewers"] for b in buckets] == [6, 6, 5]
    # second 1: the leaver recorded 5 of its 10 buckets and showed a face in all 5, so it counts
    assert buckets[1]["viewers_with_face"] == 6
    assert buckets[1]["emotions"]["happy"]["mean"] == pytest.approx((5 * 0.2 + 0.8) / 6, abs=1e-4)
    assert buckets[2]["emotions"]["happy"]["mean"] == pytest.approx(0.2, abs=1e-4)


def test_a_viewer_mostly_without_a_face_is_recorded_but_not_facing():
    others = [viewer(0.2) for _ in range(5)]
    away = viewer(0.9, face=lambda t: 1000 <= t < 1400)  # face in 4 of second 1's 10 buckets, none elsewhere
    buckets = audience.study_report(others + [away], 3000)["buckets"]
    assert [b["viewers"] for b in buckets] == [6, 6, 6]
    assert [b["viewers_with_face"] for b in buckets] == [5, 5, 5]
    assert buckets[1]["emotions"]["happy"]["mean"] == pytest.approx(0.2, abs=1e-4)


def test_a_dropped_frame_is_bridged_and_a_long_gap_is_not():
    # A browser recording at 10 fps that dropped frames: 200 ms and 300 ms gaps, then 1.2 s without a frame.
    times = np.array([0, 200, 500, 600, 1800, 1900], float)
    t = audience.session_timeline(times, [probs(0.9)] * len(times), 2000, 10.0, 0.0, 2000)
    assert t.recorded.all()
    assert t.visible[:11].all()  # up to 1,100 ms: the frame at 600 ms stands for 500 ms
    assert not t.visible[11:18].any()  # 1,100-1,800 ms: the viewer was not seen
    assert t.visible[18:].all()


def test_mixed_frame_rates_give_the_same_report():
    level = lambda t: 0.1 + 0.8 * (t >= 1000)  # noqa: E731
    slow = audience.study_report([viewer(level, fps=5.0) for _ in range(5)], 3000)
    fast = audience.study_report([viewer(level, fps=30.0) for _ in range(5)], 3000)
    mixed = audience.study_report([viewer(level, fps=f) for f in (5.0, 10.0, 24.0, 30.0, 60.0)], 3000)
    for report in (fast, mixed):
        assert [b["emotions"]["happy"]["mean"] for b in report["buckets"]] == pytest.approx(
            [b["emotions"]["happy"]["mean"] for b in slow["buckets"]], abs=1e-4
        )
    assert [b["emotions"]["happy"]["mean"] for b in slow["buckets"]] == pytest.approx([0.1, 0.9, 0.9], abs=1e-4)


def test_micro_expressions_are_counted_in_the_second_they_start():
    viewers = [viewer(0.2, micro=[(1500.0, "happy")]), viewer(0.2, micro=[(1900.0, "happy"), (2100.0, None)])]
    buckets = audience.study_report(viewers, 3000)["buckets"]
    assert [b["micro_expressions"] for b in buckets] == [{}, {"happy": 2}, {"unknown": 1}]


def test_top_moments_are_lifts_over_each_viewers_own_baseline_that_survive_the_correction():
    # Ten viewers over 12 s, each with their own happy level; all smile more in seconds 5 and 6, by
    # 0.50, 0.52 or 0.54; surprise lifts by 0.02 at 8 s for everyone (significant, but too small to be a moment).
    def one(i):
        lift = 0.5 + 0.02 * (i % 3)
        happy = lambda t: 0.1 + 0.02 * i + (lift if 5000 <= t < 7000 else 0.0)  # noqa: E731
        return viewer(happy, seconds=12.0, stimulus_ms=12000)

    report = audience.study_report([one(i) for i in range(10)], 12000)
    (moment,) = report["top_moments"]  # second 6 ties with 5 and is too close to it
    assert {k: moment[k] for k in ("emotion", "time_ms", "viewers")} == {
        "emotion": "happy",
        "time_ms": 5000,
        "viewers": 10,
    }
    # Each viewer's lift is 5/6 of their smile (their baseline averages it over 12 s): mean 5/6 * 0.518.
    assert moment["lift"] == pytest.approx(5 / 6 * 0.518, abs=1e-3)
    low, high = moment["ci95"]
    # sd of the lifts 5/6 * 0.02 * sd(0, 1, 2, 0, 1, 2, 0, 1, 2, 0) = 0.014594; half 2.262 * 0.014594 / sqrt(10)
    assert [low, high] == pytest.approx([moment["lift"] - 0.01044, moment["lift"] + 0.01044], abs=2e-4)
    assert moment["p"] < 1e-10 and moment["p"] <= moment["p_adjusted"] < audience.MOMENT_FDR
    assert moment["effect_size"] > 10 and moment["mean"] == pytest.approx(0.1 + 0.09 + 0.518, abs=1e-3)


def test_noise_makes_no_top_moments():
    rng = np.random.default_rng(7)
    viewers = []
    for _ in range(20):
        levels = rng.uniform(0.05, 0.6, 30)
        viewers.append(viewer(lambda t, levels=levels: levels[int(t // 1000)], seconds=30.0, stimulus_ms=30000))
    assert audience.study_report(viewers, 30000)["top_moments"] == []


def test_one_sided_t_tail_and_the_false_discovery_rate_by_hand():
    tails = audience.t_upper_tail(
        np.array([12.706, 2.776, 2.042, 1.959964, 0.0, -2.776, np.inf]), np.array([1, 4, 30, 10**6, 5, 4, 3])
    )
    assert tails == pytest.approx([0.025, 0.025, 0.025, 0.025, 0.5, 0.975, 0.0], abs=2e-4)
    # Sorted p 0.005, 0.01, 0.03, 0.04 of 4: scaled 0.02, 0.02, 0.04, 0.04, each at most the next.
    adjusted = audience.benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.005]))
    assert adjusted == pytest.approx([0.02, 0.04, 0.04, 0.02])


def test_segments_have_their_own_totals():
    viewers = [viewer(0.2, segment="a") for _ in range(3)] + [viewer(0.6, segment="b", micro=[(100.0, "happy")])]
    segments = audience.study_report(viewers, 3000)["segments"]
    assert [(s["segment"], s["viewers"]) for s in segments] == [("a", 3), ("b", 1)]
    assert segments[1]["mean_emotions"]["happy"] == pytest.approx(0.6, abs=1e-4)
    assert segments[1]["micro_expressions"] == {"happy": 1}


def test_frame_buckets_and_csv():
    report = audience.study_report([viewer(0.3) for _ in range(5)], 3000, bucket_ms=500)
    assert [b["start_ms"] for b in report["buckets"]] == [0, 500, 1000, 1500, 2000, 2500]
    rows = list(csv.reader(io.StringIO(audience.report_csv(report))))
    assert rows[0][:5] == ["start_ms", "viewers", "viewers_with_face", "enough_viewers", "angry_mean"]
    assert len(rows) == 7 and float(rows[1][rows[0].index("happy_mean")]) == pytest.approx(0.3, abs=1e-4)


def test_timeline_survives_storage():
    t = viewer(lambda t: 0.5 if t < 1000 else 0.1, face=lambda t: t < 2000, micro=[(100.0, "happy")], segment="x")
    back = audience.SessionTimeline.from_bytes(t.to_bytes(), len(t.recorded), t.micro_onsets_ms, t.segment)
    assert (back.recorded == t.recorded).all() and (back.visible == t.visible).all()
    assert (back.attending == t.attending).all()
    assert np.allclose(back.probabilities, t.probabilities, equal_nan=True)


def test_timelines_stored_before_head_pose_still_read():
    t = viewer(0.4, face=lambda t: t < 2000)
    legacy = np.column_stack([t.recorded, t.visible, t.probabilities]).astype(np.float32).tobytes()
    back = audience.SessionTimeline.from_bytes(legacy, len(t.recorded), [], None)
    assert (back.visible == t.visible).all() and (back.attending == t.visible).all()
    assert np.allclose(back.probabilities, t.probabilities, equal_nan=True)


def test_attention_counts_viewers_present_and_facing_the_screen():
    # 10 viewers over 3 s: all face the screen in the first second; in the second, 4 turn away and 2 leave
    # the picture; in the third, everyone is back but 1 turns away.
    def one(i):
        turned = (lambda t: 1000 <= t < 2000) if i < 4 else (lambda t: t >= 2000) if i == 9 else (lambda t: False)
        gone = (lambda t: 1000 <= t < 2000) if i in (4, 5) else (lambda t: False)
        return viewer(0.3, face=lambda t: not gone(t), facing=lambda t: not turned(t))

    report = audience.study_report([one(i) for i in range(10)], 3000)
    shares = [b["attention"]["share"] for b in report["buckets"]]
    assert shares == [1.0, 0.4, 0.9]
    low, high = report["buckets"][1]["attention"]["ci95"]
    assert low < 0.4 < high and 0 < low and high < 1
    # Each viewer's share of the recording spent attending: 2/3 for the 4 who turned, the 2 who left and
    # the last one; 1 for the other 3.
    per_viewer = [2 / 3] * 4 + [2 / 3] * 2 + [1.0] * 3 + [2 / 3]
    assert report["attention"]["mean"] == pytest.approx(np.mean(per_viewer), abs=1e-3)
    assert report["attention"]["viewers"] == 10
    rows = list(csv.reader(io.StringIO(audience.report_csv(report))))
    assert rows[0][-3:] == ["attention_share", "attention_ci95_low", "attention_ci95_high"]
    assert [float(r[-3]) for r in rows[1:]] == shares


def test_attention_is_withheld_below_the_minimum_audience():
    report = audience.study_report([viewer(0.3) for _ in range(audience.MIN_VIEWERS - 1)], 3000)
    assert all(b["attention"] is None for b in report["buckets"]) and report["attention"] is None


def test_wilson_interval_by_hand():
    assert audience.share_interval(0, 10) == [0.0, pytest.approx(0.2775, abs=1e-4)]
    assert audience.share_interval(10, 10) == [pytest.approx(0.7225, abs=1e-4), 1.0]


def test_t_quantiles():
    assert audience.t_quantile_975(1) == 12.706
    assert audience.t_quantile_975(30) == 2.042
    assert audience.t_quantile_975(60) == pytest.approx(2.000, abs=2e-3)
    assert audience.t_quantile_975(1000) == pytest.approx(1.962, abs=2e-3)


def test_summary_scores_by_hand():
    # Five viewers, each with a constant happy level; the other six classes share the rest evenly.
    report = audience.study_report([viewer(h) for h in (0.1, 0.2, 0.3, 0.4, 0.5)], 3000)
    summary = report["summary"]
    happy = summary["emotions"]["happy"]
    assert happy["mean"] == {
        "mean": pytest.approx(0.3, abs=1e-4),
        "ci95": pytest.approx([0.1037, 0.4963], abs=2e-4),
        "viewers": 5,
    }
    assert happy["peak"]["time_ms"] == 0 and happy["peak"]["mean"] == pytest.approx(0.3, abs=1e-4)  # flat: the first
    # Valence h - 4 * (1 - h) / 6 = (5h - 2) / 3: -0.5, -1/3, -1/6, 0, 1/6; sd 0.26352; half 2.776 * 0.26352 / sqrt(5)
    assert summary["valence"]["mean"] == pytest.approx(-1 / 6, abs=1e-4)
    assert summary["valence"]["ci95"] == pytest.approx([-0.4938, 0.1605], abs=2e-4)
    # Engagement: only the viewer at 0.5 shows an expression at the threshold, in all three seconds.
    assert summary["engagement"]["mean"] == pytest.approx(0.2, abs=1e-4)
    assert summary["attention"] == report["attention"] and summary["attention"]["mean"] == 1.0
    assert summary["positive_emotions"] == ["happy"] and "surprise" not in summary["negative_emotions"]


def test_the_peak_is_the_highest_second_and_neutral_does_not_engage():
    rising = [viewer(lambda t: 0.9 if t >= 2000 else 0.1) for _ in range(5)]
    summary = audience.study_report(rising, 3000)["summary"]
    assert summary["emotions"]["happy"]["peak"] == {
        "time_ms": 2000,
        "mean": pytest.approx(0.9, abs=1e-4),
        "ci95": [pytest.approx(0.9, abs=1e-4)] * 2,
    }
    assert summary["engagement"]["mean"] == pytest.approx(1 / 3, abs=1e-4)
    calm = [
        audience.session_timeline(
            np.arange(30) * 100.0, [np.eye(len(EMOTIONS), dtype=np.float32)[-1]] * 30, 3000, 10, 0, 3000
        )
        for _ in range(5)
    ]
    assert audience.study_report(calm, 3000)["summary"]["engagement"]["mean"] == 0.0  # neutral at 100%


def test_summary_scores_are_withheld_below_the_minimum_audience():
    summary = audience.study_report([viewer(0.3) for _ in range(audience.MIN_VIEWERS - 1)], 3000)["summary"]
    assert all(s == {"mean": None, "peak": None} for s in summary["emotions"].values())
    assert summary["valence"] is summary["engagement"] is summary["attention"] is None
    rows = list(csv.reader(io.StringIO(audience.summary_csv({"summary": summary}))))
    assert rows[1][:2] == ["angry", ""]


def test_summary_csv():
    report = audience.study_report([viewer(h) for h in (0.1, 0.2, 0.3, 0.4, 0.5)], 3000)
    rows = list(csv.reader(io.StringIO(audience.summary_csv(report))))
    assert rows[0] == [
        "score",
        "mean",
        "ci95_low",
        "ci95_high",
        "viewers",
        "peak_time_ms",
        "peak_mean",
        "peak_ci95_low",
        "peak_ci95_high",
    ]
    assert [r[0] for r in rows[1:]] == [*EMOTIONS, "valence", "engagement", "attention"]
    happy = rows[1 + EMOTIONS.index("happy")]
    assert [float(v) for v in happy[1:4]] == pytest.approx([0.3, 0.1037, 0.4963], abs=2e-4) and happy[4] == "5"
    assert float(rows[-3][1]) == pytest.approx(-1 / 6, abs=1e-4) and rows[-3][5] == ""


def test_bootstrap_difference_of_means_over_viewers():
    rng = np.random.default_rng(3)
    scores = len(audience.COMPARED_SCORES)
    a = rng.normal(0.3, 0.1, (400, scores))
    b = rng.normal(0.35, 0.1, (400, scores))
    b[:100, 0] = np.nan  # viewers without that score are left out of its mean, not counted as zero
    boots = audience.bootstrap_means([a, b])
    differences = audience.bootstrap_differences(a, b, *boots)
    first = differences[audience.COMPARED_SCORES[0]]
    assert first["difference"] == pytest.approx(np.nanmean(b[:, 0]) - a[:, 0].mean(), abs=1e-4)
    for name in audience.COMPARED_SCORES:
        low, high = differences[name]["ci95"]
        assert low < differences[name]["difference"] < high
    # The textbook width of a difference of two means, 2 * 1.96 * sqrt(0.1^2 / 400 * 2), within resampling noise.
    widths = [d["ci95"][1] - d["ci95"][0] for d in differences.values()]
    assert np.mean(widths) == pytest.approx(2 * 1.96 * 0.1 * np.sqrt(2 / 400), rel=0.1)
    assert audience.bootstrap_means([a, b])[1] == pytest.approx(boots[1])  # the fixed seed
    few = audience.bootstrap_differences(a[:4], b, *audience.bootstrap_means([a[:4], b]))
    assert set(few.values()) == {None}  # withheld below the minimum audience


def test_every_moment_test_is_there_to_inspect_significant_or_not():
    # Five viewers whose smiles at 5 s differ a lot: the lift is there, not yet significant after the correction.
    viewers = [
        viewer(lambda t, lift=lift: 0.2 + (lift if 5000 <= t < 6000 else 0.0), seconds=12.0, stimulus_ms=12000)
        for lift in (0.0, 0.02, 0.3, 0.05, 0.4)
    ]
    assert audience.study_report(viewers, 12000)["top_moments"] == []
    tests = audience.audience_moment_tests(viewers, 12000)
    happy = audience.EXPRESSIVE_EMOTIONS.index("happy")
    assert list(tests.seconds) == list(range(12)) and tests.p.shape == (12, len(audience.EXPRESSIVE_EMOTIONS))
    assert int(np.argmin(tests.p[:, happy])) == 5 and tests.lift[5, happy] == pytest.approx(0.154 * 11 / 12, abs=1e-3)
    assert tests.p[5, happy] < 0.1 and (tests.adjusted >= tests.p - 1e-9).all() and tests.adjusted[5, happy] >= 0.05
