"""`emoscope` command line: `emoscope analyze FILE... [--json | --csv] [--fps N] [--detector D] ...`,
`emoscope study report ID [--csv | --json | --pdf FILE]`, `emoscope study compare ID ID...`, `emoscope study share ID`.

Reads the key from $EMOSCOPE_API_KEY (or --api-key) and the address from $EMOSCOPE_BASE_URL
(or --base-url). Exit status: 0 done, 1 the API refused or failed (in a batch: some file did),
2 bad usage or a file that cannot be read or written.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, TextIO, Tuple, Union

import httpx

from . import _batch
from ._client import Client
from ._exceptions import EmoscopeError
from ._models import (
    EMOTIONS,
    Emotions,
    Face,
    ImageResult,
    Job,
    ScoreInterval,
    StudyComparison,
    StudyReport,
    StudySummary,
    VideoResult,
)
from ._version import __version__

Result = Union[ImageResult, VideoResult]
EXIT_STATUS = "exit status: 0 done; 1 the API refused or failed (a batch: some file did); 2 bad usage"


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _emotion(label: Optional[str], value: Optional[float]) -> str:
    return "-" if label is None else f"{label} {_pct(value)}"


def _top3(emotions: Emotions) -> str:
    return ", ".join(_emotion(label, p) for label, p in emotions.top(3))


def _secs(ms: Optional[float]) -> str:
    return "-" if ms is None else f"{ms / 1000:.2f} s"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    lines = []
    for row in (headers, *rows):
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths)]
        lines.append((indent + "  ".join(cells)).rstrip())
    return "\n".join(lines)


def render(result: Union[ImageResult, VideoResult], name: str) -> str:
    media = result.media
    out: List[str] = []
    if isinstance(result, ImageResult):
        count = len(result.faces)
        out.append(
            f"{name}: image ({media.format}, {media.width}x{media.height}), "
            f"{count} face{'' if count == 1 else 's'} · request {result.request_id}"
        )
        if not result.faces:
            out.append("  no face found")
            return "\n".join(out)
        rows = []
        for i, face in enumerate(result.faces, 1):
            b = face.box
            conf = "-" if face.confidence is None else f"{face.confidence:.2f}"
            rows.append(
                [
                    str(i),
                    f"{b.x},{b.y} {b.w}x{b.h}",
                    conf,
                    _emotion(face.dominant_emotion, face.emotions[face.dominant_emotion]),
                    _top3(face.emotions),
                ]
            )
        out.append("")
        out.append(table(["#", "box (x,y w x h)", "conf", "dominant", "top 3"], rows))
        return "\n".join(out)

    assert isinstance(result, VideoResult)
    duration = "" if media.duration_ms is None else f", {media.duration_ms / 1000:.1f} s"
    native = "" if media.fps is None else f" at {media.fps:g} fps"
    out.append(
        f"{name}: video ({media.format}, {media.width}x{media.height}{duration}{native}), "
        f"{media.frames_analyzed} frames analysed at {result.sample_fps:g} fps "
        f"(one every {result.temporal_resolution_ms:g} ms) · request {result.request_id}"
    )
    out.append("")
    if result.tracks:
        out.append("Tracks")
        rows = [
            [
                str(t.track_id),
                f"{_secs(t.start_ms)} - {_secs(t.end_ms)}",
                str(t.frame_count),
                _emotion(t.summary.dominant_emotion, t.summary.emotions[t.summary.dominant_emotion]),
                _top3(t.summary.emotions),
            ]
            for t in result.tracks
        ]
        out.append(table(["track", "from - to", "frames", "dominant (mean)", "top 3"], rows))
    else:
        out.append("Tracks: no face found")
    out.append("")
    if result.micro_expressions:
        out.append("Micro-expressions")
        rows = []
        for m in result.micro_expressions:
            regions = "; ".join(
                f"{r.name} {r.magnitude:.2f}" + (f" ({', '.join(r.action_units)})" if r.action_units else "")
                for r in m.regions
            )
            rows.append(
                [
                    str(m.track_id),
                    m.kind,
                    _secs(m.onset_ms),
                    _secs(m.apex_ms),
                    _secs(m.offset_ms),
                    f"{m.duration_ms:.0f} ms",
                    f"{m.intensity:.2f}",
                    _emotion(m.emotion, m.emotion_probability),
                    regions or "-",
                ]
            )
        out.append(
            table(["track", "kind", "onset", "apex", "offset", "duration", "intensity", "emotion", "regions"], rows)
        )
    else:
        out.append("Micro-expressions: none found")
    return "\n".join(out)


class Progress:
    """Progress on stderr while an analysis runs: elapsed time, and for jobs a bar of frames done.
    On a terminal the line is redrawn in place; otherwise only a start and an end line are written."""

    WIDTH = 24

    def __init__(self, enabled: bool, label: str) -> None:
        self.enabled, self.label = enabled, label
        self.live = enabled and sys.stderr.isatty()
        self.job: Optional[Job] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._start = time.monotonic()

    def update(self, job: Job) -> None:
        """`on_progress` callback of analyze / jobs.wait."""
        self.job = job

    def line(self) -> str:
        elapsed = f"{time.monotonic() - self._start:5.1f} s"
        job = self.job
        if job is None:
            return f"{self.label} {elapsed}"
        fraction = job.progress.fraction
        if fraction is None:
            return f"{self.label} [{job.status}] {job.progress.frames_done} frames {elapsed}"
        filled = int(round(fraction * self.WIDTH))
        return (
            f"{self.label} [{'#' * filled}{'.' * (self.WIDTH - filled)}] {fraction * 100:3.0f}% "
            f"{job.progress.frames_done}/{job.progress.frames_total} frames, {job.status} {elapsed}"
        )

    def __enter__(self) -> Progress:
        self._start = time.monotonic()
        if self.enabled and not self.live:
            sys.stderr.write(f"{self.label}...\n")
        if self.live:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            sys.stderr.write("\r" + self.line())
            sys.stderr.flush()

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.enabled:
            job = f" (job {self.job.id}, {self.job.progress.frames_done} frames)" if self.job else ""
            sys.stderr.write(
                f"{chr(13) if self.live else ''}{self.label} done in {time.monotonic() - self._start:.1f} s{job}\n"
            )
            sys.stderr.flush()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emoscope", description="Emoscope emotion-detection API client")
    parser.add_argument("--version", action="version", version=f"emoscope-python {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    connection = argparse.ArgumentParser(add_help=False)
    connection.add_argument("--api-key", help="default: $EMOSCOPE_API_KEY")
    connection.add_argument("--base-url", help="default: $EMOSCOPE_BASE_URL or http://127.0.0.1:8000")
    connection.add_argument("--timeout", type=float, default=300.0, help="seconds per attempt (default 300)")
    connection.add_argument("--max-retries", type=int, default=2, help="retries on 429/5xx/network errors (default 2)")

    analyze = commands.add_parser(
        "analyze",
        parents=[connection],
        help="analyse images and clips: one file, or a folder or several as a batch",
        description="Analyse an image or a clip and print the faces and emotions. A folder, a glob pattern or "
        "several files make a batch: analysed a few at a time, each file's error reported without "
        "stopping the others, with a progress bar on stderr when it is a terminal.",
        epilog=EXIT_STATUS,
    )
    analyze.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="image (JPEG, PNG, WebP, BMP) or clip (MP4, MOV, WebM, GIF), folder or glob pattern",
    )
    output = analyze.add_mutually_exclusive_group()
    output.add_argument(
        "--json",
        action="store_true",
        help="print the API's JSON answer instead of a table (a batch: one JSON object per file and line)",
    )
    output.add_argument(
        "--csv",
        action="store_true",
        help="print one CSV row per face: file, frame, time_ms, face, track, x, y, w, h, emotion "
        "and the seven probabilities",
    )
    analyze.add_argument("--fps", type=float, help="clips: frames analysed per second (0.1-240)")
    analyze.add_argument(
        "--detector", choices=["dlib", "opencv", "blazeface", "skip"], help="face detector (default blazeface)"
    )
    analyze.add_argument("--min-face-size", type=int, metavar="PX", help="drop faces smaller than this")
    analyze.add_argument("--max-faces", type=int, metavar="N", help="at most N faces per picture or frame")
    analyze.add_argument("--no-landmarks", action="store_true", help="leave out eye and nose points")
    analyze.add_argument("--no-micro", action="store_true", help="clips: skip micro-expression spotting")
    analyze.add_argument("--sensitivity", type=float, metavar="S", help="clips: micro-expression sensitivity 0-1")
    analyze.add_argument(
        "--async",
        dest="run_async",
        action="store_true",
        help="run as an asynchronous job and wait for it (clips over the API's sync limit always are)",
    )
    analyze.add_argument(
        "--progress", action="store_true", help="one file: show progress on stderr (a bar of frames done for jobs)"
    )
    batch = analyze.add_argument_group("batches")
    batch.add_argument("-r", "--recursive", action="store_true", help="take the media files of subfolders too")
    batch.add_argument(
        "-j",
        "--concurrency",
        type=_positive_int,
        default=_batch.DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"files analysed at once (default {_batch.DEFAULT_CONCURRENCY}); after a 429 the batch "
        "keeps to the rate the API states",
    )
    batch.add_argument(
        "--batch-key",
        metavar="SECRET",
        help="derive each file's Idempotency-Key from SECRET, the file and the options: the same "
        "command run again (e.g. after an interruption) replays the files already analysed, "
        "unbilled, instead of analysing them again",
    )

    study = commands.add_parser("study", help="audience studies", description="Audience studies (an admin key).")
    study_commands = study.add_subparsers(dest="study_command", required=True, metavar="STUDY_COMMAND")
    report = study_commands.add_parser(
        "report", parents=[connection], help="print a study's report: per second, viewers and emotions"
    )
    report.add_argument("study_id", metavar="ID")
    output = report.add_mutually_exclusive_group()
    output.add_argument("--csv", action="store_true", help="print the report as CSV (one row per bucket)")
    output.add_argument("--json", action="store_true", help="print the API's JSON answer")
    output.add_argument("--pdf", metavar="FILE", help="write the report as a one-page PDF to FILE")
    report.add_argument("--bucket-ms", type=int, metavar="MS", help="bucket length, a multiple of 100 (default 1000)")
    report.add_argument(
        "--table",
        choices=("seconds", "summary", "moments", "breakdown"),
        default="seconds",
        help="with --csv: one row per bucket (seconds), summary score (summary), top moment "
        "(moments) or link variable value and score (breakdown)",
    )
    report.add_argument(
        "--segment",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="only sessions whose link carried this variable value (repeatable)",
    )
    compare = study_commands.add_parser(
        "compare",
        parents=[connection],
        help="compare 2 to 5 studies: summary scores side by side, differences from the first with bootstrap intervals",
    )
    compare.add_argument("study_ids", metavar="ID", nargs="+", help="the first is the baseline")
    compare.add_argument("--json", action="store_true", help="print the API's JSON answer")
    share = study_commands.add_parser(
        "share", parents=[connection], help="make a read-only link to a study's report for a client"
    )
    share.add_argument("study_id", metavar="ID")
    share.add_argument("--days", type=int, metavar="N", help="how long it works (default 30, at most 365)")
    unshare = study_commands.add_parser("unshare", parents=[connection], help="revoke a client's report link")
    unshare.add_argument("study_id", metavar="ID")
    unshare.add_argument("link_id", metavar="LINK_ID")
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _client(args: argparse.Namespace, http_client: Optional[httpx.Client] = None) -> Client:
    return Client(
        api_key=args.api_key,
        base_url=args.base_url,
        timeout=args.timeout,
        max_retries=args.max_retries,
        http_client=http_client,
    )


def _options(args: argparse.Namespace) -> Dict[str, Any]:
    micro: Optional[Dict[str, Any]] = None
    if args.no_micro or args.sensitivity is not None:
        micro = {"enabled": not args.no_micro}
        if args.sensitivity is not None:
            micro["sensitivity"] = args.sensitivity
    return dict(
        detector=args.detector,
        min_face_size=args.min_face_size,
        max_faces=args.max_faces,
        return_landmarks=False if args.no_landmarks else None,
        fps=args.fps,
        micro_expressions=micro,
    )


def _analysis(
    client: Client,
    path: str,
    options: Dict[str, Any],
    run_async: bool,
    idempotency_key: Optional[str] = None,
    progress: Optional[Progress] = None,
) -> Result:
    on_progress = progress.update if progress is not None else None
    if run_async:
        job = client.jobs.create(path, idempotency_key=idempotency_key, **options)
        if on_progress is not None:
            on_progress(job)
        return client.jobs.wait(job, on_progress=on_progress).result_or_raise()
    return client.analyze(path, idempotency_key=idempotency_key, on_progress=on_progress, **options)


def _analyze(args: argparse.Namespace) -> int:
    try:
        paths = _batch.media_files(args.files, args.recursive)
    except _batch.UsageError as exc:
        print(f"emoscope: error: {exc}", file=sys.stderr)
        return 2
    if not paths:
        print(f"emoscope: error: no media file in {', '.join(args.files)}", file=sys.stderr)
        return 2
    if _batch.is_batch(args.files):
        return _analyze_batch(args, paths)
    path = paths[0]
    with _client(args) as client, Progress(args.progress, f"analysing {os.path.basename(path)}") as progress:
        result = _analysis(client, path, _options(args), args.run_async, progress=progress)
    if args.json:
        print(json.dumps(result.raw, indent=2))
    elif args.csv:
        FaceRows(sys.stdout).write(path, result)
    else:
        print(render(result, os.path.basename(path)))
    return 0


def _analyze_batch(args: argparse.Namespace, paths: List[str]) -> int:
    options = _options(args)
    rows = FaceRows(sys.stdout) if args.csv else None
    pacer = _batch.RatePacer()
    failed = 0
    with httpx.Client(event_hooks=pacer.hooks()) as http, _client(args, http) as client, BatchBar(len(paths)) as bar:
        futures = _batch.run(
            client,
            paths,
            lambda c, path, key: _analysis(c, path, options, args.run_async, key),
            concurrency=args.concurrency,
            key_secret=args.batch_key,
            options={**options, "async": args.run_async},
            on_done=bar.advance,
        )
        try:
            for future in futures:  # in the order given, each as soon as it and those before it are done
                outcome = future.result()
                failed += not outcome.ok
                if outcome.error is not None:
                    print_error(outcome.error, f"{outcome.path}: ")
                if args.json:
                    print(json.dumps(outcome_json(outcome)), flush=True)
                elif outcome.result is None:
                    continue
                elif rows is not None:
                    rows.write(outcome.path, outcome.result)
                else:
                    print(render(outcome.result, outcome.path) + "\n", flush=True)
        except BaseException as exc:  # Ctrl-C, or stdout closed (`| head`): send no more files
            in_flight = sum(not future.cancel() and not future.done() for future in futures)
            if in_flight and isinstance(exc, KeyboardInterrupt):
                print(
                    f"emoscope: interrupted; waiting for the {in_flight} files in flight (Ctrl-C again to abandon "
                    "them)",
                    file=sys.stderr,
                )
            raise
    print(f"emoscope: {len(paths)} files: {len(paths) - failed} analysed, {failed} failed", file=sys.stderr)
    return 1 if failed else 0


def outcome_json(outcome: _batch.Outcome) -> Dict[str, Any]:
    """A batch's JSON line: the file, its Idempotency-Key, and the API's answer or the error."""
    line: Dict[str, Any] = {"file": outcome.path, "ok": outcome.ok, "idempotency_key": outcome.idempotency_key}
    if outcome.result is not None:
        line.update(replayed=outcome.result.replayed, result=outcome.result.raw)
    if outcome.error is not None:
        error = outcome.error
        line["error"] = {
            "message": error.message,
            "status": error.status,
            "code": error.code,
            "detail": error.detail,
            "request_id": error.request_id,
            "invalid_params": [{"name": p.name, "reason": p.reason} for p in error.invalid_params],
        }
    return line


class FaceRows:
    """CSV, one row per face: a picture's faces, or each analysed frame's (frame, time_ms and track
    set). Indices count from 0, as in the API's arrays."""

    HEADER = ["file", "frame", "time_ms", "face", "track", "x", "y", "w", "h", "emotion", *EMOTIONS]

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._writer = csv.writer(out, lineterminator="\n")
        self._writer.writerow(self.HEADER)

    def write(self, path: str, result: Result) -> None:
        frames: List[Tuple[Optional[int], Optional[float], Tuple[Face, ...]]]
        if isinstance(result, ImageResult):
            frames = [(None, None, result.faces)]
        else:
            frames = [(frame.index, frame.timestamp_ms, frame.faces) for frame in result.frames]
        for frame_index, time_ms, faces in frames:
            for i, face in enumerate(faces):
                b = face.box
                self._writer.writerow(
                    [
                        path,
                        frame_index,
                        time_ms,
                        i,
                        face.track_id,
                        b.x,
                        b.y,
                        b.w,
                        b.h,
                        face.dominant_emotion,
                        *(face.emotions[e] for e in EMOTIONS),
                    ]
                )
        self._out.flush()


