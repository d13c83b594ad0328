"""Face detection on labelled faces: every detector the engine offers, side by side, in one run.

Detectors: every name in `api.engine.detection.DETECTORS`, loaded as the service loads them
(`Analyzer.detectors`) and called through `detection.detect(client, image)`, so each one uses its
own resizing policy exactly as served. One thread (`cv2.setNumThreads(1)`, `Analyzer(threads=1)`).

(a) Photos: the 52 real photos of ../shared/data/faces with the hand-labelled boxes of
    bench/data/face_boxes.json (how they were made: bench/data/README.md).
(b) Constructed: `--constructed N` 640x480 pictures made here, deterministically (`--seed`), never
    stored: real faces (crops of the labelled photos, and hand-labelled frames of the real clips
    in ../shared/data/videos) pasted with a feathered elliptical mask onto real backgrounds (regions
    of those photos and clip frames that hold no labelled face), 24-400 px (geometric mean of the
    face box's sides), tilted by -45..45 degrees, about a fifth partly cut by the picture's edge,
    a quarter of the pictures dimmed (low light, with sensor noise). The ground-truth box of a tilted
    face is the axis-aligned box around the rotated face (the ellipse inscribed in its labelled box,
    see `rotated_extent`), clipped to the picture; a face under half visible is ignored.
(c) Webcam frames: the detectors' time per 640x480 grey frame (the clips' frames every 200 ms,
    letterboxed), as the clip pipeline runs them (detection + 5 landmarks), with the ratio to dlib.
(d) Clips: for each real clip in ../shared/data/videos, the detector as the clip pipeline runs it
    (`Analyzer._detect`, i.e. detection plus 5 landmarks, on the grey frames `media.decode` yields,
    on the schedule of `face_following.detection_due`: the first frame, then every 200 ms until a face is
    found): which frame first yields a face, at what clip time, how long the processing took until
    then (decoding included), and the detector's own time on the first frame.

Scoring: a detection matches a counted face at IoU >= 0.5 (one-to-one, best IoU first). A
detection that matches no counted face is a false box unless it overlaps an ignored face
(IoU >= 0.5, or at least half of the detection lies inside the ignored box). Ignored faces are never
misses. A false box that lies on a counted face all the same (IoU >= 0.3, or half inside its box: a tilted
face boxed upright, say) is told apart from one on no face at all (clothing, skin, patterns). `recall @IoU>=0.3` tells a detector that boxes faces differently from the labels (say,
brows to chin) from one that misses them. Face size buckets use sqrt(w*h) of the face box on the
picture the detectors' policy is built around: photos are measured on their copy whose longer side
is 640 px, constructed pictures as they are. ms: per picture the fastest of `--repeats` runs (detectors interleaved in rotating
order, so background load hits all alike), then the median over pictures.

    python bench/face_detection.py [--photos-only] [--constructed 120] [--repeats 2] [--seed 0] [--verbose]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from machine import describe  # noqa: E402  (bench/machine.py)

from api.engine import detection, face_following, media  # noqa: E402
from api.engine.analyzer import AnalysisOptions, Analyzer  # noqa: E402
from api.engine.preprocess import to_grayscale  # noqa: E402
from api.wiring.config import DEFAULT_EMOTION_MODEL, REPO_ROOT, Limits  # noqa: E402

DATA_DIR = Path(os.environ.get("EMOSCOPE_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
LABELS = REPO_ROOT / "bench" / "data" / "face_boxes.json"
IOU_MATCH = 0.5
BUCKETS = [(0, 32), (32, 64), (64, 128), (128, 256), (256, 10_000)]
CANVAS_W, CANVAS_H = 640, 480
MIN_FACE, MAX_FACE = 24.0, 400.0
# Hand-labelled faces in frames of the real clips (looked at with a pixel grid, same box rule as
# the photos: hairline to chin, cheek or ear to ear): (clip, frame index, (x, y, w, h)).
VIDEO_FACES = [
    ("WolfgangLanger_Pexels.mp4", 0, (318, 25, 240, 311)),
    ("WolfgangLanger_Pexels.mp4", 300, (352, 20, 200, 258)),
    ("WolfgangLanger_Pexels.mp4", 450, (352, 68, 208, 256)),
    ("single_face.mp4", 0, (228, 80, 148, 200)),
    ("single_face.mp4", 60, (216, 68, 156, 212)),
]
# Photos never used as backgrounds: defocused crowds or printed faces that are not boxed one by one.
NOT_BACKGROUNDS = {
    "img31.jpg",
    "img38.jpg",
    "img41.jpg",
    "img54.jpg",
    "img55.jpg",
    "img62.jpg",
    "selfie-many-people.jpg",
}


@dataclass
class Truth:
    box: np.ndarray  # x, y, w, h in the picture's pixels
    ignore: bool = False
    size: float = 0.0  # sqrt(w*h) of the face box on the reference scale (see module docstring)
    tags: tuple[str, ...] = ()


@dataclass
class Picture:
    name: str
    image: np.ndarray | None  # None: loaded on demand (photos)
    truths: list[Truth]
    path: Path | None = None

    def pixels(self) -> np.ndarray:
        return self.image if self.image is not None else cv2.imread(str(self.path))


@dataclass
class Tally:
    faces: int = 0
    found: int = 0
    found_loose: int = 0  # matched at IoU >= 0.3: a detector that boxes faces differently, not missing them
    false_boxes: int = 0
    false_on_a_face: int = 0  # false boxes that lie on a counted face all the same (see `score`)
    ious: list[float] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)
    by_bucket: dict = field(default_factory=dict)  # bucket -> [faces, found]
    by_tag: dict = field(default_factory=dict)  # tag -> [faces, found]
    by_picture: dict = field(default_factory=dict)  # name -> (found, faces, false)


def iou(a, b) -> float:
    iw = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def inside_fraction(box, region) -> float:
    """Share of `box`'s area that lies inside `region`."""
    iw = max(0.0, min(box[0] + box[2], region[0] + region[2]) - max(box[0], region[0]))
    ih = max(0.0, min(box[1] + box[3], region[1] + region[3]) - max(box[1], region[1]))
    return iw * ih / (box[2] * box[3]) if box[2] * box[3] > 0 else 0.0


