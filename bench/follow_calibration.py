"""Calibrates face following between detections (api/engine/face_following.py) on the real clips.

For every frame of every clip in videos/ the detector's own answer is the reference. From each
frame where it finds faces, each face is followed frame by frame for the next `--horizon` frames
(200 ms at 30 fps), and every step records the patch similarity that decides "lost" and the IoU of
the followed box with the detector's box on that frame. Positives: steps where the detector
still finds the face (IoU >= 0.3). Negatives: steps where it finds no face at all (the face has
gone: face_noface.mov), and cuts: each detection followed into the frames of the next clip.

    python bench/follow_calibration.py [--horizon 6]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.engine import detection, face_following  # noqa: E402
from api.engine.analyzer import configure_deepface  # noqa: E402
from api.engine.track_building import iou  # noqa: E402
from api.engine.weights import prepare_deepface_home  # noqa: E402
from api.wiring.config import DEFAULT_EMOTION_MODEL, REPO_ROOT  # noqa: E402

DATA_DIR = Path(os.environ.get("EMOSCOPE_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="gray") for f in container.decode(video=0)]


def follow_steps(landmarks, grays, start, box, points, horizon, passes=2):
    """Yield (step, followed box, similarity, plausible) following one face from frame `start`."""
    face = face_following.start(grays[start], box, points, 1.0)
    for step in range(1, horizon + 1):
        if start + step >= len(grays):
            return
        gray = grays[start + step]
        moved = face.box
        for _ in range(passes):
            pts = landmarks(gray, moved)
            moved = face_following.move_box(face.anchor_box, face.anchor_points, pts)
        score = face_following.patch_similarity(face_following.aligned_patch(gray, pts), face.anchor_patch)
        ok = face_following.plausible(moved, face.anchor_box, gray.shape[1], gray.shape[0])
        yield step, moved, score, ok
        face = face_following.Followed(face.anchor_box, face.anchor_points, face.anchor_patch, 1.0, moved, pts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizon", type=int, default=6, help="frames followed after each detection")
    parser.add_argument(
        "--passes", type=int, default=face_following.LANDMARK_PASSES, help="shape-predictor passes per frame"
    )
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp())
    prepare_deepface_home(home, ["dlib_shape_predictor_5"], DEFAULT_EMOTION_MODEL)
    configure_deepface(home, threads=1)
    client = detection.load_detector("dlib")
    landmarks = detection.LandmarkPredictor(client.model["sp"])
    positives, negatives, cuts, ious, drops = [], [], [], [], 0
    paths = sorted((DATA_DIR / "videos").glob("*"))
    names = [p.name for p in paths]
    clips = [decode(p) for p in paths]
    for path, grays in zip(paths, clips):
        found = [detection.detect(client, g) for g in grays]
        clip_pos, clip_neg, clip_cut = [], [], []
        for start, dets in enumerate(found):
            for d in dets:
                points = landmarks(grays[start], d.box)
                for step, box, score, ok in follow_steps(
                    landmarks, grays, start, d.box, points, args.horizon, args.passes
                ):
                    truth = max((iou(box, e.box) for e in found[start + step]), default=0.0)
                    if truth >= 0.3:
                        clip_pos.append(score)
                        ious.append(truth)
                        drops += not ok
                    elif not found[start + step]:
                        clip_neg.append(score if ok else -1.0)
                # a cut: the following frames come from another clip (resized to this one)
                other = clips[(names.index(path.name) + 1) % len(clips)]
                h, w = grays[start].shape
                cut = [grays[start]] + [cv2.resize(g, (w, h)) for g in other[start : start + args.horizon]]
                for _, _, score, ok in follow_steps(landmarks, cut, 0, d.box, points, args.horizon, args.passes):
                    clip_cut.append(score if ok else -1.0)
        print(
            f"{path.name}: {len(grays)} frames, {sum(map(len, found))} detections; "
            f"positives {len(clip_pos)} (min {min(clip_pos, default=float('nan')):.2f}), "
            f"face gone {len(clip_neg)} (max {max(clip_neg, default=float('nan')):.2f}), "
            f"cut to {names[(names.index(path.name) + 1) % len(clips)]} {len(clip_cut)} "
            f"(max {max(clip_cut, default=float('nan')):.2f})"
        )
        positives += clip_pos
        negatives += clip_neg
        cuts += clip_cut
    pos = np.array(positives)
    print(
        f"same face, similarity: min {pos.min():.3f} p0.1 {np.percentile(pos, 0.1):.3f} p1 {np.percentile(pos, 1):.3f} "
        f"p5 {np.percentile(pos, 5):.3f} median {np.median(pos):.3f}  (n={len(pos)})"
    )
    for label, values in (("face gone", negatives), ("cut to another clip", cuts)):
        v = np.array(values)
        print(
            f"{label}, similarity (-1 = implausible box): max {v.max():.3f} p99 {np.percentile(v, 99):.3f} "
            f"p95 {np.percentile(v, 95):.3f} median {np.median(v):.3f}  (n={len(v)})"
        )
    print(
        f"followed box vs detector box IoU: median {np.median(ious):.3f} p5 {np.percentile(ious, 5):.3f} "
        f"min {min(ious):.3f}; implausible (dropped) same-face steps: {drops}"
    )
    t = face_following.MIN_PATCH_SIMILARITY
    print(
        f"at MIN_PATCH_SIMILARITY={t}: same face called lost {np.mean(pos < t):.2%}, "
        f"face gone but kept {np.mean(np.array(negatives) >= t):.2%}, cut but kept {np.mean(np.array(cuts) >= t):.2%}"
    )


if __name__ == "__main__":
    main()
