"""Per-image latency: plain DeepFace.analyze vs our /v1/analyze path, same images, same weights.

Both run in this process on the same CPU, interleaved image by image so background load hits
both alike. DeepFace gets the file path (it decodes itself); ours gets the file's bytes (it
decodes, checks limits, detects, aligns and classifies in one batch). Prints medians and ratios.

    python bench/analyze_vs_deepface.py [--detector dlib] [--images 52]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from machine import describe  # noqa: E402  (bench/machine.py)

from api.engine.analyzer import AnalysisOptions, Analyzer, analyze_bytes  # noqa: E402
from api.wiring.config import DEFAULT_EMOTION_MODEL, REPO_ROOT, Limits  # noqa: E402

DATA_DIR = Path(os.environ.get("EMOSCOPE_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", default="dlib", choices=["dlib", "opencv"])
    parser.add_argument("--images", type=int, default=52)
    parser.add_argument("--emotion-model", default=DEFAULT_EMOTION_MODEL)
    args = parser.parse_args()

    images = sorted((DATA_DIR / "faces").glob("*.jpg"))[: args.images]
    if not images:
        sys.exit(f"no images under {DATA_DIR / 'faces'}; set EMOSCOPE_DATA_DIR")
    analyzer = Analyzer(Path(tempfile.mkdtemp()), args.emotion_model, threads=1)
    from deepface import DeepFace  # after Analyzer: it points DeepFace at our verified weights

    options, limits = AnalysisOptions(detector=args.detector), Limits()

    def deepface(path: Path) -> int:
        return len(
            DeepFace.analyze(
                str(path), actions=["emotion"], detector_backend=args.detector, enforce_detection=False, silent=True
            )
        )

    def ours(path: Path) -> int:
        return len(analyze_bytes(analyzer, path.read_bytes(), options, limits).faces)

    deepface(images[0]), ours(images[0])  # warm-up: model builds are not per-request costs
    timings = {"deepface": [], "emoscope": []}
    faces = {"deepface": 0, "emoscope": 0}
    for path in images:
        for name, run in (("deepface", deepface), ("emoscope", ours)):
            started = time.perf_counter()
            faces[name] += run(path)
            timings[name].append((time.perf_counter() - started) * 1000)

    print(
        f"{len(images)} real photos from {DATA_DIR / 'faces'} (up to 2280x1588), detector={args.detector}, "
        f"emotion model={args.emotion_model}, {describe()}"
    )
    print(f"{'path':<10} {'median ms':>10} {'p95 ms':>8} {'images/s':>9} {'faces':>6}")
    for name, values in timings.items():
        print(
            f"{name:<10} {statistics.median(values):>10.1f} {percentile(values, 0.95):>8.1f} "
            f"{1000 * len(values) / sum(values):>9.2f} {faces[name]:>6}"
        )
    ratio = statistics.median(timings["deepface"]) / statistics.median(timings["emoscope"])
    print(f"median speed-up of emoscope over plain DeepFace.analyze: {ratio:.2f}x")


if __name__ == "__main__":
    main()