def score(
    truths: list[Truth], boxes: list[np.ndarray], threshold: float = IOU_MATCH
) -> tuple[list[float | None], int, int]:
    """Per truth the IoU of its matched detection (None: missed, or ignored), the false boxes, and how
    many of those lie on a counted face all the same (IoU >= 0.3 with it, or at least half inside its
    box): a face boxed too differently from its label, not a box on clothing, patterns or hands."""
    counted = [i for i, t in enumerate(truths) if not t.ignore]
    pairs = sorted(((iou(truths[i].box, b), i, j) for i in counted for j, b in enumerate(boxes)), reverse=True)
    matched: list[float | None] = [None] * len(truths)
    used = set()
    for value, i, j in pairs:
        if value < threshold:
            break
        if matched[i] is None and j not in used:
            matched[i] = value
            used.add(j)
    ignored = [t.box for t in truths if t.ignore]
    false = [
        b
        for j, b in enumerate(boxes)
        if j not in used and not any(iou(b, g) >= IOU_MATCH or inside_fraction(b, g) >= 0.5 for g in ignored)
    ]
    on_a_face = sum(
        1
        for b in false
        if any(iou(b, truths[i].box) >= 0.3 or inside_fraction(b, truths[i].box) >= 0.5 for i in counted)
    )
    return matched, len(false), on_a_face


def bucket_of(size: float) -> tuple[int, int]:
    return next(b for b in BUCKETS if b[0] <= size < b[1])


def bucket_name(b: tuple[int, int]) -> str:
    return f"<{b[1]}" if b[0] == 0 else (f">={b[0]}" if b[1] >= 10_000 else f"{b[0]}-{b[1]}")


# ---------------------------------------------------------------------------------------------
# (a) photos


def labelled_photos() -> list[Picture]:
    labels = json.loads(LABELS.read_text())
    photos = []
    for name in sorted(labels):
        path = DATA_DIR / "faces" / name
        if not path.is_file():
            raise SystemExit(f"{path} is missing: set EMOSCOPE_DATA_DIR to the shared data folder")
        height, width = _true_size(path)
        scale = 640.0 / max(height, width)
        truths = [
            Truth(
                np.array([b["x"], b["y"], b["w"], b["h"]], np.float32), b["ignore"], math.sqrt(b["w"] * b["h"]) * scale
            )
            for b in labels[name]
        ]
        photos.append(Picture(name, None, truths, path))
    return photos


