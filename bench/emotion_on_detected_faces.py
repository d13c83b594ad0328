"""Emotion accuracy on faces the detector finds, per detector, against the same faces given as crops.

FER2013 public_test and CK+48 hold labelled 48x48 crops, not photos. Each crop is enlarged 4x
(192 px) and placed, with a margin of its own mirrored surroundings, on a 640x480 grey picture at a
seeded position; the service's own image path (`Analyzer.analyze_image`: detection, landmarks,
crop, emotion model) then analyses that picture. The largest face found is the answer; a picture in
which no face is found counts as wrong. "crop" is the emotion model on the original crop, as
`models/evaluate.py` measures it: the ceiling for the detection path.

    python bench/emotion_on_detected_faces.py [--fer N] [--seed 0] [--detectors dlib,blazeface]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "models"))

from evaluate import CKPLUS_TO_EMOTIONS  # noqa: E402  (models/evaluate.py: the one CK+ label map)
from machine import describe  # noqa: E402  (bench/machine.py)

from api.engine import detection  # noqa: E402
from api.engine.analyzer import AnalysisOptions, Analyzer  # noqa: E402
from api.engine.media import DecodedImage  # noqa: E402
from api.engine.preprocess import EMOTIONS, faces_to_batch  # noqa: E402
from api.engine.results import MediaInfo  # noqa: E402
from api.wiring.config import DEFAULT_EMOTION_MODEL, REPO_ROOT  # noqa: E402

DATA_DIR = Path(os.environ.get("EMOSCOPE_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
CANVAS_W, CANVAS_H, FACE_SIDE, MARGIN = 640, 480, 192, 48


def labelled_crops(fer_count: int, seed: int) -> dict[str, list[tuple[np.ndarray, int]]]:
    sets = {}
    with (DATA_DIR / "ckplus48" / "labels.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r["label"] in CKPLUS_TO_EMOTIONS]
    sets["CK+48"] = [
        (cv2.imread(str(DATA_DIR / "ckplus48" / r["file"])), EMOTIONS.index(CKPLUS_TO_EMOTIONS[r["label"]]))
        for r in rows
    ]
    with (DATA_DIR / "fer2013" / "labels.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "public_test"]
    chosen = np.random.default_rng(seed).permutation(len(rows))[:fer_count]
    sets["FER2013 public_test"] = [
        (cv2.imread(str(DATA_DIR / "fer2013" / rows[i]["file"])), EMOTIONS.index(rows[i]["label"]))
        for i in sorted(chosen)
    ]
    return sets


def picture(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    face = cv2.resize(crop, (FACE_SIDE, FACE_SIDE), interpolation=cv2.INTER_CUBIC)
    face = cv2.copyMakeBorder(face, MARGIN, MARGIN, MARGIN, MARGIN, cv2.BORDER_REFLECT_101)
    canvas = np.full((CANVAS_H, CANVAS_W, 3), 128, np.uint8)
    side = face.shape[0]
    top, left = int(rng.integers(0, CANVAS_H - side + 1)), int(rng.integers(0, CANVAS_W - side + 1))
    canvas[top : top + side, left : left + side] = face
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fer", type=int, default=1000, help="FER2013 public_test crops to use (seeded sample)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--detectors", default=",".join(detection.DETECTORS), help="comma-separated detectors to compare (default: all)"
    )
    args = parser.parse_args()
    analyzer = Analyzer(Path(tempfile.mkdtemp()), DEFAULT_EMOTION_MODEL, threads=1)
    print(f"Emotion accuracy on detected faces, model {DEFAULT_EMOTION_MODEL}; {describe()}")
    print(f"{'set':<22} {'faces':>6} {'path':<12} {'found':>7} {'accuracy':>9} {'on found':>9} {'ms/pic':>7}")
    for name, crops in labelled_crops(args.fer, args.seed).items():
        labels = np.array([label for _, label in crops])
        direct = analyzer.emotion.predict(faces_to_batch([crop for crop, _ in crops])).argmax(1)
        print(f"{name:<22} {len(crops):>6} {'crop':<12} {'-':>7} {np.mean(direct == labels):>9.1%} {'-':>9} {'-':>7}")
        rng = np.random.default_rng(args.seed)
        pictures = [picture(crop, rng) for crop, _ in crops]
        info = MediaInfo("image", "png", CANVAS_W, CANVAS_H)
        for detector in args.detectors.split(","):
            predicted, started = [], time.perf_counter()
            for pixels in pictures:
                faces = analyzer.analyze_image(DecodedImage(info, pixels), AnalysisOptions(detector=detector)).faces
                largest = max(faces, key=lambda f: float(f.box[2] * f.box[3]), default=None)
                predicted.append(-1 if largest is None else int(np.argmax(largest.emotions)))
            ms = (time.perf_counter() - started) * 1000 / len(pictures)
            predicted = np.array(predicted)
            found = predicted >= 0
            print(
                f"{name:<22} {len(crops):>6} {detector:<12} {found.mean():>7.1%} {np.mean(predicted == labels):>9.1%} "
                f"{np.mean(predicted[found] == labels[found]) if found.any() else float('nan'):>9.1%} {ms:>7.1f}"
            )


if __name__ == "__main__":
    main()
