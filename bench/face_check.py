"""The face check's thresholds and the session quality gate, measured on real recordings and photos.

(a) Real stills, as the participant page sends them: the real clips of ../shared/data/videos (the
    frames with a face, one every `--every-ms` 500 ms, decoded in colour as the page's camera gives
    them; the engine's `media.decode` yields grey video frames) and the real photos of
    ../shared/data/faces, each scaled to 640 px wide, encoded as JPEG at quality 80 and decoded as
    the service decodes a still (`media.decode` with `face_check.MAX_STILL_SIDE`). Each is judged as
    `face_check.check_faces` judges it: the analyser with `face_check.OPTIONS`, its largest face
    (`face_check._largest_face`) and `face_check.judge_face`. Reported: the share of stills that are
    visible / framed / facing / lit / pass all four, and percentiles of the face box's width share,
    its luma (`face_check.face_luma`) and the head pose, against MIN_FACE_WIDTH_SHARE,
    MIN_FACE_LUMA..MAX_FACE_LUMA and FACING_MAX_YAW/PITCH.
(b) Controlled degradations of the real stills that pass all four checks, each meant to fail one
    check: dark (gain 0.25 plus sensor noise sigma 3), over-exposed (gain 2.2, offset +50, clipped),
    small (the still shrunk so the face box is 8 % of the width, centred on a plain canvas of the
    still's median colour), cut (shifted so 40 % of the face box lies beyond the nearest side edge),
    and no-face stills (no_face.mp4, and the title part of face_noface.mov, every `--every-ms`).
    Reported as in (a); the intended check should fail (or, with no face found, face_visible, which
    the page reports instead of the other hints).
(c) The quality gate (`audience.MIN_FACE_SHARE`): per real clip, the share of frames, every 200 ms
    (`face_following.DETECT_PERIOD_MS`), on which BlazeFace finds a face (`Analyzer._detect`, as the
    clip pipeline runs it on `media.decode`'s grey frames), and the session's own `audience.face_share`:
    the clip analysed as a participant's recording is (`AnalysisOptions()`, as
    `submission.submit_session` submits it) with the whole clip taken as the stimulus.

One thread (`cv2.setNumThreads(1)`, `Analyzer(threads=1)`); under a minute on two loaded cores.

    python bench/face_check.py [--every-ms 500] [--seed 0] [--verbose]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from machine import describe  # noqa: E402  (bench/machine.py)

from api.domain import audience  # noqa: E402
from api.engine import face_following, media  # noqa: E402
from api.engine.analyzer import AnalysisOptions, Analyzer  # noqa: E402
from api.engine.detection import BLAZEFACE  # noqa: E402
from api.engine.mesh import FACING_MAX_PITCH, FACING_MAX_YAW  # noqa: E402
from api.engine.preprocess import to_grayscale  # noqa: E402
from api.usecases import face_check  # noqa: E402
from api.wiring.config import DEFAULT_EMOTION_MODEL, REPO_ROOT, Limits  # noqa: E402

DATA_DIR = Path(os.environ.get("EMOSCOPE_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
PAGE_WIDTH = 640  # the participant page scales its preview to 640 px wide
JPEG_QUALITY = 80  # the page's canvas.toBlob("image/jpeg", 0.8)
# face_noface.mov: the man in its first 72 frames, then an animated title (../shared/data/README.md);
# a few frames of margin either side of the cut.
FACE_NOFACE, FACE_FRAMES, TITLE_FROM = "face_noface.mov", 72, 76
NO_FACE_CLIPS = {"no_face.mp4"}
CHECKS = ("face_visible", "framed", "facing", "lit")
SMALL_SHARE = 0.08  # "small": the face box shrunk to this share of the width
CUT_OUTSIDE = 0.4  # "cut": this share of the face box's width beyond the edge


@dataclass
class Still:
    name: str
    pixels: np.ndarray  # BGR, 640 px wide, before JPEG


@dataclass
class Judged:
    still: Still
    verdict: face_check.StillVerdict
    width_share: float | None = None
    luma: float | None = None
    yaw: float | None = None
    pitch: float | None = None
    box: np.ndarray | None = None  # on the decoded still


def page_width(pixels: np.ndarray) -> np.ndarray:
    scale = PAGE_WIDTH / pixels.shape[1]
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(pixels, (PAGE_WIDTH, round(pixels.shape[0] * scale)), interpolation=interpolation)


def clip_stills(path: Path, every_ms: float, frames: range | None = None) -> list[Still]:
    """Colour frames every `every_ms` (by presentation time), only those whose index is in `frames`."""
    import av

    stills, due = [], 0.0
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            t_ms = float(frame.time or 0.0) * 1000
            if frames is not None and index not in frames:
                continue
            if t_ms + 1e-6 >= due:
                stills.append(Still(f"{path.name}@{t_ms:.0f}ms", page_width(frame.to_ndarray(format="bgr24"))))
                due = t_ms + every_ms
    return stills


def photo_stills() -> list[Still]:
    return [Still(p.name, page_width(cv2.imread(str(p)))) for p in sorted((DATA_DIR / "faces").glob("*.jpg"))]


def judge(analyzer: Analyzer, still: Still) -> Judged:
    """The still through the service's path: JPEG as the page sends it, decoded as `_decode_still`
    decodes it, its largest face as `check_faces` finds it, judged by `judge_face`."""
    ok, jpeg = cv2.imencode(".jpg", still.pixels, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    assert ok
    image = media.decode(jpeg.tobytes(), replace(Limits(), max_image_side=face_check.MAX_STILL_SIDE), None)
    assert isinstance(image, media.DecodedImage)
    face = face_check._largest_face(SimpleNamespace(analyzer=analyzer), image)
    verdict = face_check.judge_face(image.pixels, face)
    if face is None:
        return Judged(still, verdict)
    pose = face.head_pose
    return Judged(
        still,
        verdict,
        float(face.box[2]) / image.pixels.shape[1],
        face_check.face_luma(image.pixels, face),
        None if pose is None else float(pose.yaw),
        None if pose is None else float(pose.pitch),
        np.asarray(face.box, np.float64),
    )


# ---------------------------------------------------------------------------------------------
# degradations


def dark(still: Still, rng: np.random.Generator) -> np.ndarray:
    return np.clip(still.pixels * 0.25 + rng.normal(0, 3.0, still.pixels.shape), 0, 255).astype(np.uint8)


def over_exposed(still: Still) -> np.ndarray:
    return np.clip(still.pixels * 2.2 + 50.0, 0, 255).astype(np.uint8)


def _plain(pixels: np.ndarray) -> tuple[float, float, float]:
    return tuple(float(v) for v in np.median(pixels.reshape(-1, 3), axis=0))


def small(judged: Judged) -> np.ndarray:
    """The whole still shrunk so that the face box is SMALL_SHARE of the width, centred on a plain canvas."""
    pixels = judged.still.pixels
    scale = SMALL_SHARE / judged.width_share
    shrunk = cv2.resize(pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.empty_like(pixels)
    canvas[:] = _plain(pixels)
    y0, x0 = (pixels.shape[0] - shrunk.shape[0]) // 2, (pixels.shape[1] - shrunk.shape[1]) // 2
    canvas[y0 : y0 + shrunk.shape[0], x0 : x0 + shrunk.shape[1]] = shrunk
    return canvas


def cut(judged: Judged) -> np.ndarray:
    """The still shifted sideways so that CUT_OUTSIDE of the face box's width lies beyond the nearer edge."""
    pixels = judged.still.pixels
    x, _, w, _ = judged.box
    width = pixels.shape[1]
    left = x + w / 2 < width / 2
    dx = -(x + CUT_OUTSIDE * w) if left else width - (x + (1 - CUT_OUTSIDE) * w)
    matrix = np.float32([[1, 0, dx], [0, 1, 0]])
    return cv2.warpAffine(
        pixels, matrix, (width, pixels.shape[0]), borderMode=cv2.BORDER_CONSTANT, borderValue=_plain(pixels)
    )


