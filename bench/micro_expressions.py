"""Micro-expression spotting benchmark: constructed real-face clips, MEGC scoring, speed.

Clips come from ``bench/micro_clips.py`` (real photos animated by construction, fixed seed). Every
clip goes through the whole service path, ``analyze_bytes`` (decode, detect, landmarks, align,
classify, track, spot), at the clip's native frame rate. Scoring follows the MEGC spotting
protocol: a predicted interval is a true positive when its IoU (in frames, inclusive) with a
not-yet-matched ground-truth interval of the same kind is >= 0.5; micro and macro are scored
separately (a prediction's kind comes from its own duration, as in MEGC) and overall pools them.
False positives per minute are counted on the no-event clips. Speed is frames per second of the
whole pipeline on a 640x480, 30 fps single-face clip.

    python bench/micro_expressions.py                # default suite: 34 event + 12 no-event clips, ~4-5 min
    python bench/micro_expressions.py --scale 0.3    # a quick subset
    python bench/micro_expressions.py --detector dlib,blazeface   # both detectors on the same clips
    python bench/micro_expressions.py --baseline-root /tmp/base   # this spotter and another on the same crops

Compare detectors in one run (a comma-separated ``--detector``): each clip is rendered once and every
detector reads the same bytes. The H.264 encoding is not bit-for-bit repeatable between renders
(libx264 through PyAV gives a different stream for the same frames from one render to the next, even
with one thread), and a borderline event can come and go with it: two separate runs compare two
different encodings of the suite, not the detectors alone.

``--baseline-root DIR`` compares spotters: every track is spotted by this checkout's
``api/engine/micro.py`` and by the one under DIR (e.g. ``git worktree add /tmp/base HEAD``), on the
same crops, and both are scored ("baseline <detector>"). Only micro.py comes from DIR; decoding,
detection and alignment are this checkout's.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.engine.detection import DEFAULT_DETECTOR  # noqa: E402
from api.engine.results import expression_kind  # noqa: E402
from api.engine.track_building import greedy_pairs  # noqa: E402

IOU_THRESHOLD = 0.5


# --- MEGC scoring -------------------------------------------------------------------------------


def to_frames(onset_ms: float, offset_ms: float, fps: float) -> tuple[int, int]:
    """An interval in ms -> inclusive frame indices at `fps`."""
    return int(round(onset_ms * fps / 1000.0)), int(round(offset_ms * fps / 1000.0))


def interval_iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    """MEGC IoU of two inclusive frame intervals: |A n B| / |A u B| counted in frames."""
    inter = min(a[1], b[1]) - max(a[0], b[0]) + 1
    if inter <= 0:
        return 0.0
    union = (a[1] - a[0] + 1) + (b[1] - b[0] + 1) - inter
    return inter / union


def match_intervals(
    predicted: list[tuple[int, int]], truth: list[tuple[int, int]], threshold: float = IOU_THRESHOLD
) -> list[tuple[int, int]]:
    """Greedy one-to-one matching, best IoU first: (prediction index, truth index) pairs with IoU >= threshold."""
    return greedy_pairs(
        ((interval_iou(p, t), i, j) for i, p in enumerate(predicted) for j, t in enumerate(truth)), threshold
    )


@dataclass
class Counts:
    tp: int = 0
    n_pred: int = 0
    n_true: int = 0

    @property
    def fp(self) -> int:
        return self.n_pred - self.tp

    @property
    def fn(self) -> int:
        return self.n_true - self.tp

    @property
    def precision(self) -> float:
        return self.tp / self.n_pred if self.n_pred else (1.0 if not self.n_true else 0.0)

    @property
    def recall(self) -> float:
        return self.tp / self.n_true if self.n_true else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __iadd__(self, other: Counts) -> Counts:
        self.tp += other.tp
        self.n_pred += other.n_pred
        self.n_true += other.n_true
        return self


def kind_of(interval_ms: tuple[float, float]) -> str:
    return expression_kind(interval_ms[1] - interval_ms[0])


def score_clip(
    predicted_ms: list[tuple[float, float]], truth_ms: list[tuple[float, float]], fps: float
) -> dict[str, Counts]:
    """MEGC counts for one clip: {'micro', 'macro', 'overall'}; kinds split by duration (<= 500 ms micro)."""
    out = {}
    for kind in ("micro", "macro"):
        p = [to_frames(*i, fps) for i in predicted_ms if kind_of(i) == kind]
        t = [to_frames(*i, fps) for i in truth_ms if kind_of(i) == kind]
        out[kind] = Counts(len(match_intervals(p, t)), len(p), len(t))
    overall = Counts()
    overall += out["micro"]
    overall += out["macro"]
    out["overall"] = overall
    return out


# --- Running the suite ----------------------------------------------------------------------------


@dataclass
class ClipResult:
    name: str
    fps: float
    seconds: float
    truth: list[dict]
    predicted: list[dict]
    frames: int
    analyse_s: float
    counts: dict[str, Counts] = field(default_factory=dict)


def run_clip(analyzer, spec, sensitivity: float, detector: str, clip=None, fps: float | None = None) -> ClipResult:
    """`clip`: the rendered clip (`render_clip(spec)`), to run several detectors on the same bytes. `fps`: the
    rate the clip is analysed at (the request's `fps`), by default its own; it is scored at its own rate."""
    from api.engine.analyzer import AnalysisOptions, analyze_bytes
    from api.wiring.config import Limits
    from bench.micro_clips import render_clip

    clip = clip or render_clip(spec)
    started = time.perf_counter()
    analysis = analyze_bytes(
        analyzer,
        clip.data,
        AnalysisOptions(detector=detector, fps=fps or spec.fps, micro_expressions=True, micro_sensitivity=sensitivity),
        Limits(),
    )
    elapsed = time.perf_counter() - started
    predicted = event_dicts(analysis.micro_expressions)
    truth = [
        {
            "onset_ms": e.onset_ms,
            "apex_ms": e.apex_ms,
            "offset_ms": e.offset_ms,
            "kind": e.kind,
            "pattern": e.pattern,
            "amplitude": e.amplitude,
            "emotion": e.emotion,
        }
        for e in spec.events
    ]
    counts = score_clip(
        [(p["onset_ms"], p["offset_ms"]) for p in predicted], [(t["onset_ms"], t["offset_ms"]) for t in truth], spec.fps
    )
    return ClipResult(spec.name, spec.fps, spec.seconds, truth, predicted, len(analysis.frames), elapsed, counts)


def event_dicts(events) -> list[dict]:
    return [
        {
            "onset_ms": e.onset_ms,
            "apex_ms": e.apex_ms,
            "offset_ms": e.offset_ms,
            "kind": e.kind,
            "intensity": e.intensity,
            "emotion": e.emotion,
            "track_id": e.track_id,
            "regions": [(r.name, round(r.magnitude, 2), r.action_units) for r in e.regions],
        }
        for e in sorted(events, key=lambda e: (e.onset_ms, e.track_id))
    ]


def rescored(result: ClipResult, events) -> ClipResult:
    """`result` with other predicted events (another spotter's on the same clip), scored."""
    predicted = event_dicts(events)
    counts = score_clip(
        [(p["onset_ms"], p["offset_ms"]) for p in predicted],
        [(t["onset_ms"], t["offset_ms"]) for t in result.truth],
        result.fps,
    )
    return replace(result, predicted=predicted, counts=counts)


def spot_with_baseline(root: Path) -> tuple[list, Callable[[], None]]:
    """Make the analyzer also run the spotter under `root` on every track it spots.

    Returns the list that collects the baseline's events (the caller empties it per clip) and a
    function that puts the analyzer's own spotter back alone."""
    from api.engine import micro

    spec = importlib.util.spec_from_file_location("baseline_micro", root / "api" / "engine" / "micro.py")
    assert spec is not None and spec.loader is not None, root
    baseline = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(baseline)
    ours = micro.spot_micro_expressions
    collected: list = []

    def both(aligned, timestamps_ms, emotions, sensitivity):
        # The analyzer sets each event's track id; the scoring does not use it.
        collected.extend(baseline.spot_micro_expressions(aligned, timestamps_ms, emotions, sensitivity))
        return ours(aligned, timestamps_ms, emotions, sensitivity)

    micro.spot_micro_expressions = both
    return collected, lambda: setattr(micro, "spot_micro_expressions", ours)


def speed_clip_bytes(seconds: float = 10.0, seed: int = 11) -> bytes:
    """A 640x480, 30 fps single-face clip (one real photo, nuisances on, one micro-expression)."""
    from bench.micro_clips import (
        ClipSpec,
        Nuisance,
        eligible_photos,
        make_event,
        render_clip,
    )

    rng = np.random.default_rng(seed)
    photo = eligible_photos()[0].name
    events = [make_event(rng, "micro", 3.0, 30.0), make_event(rng, "macro", 6.0, 30.0)]
    spec = ClipSpec(
        "speed-640x480", photo, 30.0, seconds, events, seed, width=640, height=480, iod=72.0, nuisance=Nuisance()
    )
    return render_clip(spec).data


def measure_speed(analyzer, detector: str, repeats: int = 2) -> dict:
    from api.engine.analyzer import AnalysisOptions, analyze_bytes
    from api.wiring.config import Limits

    data = speed_clip_bytes()
    best = None
    for _ in range(repeats):
        started = time.perf_counter()
        analysis = analyze_bytes(analyzer, data, AnalysisOptions(detector=detector, micro_expressions=True), Limits())
        elapsed = time.perf_counter() - started
        frames = len(analysis.frames)
        result = {
            "frames": frames,
            "seconds": round(elapsed, 2),
            "fps": round(frames / elapsed, 1),
            "stages_ms": analysis.timing_ms,
            "spotter_ms_per_frame": round(analysis.timing_ms["micro_expressions"] / max(frames, 1), 2),
        }
        if best is None or result["fps"] > best["fps"]:
            best = result
    return best


def summarise(results: list[ClipResult], quiet: list[ClipResult]) -> dict:
    totals = defaultdict(Counts)
    by_fps: dict[float, Counts] = defaultdict(Counts)
    by_amp: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in results:
        for kind, c in r.counts.items():
            totals[kind] += c
        by_fps[r.fps] += r.counts["overall"]
        # Recall per amplitude, kind-agnostic matching (diagnostic only).
        p = [to_frames(x["onset_ms"], x["offset_ms"], r.fps) for x in r.predicted]
        t = [to_frames(x["onset_ms"], x["offset_ms"], r.fps) for x in r.truth]
        hit = {j for _, j in match_intervals(p, t)}
        for j, x in enumerate(r.truth):
            by_amp[x["amplitude"]][0] += j in hit
            by_amp[x["amplitude"]][1] += 1
    quiet_minutes = sum(q.seconds for q in quiet) / 60.0
    quiet_fp = sum(len(q.predicted) for q in quiet)

    def prf(c: Counts) -> dict:
        return {
            "precision": round(c.precision, 3),
            "recall": round(c.recall, 3),
            "f1": round(c.f1, 3),
            "tp": c.tp,
            "fp": c.fp,
            "fn": c.fn,
        }

    return {
        "micro": prf(totals["micro"]),
        "macro": prf(totals["macro"]),
        "overall": prf(totals["overall"]),
        "overall_by_fps": {f"{int(k)}": prf(v) for k, v in sorted(by_fps.items())},
        "recall_by_amplitude": {k: round(v[0] / v[1], 3) for k, v in sorted(by_amp.items())},
        "no_event": {
            "minutes": round(quiet_minutes, 2),
            "false_positives": quiet_fp,
            "fp_per_minute": round(quiet_fp / quiet_minutes, 2) if quiet_minutes else None,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the default suite to run")
    parser.add_argument("--sensitivity", type=float, default=0.5)
    parser.add_argument("--json", type=Path, help="also write every clip's events and the summary here")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument(
        "--detector",
        default=DEFAULT_DETECTOR,
        help="face detector (api.engine.detection.DETECTORS); several, comma-separated, read the same clips",
    )
    parser.add_argument(
        "--baseline-root",
        type=Path,
        help="a checkout whose api/engine/micro.py also spots every track, on the same crops, for comparison",
    )
    args = parser.parse_args()

    from api.engine.analyzer import Analyzer
    from api.wiring.config import DEFAULT_EMOTION_MODEL
    from bench.micro_clips import benchmark_specs, render_clip

    started = time.perf_counter()
    detectors = [d.strip() for d in args.detector.split(",") if d.strip()]
    analyzer = Analyzer(Path(tempfile.mkdtemp()), DEFAULT_EMOTION_MODEL, threads=1)
    event_specs, quiet_specs = benchmark_specs(args.seed, args.scale)
    names = detectors + ([f"baseline {d}" for d in detectors] if args.baseline_root else [])
    results: dict[str, list[ClipResult]] = {n: [] for n in names}
    quiet: dict[str, list[ClipResult]] = {n: [] for n in names}
    baseline_events, restore = spot_with_baseline(args.baseline_root.resolve()) if args.baseline_root else ([], None)
    for spec in event_specs + quiet_specs:
        clip = render_clip(spec)
        for detector in detectors:
            baseline_events.clear()
            r = run_clip(analyzer, spec, args.sensitivity, detector, clip)
            (results if spec.events else quiet)[detector].append(r)
            c = r.counts["overall"]
            line = (
                f"{r.name:16s} {detector:10s} {r.frames:4d} frames {r.analyse_s:6.1f}s  "
                f"truth {c.n_true}  predicted {c.n_pred}  tp {c.tp}"
            )
            if args.baseline_root:
                b = rescored(r, baseline_events)
                (results if spec.events else quiet)[f"baseline {detector}"].append(b)
                line += f"  baseline: predicted {b.counts['overall'].n_pred}  tp {b.counts['overall'].tp}"
            print(line, flush=True)
    if restore:
        restore()  # speed is measured with this checkout's spotter alone
    summaries = {}
    for name in names:
        summary = summarise(results[name], quiet[name])
        summary["clips"] = {
            "event": len(results[name]),
            "no_event": len(quiet[name]),
            "events": sum(len(r.truth) for r in results[name]),
            "micro_events": sum(t["kind"] == "micro" for r in results[name] for t in r.truth),
        }
        summary["sensitivity"] = args.sensitivity
        summary["detector"] = name.removeprefix("baseline ")
        summary["seed"] = args.seed
        if name not in detectors:
            summary["spotter"] = str(args.baseline_root)
        elif not args.no_speed:
            summary["speed_640x480_30fps"] = measure_speed(analyzer, name)
        summaries[name] = summary
    elapsed = round(time.perf_counter() - started, 1)
    for summary in summaries.values():
        summary["benchmark_seconds"] = elapsed
    out = summaries[names[0]] if len(names) == 1 else summaries
    print(json.dumps(out, indent=1))
    if args.json:
        clips = {
            d: [
                {"name": r.name, "fps": r.fps, "truth": r.truth, "predicted": r.predicted}
                for r in results[d] + quiet[d]
            ]
            for d in names
        }
        args.json.write_text(
            json.dumps(
                {"summary": out, "clips": clips[names[0]] if len(names) == 1 else clips},
                indent=1,
                default=str,
            )
        )


if __name__ == "__main__":
    main()