class BatchBar:
    """A bar of files done on stderr, drawn with rich while stderr is a terminal; nothing otherwise
    (the batch ends with a summary line either way). rich comes with `pip install 'emoscope[cli]'`."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.failed = 0
        self._lock = threading.Lock()
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> BatchBar:
        if not sys.stderr.isatty():
            return self
        try:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
        except ImportError:
            print("emoscope: pip install 'emoscope[cli]' for a progress bar", file=sys.stderr)
            return self
        # What goes to stdout is redrawn above the bar only when stdout is this terminal too; piped, it stays on stdout.
        self._bar = Progress(
            TextColumn("analysing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            redirect_stdout=sys.stdout.isatty(),
        )
        self._task = self._bar.add_task("files", total=self.total, failed=0)
        self._bar.start()
        return self

    def advance(self, outcome: _batch.Outcome) -> None:
        """`on_done` of `_batch.run`, called from its threads."""
        with self._lock:
            self.failed += not outcome.ok
            if self._bar is not None:
                self._bar.update(self._task, advance=1, failed=self.failed)

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def print_error(exc: EmoscopeError, about: str = "") -> None:
    """An error on stderr, then each field a 400 refused on its own line."""
    print(f"emoscope: error: {about}{exc}", file=sys.stderr)
    for param in exc.invalid_params:
        print(f"emoscope:   {param.name}: {param.reason}", file=sys.stderr)
    if exc.code == "missing_api_key":
        print("emoscope: set EMOSCOPE_API_KEY or pass --api-key", file=sys.stderr)


def render_report(report: StudyReport) -> str:
    rows = []
    for bucket in report.buckets:
        emotions = bucket["emotions"]
        if emotions:
            label = max(emotions, key=lambda e: emotions[e]["mean"])
            low, high = emotions[label]["ci95"]
            leading = f"{label} {_pct(emotions[label]['mean'])} ({_pct(low)}-{_pct(high)})"
        else:
            leading = "too few viewers"
        micro = ", ".join(f"{e} {n}" for e, n in sorted(bucket["micro_expressions"].items())) or "-"
        rows.append(
            [_secs(bucket["start_ms"]), str(bucket["viewers"]), str(bucket["viewers_with_face"]), leading, micro]
        )
    only = "".join(f", {key} = {value}" for key, value in report.filter.items())
    out = [
        f"study {report.study_id}: {report.viewers} viewers{only}, buckets of {report.bucket_ms} ms",
        "",
        table(["from", "viewers", "with face", "leading emotion (95% CI)", "micro-expressions"], rows),
    ]
    if report.summary is not None:
        out += ["", "Summary (mean over viewers, 95% CI)", render_summary(report.summary)]
    for variable in report.breakdown:
        out += [
            "",
            f"By {variable.key} ({variable.smaller_values} smaller values with {variable.smaller_viewers} "
            f"viewers, {variable.without_value} without one)",
        ]
        out.append(
            table(
                ["value", "viewers", "happy", "valence", "engagement", "attention"],
                [
                    [
                        g.value,
                        str(g.viewers),
                        _interval(g.scores.get("happy")),
                        _interval(g.scores.get("valence"), lambda v: f"{v * 100:+.0f}"),
                        _interval(g.scores.get("engagement")),
                        _interval(g.scores.get("attention")),
                    ]
                    for g in variable.groups
                ],
            )
        )
    if report.top_moments:
        out += ["", "Top moments"]
        out.append(
            table(
                ["at", "emotion", "lift (95% CI)", "mean", "d_z", "p (FDR-adjusted)"],
                [
                    [
                        _secs(m.time_ms),
                        m.emotion,
                        f"{_pct(m.lift)} ({_pct(m.ci95[0])}-{_pct(m.ci95[1])})",
                        _pct(m.mean),
                        "-" if m.effect_size is None else f"{m.effect_size:.2f}",
                        f"{m.p_adjusted:.3g}",
                    ]
                    for m in report.top_moments
                ],
            )
        )
    return "\n".join(out)


def _interval(score: Optional[ScoreInterval], unit: Callable[[float], str] = _pct) -> str:
    return f"{unit(score.mean)} ({unit(score.ci95[0])}-{unit(score.ci95[1])})" if score else "withheld"


def render_summary(summary: StudySummary) -> str:
    rows = []
    for emotion, score in summary.emotions.items():
        peak = score.peak
        rows.append(
            [
                emotion,
                _interval(score.mean),
                f"{_secs(peak.time_ms)}: {_pct(peak.mean)} ({_pct(peak.ci95[0])}-{_pct(peak.ci95[1])})"
                if peak
                else "withheld",
            ]
        )
    rows += [
        ["valence", _interval(summary.valence, lambda v: f"{v * 100:+.0f}"), ""],
        ["engagement", _interval(summary.engagement), ""],
        ["attention", _interval(summary.attention), ""],
    ]
    return table(["score", "mean", "peak"], rows)


def render_comparison(comparison: StudyComparison) -> str:
    baseline = comparison.studies[0]
    headers = [
        "score",
        *(f"{s.name} ({s.viewers})" for s in comparison.studies),
        *(f"{s.name} - {baseline.name}" for s in comparison.studies[1:]),
    ]
    rows = []
    for name in (*EMOTIONS, "valence", "engagement", "attention"):
        unit = (lambda v: f"{v * 100:+.0f}") if name == "valence" else _pct
        scores = [
            s.summary.emotions[name].mean if name in EMOTIONS else getattr(s.summary, name) for s in comparison.studies
        ]
        differences = [d.scores.get(name) for d in comparison.differences]
        rows.append(
            [
                name,
                *(_interval(score, unit) for score in scores),
                *(
                    f"{d.difference * 100:+.1f} ({d.ci95[0] * 100:+.1f} to {d.ci95[1] * 100:+.1f})" if d else "withheld"
                    for d in differences
                ),
            ]
        )
    return "\n".join(
        [
            f"{len(comparison.studies)} studies; differences in points with 95% bootstrap intervals "
            f"({comparison.resamples} resamples, seed {comparison.seed})",
            "",
            table(headers, rows),
        ]
    )


def _study_compare(args: argparse.Namespace) -> int:
    with Client(
        api_key=args.api_key, base_url=args.base_url, timeout=args.timeout, max_retries=args.max_retries
    ) as client:
        comparison = client.studies.compare(args.study_ids)
    print(json.dumps(comparison.raw, indent=2) if args.json else render_comparison(comparison))
    return 0


def _study_sharing(args: argparse.Namespace) -> int:
    with Client(
        api_key=args.api_key, base_url=args.base_url, timeout=args.timeout, max_retries=args.max_retries
    ) as client:
        if args.study_command == "unshare":
            client.studies.revoke_report_link(args.study_id, args.link_id)
            print(f"revoked {args.link_id}")
            return 0
        link = client.studies.create_report_link(args.study_id, expires_in_days=args.days)
        print(f"{client.base_url.rstrip('/')}{link.path}")
        print(
            f"link {link.id}, until {link.expires_at:%Y-%m-%d}; revoke with: emoscope study unshare "
            f"{args.study_id} {link.id}",
            file=sys.stderr,
        )
    return 0


def _study_report(args: argparse.Namespace) -> int:
    with Client(
        api_key=args.api_key, base_url=args.base_url, timeout=args.timeout, max_retries=args.max_retries
    ) as client:
        segment = dict(item.partition("=")[::2] for item in args.segment)
        if args.csv:
            sys.stdout.write(
                client.studies.report_csv(args.study_id, bucket_ms=args.bucket_ms, table=args.table, segment=segment)
            )
            return 0
        if args.pdf:
            pdf = client.studies.report_pdf(args.study_id, bucket_ms=args.bucket_ms, segment=segment)
            with open(args.pdf, "wb") as out:
                out.write(pdf)
            print(f"wrote {args.pdf} ({len(pdf)} bytes)", file=sys.stderr)
            return 0
        report = client.studies.report(args.study_id, bucket_ms=args.bucket_ms, segment=segment)
    print(json.dumps(report.raw, indent=2) if args.json else render_report(report))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "analyze":
            return _analyze(args)
        if args.command == "study":
            commands = {"compare": _study_compare, "share": _study_sharing, "unshare": _study_sharing}
            return commands.get(args.study_command, _study_report)(args)
    except EmoscopeError as exc:
        print_error(exc)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `emoscope analyze clip.mp4 --json | head`
        sys.stdout = open(os.devnull, "w")
        return 0
    except OSError as exc:  # a file named on the command line that cannot be read (or, --pdf, written)
        print(f"emoscope: error: {exc}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
