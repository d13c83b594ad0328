"""Evaluate an emotion ONNX model with DeepFace's interface on the shared real-face data.

Any ONNX model works that takes (N, 48, 48, 1) float32 grayscale in [0, 1] (dynamic N) and returns
(N, 7) probabilities in ``api.engine.preprocess.EMOTIONS`` order. Faces go through the serving
preprocessing, ``api.engine.preprocess.faces_to_batch``, so the numbers are what the API would get.

    python models/evaluate.py models/emotion_fer/emotion_fer.onnx [--data ../shared/data] [--json out.json]

Data (see ../shared/data/README.md): ``fer2013/public_test`` (3,589 crops, 7 classes) and ``ckplus48``
(762 CK+ crops; anger->angry, sadness->sad, contempt has no counterpart and is reported apart, outside the
headline accuracy). The data dir defaults to $EMOSCOPE_DATA_DIR, else ../shared/data next to the repo.

Reports accuracy, per-class recall/precision, confusion matrix (rows = true, cols = predicted), expected
calibration error (15 equal-width bins of top-class confidence), and onnxruntime CPU speed with
intra_op_num_threads=2: mean latency per face at batch 1 and throughput at batch 64.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from api.engine.preprocess import EMOTIONS, MODEL_INPUT_SIZE, faces_to_batch  # noqa: E402

CKPLUS_TO_EMOTIONS = {
    "anger": "angry",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happy",
    "sadness": "sad",
    "surprise": "surprise",
}  # contempt: no counterpart
ECE_BINS = 15
THREADS = 2


def data_dir(arg: str | None) -> Path:
    d = Path(arg or os.environ.get("EMOSCOPE_DATA_DIR") or REPO.parent / "shared" / "data").resolve()
    for sub in ("fer2013/labels.csv", "ckplus48/labels.csv"):
        if not (d / sub).is_file():
            sys.exit(
                f"error: evaluation data not found: {d / sub} is missing.\n"
                f"Point --data or EMOSCOPE_DATA_DIR at the shared data folder (default ../shared/data)."
            )
    return d


def load_faces(root: Path, rows: list[dict]) -> list[np.ndarray]:
    faces = []
    for r in rows:
        img = cv2.imread(str(root / r["file"]), cv2.IMREAD_COLOR)  # BGR, as the API receives frames
        if img is None:
            sys.exit(f"error: cannot read {root / r['file']}")
        faces.append(img)
    return faces


def session(model_path: str) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = THREADS
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
    (inp,), (out,) = sess.get_inputs(), sess.get_outputs()
    if list(inp.shape[1:]) != [MODEL_INPUT_SIZE, MODEL_INPUT_SIZE, 1]:
        sys.exit(f"error: model input {inp.name} has shape {inp.shape}, expected (N, 48, 48, 1)")
    if out.shape[-1] != len(EMOTIONS):
        sys.exit(f"error: model output {out.name} has shape {out.shape}, expected (N, {len(EMOTIONS)})")
    labels = sess.get_modelmeta().custom_metadata_map.get("labels")
    if labels and tuple(labels.split(",")) != EMOTIONS:
        sys.exit(f"error: model metadata labels {labels} differ from EMOTIONS {','.join(EMOTIONS)}")
    return sess


def predict(sess: ort.InferenceSession, batch: np.ndarray, mirror: bool = False, batch_size: int = 64) -> np.ndarray:
    """Probabilities per face; with mirror, the mean over each face and its horizontal mirror image."""
    name = sess.get_inputs()[0].name
    views = [batch, np.ascontiguousarray(batch[:, :, ::-1])] if mirror else [batch]
    probs = np.mean(
        [
            np.concatenate(
                [sess.run(None, {name: view[i : i + batch_size]})[0] for i in range(0, len(view), batch_size)]
            )
            for view in views
        ],
        axis=0,
    )
    if not np.allclose(probs.sum(1), 1.0, atol=1e-3) or (probs < 0).any():
        sys.exit("error: model outputs are not probabilities (rows must be >= 0 and sum to 1)")
    return probs


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> float:
    conf, correct = probs.max(1), probs.argmax(1) == y
    idx = np.minimum((conf * bins).astype(int), bins - 1)  # equal-width bins over [0, 1]
    return float(
        sum(
            abs(correct[idx == b].mean() - conf[idx == b].mean()) * (idx == b).mean()
            for b in range(bins)
            if (idx == b).any()
        )
    )


def metrics(probs: np.ndarray, y: np.ndarray) -> dict:
    pred = probs.argmax(1)
    k = len(EMOTIONS)
    cm = np.zeros((k, k), int)
    np.add.at(cm, (y, pred), 1)
    present = [c for c in range(k) if cm[c].sum()]
    per_class = {}
    for c in range(k):
        per_class[EMOTIONS[c]] = {
            "support": int(cm[c].sum()),
            "recall": float(cm[c, c] / cm[c].sum()) if cm[c].sum() else None,
            "precision": float(cm[c, c] / cm[:, c].sum()) if cm[:, c].sum() else None,
        }
    return {
        "n": int(len(y)),
        "accuracy": float((pred == y).mean()),
        "macro_recall": float(np.mean([per_class[EMOTIONS[c]]["recall"] for c in present])),
        "ece": expected_calibration_error(probs, y),
        "nll": float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None)).mean()),
        "per_class": per_class,
        "confusion": {"rows_true_cols_pred": list(EMOTIONS), "matrix": cm.tolist()},
    }


def print_metrics(title: str, m: dict) -> None:
    print(
        f"\n== {title}: n={m['n']}  accuracy={m['accuracy']:.4f}  macro recall={m['macro_recall']:.4f}  "
        f"ECE({ECE_BINS} bins)={m['ece']:.4f}  NLL={m['nll']:.4f}"
    )
    print(f"{'class':>10} {'support':>8} {'recall':>8} {'precision':>10}")
    fmt = lambda v: "     -" if v is None else f"{v:.4f}"  # noqa: E731
    for c, pc in m["per_class"].items():
        print(f"{c:>10} {pc['support']:>8} {fmt(pc['recall']):>8} {fmt(pc['precision']):>10}")
    print("confusion (rows true, cols predicted):")
    print(" " * 10 + "".join(f"{e[:7]:>8}" for e in EMOTIONS))
    for c, row in zip(EMOTIONS, m["confusion"]["matrix"]):
        if sum(row):
            print(f"{c:>10}" + "".join(f"{v:>8}" for v in row))


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def eval_fer2013(sess, root: Path, mirror: bool = False) -> tuple[dict, np.ndarray]:
    rows = [r for r in read_csv(root / "labels.csv") if r["split"] == "public_test"]
    batch = faces_to_batch(load_faces(root, rows))
    y = np.array([EMOTIONS.index(r["label"]) for r in rows])
    return metrics(predict(sess, batch, mirror), y), batch


def eval_ckplus(sess, root: Path, mirror: bool = False) -> dict:
    rows = read_csv(root / "labels.csv")
    main = [r for r in rows if r["label"] in CKPLUS_TO_EMOTIONS]
    contempt = [r for r in rows if r["label"] == "contempt"]
    unknown = {r["label"] for r in rows} - set(CKPLUS_TO_EMOTIONS) - {"contempt"}
    if unknown:
        sys.exit(f"error: unexpected CK+ labels {sorted(unknown)}")
    y = np.array([EMOTIONS.index(CKPLUS_TO_EMOTIONS[r["label"]]) for r in main])
    m = metrics(predict(sess, faces_to_batch(load_faces(root, main)), mirror), y)
    m["subjects"] = len({r["subject"] for r in main})
    pc = predict(sess, faces_to_batch(load_faces(root, contempt)), mirror).argmax(1) if contempt else np.zeros(0, int)
    m["contempt"] = {"n": len(contempt), "predicted_as": {e: int((pc == i).sum()) for i, e in enumerate(EMOTIONS)}}
    return m


def speed(sess, faces: np.ndarray, reps1: int = 300, reps64: int = 30) -> dict:
    name = sess.get_inputs()[0].name
    one, b64 = faces[:1], faces[:64]
    for _ in range(20):
        sess.run(None, {name: one})
    t1 = []
    for i in range(reps1):
        x = faces[i % len(faces)][None]
        t = time.perf_counter()
        sess.run(None, {name: x})
        t1.append(time.perf_counter() - t)
    for _ in range(3):
        sess.run(None, {name: b64})
    t64 = []
    for _ in range(reps64):
        t = time.perf_counter()
        sess.run(None, {name: b64})
        t64.append(time.perf_counter() - t)
    t1, t64 = np.array(t1), np.array(t64)
    return {
        "threads": THREADS,
        "batch1_mean_ms": float(t1.mean() * 1e3),
        "batch1_p50_ms": float(np.median(t1) * 1e3),
        "batch1_p95_ms": float(np.percentile(t1, 95) * 1e3),
        "batch64_mean_ms": float(t64.mean() * 1e3),
        "batch64_faces_per_s": float(64 / t64.mean()),
        "batch64_faces_per_s_best": float(64 / t64.min()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="ONNX model with DeepFace's emotion interface")
    ap.add_argument("--data", help="shared data dir (default $EMOSCOPE_DATA_DIR or ../shared/data)")
    ap.add_argument("--json", type=Path, help="also write all numbers to this JSON file")
    ap.add_argument("--no-speed", action="store_true", help="skip the latency/throughput measurement")
    ap.add_argument(
        "--mirror",
        action="store_true",
        help="average each face with its mirror image (test-time augmentation the service does "
        "not do: it would classify every face twice)",
    )
    args = ap.parse_args()

    data = data_dir(args.data)
    sess = session(args.model)
    fer, fer_batch = eval_fer2013(sess, data / "fer2013", args.mirror)
    print_metrics("fer2013 public_test", fer)
    ck = eval_ckplus(sess, data / "ckplus48", args.mirror)
    print_metrics(f"ckplus48 without contempt ({ck['subjects']} subjects)", ck)
    print(
        f"ckplus48 contempt (n={ck['contempt']['n']}, not in headline) predicted as: "
        + ", ".join(f"{e} {n}" for e, n in ck["contempt"]["predicted_as"].items() if n)
    )
    result = {
        "model": str(args.model),
        "sha256": hashlib.sha256(Path(args.model).read_bytes()).hexdigest(),
        "data": str(data),
        "mirror": args.mirror,
        "fer2013_public_test": fer,
        "ckplus48": ck,
    }
    if not args.no_speed:
        s = speed(sess, fer_batch)
        print(
            f"\n== speed (onnxruntime {ort.__version__} CPU, intra_op_num_threads={THREADS}): "
            f"batch 1 mean {s['batch1_mean_ms']:.3f} ms/face (p50 {s['batch1_p50_ms']:.3f}, "
            f"p95 {s['batch1_p95_ms']:.3f}); batch 64 {s['batch64_faces_per_s']:.0f} faces/s "
            f"({s['batch64_mean_ms']:.2f} ms/batch)"
        )
        result["speed"] = s
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
