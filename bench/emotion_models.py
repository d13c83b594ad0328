"""The emotion models of the manifest side by side: accuracy on real labelled faces, calibration, speed.

Each model (default: every emotion model in models/manifest.json, ours and fer's) is scored by
`models/evaluate.py` on FER2013 public_test and CK+48 (cross-dataset, contempt apart), then timed
under onnxruntime with 2 threads, the models taking turns (`--rounds`) so a busy machine slows them
alike. Prints one table; `--json` keeps every number.

    python bench/emotion_models.py                  # emotion and emotion_fer
    python bench/emotion_models.py --rounds 5 --json var/emotion_models.json
    python bench/emotion_models.py emotion --candidate /tmp/emotion_mirror.onnx   # a trial file beside the served one
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "models"))

import evaluate  # noqa: E402  (models/evaluate.py)

from api.engine.weights import load_manifest, verified_path  # noqa: E402

EMOTION_MODELS = ("emotion", "emotion_fer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=list(EMOTION_MODELS), help="manifest names")
    parser.add_argument("--rounds", type=int, default=3, help="speed measurements per model, in turns")
    parser.add_argument("--data", help="shared data dir (default $EMOSCOPE_DATA_DIR or ../shared/data)")
    parser.add_argument(
        "--candidate",
        type=Path,
        action="append",
        default=[],
        help="an ONNX file not in the manifest (a training trial), measured beside the others",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    data = evaluate.data_dir(args.data)
    manifest = load_manifest()
    sessions, results, batch = {}, {}, None
    # the served files are the same checked files the service loads
    paths = {name: (verified_path(manifest[name]), manifest[name].sha256) for name in args.models}
    paths.update((path.stem, (path, "candidate")) for path in args.candidate)
    for name, (path, sha256) in paths.items():
        sessions[name] = evaluate.session(str(path))
        fer, batch = evaluate.eval_fer2013(sessions[name], data / "fer2013")
        results[name] = {
            "sha256": sha256,
            "fer2013": fer,
            "ckplus48": evaluate.eval_ckplus(sessions[name], data / "ckplus48"),
            "speed": [],
        }
    for _ in range(args.rounds):
        for name, sess in sessions.items():
            results[name]["speed"].append(evaluate.speed(sess, batch))

    header = (
        f"{'model':<12} {'FER2013':>8} {'CK+':>6} {'disgust':>8} {'fear':>6} {'macro R':>8} {'ECE':>6} "
        f"{'ms/face b1':>11} {'faces/s b64':>12}"
    )
    print(header)
    for name, r in results.items():
        fer, ck = r["fer2013"], r["ckplus48"]
        b1 = float(np.median([s["batch1_p50_ms"] for s in r["speed"]]))
        b64 = float(np.median([s["batch64_faces_per_s"] for s in r["speed"]]))
        r["speed_median"] = {"batch1_p50_ms": b1, "batch64_faces_per_s": b64}
        print(
            f"{name:<12} {fer['accuracy']:>8.1%} {ck['accuracy']:>6.1%} "
            f"{fer['per_class']['disgust']['recall']:>8.1%} {fer['per_class']['fear']['recall']:>6.1%} "
            f"{fer['macro_recall']:>8.1%} {fer['ece']:>6.3f} {b1:>11.2f} {b64:>12.0f}"
        )
    print(
        "FER2013 = public_test accuracy (3,589); CK+ = ckplus48 without contempt (720, never trained on); "
        "disgust/fear/macro R = public_test recall; speed = onnxruntime, 2 threads, median of the rounds"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