# ---------------------------------------------------------------------------------------------
# reporting


def passes(verdict: face_check.StillVerdict) -> bool:
    return all(getattr(verdict, name) for name in CHECKS)


def pct(values: list[bool]) -> str:
    return f"{100 * sum(values) / len(values):.0f}%" if values else "-"


def print_shares(rows: list[tuple[str, list[Judged]]]) -> None:
    print(f"{'':<34}{'stills':>7}" + "".join(f"{c:>14}" for c in CHECKS) + f"{'all four':>10}")
    for title, judged in rows:
        cells = "".join(f"{pct([getattr(j.verdict, c) for j in judged]):>14}" for c in CHECKS)
        print(f"{title:<34}{len(judged):>7}{cells}{pct([passes(j.verdict) for j in judged]):>10}")


def percentiles(values: list[float]) -> str:
    if not values:
        return "-"
    q = np.percentile(values, [0, 5, 25, 50, 75, 95, 100])
    return "  ".join(f"{v:7.3f}" if max(abs(q)) < 2 else f"{v:6.1f}" for v in q)


def print_distributions(rows: list[tuple[str, list[Judged]]]) -> None:
    print(f"{'':<44}{'min':>7}{'p5':>9}{'p25':>9}{'p50':>9}{'p75':>9}{'p95':>9}{'max':>9}")
    for title, judged in rows:
        found = [j for j in judged if j.width_share is not None]
        posed = [j for j in found if j.yaw is not None]
        print(f"{title + ': face width share':<44}{percentiles([j.width_share for j in found])}")
        print(f"{'  face luma':<44}{percentiles([j.luma for j in found])}")
        print(f"{'  |yaw| deg':<44}{percentiles([abs(j.yaw) for j in posed])}")
        print(f"{'  |pitch| deg':<44}{percentiles([abs(j.pitch) for j in posed])}")


