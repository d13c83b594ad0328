"""dlib HOG settings: faces found and milliseconds per setting, on the real photos and clip frames.

Every setting drives DeepFace's own `DlibClient` objects (its HOG detector,
`client.model["face_detector"]`). The reference is what the service did before this bench
existed: `client.detect_faces` (upsample x1, i.e. HOG over 4x the pixels, plus DeepFace's own
5-point landmarks per face) on a copy whose longer side is 640 px. Each setting is run on every
picture in turn (interleaved, rotating order) so background load hits all alike; per picture
the fastest of `--repeats` runs counts. "same" = faces matched one-to-one with the reference
at IoU >= 0.5 in source pixels; "extra"/"missed" are the rest.

    python bench/detector_settings.py [--repeats 3] [--clip-frames 12]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from machine import describe  # noqa: E402  (bench/machine.py)

from api.engine import detection  # noqa: E402
from api.engine.analyzer import configure_deepface  # noqa: E402
from api.engine.track_building import iou  # noqa: E402
from api.engine.weights import prepare_deepface_home  # noqa: E402
from api.wiring.config import DEFAULT_EMOTION_MODEL, REPO_ROOT  # noqa: E402

DATA_DIR = Path(os.environ.get("EMOSCOPE_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))


def boxes_from_rects(rects, scale: float) -> list[np.ndarray]:
    return [
        np.array([r.left(), r.top(), r.right() - r.left(), r.bottom() - r.top()], np.float32) / scale for r in rects
    ]


def resized(image: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    scale = min(1.0, side / max(image.shape[:2]))
    if scale == 1.0:
        return image, 1.0
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), scale


def make_settings(client):
    hog = client.model["face_detector"]

    def reference(image):
        small, scale = resized(image, 640)
        return [np.array([r.x, r.y, r.w, r.h], np.float32) / scale for r in client.detect_faces(small)]

    def hog_run(side: int, upsample: int, gray: bool):
        def run(image):
            small, scale = resized(image, side)
            if gray:
                small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
            rects, _, _ = hog.run(small, upsample)
            return boxes_from_rects(rects, scale)

        return run

    settings = {"ref: detect_faces up1 @640": reference}
    # HOG straight on the copy (upsample x0 or x1), BGR or grey; copies are only ever shrunk here.
    for side, upsample, gray in [
        (640, 1, False),
        (640, 1, True),
        (640, 0, False),
        (640, 0, True),
        (800, 0, True),
        (960, 0, True),
        (1280, 0, True),
    ]:
        name = f"run up{upsample} @{side} {'gray' if gray else 'bgr'}"
        settings[name] = hog_run(side, upsample, gray)
    settings["detect() default"] = lambda image: [d.box for d in detection.detect(client, image)]
    settings["detect() min_face_size=1"] = lambda image: [d.box for d in detection.detect(client, image, 1)]
    return settings


def match(reference: list[np.ndarray], found: list[np.ndarray]) -> tuple[int, int, int]:
    used, same = set(), 0
    for r in reference:
        best = max(((iou(r, f), j) for j, f in enumerate(found) if j not in used), default=(0.0, -1))
        if best[0] >= 0.5:
            used.add(best[1])
            same += 1
    return same, len(reference) - same, len(found) - len(used)


def shrunk(image: np.ndarray, factor: float) -> np.ndarray:
    """The picture scaled by `factor` and centred on a grey canvas of the original size."""
    canvas = np.full_like(image, 128)
    small = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    y, x = (canvas.shape[0] - small.shape[0]) // 2, (canvas.shape[1] - small.shape[1]) // 2
    canvas[y : y + small.shape[0], x : x + small.shape[1]] = small
    return canvas


def clip_frames(count: int) -> list[tuple[str, np.ndarray]]:
    import av

    frames = []
    for path in sorted((DATA_DIR / "videos").glob("*")):
        with av.open(str(path)) as container:
            decoded = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
        step = max(1, len(decoded) // count)
        frames += [(f"{path.name}#{i}", decoded[i]) for i in range(0, len(decoded), step)][:count]
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clip-frames", type=int, default=12, help="frames taken from each clip in videos/")
    parser.add_argument(
        "--shrink",
        type=float,
        default=1.0,
        help="shrink each picture by this factor onto a grey canvas of its own size (smaller faces)",
    )
    parser.add_argument("--verbose", action="store_true", help="list pictures where a setting differs")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp())
    prepare_deepface_home(home, ["dlib_shape_predictor_5"], DEFAULT_EMOTION_MODEL)
    configure_deepface(home, threads=1)
    client = detection.load_detector("dlib")
    pictures = [(p.name, cv2.imread(str(p))) for p in sorted((DATA_DIR / "faces").glob("*.jpg"))]
    pictures += clip_frames(args.clip_frames)
    if args.shrink != 1.0:
        pictures = [(label, shrunk(image, args.shrink)) for label, image in pictures]
    settings = make_settings(client)
    names = list(settings)
    ms = {n: [] for n in names}
    tallies = {n: [0, 0, 0, 0] for n in names}  # found, same, missed, extra
    for k, (label, image) in enumerate(pictures):
        best = {n: float("inf") for n in names}
        found = {}
        for r in range(args.repeats):
            order = names[(k + r) % len(names) :] + names[: (k + r) % len(names)]
            for n in order:
                started = time.perf_counter()
                found[n] = settings[n](image)
                best[n] = min(best[n], (time.perf_counter() - started) * 1000)
        for n in names:
            ms[n].append(best[n])
            same, missed, extra = match(found[names[0]], found[n])
            t = tallies[n]
            t[0] += len(found[n])
            t[1] += same
            t[2] += missed
            t[3] += extra
            if args.verbose and (missed or extra):
                print(
                    f"  {label}: {n}: ref {len(found[names[0]])}, found {len(found[n])}, missed {missed}, extra {extra}"
                )

    print(
        f"{len(pictures)} pictures ({sum(1 for label, _ in pictures if '#' not in label)} photos from {DATA_DIR / 'faces'}, "
        f"the rest clip frames), best of {args.repeats} per picture, {describe()}"
    )
    base = statistics.median(ms[names[0]])
    print(
        f"{'setting':<30} {'faces':>5} {'same':>5} {'missed':>6} {'extra':>5} {'median ms':>9} {'mean ms':>8} {'x ref':>6}"
    )
    for n in names:
        f, s, m, e = tallies[n]
        med = statistics.median(ms[n])
        print(f"{n:<30} {f:>5} {s:>5} {m:>6} {e:>5} {med:>9.1f} {statistics.fmean(ms[n]):>8.1f} {base / med:>6.2f}")


if __name__ == "__main__":
    main()