def _true_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as image:
        width, height = image.size
    return height, width


# ---------------------------------------------------------------------------------------------
# (b) constructed pictures


@dataclass
class FacePatch:
    patch: np.ndarray  # BGR, the face with context around it
    box: np.ndarray  # the face box in patch pixels
    source: str


def _patch_around(image: np.ndarray, box, max_side: float = 440.0) -> tuple[np.ndarray, np.ndarray]:
    """A square region twice the face's longer side around it (edges replicated), the face <= max_side."""
    x, y, w, h = (float(v) for v in box)
    half = max(w, h)
    cx, cy = x + w / 2, y + h / 2
    x0, y0 = int(round(cx - half)), int(round(cy - half))
    side = int(round(2 * half))
    pad = side
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    patch = padded[y0 + pad : y0 + pad + side, x0 + pad : x0 + pad + side]
    face = np.array([x - x0, y - y0, w, h], np.float32)
    scale = min(1.0, max_side / max(w, h))
    if scale < 1.0:
        patch = cv2.resize(patch, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        face *= scale
    return patch, face


def clip_frames(name: str, indices: set[int]) -> dict[int, np.ndarray]:
    import av

    frames = {}
    with av.open(str(DATA_DIR / "videos" / name)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in indices:
                frames[index] = frame.to_ndarray(format="bgr24")
            if index >= max(indices):
                break
    return frames


def face_and_background_pools(photos: list[Picture]) -> tuple[list[FacePatch], list[FacePatch], list]:
    """Photo faces, clip faces, and backgrounds [(image <= 1024 px, face boxes scaled to it)]."""
    photo_faces, clip_faces, backgrounds = [], [], []
    for photo in photos:
        image = photo.pixels()
        height, width = image.shape[:2]
        for k, t in enumerate(photo.truths):
            x, y, w, h = t.box
            whole = x > 0 and y > 0 and x + w < width and y + h < height
            if not t.ignore and whole and min(w, h) >= 60:
                patch, face = _patch_around(image, t.box)
                photo_faces.append(FacePatch(patch, face, f"{photo.name}#{k}"))
        if photo.name not in NOT_BACKGROUNDS:
            scale = min(1.0, 1024.0 / max(height, width))
            small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            backgrounds.append((small, [t.box * scale for t in photo.truths]))
    for clip in sorted({c for c, _, _ in VIDEO_FACES}):
        wanted = {i: b for c, i, b in VIDEO_FACES if c == clip}
        for index, frame in clip_frames(clip, set(wanted)).items():
            patch, face = _patch_around(frame, wanted[index])
            clip_faces.append(FacePatch(patch, face, f"{clip}#{index}"))
            backgrounds.append((frame, [np.array(wanted[index], np.float32)]))
    return photo_faces, clip_faces, backgrounds


def _background(rng: np.random.Generator, backgrounds) -> np.ndarray:
    """A 4:3 region of a real picture that overlaps no labelled face (boxes grown by a quarter)."""
    while True:
        image, boxes = backgrounds[rng.integers(len(backgrounds))]
        height, width = image.shape[:2]
        grown = [(x - w / 4, y - h / 4, w * 1.5, h * 1.5) for x, y, w, h in boxes]
        for _ in range(40):
            rw = rng.uniform(0.2, 1.0) * min(width, height * 4 / 3)
            rh = rw * 3 / 4
            if rw < 200:  # smaller regions would be blown up into a blur
                continue
            rx, ry = rng.uniform(0, width - rw), rng.uniform(0, height - rh)
            if all(inside_fraction(g, (rx, ry, rw, rh)) == 0 for g in grown):
                region = image[int(ry) : int(ry + rh), int(rx) : int(rx + rw)]
                interpolation = cv2.INTER_AREA if rw > CANVAS_W else cv2.INTER_LINEAR
                return cv2.resize(region, (CANVAS_W, CANVAS_H), interpolation=interpolation)


def rotated_extent(w: float, h: float, angle: float) -> tuple[float, float]:
    """Width and height of the axis-aligned box around the ellipse inscribed in a w x h box, rotated.

    The face is taken as that ellipse: the box around the rotated rectangle's corners would overstate
    a face tilted by 45 degrees by up to twice its area, more than any tight detector box could match
    at IoU 0.5; the ellipse's box stays as tight as the upright label (same box at 0 degrees).
    """
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    return (w * math.sqrt(c * c + (h / w) ** 2 * s * s), h * math.sqrt(c * c + (w / h) ** 2 * s * s))


def _paste(canvas: np.ndarray, face: FacePatch, size: float, angle: float, centre) -> None:
    """Paste the face (face box sqrt(w*h) = size px, rotated by angle) with its centre at `centre`."""
    x, y, w, h = face.box
    scale = size / math.sqrt(w * h)
    fc = (float(x + w / 2), float(y + h / 2))
    matrix = cv2.getRotationMatrix2D(fc, angle, scale)
    matrix[:, 2] += np.array(centre) - np.array(fc)
    ph, pw = face.patch.shape[:2]
    mask = np.zeros((ph, pw), np.float32)
    cv2.ellipse(mask, (int(fc[0]), int(fc[1])), (int(0.62 * w), int(0.62 * h)), 0, 0, 360, 1.0, -1)
    sigma = max(1.0, 0.06 * min(w, h))
    mask = cv2.GaussianBlur(mask, (0, 0), sigma)
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    warped = cv2.warpAffine(
        face.patch, matrix, (CANVAS_W, CANVAS_H), flags=interpolation, borderMode=cv2.BORDER_REPLICATE
    )
    alpha = cv2.warpAffine(mask, matrix, (CANVAS_W, CANVAS_H), flags=cv2.INTER_LINEAR)[..., None]
    canvas[:] = (warped * alpha + canvas * (1 - alpha)).astype(np.uint8)


def constructed_pictures(count: int, seed: int, photo_faces, clip_faces, backgrounds) -> list[Picture]:
    rng = np.random.default_rng(seed)
    pictures = []
    for n in range(count):
        canvas = _background(rng, backgrounds).copy()
        dim = rng.random() < 0.25
        truths: list[Truth] = []
        for _ in range(int(rng.integers(1, 5))):
            pool = clip_faces if rng.random() < 0.2 else photo_faces
            face = pool[rng.integers(len(pool))]
            size = float(math.exp(rng.uniform(math.log(MIN_FACE), math.log(MAX_FACE))))
            angle = float(rng.uniform(-45, 45))
            cut = rng.random() < 0.2
            # The rotated face box's extent around its centre, to place it inside or across an edge.
            x, y, w, h = face.box
            k = size / math.sqrt(w * h)
            ew, eh = rotated_extent(k * w, k * h, angle)
            for _attempt in range(30):
                cx = rng.uniform(ew / 2, CANVAS_W - ew / 2) if ew < CANVAS_W else CANVAS_W / 2
                cy = rng.uniform(eh / 2, CANVAS_H - eh / 2) if eh < CANVAS_H else CANVAS_H / 2
                if cut:  # 20-45 % of the box beyond one edge
                    out = rng.uniform(0.2, 0.45)
                    edge = int(rng.integers(4))
                    if edge == 0:
                        cx = ew / 2 - out * ew
                    elif edge == 1:
                        cx = CANVAS_W - ew / 2 + out * ew
                    elif edge == 2:
                        cy = eh / 2 - out * eh
                    else:
                        cy = CANVAS_H - eh / 2 + out * eh
                box = np.array([cx - ew / 2, cy - eh / 2, ew, eh])
                grown = (box[0] - ew * 0.15, box[1] - eh * 0.15, ew * 1.3, eh * 1.3)
                if all(inside_fraction(t.box, grown) == 0 and inside_fraction(grown, t.box) == 0 for t in truths):
                    break
            else:
                continue
            _paste(canvas, face, size, angle, (cx, cy))
            x0, y0, x1, y1 = cx - ew / 2, cy - eh / 2, cx + ew / 2, cy + eh / 2
            full = ew * eh
            x0, y0, x1, y1 = max(0.0, x0), max(0.0, y0), min(CANVAS_W, x1), min(CANVAS_H, y1)
            visible = (x1 - x0) * (y1 - y0) / full if x1 > x0 and y1 > y0 else 0.0
            if visible <= 0:
                continue
            tags = ["photo face" if pool is photo_faces else "clip face"]
            tags.append("tilted >=20 deg" if abs(angle) >= 20 else "upright <20 deg")
            if visible < 0.999:
                tags.append("cut by edge")
            if dim:
                tags.append("dimmed")
            truths.append(Truth(np.array([x0, y0, x1 - x0, y1 - y0], np.float32), visible < 0.5, size, tuple(tags)))
        if dim:
            gain = rng.uniform(0.3, 0.5)
            dark = 255.0 * (canvas / 255.0) ** 1.4 * gain + rng.normal(0, 2.0, canvas.shape)
            canvas = np.clip(dark, 0, 255).astype(np.uint8)
        pictures.append(Picture(f"constructed#{n}", canvas, truths))
    return pictures


# ---------------------------------------------------------------------------------------------
# running and reporting


def run_set(pictures: list[Picture], clients: dict, repeats: int) -> dict[str, Tally]:
    names = list(clients)
    tallies = {n: Tally() for n in names}
    for k, picture in enumerate(pictures):
        image = picture.pixels()
        best = {n: float("inf") for n in names}
        found = {}
        for r in range(repeats):
            shift = (k + r) % len(names)
            for n in names[shift:] + names[:shift]:
                started = time.perf_counter()
                found[n] = [d.box for d in detection.detect(clients[n], image)]
                best[n] = min(best[n], (time.perf_counter() - started) * 1000)
        for n in names:
            t = tallies[n]
            matched, false_boxes, on_a_face = score(picture.truths, found[n])
            t.ms.append(best[n])
            t.false_boxes += false_boxes
            t.false_on_a_face += on_a_face
            hits = faces = 0
            for truth, m in zip(picture.truths, matched):
                if truth.ignore:
                    continue
                hit = m is not None
                faces += 1
                hits += hit
                if hit:
                    t.ious.append(m)
                cell = t.by_bucket.setdefault(bucket_of(truth.size), [0, 0])
                cell[0] += 1
                cell[1] += hit
                for tag in truth.tags:
                    cell = t.by_tag.setdefault(tag, [0, 0])
                    cell[0] += 1
                    cell[1] += hit
            t.faces += faces
            t.found += hits
            loose, _, _ = score(picture.truths, found[n], 0.3)
            t.found_loose += sum(m is not None for m in loose)
            t.by_picture[picture.name] = (hits, faces, false_boxes)
    return tallies


def pct(found: int, total: int) -> str:
    return f"{found}/{total} {100.0 * found / total:5.1f}%" if total else "-"


def print_table(title: str, tallies: dict[str, Tally], extra_rows: list[tuple[str, dict]] = ()) -> None:
    names = list(tallies)
    width = max(16, *(len(n) + 2 for n in names))
    print(f"\n{title}")
    print(f"{'':<30}" + "".join(f"{n:>{width}}" for n in names))
    rows = [
        ("recall @IoU>=0.5", {n: pct(t.found, t.faces) for n, t in tallies.items()}),
        ("  recall @IoU>=0.3", {n: pct(t.found_loose, t.faces) for n, t in tallies.items()}),
        ("false boxes", {n: str(t.false_boxes) for n, t in tallies.items()}),
        ("  of which on no face", {n: str(t.false_boxes - t.false_on_a_face) for n, t in tallies.items()}),
    ]
    any_tally = next(iter(tallies.values()))
    for b in BUCKETS:
        if any(b in t.by_bucket for t in tallies.values()):
            rows.append(
                (
                    f"  recall, size {bucket_name(b)} px",
                    {n: pct(*t.by_bucket.get(b, [0, 0])[::-1]) for n, t in tallies.items()},
                )
            )
    if any_tally.by_tag:
        rows.append(
            (
                "  recall, size >=32 px",
                {
                    n: pct(
                        sum(c[1] for b, c in t.by_bucket.items() if b[0] >= 32),
                        sum(c[0] for b, c in t.by_bucket.items() if b[0] >= 32),
                    )
                    for n, t in tallies.items()
                },
            )
        )
        for tag in sorted(any_tally.by_tag):
            rows.append((f"  recall, {tag}", {n: pct(*t.by_tag.get(tag, [0, 0])[::-1]) for n, t in tallies.items()}))
    rows += list(extra_rows)
    rows.append(
        (
            "median IoU of matches",
            {n: f"{statistics.median(t.ious):.2f}" if t.ious else "-" for n, t in tallies.items()},
        )
    )
    rows.append(("ms per picture (median)", {n: f"{statistics.median(t.ms):.1f}" for n, t in tallies.items()}))
    rows.append(("ms per picture (p90)", {n: f"{np.percentile(t.ms, 90):.1f}" for n, t in tallies.items()}))
    baseline = statistics.median(next(iter(tallies.values())).ms)
    rows.append(
        (f"  median ratio to {names[0]}", {n: f"{statistics.median(t.ms) / baseline:.2f}" for n, t in tallies.items()})
    )
    for label, cells in rows:
        print(f"{label:<30}" + "".join(f"{cells[n]:>{width}}" for n in names))


def save_pictures(pictures: list[Picture], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for picture in pictures:
        image = picture.image.copy()
        for t in picture.truths:
            x, y, w, h = (int(round(v)) for v in t.box)
            cv2.rectangle(image, (x, y), (x + w, y + h), (0, 0, 255) if t.ignore else (0, 255, 0), 1)
            cv2.putText(image, f"{t.size:.0f}", (x + 2, y + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 255, 255), 1)
        cv2.imwrite(str(folder / f"{picture.name.replace('#', '_')}.png"), image)


def first_face_in_clips(analyzer: Analyzer, names: list[str]) -> None:
    print(
        "\nClips: first frame with a face, as the clip pipeline schedules the detector (first frame, then "
        f"every {face_following.DETECT_PERIOD_MS:.0f} ms until a face is found; grey frames from media.decode)"
    )
    header = (
        f"{'clip':<28}{'detector':>12}{'frames read':>13}{'1st face frame':>16}{'at clip ms':>12}"
        f"{'wall ms to it':>15}{'detect ms fr.0':>16}"
    )
    print(header)
    for path in sorted((DATA_DIR / "videos").glob("*")):
        data = path.read_bytes()
        for name in names:
            options = AnalysisOptions(detector=name)
            started = time.perf_counter()
            video = media.decode(data, Limits(), options.sample_fps)
            first = first_ms = None
            frame0_ms = None
            last_detection = None
            frames = 0
            for frame in video.frames:
                frames += 1
                if not face_following.detection_due(frame.timestamp_ms, last_detection, analyzer.detect_period_ms):
                    continue
                last_detection = frame.timestamp_ms
                gray = to_grayscale(frame.pixels)
                t0 = time.perf_counter()
                found = analyzer._detect(frame.pixels, gray, options, analyzer.clip_detectors)
                if frame0_ms is None:
                    frame0_ms = (time.perf_counter() - t0) * 1000
                if found:
                    first, first_ms = frame.index, frame.timestamp_ms
                    wall = (time.perf_counter() - started) * 1000
                    video.close()
                    break
            if first is None:
                print(f"{path.name:<28}{name:>12}{frames:>13}{'none':>16}{'-':>12}{'-':>15}{frame0_ms:>16.1f}")
            else:
                print(
                    f"{path.name:<28}{name:>12}{frames:>13}{first:>16}{first_ms:>12.0f}{wall:>15.1f}{frame0_ms:>16.1f}"
                )


def webcam_frame_ms(analyzer: Analyzer, names: list[str], repeats: int) -> None:
    """Detector time per 640x480 webcam-like frame: every clip's frames every 200 ms, letterboxed to
    640x480 and grey (as media.decode yields them), each detector as the clip pipeline runs it."""
    frames = []
    for path in sorted((DATA_DIR / "videos").glob("*")):
        video = media.decode(path.read_bytes(), Limits(), AnalysisOptions().sample_fps)
        last = None
        for frame in video.frames:
            if face_following.detection_due(frame.timestamp_ms, last, face_following.DETECT_PERIOD_MS):
                last = frame.timestamp_ms
                gray = to_grayscale(frame.pixels)
                scale = min(CANVAS_W / gray.shape[1], CANVAS_H / gray.shape[0])
                small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
                canvas = np.zeros((CANVAS_H, CANVAS_W), np.uint8)
                y0, x0 = (CANVAS_H - small.shape[0]) // 2, (CANVAS_W - small.shape[1]) // 2
                canvas[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = small
                frames.append(canvas)
    best = {n: [float("inf")] * len(frames) for n in names}
    with_face = dict.fromkeys(names, 0)
    for r in range(repeats):
        for k, frame in enumerate(frames):
            shift = (k + r) % len(names)
            for n in names[shift:] + names[:shift]:
                options = AnalysisOptions(detector=n)
                started = time.perf_counter()
                found = analyzer._detect(frame, frame, options, analyzer.clip_detectors)
                best[n][k] = min(best[n][k], (time.perf_counter() - started) * 1000)
                with_face[n] += bool(found) and r == 0
    print(
        f"\nWebcam frames: {len(frames)} frames of the clips every {face_following.DETECT_PERIOD_MS:.0f} ms, letterboxed to "
        f"{CANVAS_W}x{CANVAS_H}, grey, detection + 5 landmarks as the clip pipeline runs it (fastest of {repeats})"
    )
    print(f"{'':<30}" + "".join(f"{n:>16}" for n in names))
    print(f"{'frames with a face':<30}" + "".join(f"{with_face[n]:>16}" for n in names))
    print(f"{'ms per frame (median)':<30}" + "".join(f"{statistics.median(best[n]):>16.2f}" for n in names))
    baseline = statistics.median(best[names[0]])
    print(f"{'  ratio to ' + names[0]:<30}" + "".join(f"{statistics.median(best[n]) / baseline:>16.2f}" for n in names))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos-only", action="store_true", help="only the hand-labelled photos (no (b), no clips)")
    parser.add_argument("--constructed", type=int, default=120, metavar="N", help="constructed pictures (default 120)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per picture and detector; the fastest counts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", action="store_true", help="list photos where a detector misses or adds a face")
    parser.add_argument(
        "--save-constructed",
        type=Path,
        metavar="DIR",
        help="also write the first 12 constructed pictures, truth boxes drawn, as PNG to DIR",
    )
    args = parser.parse_args()

    cv2.setNumThreads(1)
    analyzer = Analyzer(Path(tempfile.mkdtemp()), DEFAULT_EMOTION_MODEL, threads=1)
    clients = {name: analyzer.detectors[name] for name in detection.DETECTORS}
    photos = labelled_photos()
    counted = sum(not t.ignore for p in photos for t in p.truths)
    ignored = sum(t.ignore for p in photos for t in p.truths)
    print(
        f"Face detection, detectors {', '.join(clients)} through detection.detect (each its own resizing); "
        f"1 thread, fastest of {args.repeats} per picture; {describe()}"
    )

    tallies = run_set(photos, clients, args.repeats)
    selfie = {n: "{}/{}".format(*t.by_picture["selfie-many-people.jpg"][:2]) for n, t in tallies.items()}
    print_table(
        f"(a) {len(photos)} hand-labelled photos ({DATA_DIR / 'faces'}): {counted} faces, {ignored} ignored; "
        "sizes on the 640 px copy",
        tallies,
        [("  selfie-many-people.jpg", selfie)],
    )
    if args.verbose:
        for n, t in tallies.items():
            for photo, (hits, faces, false_boxes) in t.by_picture.items():
                if hits < faces or false_boxes:
                    print(f"  {n}: {photo}: found {hits}/{faces}, false boxes {false_boxes}")
    if args.photos_only:
        return

    if args.constructed > 0:
        photo_faces, clip_faces, backgrounds = face_and_background_pools(photos)
        pictures = constructed_pictures(args.constructed, args.seed, photo_faces, clip_faces, backgrounds)
        faces = sum(not t.ignore for p in pictures for t in p.truths)
        if args.save_constructed:
            save_pictures(pictures[:12], args.save_constructed)
        tallies = run_set(pictures, clients, args.repeats)
        print_table(
            f"(b) {len(pictures)} constructed {CANVAS_W}x{CANVAS_H} pictures (seed {args.seed}): {faces} faces "
            f"from {len(photo_faces)} photo faces and {len(clip_faces)} clip frames, "
            f"{sum(t.ignore for p in pictures for t in p.truths)} ignored (under half visible)",
            tallies,
        )
    webcam_frame_ms(analyzer, list(clients), args.repeats)
    first_face_in_clips(analyzer, list(clients))


if __name__ == "__main__":
    main()