def print_failures(title: str, judged: list[Judged]) -> None:
    for j in judged:
        if not passes(j.verdict):
            failed = [c for c in CHECKS if not getattr(j.verdict, c)]
            facts = (
                ""
                if j.width_share is None
                else f" (width {j.width_share:.3f}, luma {j.luma:.0f}, yaw {j.yaw or 0:.0f}, pitch {j.pitch or 0:.0f})"
            )
            print(f"  {title}: {j.still.name} fails {', '.join(failed)}{facts}")


# ---------------------------------------------------------------------------------------------
# (c) the quality gate


def gate(analyzer: Analyzer, path: Path) -> tuple[int, int, float, float]:
    """(frames checked, with a face) for BlazeFace every DETECT_PERIOD_MS, and the session's face share
    with the session pipeline, and the clip's length in ms."""
    data = path.read_bytes()
    options = AnalysisOptions(detector=BLAZEFACE)
    video = media.decode(data, Limits(), options.sample_fps)
    checked = found = 0
    last = None
    for frame in video.frames:
        if not face_following.detection_due(frame.timestamp_ms, last, face_following.DETECT_PERIOD_MS):
            continue
        last = frame.timestamp_ms
        checked += 1
        found += bool(analyzer._detect(frame.pixels, to_grayscale(frame.pixels), options, analyzer.clip_detectors))
    session_options = AnalysisOptions()  # what submission.submit_session submits
    analysis = analyzer.analyze_video(media.decode(data, Limits(), session_options.sample_fps), session_options)
    duration = analysis.media.duration_ms or 0.0
    timeline = audience.timeline_from_analysis(analysis, 0.0, duration)
    return checked, found, audience.face_share(timeline), duration


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every-ms", type=float, default=500.0, help="one still per this many ms of clip")
    parser.add_argument("--seed", type=int, default=0, help="sensor noise of the dark stills")
    parser.add_argument("--verbose", action="store_true", help="list every still that fails a check")
    args = parser.parse_args()

    cv2.setNumThreads(1)
    analyzer = Analyzer(Path(tempfile.mkdtemp()), DEFAULT_EMOTION_MODEL, threads=1)
    rng = np.random.default_rng(args.seed)
    videos = DATA_DIR / "videos"
    if not videos.is_dir():
        raise SystemExit(f"{videos} is missing: set EMOSCOPE_DATA_DIR to the shared data folder")
    face_clips = [p for p in sorted(videos.glob("*")) if p.name not in NO_FACE_CLIPS]
    print(
        f"Face check on real stills ({PAGE_WIDTH} px wide, JPEG q{JPEG_QUALITY}), thresholds: face width >= "
        f"{face_check.MIN_FACE_WIDTH_SHARE:.2f} of the still, luma {face_check.MIN_FACE_LUMA:.0f}-"
        f"{face_check.MAX_FACE_LUMA:.0f}, |yaw| <= {FACING_MAX_YAW:.0f}, |pitch| <= {FACING_MAX_PITCH:.0f}; "
        f"quality gate MIN_FACE_SHARE {audience.MIN_FACE_SHARE}; 1 thread; {describe()}"
    )

    clip_real = [
        judge(analyzer, s)
        for p in face_clips
        for s in clip_stills(p, args.every_ms, range(FACE_FRAMES) if p.name == FACE_NOFACE else None)
    ]
    photos = [judge(analyzer, s) for s in photo_stills()]
    real = [("real clip stills (face part)", clip_real), ("real photos", photos)]
    print(f"\n(a) Real stills: clip stills every {args.every_ms:.0f} ms, photos of {DATA_DIR / 'faces'}")
    print_shares(real)
    print()
    print_distributions(real)
    if args.verbose:
        for title, judged in real:
            print_failures(title, judged)

    base = [j for j in clip_real + photos if passes(j.verdict)]
    no_face = [judge(analyzer, s) for s in clip_stills(videos / "no_face.mp4", args.every_ms)]
    no_face += [judge(analyzer, s) for s in clip_stills(videos / FACE_NOFACE, args.every_ms, range(TITLE_FROM, 10**6))]
    degraded = [
        ("dark (x0.25, noise) -> lit", [judge(analyzer, Still(j.still.name, dark(j.still, rng))) for j in base]),
        (
            "over-exposed (x2.2+50) -> lit",
            [judge(analyzer, Still(j.still.name, over_exposed(j.still))) for j in base],
        ),
        (
            f"small (face {SMALL_SHARE:.0%} wide) -> framed",
            [judge(analyzer, Still(j.still.name, small(j))) for j in base],
        ),
        (f"cut ({CUT_OUTSIDE:.0%} outside) -> framed", [judge(analyzer, Still(j.still.name, cut(j))) for j in base]),
        ("no face -> face_visible", no_face),
    ]
    print(f"\n(b) Degradations of the {len(base)} real stills that pass all four checks, and no-face stills")
    print_shares(degraded)
    print()
    print_distributions(degraded[:4])
    if args.verbose:
        for title, judged in degraded:
            for j in judged:
                if passes(j.verdict):
                    print(
                        f"  {title.split(' ')[0]}: {j.still.name} passes all four (width {j.width_share:.3f}, luma {j.luma:.0f})"
                    )

    print(
        f"\n(c) Quality gate (a session with a face over less than {audience.MIN_FACE_SHARE:.0%} of the stimulus is "
        "low_quality): each real clip as a whole-stimulus session"
    )
    print(
        f"{'clip':<28}{'length s':>9}{'BlazeFace every ' + str(int(face_following.DETECT_PERIOD_MS)) + ' ms':>26}"
        f"{'session face_share':>20}{'gate':>13}"
    )
    for path in sorted(videos.glob("*")):
        checked, found, share, duration = gate(analyzer, path)
        verdict = "low_quality" if share < audience.MIN_FACE_SHARE else "counts"
        print(
            f"{path.name:<28}{duration / 1000:>9.1f}{f'{found}/{checked} = {found / checked:.0%}':>26}"
            f"{share:>20.2f}{verdict:>13}"
        )


if __name__ == "__main__":
    main()
